//! What happens to a socket that cannot take an event: it is cut off, so that its client
//! reconnects and catches up, instead of silently missing the event.
//!
//! Each socket has a buffer of [`crate::Config::socket_buffer`] packets between the server and
//! its transport. A client that reads too slowly (or a long-polling client that stops polling)
//! fills it, and an emit to it fails. The event is in the log, but the client does not know it
//! missed one: a gap in a live stream is the one thing it cannot detect. So the server ends that
//! socket's transport (not with a Socket.IO DISCONNECT: after "io server disconnect" a client
//! does not reconnect by itself):
//!
//! - on a WebSocket, its TCP connection is closed ([`crate::conn::Peer::cut`]); the client sees
//!   "transport close";
//! - on long-polling, its session id is refused from then on with Engine.IO's `400 {"code":1,
//!   "message":"Session ID unknown"}`, what a restarted server answers; the client sees a
//!   transport error.
//!
//! Either way the client reconnects (a new session: socketioxide has no connection state
//! recovery), re-joins its rooms and reads what it missed from the REST feed, starting after
//! the last event it got (Tidings does this by itself when the feed is configured). The server
//! forgets the session when socketioxide reports it closed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use socketioxide::TransportType;
use socketioxide::extract::SocketRef;
use socketioxide::socket::Sid;

use crate::app::App;
use crate::conn::Peer;

/// Upgrades remembered before the map is pruned.
const MAX_UPGRADES: usize = 4096;

/// The sessions cut off, and the WebSocket connections of sessions that upgraded to one.
#[derive(Debug, Default)]
pub struct Transports {
    cut: Mutex<HashSet<String>>,
    upgraded: Mutex<HashMap<String, Peer>>,
}

/// `(sid, transport is websocket)` from an Engine.IO query string.
fn engine_query(query: Option<&str>) -> (Option<&str>, bool) {
    let (mut sid, mut ws) = (None, false);
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("sid", v)) => sid = Some(v),
            Some(("transport", v)) => ws = v == "websocket",
            _ => {}
        }
    }
    (sid, ws)
}

impl Transports {
    /// Ends the transport of `s`, which missed an event (see the module documentation).
    pub fn cut(&self, s: &SocketRef) {
        let sid = s.id.to_string();
        let first = self.cut.lock().is_ok_and(|mut cut| cut.insert(sid.clone()));
        let ws = s.transport_type() == TransportType::Websocket;
        let parts = s.req_parts();
        let connection = match self.upgraded.lock().ok().and_then(|m| m.get(&sid).cloned()) {
            Some(peer) => Some(peer),
            // Opened directly as a WebSocket: the handshake's connection is the WebSocket.
            None if engine_query(parts.uri.query()).1 => {
                parts.extensions.get::<ConnectInfo<Peer>>().map(|ConnectInfo(p)| p.clone())
            }
            None => None,
        };
        let closed = ws && connection.as_ref().is_some_and(Peer::cut);
        if first {
            tracing::warn!(
                %sid,
                transport = if ws { "websocket" } else { "polling" },
                closed,
                "a socket missed an event (its buffer is full): cutting its transport so it reconnects and catches up"
            );
        }
    }

    /// Forgets a closed session.
    pub fn forget(&self, sid: &str) {
        if let Ok(mut cut) = self.cut.lock() {
            cut.remove(sid);
        }
        if let Ok(mut upgraded) = self.upgraded.lock() {
            upgraded.remove(sid);
        }
    }

    /// Notes the connection of a WebSocket upgrade (it may come before the Socket.IO CONNECT).
    fn note_upgrade(&self, app: &App, sid: &str, peer: Peer) {
        let Ok(mut upgraded) = self.upgraded.lock() else { return };
        upgraded.insert(sid.to_string(), peer);
        // Entries leave with their session (`forget`); made-up session ids would stay, so past a
        // size, keep only open connections of live sockets.
        if upgraded.len() > MAX_UPGRADES {
            upgraded.retain(|sid, peer| {
                peer.is_open() && sid.parse::<Sid>().ok().and_then(|s| app.io.get_socket(s)).is_some()
            });
        }
    }

    fn is_cut(&self, sid: &str) -> bool {
        self.cut.lock().is_ok_and(|cut| cut.contains(sid))
    }
}

/// Middleware before socketioxide: refuses requests of sessions that were cut, and notes which
/// connection carries a session that upgrades to a WebSocket.
pub async fn guard(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with("/socket.io/") {
        let (sid, ws) = engine_query(req.uri().query());
        if let Some(sid) = sid {
            if app.transports.is_cut(sid) {
                let body = serde_json::json!({ "code": 1, "message": "Session ID unknown" });
                return (StatusCode::BAD_REQUEST, Json(body)).into_response();
            }
            if ws {
                app.transports.note_upgrade(&app, sid, peer);
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_engine_query() {
        assert_eq!(engine_query(Some("EIO=4&transport=websocket&sid=abc")), (Some("abc"), true));
        assert_eq!(engine_query(Some("EIO=4&transport=polling&t=x")), (None, false));
        assert_eq!(engine_query(None), (None, false));
    }
}
