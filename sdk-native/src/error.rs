//! Errors of the public API, sorted by fault: what the caller did, what the server said, what the
//! network did. Transient network failures never reach here: they feed the reconnection loop.

use std::fmt;
use std::sync::Arc;

use tidings_core::{ArgsError, CommandError, ConnectError, EmitError, EmitRefused, InvalidEmit};

/// An error from the Tidings client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (bad URL, contradictory options).
    Config(ConfigError),
    /// An argument could not be serialised or is not valid for Socket.IO.
    InvalidArgument(ArgumentError),
    /// A payload could not be deserialised into the requested type.
    Decode(DecodeError),
    /// The namespace refused the connection (CONNECT_ERROR), or the engine could not be opened.
    Connect(ConnectError),
    /// The emit is wrong (a reserved name, an unknown namespace, invalid arguments, ...): nothing
    /// was sent.
    InvalidEmit(InvalidEmit),
    /// An emit did not get through (timeout, disconnected, buffer full, too large, ...).
    Emit(EmitError),
    /// Waiting timed out.
    Timeout,
    /// The client was disconnected (or dropped) for good.
    Closed,
    /// A lossy subscription ([`crate::Tidings::on_lossy`]) skipped this many events because its
    /// queue was full. Lossless subscriptions (the default) never yield it.
    Lagged(u64),
    /// The server refused a publication ([`crate::Publisher`]) with this HTTP status and body:
    /// not retried.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// What the server said (its body, shortened).
        message: String,
    },
    /// A publication was still failing transiently after the attempts allowed.
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The REST feed could not be read ([`crate::Tidings::history`]): no feed is configured, the
    /// request failed, or the answer is not a feed page (what failed, without the token).
    Feed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => write!(f, "invalid configuration: {e}"),
            Self::InvalidArgument(e) => write!(f, "invalid argument: {e}"),
            Self::Decode(e) => write!(f, "could not decode the payload: {e}"),
            Self::Connect(e) => match &e.data {
                Some(d) => write!(f, "connection refused: {} (data: {d})", e.message),
                None => write!(f, "connection failed: {}", e.message),
            },
            Self::InvalidEmit(e) => e.fmt(f),
            Self::Emit(e) => e.fmt(f),
            Self::Timeout => f.write_str("timed out"),
            Self::Closed => f.write_str("the client is closed; create a new one or call connect()"),
            Self::Lagged(n) => write!(f, "the lossy subscription skipped {n} events (its queue was full)"),
            Self::Rejected { status, message } => write!(f, "the server refused it: HTTP {status}: {message}"),
            Self::GaveUp { attempts, last } => write!(f, "gave up after {attempts} attempts: {last}"),
            Self::Feed(e) => write!(f, "the feed: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => Some(e),
            Self::InvalidArgument(e) => Some(e),
            Self::Decode(e) => Some(e),
            Self::InvalidEmit(e) => Some(e),
            Self::Emit(e) => Some(e),
            _ => None,
        }
    }
}

impl From<EmitError> for Error {
    fn from(e: EmitError) -> Self {
        Self::Emit(e)
    }
}

impl From<EmitRefused> for Error {
    fn from(e: EmitRefused) -> Self {
        match e {
            EmitRefused::Invalid(e) => Self::InvalidEmit(e),
            EmitRefused::Failed(e) => Self::Emit(e),
        }
    }
}

