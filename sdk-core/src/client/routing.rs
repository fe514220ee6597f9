//! How [`Client`] composes its sub-machines: the engine session (`engine.rs`), the namespace
//! sockets (`socket.rs`), the feed (`feed.rs`) and the inbox (`inbox.rs`).
//!
//! A sub-machine acts with a [`Cx`] and says what the others must hear: the engine returns a
//! [`Step`] or a [`Schedule`], a socket an [`After`]. This file is the only place where one
//! sub-machine's result becomes another's input.

use std::collections::VecDeque;

use super::engine::{Engine, Polled, Schedule, Step};
use super::feed::Feed;
use super::inbox::Inbox;
use super::socket::{After, Socket};
use super::{Client, ConnectionState, DisconnectReason, Fault, Output};
use crate::config::{Config, TransportKind};
use crate::engineio::Packet as EioPacket;
use crate::rng::Rng;
use crate::socketio;
use crate::time::Instant;
use crate::vecmap::VecMap;

/// What a sub-machine needs from the client to act: the configuration, the time, the RNG, the
/// id counter (ids are unique across the engine, the namespaces and the feed) and the output
/// queue its IO and reports go to.
pub(super) struct Cx<'a> {
    pub(super) config: &'a Config,
    pub(super) now: Instant,
    pub(super) rng: &'a mut Rng,
    pub(super) ids: &'a mut Ids,
    pub(super) out: &'a mut VecDeque<Output>,
}

/// The id counter of connections, requests, emits, auth and room requests.
#[derive(Debug)]
pub(super) struct Ids(pub(super) u64);

impl Ids {
    /// Not inlined in the browser build (a dozen call sites).
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    pub(super) fn next(&mut self) -> u64 {
        let id = self.0;
        self.0 += 1;
        id
    }
}

/// The client's sub-machines, borrowed apart, with the context they act in.
pub(super) struct Parts<'a> {
    pub(super) cx: Cx<'a>,
    engine: &'a mut Engine,
    sockets: &'a mut VecMap<String, Socket>,
    inbox: &'a mut Inbox,
    feed: &'a mut Feed,
}

