//! IO tasks: one per WebSocket, one per HTTP request. They only move bytes between the network and
//! the driver's channel; every decision is the core's.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tidings_core::engineio::Frame;
use tidings_core::{ConnId, HttpRequest, Method, RequestId};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, connect_async_tls_with_config};

/// What the IO tasks tell the driver.
#[derive(Debug)]
pub(crate) enum IoEvent {
    WsOpened(ConnId, mpsc::UnboundedSender<Frame>),
    WsText(ConnId, String),
    WsBinary(ConnId, Vec<u8>),
    WsClosed { conn: ConnId, code: Option<u16>, error: Option<String> },
    Http { id: RequestId, result: Result<(u16, Vec<u8>), String> },
    Auth { request: tidings_core::AuthRequestId, auth: Result<Option<String>, String> },
}

/// Shared HTTP and TLS settings.
#[derive(Clone)]
pub(crate) struct Net {
    pub(crate) http: reqwest::Client,
    pub(crate) tls: Arc<rustls::ClientConfig>,
    pub(crate) max_message: usize,
}

impl Net {
    /// Clients without custom roots share one TLS configuration (its root store costs ~15 KiB
    /// per client otherwise). The HTTP client stays per client: its pooled connections belong
    /// to the tokio runtime that opened them.
    pub(crate) fn new(extra_roots: &[Vec<u8>], max_message: usize) -> Result<Self, String> {
        static DEFAULT_TLS: std::sync::OnceLock<Result<Arc<rustls::ClientConfig>, String>> = std::sync::OnceLock::new();
        let tls = if extra_roots.is_empty() {
            DEFAULT_TLS.get_or_init(|| tls_config(&[])).clone()?
        } else {
            tls_config(extra_roots)?
        };
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured((*tls).clone())
            .connect_timeout(Duration::from_secs(20))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| format!("HTTP client setup failed: {e}"))?;
        Ok(Self { http, tls, max_message })
    }
}

/// rustls with the web PKI roots plus `extra_roots`, verifying certificates.
fn tls_config(extra_roots: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| format!("a custom root certificate is invalid: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(tls))
}

/// Opens a WebSocket and pumps it until either side closes.
pub(crate) fn spawn_ws(
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
    tokio::spawn(async move {
        let connected =
            connect_async_tls_with_config(url.as_str(), Some(config), true, Some(Connector::Rustls(tls))).await;
        let ws = match connected {
            Ok((ws, _)) => ws,
            Err(e) => {
                tracing::debug!(conn = conn.get(), error = %e, "websocket failed to open");
                let _ = events.send(IoEvent::WsClosed { conn, code: None, error: Some(e.to_string()) }).await;
                return;
            }
        };
        let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
        if events.send(IoEvent::WsOpened(conn, tx)).await.is_err() {
            return;
        }
        let (mut sink, mut stream) = ws.split();
        let (code, error) = loop {
            tokio::select! {
                out = rx.recv() => match out {
                    Some(frame) => {
                        let msg = match frame {
                            Frame::Text(t) => Message::text(t),
                            Frame::Binary(b) => Message::binary(b),
                        };
                        if let Err(e) = sink.send(msg).await {
                            break (None, Some(e.to_string()));
                        }
                    }
                    // The driver dropped us: close politely.
                    None => {
                        let _ = sink.send(Message::Close(None)).await;
                        let _ = tokio::time::timeout(Duration::from_secs(2), sink.close()).await;
                        return;
                    }
                },
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        if events.send(IoEvent::WsText(conn, t.as_str().to_owned())).await.is_err() { return; }
                    }
                    Some(Ok(Message::Binary(b))) => {
                        if events.send(IoEvent::WsBinary(conn, b.to_vec())).await.is_err() { return; }
                    }
                    Some(Ok(Message::Close(frame))) => break (Some(frame.map_or(1005, |f| u16::from(f.code))), None),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break (None, Some(e.to_string())),
                    None => break (None, None),
                },
            }
        };
        let _ = events.send(IoEvent::WsClosed { conn, code, error }).await;
    })
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

async fn perform(http: reqwest::Client, req: HttpRequest) -> Result<(u16, Vec<u8>), String> {
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
    let mut resp = b.send().await.map_err(|e| e.without_url().to_string())?;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.without_url().to_string())? {
        if body.len() + chunk.len() > req.max_body {
            return Err(format!("response body larger than {} bytes", req.max_body));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}
