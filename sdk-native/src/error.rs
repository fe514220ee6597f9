//! Errors of the public API, sorted by fault: what the caller did, what the server said, what the
//! network did. Transient network failures never reach here: they feed the reconnection loop.

use std::fmt;

use tidings_core::{ConnectError, EmitError, EmitRefused, InvalidEmit};

/// An error from the Tidings client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid (bad URL, contradictory options).
    Config(String),
    /// An argument could not be serialised or is not valid for Socket.IO.
    InvalidArgument(String),
    /// A payload could not be deserialised into the requested type.
    Decode(String),
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
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(m) => write!(f, "invalid configuration: {m}"),
            Self::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Self::Decode(m) => write!(f, "could not decode the payload: {m}"),
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
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
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
