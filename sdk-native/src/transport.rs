//! IO: open WebSockets (read and written on the driver's task), a task per WebSocket opening and
//! per HTTP request. They only move bytes between the network and the driver; every decision is
//! the core's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tidings_core::engineio::Frame;

use crate::error::{Cause, ConfigError};
use tidings_core::{ConnId, HttpError, HttpRequest, Method, RequestId};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream, connect_async_tls_with_config};

/// What the IO tasks tell the driver.
#[derive(Debug)]
pub(crate) enum IoEvent {
    WsOpened(ConnId, Box<WsStream>),
    WsClosed { conn: ConnId, code: Option<u16>, error: Option<String> },
    Http { id: RequestId, result: Result<(u16, Vec<u8>), HttpError> },
    Auth { request: tidings_core::AuthRequestId, auth: Result<Option<String>, String> },
}

/// Shared HTTP and TLS settings.
#[derive(Clone)]
pub(crate) struct Net {
    pub(crate) http: reqwest::Client,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) max_message: usize,
    /// The client's cookies, as a browser keeps them: set by any answer (a polling response, the
    /// WebSocket handshake), sent with every later request to the same site. A load balancer's
    /// sticky-session cookie keeps one engine session on one server (docs/DEPLOYMENT.md).
    pub(crate) cookies: Arc<reqwest::cookie::Jar>,
}

impl Net {
    /// Clients without custom roots share one TLS configuration (its root store costs ~15 KiB
    /// per client otherwise). The HTTP client stays per client: its pooled connections belong
    /// to the tokio runtime that opened them.
    pub(crate) fn new(extra_roots: &[Vec<u8>], max_message: usize) -> Result<Self, ConfigError> {
        static DEFAULT_TLS: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, ConfigError>> =
            std::sync::OnceLock::new();
        let tls = if extra_roots.is_empty() {
            DEFAULT_TLS.get_or_init(|| tls_config(&[])).clone()?
        } else {
            tls_config(extra_roots)?
        };
        let cookies = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .cookie_provider(cookies.clone())
            .connect_timeout(Duration::from_secs(20))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| ConfigError::Tls(Cause::new(e)))?;
        Ok(Self { http, tls, max_message, cookies })
    }
}