/// An error of a library Tidings uses (serde_json, rustls, reqwest), kept whole: its message,
/// its own sources, and [`Cause::get`] to downcast it. Two causes are equal when their messages
/// are (the libraries' errors have no equality of their own).
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    pub(crate) fn new(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(e))
    }

    /// The library's error, to inspect or downcast (`cause.get().downcast_ref::<serde_json::Error>()`).
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for Cause {}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What is wrong with a client's or a publisher's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The URL (or a fallback URL) is not a valid server URL.
    Url(tidings_core::url::UrlError),
    /// The auth is not a JSON object.
    AuthNotObject,
    /// The core refused the options (no transport, a bad backoff, too many fallback URLs, ...).
    Core(tidings_core::ConfigError),
    /// The backoff settings are invalid.
    Backoff(&'static str),
    /// A publisher's URL must be `http://` or `https://`.
    PublisherScheme,
    /// A publisher needs an API key.
    MissingApiKey,
    /// A custom root certificate is invalid.
    RootCertificate(Cause),
    /// The TLS or HTTP client could not be set up.
    Tls(Cause),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(e) => e.fmt(f),
            Self::AuthNotObject => f.write_str("auth must be a JSON object"),
            Self::Core(e) => f.write_str(e.0),
            Self::Backoff(e) => write!(f, "backoff: {e}"),
            Self::PublisherScheme => f.write_str("the publisher's URL must be http(s)://…"),
            Self::MissingApiKey => f.write_str("the publisher needs an API key"),
            Self::RootCertificate(e) => write!(f, "a custom root certificate is invalid: {e}"),
            Self::Tls(e) => write!(f, "TLS setup failed: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Url(e) => Some(e),
            Self::Core(e) => Some(e),
            Self::RootCertificate(e) | Self::Tls(e) => Some(e),
            _ => None,
        }
    }
}

/// Why an argument cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArgumentError {
    /// serde_json could not serialise it.
    Serialize(Cause),
    /// A `{"$binary": …}` object holds invalid base64.
    Binary(base64::DecodeError),
    /// The arguments are not valid for Socket.IO (placeholders, nesting, ...).
    Args(ArgsError),
    /// The client refused the command (a room operation on a namespace that is not open).
    Command(CommandError),
}

impl fmt::Display for ArgumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Serialize(e) => e.fmt(f),
            Self::Binary(e) => write!(f, "bad $binary base64: {e}"),
            Self::Args(e) => e.fmt(f),
            Self::Command(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ArgumentError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Serialize(e) => Some(e),
            Self::Binary(e) => Some(e),
            Self::Args(e) => Some(e),
            Self::Command(e) => Some(e),
        }
    }
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// serde_json could not decode it into the requested type.
    Json(Cause),
    /// The event has no argument at this index.
    MissingArgument(usize),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Json(e) => e.fmt(f),
            Self::MissingArgument(i) => write!(f, "argument {i} is missing"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Json(e) => Some(e),
            Self::MissingArgument(_) => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

impl From<ArgumentError> for Error {
    fn from(e: ArgumentError) -> Self {
        Self::InvalidArgument(e)
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

/// serde_json failing to decode.
pub(crate) fn decode(e: serde_json::Error) -> Error {
    Error::Decode(DecodeError::Json(Cause::new(e)))
}

/// serde_json failing to serialise an argument.
pub(crate) fn serialize(e: serde_json::Error) -> Error {
    Error::InvalidArgument(ArgumentError::Serialize(Cause::new(e)))
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn errors_keep_their_cause() {
        let json = serde_json::from_str::<u32>("\"x\"").expect_err("not a number");
        let e = decode(json);
        let Error::Decode(DecodeError::Json(cause)) = &e else { panic!("{e:?}") };
        assert!(cause.get().downcast_ref::<serde_json::Error>().is_some(), "the serde_json error itself");
        assert!(e.source().and_then(|s| s.source()).is_some(), "reachable through source()");
        assert_eq!(e, e.clone());

        let e = crate::Tidings::builder("ftp://example.com").build().expect_err("bad scheme");
        assert!(matches!(e, Error::Config(ConfigError::Url(_))), "{e:?}");
        assert!(e.source().is_some_and(|s| s.to_string().contains("scheme")), "{e}");

        let e: Error = EmitRefused::Invalid(InvalidEmit::ReservedName("connect".into())).into();
        assert!(matches!(e, Error::InvalidEmit(InvalidEmit::ReservedName(_))));
        let e: Error = EmitRefused::Failed(EmitError::Timeout).into();
        assert_eq!(e, Error::Emit(EmitError::Timeout));
    }
}
