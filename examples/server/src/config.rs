//! Configuration from flags and environment variables (a flag wins over its variable).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::ratelimit::Rate;
use crate::store::Limits;

/// Secret used when none is configured and dev login is on. Never use it in production: the
/// server refuses it on an address other than loopback ([`Config::validate`]).
pub const DEV_JWT_SECRET: &str = "tidings-dev-jwt-secret-change-me";
/// Internal API key used when none is configured and dev login is on (loopback only, as above).
pub const DEV_INTERNAL_API_KEY: &str = "tidings-dev-internal-key";
/// Shortest JWT secret and internal API key accepted on an address other than loopback.
pub const MIN_SECRET_LEN: usize = 16;

/// Server configuration.
#[derive(Clone)]
pub struct Config {
    /// Listen address (`--bind`, `TIDINGS_BIND`; default `127.0.0.1:3000`).
    pub bind: SocketAddr,
    /// Where the event logs live (`--data-dir`, `TIDINGS_DATA_DIR`; default `./data`).
    pub data_dir: PathBuf,
    /// HS256 secret for JWTs (`--jwt-secret`, `TIDINGS_JWT_SECRET`).
    pub jwt_secret: String,
    /// Key for `POST /internal/emit` (`--internal-api-key`, `TIDINGS_INTERNAL_API_KEY`).
    pub internal_api_key: String,
    /// A built web app to serve at `/` (`--static-dir`, `TIDINGS_STATIC_DIR`).
    pub static_dir: Option<PathBuf>,
    /// Whether `POST /api/dev/login` hands out demo tokens (`--dev-login` / `--no-dev-login`,
    /// `TIDINGS_DEV_LOGIN=1|0`; default on for a loopback `bind`, off otherwise).
    pub dev_login: bool,
    /// Origins allowed by CORS (`--cors-origin`, `TIDINGS_CORS_ORIGINS`, comma-separated; `*` for any).
    pub cors_origins: Vec<String>,
    /// Lifetime of demo tokens (`TIDINGS_TOKEN_TTL_SECS`; default 8 h).
    pub token_ttl: Duration,
    /// Largest HTTP request body and Socket.IO message, in bytes (`TIDINGS_MAX_BODY_BYTES`; default 64 KiB).
    pub max_body_bytes: usize,
    /// How much of each tenant's log stays in memory, the idempotency window, and the file
    /// log's retention (`TIDINGS_LOG_MEMORY_EVENTS`, `TIDINGS_LOG_MEMORY_BYTES`,
    /// `TIDINGS_IDEMPOTENCY_KEYS`, `TIDINGS_IDEMPOTENCY_TTL_SECS`, `TIDINGS_LOG_RETAIN_EVENTS`,
    /// `TIDINGS_LOG_RETAIN_SECS`; defaults in [`Limits::default`]: no retention, every event
    /// kept).
    pub log_limits: Limits,
    /// Packets waiting for one socket's transport (`TIDINGS_SOCKET_BUFFER`; default 1024). A
    /// socket whose buffer is full when an event is sent to it is cut off (see
    /// [`crate::transports`]).
    pub socket_buffer: usize,
    /// Events per second through `POST /internal/emit` and `/internal/v1/emit/batch` (each event
    /// of a batch counts), per API key (`TIDINGS_EMIT_RATE`, `RATE/BURST` or `off`; default
    /// `1000/2000`).
    pub emit_rate: Rate,
    /// Requests per second per client address to `POST /api/dev/login` and `/api/dev/tasks`,
    /// and to `POST /internal/emit` with a wrong or missing key (`TIDINGS_LOGIN_RATE`; default
    /// `10/50`).
    pub login_rate: Rate,
    /// The shared event log for several nodes (`--redis-url`, `TIDINGS_REDIS_URL`,
    /// `redis://[:password@]host:port[/db]`); none keeps the log in `data_dir`. Never logged.
    pub redis_url: Option<String>,
    /// Events kept per tenant in Redis, about (`TIDINGS_REDIS_MAX_EVENTS`; default 1,000,000; 0
    /// keeps all). The file log's retention is in `log_limits`.
    pub redis_max_events: usize,
    /// Engine.IO heartbeat: how often the server pings (25 s, socketioxide's default;
    /// `TIDINGS_PING_INTERVAL_MS`). A client takes a server silent for this plus
    /// [`Config::ping_timeout`] as gone.
    pub ping_interval: Duration,
    /// How long the server waits for a pong (20 s; `TIDINGS_PING_TIMEOUT_MS`).
    pub ping_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret and the key never reach logs.
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("static_dir", &self.static_dir)
            .field("dev_login", &self.dev_login)
            .field("cors_origins", &self.cors_origins)
            .field("token_ttl", &self.token_ttl)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("log_limits", &self.log_limits)
            .field("socket_buffer", &self.socket_buffer)
            .field("emit_rate", &self.emit_rate)
            .field("login_rate", &self.login_rate)
            .field("redis", &self.redis_url.is_some())
            .field("redis_max_events", &self.redis_max_events)
            .field("ping_interval", &self.ping_interval)
            .field("ping_timeout", &self.ping_timeout)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Defaults with these secrets; the address is `127.0.0.1:0` (any free port), for tests.
    pub fn new(data_dir: impl Into<PathBuf>, jwt_secret: &str, internal_api_key: &str) -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            jwt_secret: jwt_secret.to_string(),
            internal_api_key: internal_api_key.to_string(),
            static_dir: None,
            dev_login: true,
            cors_origins: Vec::new(),
            token_ttl: Duration::from_secs(8 * 3600),
            max_body_bytes: 64 << 10,
            log_limits: Limits::default(),
            socket_buffer: 1024,
            emit_rate: Rate { per_sec: 1000.0, burst: 2000.0 },
            login_rate: Rate { per_sec: 10.0, burst: 50.0 },
            redis_url: None,
            redis_max_events: 1_000_000,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
        }
    }

    /// Reads flags (`args`, without the program name) over environment variables (`env`).
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, String> {
        let mut bind = env("TIDINGS_BIND");
        let mut data_dir = env("TIDINGS_DATA_DIR");
        let mut secret = env("TIDINGS_JWT_SECRET");
        let mut key = env("TIDINGS_INTERNAL_API_KEY");
        let mut static_dir = env("TIDINGS_STATIC_DIR");
        let mut cors = env("TIDINGS_CORS_ORIGINS");
        let mut redis_url = env("TIDINGS_REDIS_URL");
        let mut dev_login = env("TIDINGS_DEV_LOGIN")
            .filter(|v| !v.is_empty())
            .map(|v| !matches!(v.as_str(), "0" | "false" | "off" | "no"));
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
            match flag.as_str() {
                "--bind" => bind = Some(value("--bind")?),
                "--data-dir" => data_dir = Some(value("--data-dir")?),
                "--jwt-secret" => secret = Some(value("--jwt-secret")?),
                "--internal-api-key" => key = Some(value("--internal-api-key")?),
                "--static-dir" => static_dir = Some(value("--static-dir")?),
                "--cors-origin" => cors = Some(value("--cors-origin")?),
                "--redis-url" => redis_url = Some(value("--redis-url")?),
                "--no-dev-login" => dev_login = Some(false),
                "--dev-login" => dev_login = Some(true),
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown flag {other:?}\n\n{USAGE}")),
            }
        }
        let bind: SocketAddr = bind
            .as_deref()
            .unwrap_or("127.0.0.1:3000")
            .parse()
            .map_err(|e| format!("--bind / TIDINGS_BIND must be host:port: {e}"))?;
        // Dev login hands out tokens without a password: on by default only where nobody else can
        // reach it.
        let dev_login = dev_login.unwrap_or_else(|| is_loopback(&bind));
        let (secret, key) = match (secret, key) {
            (Some(s), Some(k)) => (s, k),
            _ if !is_loopback(&bind) => return Err(exposed_message(&bind)),
            (s, k) if dev_login => {
                tracing::warn!(
                    "using the built-in DEV secret/key: set TIDINGS_JWT_SECRET and TIDINGS_INTERNAL_API_KEY outside demos"
                );
                (s.unwrap_or_else(|| DEV_JWT_SECRET.into()), k.unwrap_or_else(|| DEV_INTERNAL_API_KEY.into()))
            }
            _ => {
                return Err("TIDINGS_JWT_SECRET and TIDINGS_INTERNAL_API_KEY are required when dev login is off".into());
            }
        };
        let mut c = Config::new(data_dir.unwrap_or_else(|| "data".into()), &secret, &key);
        c.bind = bind;
        c.static_dir = static_dir.filter(|s| !s.is_empty()).map(PathBuf::from);
        c.dev_login = dev_login;
        c.redis_url = redis_url.filter(|u| !u.is_empty());
        c.cors_origins =
            cors.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        if let Some(ttl) = env("TIDINGS_TOKEN_TTL_SECS") {
            c.token_ttl = Duration::from_secs(ttl.parse().map_err(|_| "TIDINGS_TOKEN_TTL_SECS must be a number")?);
        }
        if let Some(max) = env("TIDINGS_MAX_BODY_BYTES") {
            c.max_body_bytes = max.parse().map_err(|_| "TIDINGS_MAX_BODY_BYTES must be a number")?;
        }
        let number = |name: &str| -> Result<Option<usize>, String> {
            env(name).map(|v| v.parse::<usize>().map_err(|_| format!("{name} must be a number"))).transpose()
        };
        if let Some(r) = env("TIDINGS_EMIT_RATE") {
            c.emit_rate = Rate::parse(&r).map_err(|e| format!("TIDINGS_EMIT_RATE: {e}"))?;
        }
        if let Some(r) = env("TIDINGS_LOGIN_RATE") {
            c.login_rate = Rate::parse(&r).map_err(|e| format!("TIDINGS_LOGIN_RATE: {e}"))?;
        }
        if let Some(n) = number("TIDINGS_SOCKET_BUFFER")? {
            c.socket_buffer = n.max(1);
        }
        if let Some(n) = number("TIDINGS_LOG_MEMORY_EVENTS")? {
            c.log_limits.memory_events = n.max(1);
        }
        if let Some(n) = number("TIDINGS_LOG_MEMORY_BYTES")? {
            c.log_limits.memory_bytes = n;
        }
        if let Some(n) = number("TIDINGS_IDEMPOTENCY_KEYS")? {
            c.log_limits.idempotency_keys = n;
        }
        if let Some(n) = number("TIDINGS_REDIS_MAX_EVENTS")? {
            c.redis_max_events = n;
        }
        if let Some(n) = number("TIDINGS_PING_INTERVAL_MS")? {
            c.ping_interval = Duration::from_millis(n.max(1) as u64);
        }
        if let Some(n) = number("TIDINGS_PING_TIMEOUT_MS")? {
            c.ping_timeout = Duration::from_millis(n.max(1) as u64);
        }
        if let Some(n) = number("TIDINGS_IDEMPOTENCY_TTL_SECS")? {
            c.log_limits.idempotency_ttl = Duration::from_secs(n as u64);
        }
        if let Some(n) = number("TIDINGS_LOG_RETAIN_EVENTS")? {
            c.log_limits.retain_events = n as u64;
        }
        if let Some(n) = number("TIDINGS_LOG_RETAIN_SECS")? {
            c.log_limits.retain_age = (n > 0).then(|| Duration::from_secs(n as u64));
        }
        c.validate()?;
        if c.dev_login && !is_loopback(&c.bind) {
            tracing::warn!(bind = %c.bind, "dev login is on for an address other than loopback: anyone who reaches it gets demo tokens");
        }
        Ok(c)
    }

    /// Refuses what must never run: empty secrets, and, on an address other than loopback, the
    /// built-in DEV secret or key (even when given explicitly) or one shorter than
    /// [`MIN_SECRET_LEN`]. [`crate::serve`] checks it too.
    pub fn validate(&self) -> Result<(), String> {
        if self.jwt_secret.is_empty() || self.internal_api_key.is_empty() {
            return Err("the JWT secret and the internal API key must not be empty".into());
        }
        if is_loopback(&self.bind) {
            return Ok(());
        }
        let weak = |s: &str, dev: &str| s == dev || s.len() < MIN_SECRET_LEN;
        if weak(&self.jwt_secret, DEV_JWT_SECRET) || weak(&self.internal_api_key, DEV_INTERNAL_API_KEY) {
            return Err(exposed_message(&self.bind));
        }
        Ok(())
    }
}

