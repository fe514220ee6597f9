//! The server's log configuration, with one rule no `RUST_LOG` can lift: the debug and trace
//! logs of the Socket.IO stack are never printed.
//!
//! socketioxide and engineioxide print whole packets at debug level (`received message: ...`,
//! `auth: Some(...)` for every CONNECT, which holds the client's JWT), record handler arguments in
//! trace-level spans, and tungstenite prints WebSocket frames at trace level. So
//! [`prints_payloads`] drops every event and span below `INFO` from those crates, whatever the
//! directives say: `RUST_LOG=debug` or `RUST_LOG=socketioxide=trace` shows this server's own debug
//! logs and everything else, never a token. Their `info`/`warn`/`error` logs (which carry no
//! packet) still show.

use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, FilterFn, filter_fn};
use tracing_subscriber::layer::{Filter, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Crates whose debug and trace logs print packets, frames or CONNECT auth.
pub const PACKET_CRATES: [&str; 7] = [
    "socketioxide",
    "socketioxide_core",
    "socketioxide_parser_common",
    "engineioxide",
    "engineioxide_core",
    "tungstenite",
    "tokio_tungstenite",
];

/// Whether `meta` (an event or a span) may print a packet: below `INFO`, from one of
/// [`PACKET_CRATES`].
pub fn prints_payloads(meta: &Metadata<'_>) -> bool {
    let krate = meta.target().split("::").next().unwrap_or("");
    *meta.level() > Level::INFO && PACKET_CRATES.contains(&krate)
}

/// The [`prints_payloads`] guard as a filter.
pub fn no_payloads() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(|m| !prints_payloads(m))
}

/// `directives` (`RUST_LOG` syntax; `info` when absent or invalid) and the [`no_payloads`] guard.
pub fn filter<S>(directives: Option<&str>) -> impl Filter<S> + Send + Sync + 'static
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let env = directives.and_then(|d| EnvFilter::try_new(d).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    env.and(no_payloads())
}

/// Installs the server's logger: `RUST_LOG` (default `info`) under the [`no_payloads`] guard,
/// text on stdout, or JSON lines when `TIDINGS_LOG_FORMAT=json`.
pub fn init() {
    let directives = std::env::var("RUST_LOG").ok().filter(|d| !d.trim().is_empty());
    let json = std::env::var("TIDINGS_LOG_FORMAT").is_ok_and(|f| f == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let layer = tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi);
    let registry = tracing_subscriber::registry();
    let _ = if json {
        registry.with(tracing_subscriber::Layer::with_filter(layer.json(), filter(directives.as_deref()))).try_init()
    } else {
        registry.with(tracing_subscriber::Layer::with_filter(layer, filter(directives.as_deref()))).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::callsite::Identifier;
    use tracing::field::FieldSet;
    use tracing::metadata::Kind;

    struct Cs;
    impl tracing::callsite::Callsite for Cs {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &Metadata<'_> {
            unreachable_metadata()
        }
    }
    static CS: Cs = Cs;

    #[allow(clippy::panic)]
    fn unreachable_metadata() -> &'static Metadata<'static> {
        panic!("not used")
    }

    fn meta(target: &'static str, level: Level) -> Metadata<'static> {
        Metadata::new("e", target, level, None, None, None, FieldSet::new(&[], Identifier(&CS)), Kind::EVENT)
    }

    #[test]
    fn packet_crates_below_info_are_dropped() {
        assert!(prints_payloads(&meta("socketioxide::client", Level::DEBUG)));
        assert!(prints_payloads(&meta("socketioxide", Level::TRACE)));
        assert!(prints_payloads(&meta("engineioxide::transport::ws", Level::DEBUG)));
        assert!(prints_payloads(&meta("tungstenite::protocol", Level::TRACE)));
        assert!(!prints_payloads(&meta("socketioxide::client", Level::INFO)));
        assert!(!prints_payloads(&meta("engineioxide", Level::ERROR)));
        assert!(!prints_payloads(&meta("tidings_example_server::realtime", Level::TRACE)));
        assert!(!prints_payloads(&meta("socketioxide_redis", Level::DEBUG)), "only the listed crates");
    }
}