/// rustls with the web PKI roots plus `extra_roots`, verifying certificates.
fn tls_config(extra_roots: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| ConfigError::RootCertificate(Cause::new(e)))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Tls(Cause::new(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

/// An open WebSocket as the handshake returns it.
pub(crate) type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket in a task of its own (DNS, TCP, TLS and the handshake take a while) and
/// hands the open stream to the driver, which then reads and writes it on its own task.
pub(crate) fn spawn_ws_open(
    net: &Net,
    conn: ConnId,
    url: String,
    events: mpsc::Sender<IoEvent>,
) -> tokio::task::JoinHandle<()> {
    let tls = net.tls.clone();
    // Small buffers: thousands of idle clients must fit in one process.
    let config = WebSocketConfig::default()
        .read_buffer_size(8 << 10)
        .write_buffer_size(0)
        .max_write_buffer_size(16 << 20)
        .max_message_size(Some(net.max_message))
        .max_frame_size(Some(net.max_message));
    let cookies = net.cookies.clone();
    tokio::spawn(async move {
        let event = match open_ws(&url, config, tls, &cookies).await {
            Ok(ws) => IoEvent::WsOpened(conn, Box::new(ws)),
            Err(e) => {
                tracing::debug!(conn = conn.get(), error = %e, "websocket failed to open");
                IoEvent::WsClosed { conn, code: None, error: Some(e.to_string()) }
            }
        };
        let _ = events.send(event).await;
    })
}

/// The WebSocket handshake, with the client's cookies for that site (and any it sets kept).
async fn open_ws(
    url: &str,
    config: WebSocketConfig,
    tls: Arc<rustls::ClientConfig>,
    cookies: &reqwest::cookie::Jar,
) -> Result<WsStream, tokio_tungstenite::tungstenite::Error> {
    use reqwest::cookie::CookieStore;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::header::{COOKIE, SET_COOKIE};
    let mut request = url.into_client_request()?;
    // Cookies belong to the site, whatever the scheme: ws:// is http://, wss:// is https://.
    let site = url.strip_prefix("ws").and_then(|rest| reqwest::Url::parse(&["http", rest].concat()).ok());
    if let Some(cookie) = site.as_ref().and_then(|u| cookies.cookies(u)) {
        request.headers_mut().insert(COOKIE, cookie);
    }
    let (ws, response) =
        connect_async_tls_with_config(request, Some(config), true, Some(Connector::Rustls(tls))).await?;
    if let Some(site) = &site {
        cookies.set_cookies(&mut response.headers().get_all(SET_COOKIE).iter(), site);
    }
    Ok(ws)
}

/// What an open WebSocket produced.
pub(crate) enum WsIo {
    Text(String),
    Binary(Vec<u8>),
    Closed { code: Option<u16>, error: Option<String> },
}

/// An open WebSocket, read and written by the driver's task: a received frame reaches the core
/// without a task switch or a channel, and a frame the core sends is written on the next poll.
pub(crate) struct Ws {
    stream: Box<WsStream>,
    out: VecDeque<Message>,
    /// Bytes in `out`.
    out_bytes: usize,
    /// Most bytes `out` may hold: more means the peer stopped reading (see `poll_io`).
    max_out: usize,
    /// Written but maybe not flushed (also set after a read: tungstenite queues pongs).
    unflushed: bool,
    /// A write that failed outside the driver's turn ([`Ws::poll_write`]): reported by the next
    /// [`Ws::poll_io`].
    failed: Option<String>,
}

impl Ws {
    /// `max_out`: the most bytes queued for writing before the connection counts as dead.
    pub(crate) fn new(stream: Box<WsStream>, max_out: usize) -> Self {
        Ws { stream, out: VecDeque::new(), out_bytes: 0, max_out, unflushed: false, failed: None }
    }

    pub(crate) fn send(&mut self, frame: Frame) {
        let m = match frame {
            Frame::Text(t) => Message::text(t),
            Frame::Binary(b) => Message::binary(b),
        };
        self.out_bytes += m.len();
        self.out.push_back(m);
    }

    /// The frames still queued, never handed to the socket (for [`Input::WsUnsent`] when it
    /// failed).
    ///
    /// [`Input::WsUnsent`]: tidings_core::Input::WsUnsent
    pub(crate) fn take_unsent(&mut self) -> Vec<Frame> {
        self.out_bytes = 0;
        std::mem::take(&mut self.out)
            .into_iter()
            .filter_map(|m| match m {
                Message::Text(t) => Some(Frame::Text(t.as_str().to_owned())),
                Message::Binary(b) => Some(Frame::Binary(b.to_vec())),
                _ => None,
            })
            .collect()
    }

    /// Writes what is queued (as far as the socket takes it) and flushes; `Err` when the socket
    /// failed. Pending writes wake `cx`'s task when the socket takes more.
    fn write_queued(&mut self, cx: &mut Context<'_>) -> Result<(), String> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        // A peer that stops reading (a half-open network, a frozen server) would let the queue
        // grow until the heartbeat notices; past the bound it counts as a dead connection now,
        // and the client reconnects (bounded memory, docs/RELIABILITY.md).
        if self.out_bytes > self.max_out {
            return Err(format!("the peer stopped reading: {} bytes wait to be written", self.out_bytes));
        }
        while !self.out.is_empty() {
            match self.stream.poll_ready_unpin(cx) {
                Poll::Ready(Ok(())) => {
                    if let Some(m) = self.out.pop_front() {
                        self.out_bytes = self.out_bytes.saturating_sub(m.len());
                        self.stream.start_send_unpin(m).map_err(|e| e.to_string())?;
                    }
                    self.unflushed = true;
                }
                Poll::Ready(Err(e)) => return Err(e.to_string()),
                Poll::Pending => break,
            }
        }
        if self.unflushed {
            match self.stream.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Err(e.to_string()),
                Poll::Pending => {}
            }
        }
        Ok(())
    }

    /// Writes and flushes what is queued, outside the driver's turn (an emit performed by the
    /// caller, see `driver::perform_now`); `cx` must carry the driver task's waker, so a write
    /// the socket cannot take yet, or a failure, is the driver's to finish. Returns whether the
    /// driver has to look at this socket (a failure, or frames still queued).
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> bool {
        if let Err(e) = self.write_queued(cx) {
            self.failed = Some(e);
            return true;
        }
        !self.out.is_empty() || self.unflushed
    }

    /// Writes what is queued (as far as the socket takes it), flushes, then reads one message.
    pub(crate) fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<WsIo> {
        let closed = |e: tokio_tungstenite::tungstenite::Error| WsIo::Closed { code: None, error: Some(e.to_string()) };
        if let Err(error) = self.write_queued(cx) {
            return Poll::Ready(WsIo::Closed { code: None, error: Some(error) });
        }
        loop {
            let msg = match self.stream.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(m))) => m,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(closed(e)),
                Poll::Ready(None) => return Poll::Ready(WsIo::Closed { code: None, error: None }),
                Poll::Pending => return Poll::Pending,
            };
            return Poll::Ready(match msg {
                Message::Text(t) => WsIo::Text(t.as_str().to_owned()),
                Message::Binary(b) => WsIo::Binary(b.to_vec()),
                Message::Close(frame) => {
                    WsIo::Closed { code: Some(frame.map_or(1005, |f| u16::from(f.code))), error: None }
                }
                // tungstenite answers pings itself; the pong goes out with the next flush.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                    self.unflushed = true;
                    continue;
                }
            });
        }
    }

    /// Sends what is still queued and a close frame, on a task of its own (bounded: 2 s).
    pub(crate) fn close(self) -> tokio::task::JoinHandle<()> {
        let Ws { mut stream, out, .. } = self;
        tokio::spawn(async move {
            let polite = async {
                for m in out {
                    stream.feed(m).await?;
                }
                stream.send(Message::Close(None)).await?;
                SinkExt::close(&mut *stream).await
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), polite).await;
        })
    }
}

