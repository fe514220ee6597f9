//! # tidings-example-server
//!
//! The Tidings reference realtime server: Socket.IO on `/socket.io/` (socketioxide) with HS256
//! JWT auth, auto-joined `user:<id>` / `tenant:<id>` rooms, authorised `room:join`, chat
//! messages, an internal emit API for backends, a durable per-tenant event log and the REST
//! feed that Tidings clients fall back to. See `examples/README.md` for the endpoints.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! let config = tidings_example_server::Config::new("data", "jwt-secret", "internal-key");
//! let (addr, handle) = tidings_example_server::serve(config).await?;
//! println!("listening on http://{addr}");
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod app;
pub mod clock;
pub mod config;
pub mod conn;
pub mod demo;
pub mod error;
pub mod http;
pub mod jwt;
pub mod logs;
pub mod ratelimit;
pub mod realtime;
pub mod rooms;
pub mod store;
pub mod transports;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use socketioxide::SocketIo;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};

pub use app::App;
pub use config::Config;
pub use jwt::Claims;

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    io: SocketIo,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl ServerHandle {
    /// Closes every Socket.IO connection, stops accepting, and waits (at most 5 s) for
    /// in-flight HTTP requests. Every event already acknowledged to a producer is on disk.
    pub async fn shutdown(mut self) {
        self.io.close().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match tokio::time::timeout(Duration::from_secs(5), &mut self.task).await {
            Ok(Ok(Ok(()))) => tracing::info!("server stopped"),
            Ok(Ok(Err(e))) => tracing::error!(error = %e, "server failed"),
            Ok(Err(e)) => tracing::error!(error = %e, "server task failed"),
            Err(_) => {
                tracing::warn!("connections still open after 5 s; closing them");
                self.task.abort();
            }
        }
    }
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
    )
}

/// Loads the event logs, binds `config.bind` and serves until [`ServerHandle::shutdown`].
///
/// Refuses (`InvalidInput`) a configuration that [`Config::validate`] refuses: the DEV secrets on an
/// address other than loopback.
pub async fn serve(config: Config) -> std::io::Result<(SocketAddr, ServerHandle)> {
    config.validate().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let store = store::Store::open(&config.data_dir, config.log_limits)?;
    let max = config.max_body_bytes;
    let (layer, io) =
        SocketIo::builder().max_payload(max as u64).max_buffer_size(config.socket_buffer.max(1)).build_layer();
    let app = Arc::new(App {
        config: config.clone(),
        store,
        io: io.clone(),
        acked: Default::default(),
        transports: Default::default(),
        limits: ratelimit::Limits {
            emit: ratelimit::Limiter::new(config.emit_rate),
            per_ip: ratelimit::Limiter::new(config.login_rate),
        },
    });
    realtime::attach(&app);
    let mut router = http::routes(app.clone());
    router = match &config.static_dir {
        // A single-page app: unknown paths get index.html.
        Some(dir) => router.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")))),
        None => router
            .fallback(|| async { error::ApiError::not_found("not_found", "no such endpoint; see examples/README.md") }),
    };
    let mut router = router
        .layer(layer)
        .layer(axum::middleware::from_fn_with_state(app.clone(), transports::guard))
        .layer(DefaultBodyLimit::max(max));
    if let Some(cors) = cors(&config.cors_origins) {
        router = router.layer(cors);
    }
    let listener = conn::Listener::bind(config.bind).await?;
    let addr = axum::serve::Listener::local_addr(&listener)?.addr;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<conn::Peer>())
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, data_dir = %config.data_dir.display(), dev_login = config.dev_login, "listening");
    Ok((addr, ServerHandle { io, stop: Some(stop), task }))
}
