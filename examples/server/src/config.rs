//! Configuration from flags and environment variables (a flag wins over its variable).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Secret used when none is configured and dev login is on. Never use it in production.
pub const DEV_JWT_SECRET: &str = "tidings-dev-jwt-secret-change-me";
/// Internal API key used when none is configured and dev login is on.
pub const DEV_INTERNAL_API_KEY: &str = "tidings-dev-internal-key";

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
    /// Whether `POST /api/dev/login` hands out demo tokens (`--no-dev-login`, `TIDINGS_DEV_LOGIN=0`).
    pub dev_login: bool,
    /// Origins allowed by CORS (`--cors-origin`, `TIDINGS_CORS_ORIGINS`, comma-separated; `*` for any).
    pub cors_origins: Vec<String>,
    /// Lifetime of demo tokens (`TIDINGS_TOKEN_TTL_SECS`; default 8 h).
    pub token_ttl: Duration,
    /// Largest HTTP request body and Socket.IO message, in bytes (`TIDINGS_MAX_BODY_BYTES`; default 64 KiB).
    pub max_body_bytes: usize,
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
        let mut dev_login =
            env("TIDINGS_DEV_LOGIN").is_none_or(|v| !matches!(v.as_str(), "0" | "false" | "off" | "no"));
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
                "--no-dev-login" => dev_login = false,
                "--dev-login" => dev_login = true,
                "-h" | "--help" => return Err(USAGE.to_string()),
                other => return Err(format!("unknown flag {other:?}\n\n{USAGE}")),
            }
        }
        let (secret, key) = match (secret, key, dev_login) {
            (Some(s), Some(k), _) => (s, k),
            (s, k, true) => {
                if s.is_none() || k.is_none() {
                    tracing::warn!(
                        "using the built-in DEV secret/key: set TIDINGS_JWT_SECRET and TIDINGS_INTERNAL_API_KEY outside demos"
                    );
                }
                (s.unwrap_or_else(|| DEV_JWT_SECRET.into()), k.unwrap_or_else(|| DEV_INTERNAL_API_KEY.into()))
            }
            _ => {
                return Err("TIDINGS_JWT_SECRET and TIDINGS_INTERNAL_API_KEY are required when dev login is off".into());
            }
        };
        if secret.is_empty() || key.is_empty() {
            return Err("the JWT secret and the internal API key must not be empty".into());
        }
        let mut c = Config::new(data_dir.unwrap_or_else(|| "data".into()), &secret, &key);
        c.bind = bind
            .as_deref()
            .unwrap_or("127.0.0.1:3000")
            .parse()
            .map_err(|e| format!("--bind / TIDINGS_BIND must be host:port: {e}"))?;
        c.static_dir = static_dir.filter(|s| !s.is_empty()).map(PathBuf::from);
        c.dev_login = dev_login;
        c.cors_origins =
            cors.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        if let Some(ttl) = env("TIDINGS_TOKEN_TTL_SECS") {
            c.token_ttl = Duration::from_secs(ttl.parse().map_err(|_| "TIDINGS_TOKEN_TTL_SECS must be a number")?);
        }
        if let Some(max) = env("TIDINGS_MAX_BODY_BYTES") {
            c.max_body_bytes = max.parse().map_err(|_| "TIDINGS_MAX_BODY_BYTES must be a number")?;
        }
        Ok(c)
    }
}

/// `--help`.
pub const USAGE: &str = "tidings-example-server [flags]

  --bind ADDR              listen address (TIDINGS_BIND, default 127.0.0.1:3000)
  --data-dir DIR           event logs (TIDINGS_DATA_DIR, default ./data)
  --jwt-secret S           HS256 secret (TIDINGS_JWT_SECRET)
  --internal-api-key K     key for POST /internal/emit (TIDINGS_INTERNAL_API_KEY)
  --static-dir DIR         serve a built web app at / (TIDINGS_STATIC_DIR)
  --cors-origin LIST       allowed origins, comma-separated, * for any (TIDINGS_CORS_ORIGINS)
  --no-dev-login           disable POST /api/dev/login (TIDINGS_DEV_LOGIN=0)

  RUST_LOG sets the log filter (default info); TIDINGS_LOG_FORMAT=json logs JSON lines.
  Without a secret and key, dev login must be on and built-in DEV values are used.";

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
    }
}