/// At most this many frames are taken from the sockets per turn of the driver's loop: one turn
/// (drain the core, arm the timer, select) serves a whole batch of a burst.
const BATCH: usize = 64;

/// What `sockets` produced (pending while none produced anything): up to [`BATCH`] frames of
/// the first socket that has any. A closed socket's `Closed` ends its batch. Fair across
/// sockets only in map order, which is fine for the one or two a client has.
pub(crate) fn poll_sockets<'a>(
    sockets: impl Iterator<Item = (&'a ConnId, &'a mut Ws)>,
    cx: &mut Context<'_>,
) -> Poll<Vec<(ConnId, WsIo)>> {
    for (conn, ws) in sockets {
        let mut batch = Vec::new();
        while batch.len() < BATCH {
            match ws.poll_io(cx) {
                Poll::Ready(io) => {
                    let end = matches!(io, WsIo::Closed { .. });
                    batch.push((*conn, io));
                    if end {
                        break;
                    }
                }
                Poll::Pending => break,
            }
        }
        if !batch.is_empty() {
            return Poll::Ready(batch);
        }
    }
    Poll::Pending
}

/// Performs one HTTP request, reading at most `max_body` bytes of the answer.
pub(crate) fn spawn_http(net: &Net, req: HttpRequest, events: mpsc::Sender<IoEvent>) -> tokio::task::JoinHandle<()> {
    let http = net.http.clone();
    tokio::spawn(async move {
        let id = req.id;
        let result = perform(http, req).await;
        let _ = events.send(IoEvent::Http { id, result }).await;
    })
}

pub(crate) async fn perform(http: reqwest::Client, req: HttpRequest) -> Result<(u16, Vec<u8>), HttpError> {
    let mut b = match req.method {
        Method::Get => http.get(&req.url),
        Method::Post => http.post(&req.url),
    };
    if let Some(ct) = req.content_type {
        b = b.header("content-type", ct);
    }
    if let Some(auth) = &req.authorization {
        b = b.header("authorization", auth);
    }
    if let Some(body) = req.body {
        b = b.body(body);
    }
    let mut resp = b.send().await.map_err(|e| HttpError::Network(e.without_url().to_string()))?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| HttpError::Network(e.without_url().to_string()))? {
        if body.len() + chunk.len() > req.max_body {
            return Err(HttpError::TooLarge { max_body: req.max_body });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}
