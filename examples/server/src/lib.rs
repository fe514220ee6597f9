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
pub mod events;
pub mod http;
pub mod jwt;
pub mod logs;
pub mod ratelimit;
pub mod realtime;
pub mod redis_log;
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
    /// The reader of the Redis bus, when the log is in Redis.
    tail: Option<JoinHandle<()>>,
    /// The file log's deleter by age, when it has a retention by age.
    sweeper: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Closes every Socket.IO connection, stops accepting, and waits (at most 5 s) for
    /// in-flight HTTP requests. Every event already acknowledged to a producer is on disk.
    pub async fn shutdown(mut self) {
        for task in [self.tail.take(), self.sweeper.take()].into_iter().flatten() {
            task.abort();
        }
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
    let events = match &config.redis_url {
        Some(url) => {
            let retention = redis_log::Retention {
                max_events: config.redis_max_events,
                idempotency_ttl: config.log_limits.idempotency_ttl,
            };
            events::Events::Redis(redis_log::RedisLog::connect(url, retention).await?)
        }
        None => events::Events::file(store::Store::open(&config.data_dir, config.log_limits)?),
    };
    let tail = match &events {
        events::Events::Redis(r) => Some(r.tail().await?),
        events::Events::File { .. } => None,
    };
    let max = config.max_body_bytes;
    let (layer, io) = SocketIo::builder()
        .max_payload(max as u64)
        .max_buffer_size(config.socket_buffer.max(1))
        .ping_interval(config.ping_interval)
        .ping_timeout(config.ping_timeout)
        .build_layer();
    let app = Arc::new(App {
        config: config.clone(),
        events,
        io: io.clone(),
        transports: Default::default(),
        limits: ratelimit::Limits {
            emit: ratelimit::Limiter::new(config.emit_rate),
            per_ip: ratelimit::Limiter::new(config.login_rate),
        },
    });
    realtime::attach(&app);
    let tail = tail.map(|t| tokio::spawn(follow_bus(app.clone(), t)));
    // Appends delete what they put past the retention; a tenant without new events ages all the
    // same.
    let sweeper = match (&app.events, config.log_limits.retain_age) {
        (events::Events::File { .. }, Some(age)) => Some(tokio::spawn(sweep(app.clone(), age))),
        _ => None,
    };
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
    let log = if config.redis_url.is_some() { "redis".to_string() } else { config.data_dir.display().to_string() };
    tracing::info!(%addr, %log, dev_login = config.dev_login, "listening");
    Ok((addr, ServerHandle { io, stop: Some(stop), task, tail, sweeper }))
}

/// Applies the file log's retention by age every eighth of it (at least every second, at most
/// every minute), for as long as the server runs.
async fn sweep(app: Arc<App>, age: Duration) {
    let every = (age / 8).clamp(Duration::from_secs(1), Duration::from_secs(60));
    loop {
        tokio::time::sleep(every).await;
        app.events.enforce_retention().await;
    }
}

/// Sends every event of the Redis bus to this node's sockets, in bus order, for as long as the
/// server runs. Redis unreachable: retried every 100 ms to 2 s, resuming where it stopped. A gap
/// (events this node can no longer read) cuts its sockets, so their clients catch up from the
/// feed ([`redis_log`]).
async fn follow_bus(app: Arc<App>, mut tail: redis_log::Tail) {
    let mut wait = Duration::from_millis(100);
    let mut down = false;
    loop {
        match tail.next().await {
            Ok(read) => {
                if down {
                    tracing::info!("the Redis bus is back; resuming where this node stopped");
                    down = false;
                }
                wait = Duration::from_millis(100);
                let events = match read {
                    redis_log::BusRead::Events(events) => events,
                    redis_log::BusRead::Gap { why, events } => {
                        app.cut_all(&why);
                        events
                    }
                };
                for (_, entry) in &events {
                    app.deliver(entry);
                }
            }
            Err(e) => {
                if !down {
                    tracing::warn!(error = %e, "lost the Redis bus; events published meanwhile go out when it is back");
                    down = true;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    }
}