/// Whether `addr` is reachable from this machine only (`127.0.0.0/8`, `::1`, `::ffff:127.x`).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

fn exposed_message(bind: &SocketAddr) -> String {
    format!(
        "refusing to listen on {bind}: it is not a loopback address, and the JWT secret and the internal API key \
         are missing, the built-in DEV values, or shorter than {MIN_SECRET_LEN} characters. Set TIDINGS_JWT_SECRET and \
         TIDINGS_INTERNAL_API_KEY (or --jwt-secret / --internal-api-key) to real secrets, or bind 127.0.0.1 for a demo"
    )
}

/// `--help`.
pub const USAGE: &str = "tidings-example-server [flags]

  --bind ADDR              listen address (TIDINGS_BIND, default 127.0.0.1:3000)
  --data-dir DIR           event logs (TIDINGS_DATA_DIR, default ./data)
  --jwt-secret S           HS256 secret (TIDINGS_JWT_SECRET)
  --internal-api-key K     key for POST /internal/emit (TIDINGS_INTERNAL_API_KEY)
  --static-dir DIR         serve a built web app at / (TIDINGS_STATIC_DIR)
  --cors-origin LIST       allowed origins, comma-separated, * for any (TIDINGS_CORS_ORIGINS)
  --redis-url URL          keep the event log in Redis, shared by several nodes
                           (TIDINGS_REDIS_URL, redis://[:password@]host:port[/db];
                           default: files in --data-dir, one node)
  --no-dev-login           disable POST /api/dev/login (TIDINGS_DEV_LOGIN=0)
  --dev-login              enable it (TIDINGS_DEV_LOGIN=1; default: on for a loopback --bind only)

  RUST_LOG sets the log filter (default info; the Socket.IO stack's debug logs, which hold
  tokens, are never printed); TIDINGS_LOG_FORMAT=json logs JSON lines. More settings, in
  examples/README.md: TIDINGS_TOKEN_TTL_SECS, TIDINGS_MAX_BODY_BYTES, TIDINGS_SOCKET_BUFFER,
  TIDINGS_LOG_MEMORY_EVENTS, TIDINGS_LOG_MEMORY_BYTES, TIDINGS_IDEMPOTENCY_KEYS,
  TIDINGS_IDEMPOTENCY_TTL_SECS, TIDINGS_EMIT_RATE, TIDINGS_LOGIN_RATE, TIDINGS_REDIS_MAX_EVENTS.
  Retention of the file log (default: none, every event is kept for good):
  TIDINGS_LOG_RETAIN_EVENTS=N deletes an event once N newer ones are kept, TIDINGS_LOG_RETAIN_SECS=S
  once it is S seconds old (0: no limit; with both, whichever comes first). Whole segment files
  go, so a little more than that is kept; a feed read from before the oldest kept event says
  \"truncated\".
  On a loopback address without a secret and key, dev login must be on and built-in DEV values
  are used. On any other address the server refuses to start without real ones (16+ characters,
  not the DEV values).";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_env() {
        let env = |k: &str| match k {
            "TIDINGS_BIND" => Some("0.0.0.0:4000".to_string()),
            "TIDINGS_JWT_SECRET" => Some("env-secret".to_string()),
            "TIDINGS_INTERNAL_API_KEY" => Some("env-key".to_string()),
            "TIDINGS_DEV_LOGIN" => Some("0".to_string()),
            _ => None,
        };
        let c = Config::from_args(["--bind".to_string(), "127.0.0.1:5000".to_string()], env).unwrap();
        assert_eq!(c.bind.port(), 5000);
        assert_eq!(c.jwt_secret, "env-secret");
        assert!(!c.dev_login);
        assert!(Config::from_args(["--nope".to_string()], |_| None).is_err());
        let no_secret = |k: &str| (k == "TIDINGS_DEV_LOGIN").then(|| "0".to_string());
        assert!(Config::from_args(Vec::new(), no_secret).is_err());
        let dev = Config::from_args(Vec::new(), |_| None).unwrap();
        assert_eq!(dev.jwt_secret, DEV_JWT_SECRET);
        assert_eq!(dev.bind.port(), 3000);
        assert!(dev.dev_login);
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_public_address_needs_real_secrets() {
        let none = |_: &str| None;
        for bind in ["0.0.0.0:3000", "[::]:3000", "192.168.1.5:3000", "[::ffff:10.0.0.1]:3000"] {
            let e = Config::from_args(args(&["--bind", bind]), none).unwrap_err();
            assert!(e.starts_with("refusing to listen on "), "{e}");
            let e = Config::from_args(args(&["--bind", bind, "--dev-login"]), none).unwrap_err();
            assert!(e.contains("not a loopback address"), "{e}");
            // The DEV values given explicitly are not real secrets.
            let dev =
                args(&["--bind", bind, "--jwt-secret", DEV_JWT_SECRET, "--internal-api-key", DEV_INTERNAL_API_KEY]);
            assert!(Config::from_args(dev, none).unwrap_err().contains("not a loopback address"));
            let short = args(&["--bind", bind, "--jwt-secret", "short", "--internal-api-key", "0123456789abcdef"]);
            assert!(Config::from_args(short, none).is_err());
            let real = args(&[
                "--bind",
                bind,
                "--jwt-secret",
                "0123456789abcdef-jwt",
                "--internal-api-key",
                "0123456789abcdef",
            ]);
            let c = Config::from_args(real.clone(), none).unwrap();
            assert!(!c.dev_login, "dev login is off by default on a public address");
            let mut with_dev = real;
            with_dev.push("--dev-login".into());
            assert!(Config::from_args(with_dev, none).unwrap().dev_login);
        }
        // Loopback keeps the demo defaults, IPv6 and mapped loopback included.
        for bind in ["127.0.0.1:0", "127.0.0.2:3000", "[::1]:3000", "[::ffff:127.0.0.1]:3000"] {
            let c = Config::from_args(args(&["--bind", bind]), none).unwrap();
            assert!(c.dev_login);
            assert_eq!(c.internal_api_key, DEV_INTERNAL_API_KEY);
        }
        // The library path refuses the same thing.
        let mut c = Config::new("data", DEV_JWT_SECRET, DEV_INTERNAL_API_KEY);
        assert!(c.validate().is_ok());
        c.bind = "0.0.0.0:0".parse().unwrap();
        assert!(c.validate().is_err());
        assert!(Config::new("data", "", "k").validate().is_err());
    }

    #[test]
    fn limits_from_the_environment() {
        let env = |k: &str| match k {
            "TIDINGS_EMIT_RATE" => Some("50/100".to_string()),
            "TIDINGS_LOGIN_RATE" => Some("off".to_string()),
            "TIDINGS_SOCKET_BUFFER" => Some("64".to_string()),
            "TIDINGS_LOG_MEMORY_EVENTS" => Some("100".to_string()),
            "TIDINGS_IDEMPOTENCY_TTL_SECS" => Some("60".to_string()),
            _ => None,
        };
        let c = Config::from_args(Vec::new(), env).unwrap();
        assert_eq!(c.emit_rate, Rate { per_sec: 50.0, burst: 100.0 });
        assert_eq!(c.login_rate, Rate::UNLIMITED);
        assert_eq!((c.socket_buffer, c.log_limits.memory_events), (64, 100));
        assert_eq!(c.log_limits.idempotency_ttl, Duration::from_secs(60));
        assert_eq!(c.log_limits.idempotency_keys, Limits::default().idempotency_keys);
        assert_eq!((c.log_limits.retain_events, c.log_limits.retain_age), (0, None), "keeps everything by default");
        let retain = |k: &str| match k {
            "TIDINGS_LOG_RETAIN_EVENTS" => Some("5000".to_string()),
            "TIDINGS_LOG_RETAIN_SECS" => Some("86400".to_string()),
            _ => None,
        };
        let c = Config::from_args(Vec::new(), retain).unwrap();
        assert_eq!(c.log_limits.retain_events, 5000);
        assert_eq!(c.log_limits.retain_age, Some(Duration::from_secs(86400)));
        let zero = |k: &str| (k == "TIDINGS_LOG_RETAIN_SECS").then(|| "0".to_string());
        assert_eq!(Config::from_args(Vec::new(), zero).unwrap().log_limits.retain_age, None);
        let bad = |k: &str| (k == "TIDINGS_LOG_RETAIN_EVENTS").then(|| "many".to_string());
        assert!(Config::from_args(Vec::new(), bad).unwrap_err().contains("TIDINGS_LOG_RETAIN_EVENTS"));
        let bad = |k: &str| (k == "TIDINGS_EMIT_RATE").then(|| "fast".to_string());
        assert!(Config::from_args(Vec::new(), bad).unwrap_err().contains("TIDINGS_EMIT_RATE"));
    }
}