impl Client {
    pub(super) fn parts(&mut self) -> Parts<'_> {
        Parts {
            cx: Cx {
                config: &self.config,
                now: self.now,
                rng: &mut self.rng,
                ids: &mut self.ids,
                out: &mut self.outputs,
            },
            engine: &mut self.engine,
            sockets: &mut self.sockets,
            inbox: &mut self.inbox,
            feed: &mut self.feed,
        }
    }

    // ---------------------------------------------------------------- the engine

    /// Runs `f` on the engine with its context.
    pub(super) fn with_engine<R>(&mut self, f: impl FnOnce(&mut Engine, &mut Cx<'_>) -> R) -> R {
        let Parts { mut cx, engine, .. } = self.parts();
        f(engine, &mut cx)
    }

    /// Runs `f` on the engine, then tells the namespaces what came of it.
    pub(super) fn engine_step(&mut self, f: impl FnOnce(&mut Engine, &mut Cx<'_>) -> Step) {
        let step = self.with_engine(f);
        self.route(step);
    }

    /// Tells the namespaces what an engine step came to (see [`Step`]).
    fn route(&mut self, step: Step) {
        match step {
            Step::Nothing => {}
            Step::Started => self.each_socket(|s, cx, _| s.engine_connecting(cx)),
            Step::Opened(packets) => {
                self.each_socket(Socket::engine_open);
                self.with_engine(Engine::poll);
                self.on_polled(packets);
            }
            Step::Polled(packets) => {
                self.on_polled(packets);
                self.engine_step(Engine::after_poll);
            }
            Step::OpenFailed { message, cause, will_retry, fallback_pending } => {
                self.each_socket(|s, cx, _| s.engine_failed(cx, message, cause.clone(), will_retry, fallback_pending));
                self.reconnect_or_give_up(DisconnectReason::TransportError);
            }
            Step::Closed { reason, unsent } => {
                self.each_socket(|s, cx, _| s.engine_closed(cx, reason));
                self.requeue_unsent(unsent);
                self.update_feed();
                self.reconnect_or_give_up(reason);
            }
            Step::Packet(p) => self.socket_packet(p),
            Step::Upgraded => self.each_socket(|s, cx, _| s.transport_changed(cx, TransportKind::WebSocket)),
        }
    }

    /// The packets a lost session never wrote: the emits among them (events that asked for no
    /// ack) go back to their namespace's send buffer, in order, for the next connection; the
    /// rest is dropped (an emit with an ack is failed or retried by its socket; CONNECTs and acks
    /// to the server belong to the lost session).
    fn requeue_unsent(&mut self, unsent: VecDeque<EioPacket<'static>>) {
        if unsent.is_empty() {
            return;
        }
        let mut decoder = socketio::Decoder::new(self.config.max_attachments);
        for p in unsent {
            let decoded = match p {
                EioPacket::Message(text) => decoder.text(text.into_owned()),
                EioPacket::Binary(data) => decoder.binary(data.into_owned()),
                _ => Ok(None),
            };
            // Our own packets decode; one that does not is dropped like the rest.
            let Ok(Some(packet)) = decoded else { continue };
            let Parts { mut cx, sockets, .. } = self.parts();
            if let Some(s) = sockets.get_mut(&packet.nsp) {
                s.requeue(&mut cx, packet);
            }
        }
    }

    /// Polled packets, one at a time, while the session lasts.
    fn on_polled(&mut self, packets: Polled) {
        for p in packets {
            if !self.engine.is_open() {
                return;
            }
            match p {
                Ok(p) => self.engine_step(|e, cx| e.on_packet(cx, p)),
                Err(e) => return self.fail_engine(Fault::Engine(e)),
            }
        }
    }

    fn reconnect_or_give_up(&mut self, reason: DisconnectReason) {
        let wanted = self.any_active();
        match self.with_engine(|e, cx| e.schedule_reconnect(cx, wanted, reason)) {
            Schedule::Idle => {}
            Schedule::GiveUp(why) => {
                self.each_socket(|s, cx, _| s.give_up(cx, why));
                self.update_feed();
            }
            Schedule::Waiting { attempt, delay } => {
                let state = ConnectionState::Reconnecting { attempt, delay };
                self.each_socket(|s, cx, _| s.engine_state(cx, &state));
                self.update_feed();
            }
        }
    }

    /// Starts an engine if none is open or opening and a namespace wants one.
    fn ensure_engine(&mut self) {
        if self.engine.is_idle() && self.any_active() {
            self.engine_step(Engine::ensure);
        }
    }

    /// Closes the engine politely when no namespace wants it any more (POST `1` over polling).
    pub(super) fn close_engine_if_unused(&mut self) {
        if !self.any_active() {
            self.with_engine(Engine::close_unused);
        }
    }

    /// Closes the session because of `fault`, which is reported first.
    fn fail_engine(&mut self, fault: Fault) {
        self.engine_step(|e, cx| e.fail(cx, fault));
    }

    /// The wall-clock check socket.io-client makes before each emit.
    pub(super) fn check_ping_expiry(&mut self) {
        self.engine_step(Engine::check_ping_expiry);
    }

    // ---------------------------------------------------------------- the feed

    /// Moves the feed along with the main namespace's state.
    /// Moves the feed along with the main namespace: the ordinary fallback while it is down, a
    /// catch-up (with the socket's events waiting) after a connect that did not recover.
    pub(super) fn update_feed(&mut self) {
        let Parts { mut cx, feed, sockets, inbox, .. } = self.parts();
        let Some(main) = sockets.get_mut(&cx.config.url.namespace) else { return feed.update(&mut cx, false) };
        if main.is_holding() && !main.is_connected() {
            feed.end_catch_up();
            main.release(&mut cx, inbox, true);
        }
        if main.take_catch_up_due() && !feed.catch_up(&mut cx) {
            main.release(&mut cx, inbox, false);
        }
        feed.update(&mut cx, main.is_active() && !main.is_connected());
    }

    /// Releases the main namespace's waiting events once a catch-up has ended.
    fn after_feed(&mut self) {
        let Parts { mut cx, feed, sockets, inbox, .. } = self.parts();
        if feed.take_caught_up()
            && let Some(main) = sockets.get_mut(&cx.config.url.namespace)
            && main.is_holding()
        {
            main.release(&mut cx, inbox, false);
        }
    }

    pub(super) fn feed_timeouts(&mut self) {
        let Parts { mut cx, feed, inbox, .. } = self.parts();
        feed.timeouts(&mut cx, inbox);
        self.after_feed();
    }

    /// The answer to a feed request; false when `id` is not the feed's.
    pub(super) fn feed_response(
        &mut self,
        id: super::RequestId,
        response: Option<(u16, &[u8])>,
        error: Option<&super::HttpError>,
    ) -> bool {
        let Parts { mut cx, feed, inbox, .. } = self.parts();
        let was_feeds = feed.on_response(&mut cx, inbox, id, response, error);
        self.after_feed();
        was_feeds
    }

    // ---------------------------------------------------------------- the namespaces

    pub(super) fn any_active(&self) -> bool {
        self.sockets.values().any(Socket::is_active)
    }

    pub(super) fn sockets_deadline(&self) -> Option<Instant> {
        self.sockets.values().fold(None, |d, s| crate::time::earliest(d, s.deadline()))
    }

    /// Runs `f` on the socket of `nsp` (if opened) with the engine and the context.
    pub(super) fn with_socket<R>(
        &mut self,
        nsp: &str,
        f: impl FnOnce(&mut Socket, &mut Cx<'_>, &mut Engine) -> R,
    ) -> Option<R> {
        let Parts { mut cx, engine, sockets, .. } = self.parts();
        Some(f(sockets.get_mut(nsp)?, &mut cx, engine))
    }

    /// Runs `f` on every socket, in the order they were opened.
    fn each_socket(&mut self, mut f: impl FnMut(&mut Socket, &mut Cx<'_>, &mut Engine)) {
        let Parts { mut cx, engine, sockets, .. } = self.parts();
        for s in sockets.values_mut() {
            f(s, &mut cx, engine);
        }
    }

    /// Does what a socket's action left to the client.
    pub(super) fn after(&mut self, after: After) {
        match after {
            After::Nothing => {}
            After::Changed => self.update_feed(),
            After::Gone => {
                self.close_engine_if_unused();
                self.update_feed();
            }
            After::Broken(fault) => self.fail_engine(fault),
        }
    }

    /// Runs `f` on the socket of `nsp`, then does what it left to the client.
    pub(super) fn socket_step(&mut self, nsp: &str, f: impl FnOnce(&mut Socket, &mut Cx<'_>, &mut Engine) -> After) {
        if let Some(after) = self.with_socket(nsp, f) {
            self.after(after);
        }
    }

    /// Wants `nsp` connected: it connects over the open engine, or an engine is started.
    pub(super) fn activate(&mut self, nsp: &str) {
        if self.with_socket(nsp, Socket::activate) == Some(true) {
            self.ensure_engine();
            self.update_feed();
        }
    }

    /// A Socket.IO packet from the engine, for the namespace it names.
    fn socket_packet(&mut self, p: crate::socketio::Packet) {
        let Parts { mut cx, engine, sockets, inbox, .. } = self.parts();
        let Some(s) = sockets.get_mut(&p.nsp) else { return };
        let after = s.on_packet(&mut cx, engine, inbox, p);
        self.after(after);
    }

    /// Timers of every namespace that has one due.
    pub(super) fn socket_timeouts(&mut self) {
        let now = self.now;
        let due: Vec<String> =
            self.sockets.values().filter(|s| s.deadline().is_some_and(|d| d <= now)).map(|s| s.nsp.clone()).collect();
        for nsp in due {
            self.socket_step(&nsp, Socket::timeouts);
        }
    }
}
