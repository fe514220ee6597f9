//! HS256 JSON Web Tokens: just enough of RFC 7519 for this server, on `hmac` + `sha2`.
//!
//! Only `{"alg":"HS256"}` is accepted (never `none`, never another algorithm picked by the
//! token), the signature is checked in constant time before the claims are even parsed, and
//! `exp` is required.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::rooms::valid_id;

type HmacSha256 = Hmac<Sha256>;

/// Largest token accepted, in bytes: far more than any real claim set needs.
const MAX_TOKEN_LEN: usize = 8 << 10;

/// The claims this server reads (others are ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The tenant the user belongs to.
    pub tenant_id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// Issued at, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
}

/// Why a token was refused. [`AuthError::code`] is the stable, machine-readable part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// No token was sent.
    Missing,
    /// Not three base64url parts, not JSON, or too long.
    Malformed(&'static str),
    /// The header names an algorithm other than HS256.
    UnsupportedAlgorithm,
    /// The signature does not match (wrong secret, or a tampered token).
    InvalidSignature,
    /// `exp` is in the past.
    Expired {
        /// How many seconds ago.
        ago_secs: i64,
    },
    /// Signed correctly but the claims are unusable (missing `sub`/`tenantId`, bad ids).
    InvalidClaims(String),
}

impl AuthError {
    /// The stable code, also the prefix of the CONNECT_ERROR message (`"<code>: <text>"`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "token_missing",
            AuthError::Malformed(_) => "token_malformed",
            AuthError::UnsupportedAlgorithm => "token_unsupported_alg",
            AuthError::InvalidSignature => "token_invalid_signature",
            AuthError::Expired { .. } => "token_expired",
            AuthError::InvalidClaims(_) => "token_invalid_claims",
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.code();
        match self {
            AuthError::Missing => {
                write!(f, "{code}: missing token: send the JWT as auth.token (Authorization: Bearer for HTTP)")
            }
            AuthError::Malformed(why) => write!(f, "{code}: malformed token: {why}"),
            AuthError::UnsupportedAlgorithm => write!(f, "{code}: unsupported token algorithm: only HS256 is accepted"),
            AuthError::InvalidSignature => write!(f, "{code}: invalid token signature"),
            AuthError::Expired { ago_secs } => write!(f, "{code}: token expired {ago_secs} s ago; log in again"),
            AuthError::InvalidClaims(why) => write!(f, "{code}: invalid token claims: {why}"),
        }
    }
}

impl std::error::Error for AuthError {}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <HmacSha256 as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable_hmac())
}

#[allow(clippy::panic)]
fn unreachable_hmac() -> HmacSha256 {
    panic!("HMAC accepts keys of any length")
}

/// Signs `claims` with `secret` (HS256).
pub fn sign(claims: &Claims, secret: &[u8]) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    // Serialising a struct of strings and integers cannot fail.
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let signing_input = format!("{header}.{body}");
    let mut m = mac(secret);
    m.update(signing_input.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    format!("{signing_input}.{sig}")
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// Verifies an HS256 token at time `now_secs` and returns its claims.
pub fn verify(token: &str, secret: &[u8], now_secs: i64) -> Result<Claims, AuthError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::Malformed("longer than 8 KiB"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(AuthError::Malformed("a JWT has three dot-separated parts"));
    };
    let header = URL_SAFE_NO_PAD.decode(h).map_err(|_| AuthError::Malformed("the header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header)
        .map_err(|_| AuthError::Malformed("the header is not a JSON object with alg"))?;
    if header.alg != "HS256" {
        return Err(AuthError::UnsupportedAlgorithm);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| AuthError::Malformed("the signature is not base64url"))?;
    let mut m = mac(secret);
    m.update(h.as_bytes());
    m.update(b".");
    m.update(p.as_bytes());
    // `verify_slice` compares in constant time.
    m.verify_slice(&sig).map_err(|_| AuthError::InvalidSignature)?;
    let payload = URL_SAFE_NO_PAD.decode(p).map_err(|_| AuthError::Malformed("the payload is not base64url"))?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|e| AuthError::InvalidClaims(format!("expected {{sub, tenantId, exp, name?}}: {e}")))?;
    if !valid_id(&claims.sub) {
        return Err(AuthError::InvalidClaims("sub must be 1-64 characters of [A-Za-z0-9_-]".into()));
    }
    if !valid_id(&claims.tenant_id) {
        return Err(AuthError::InvalidClaims("tenantId must be 1-64 characters of [A-Za-z0-9_-]".into()));
    }
    if claims.exp <= now_secs {
        return Err(AuthError::Expired { ago_secs: now_secs - claims.exp });
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims { sub: "alice".into(), tenant_id: "acme".into(), name: Some("Alice".into()), exp, iat: None }
    }

    #[test]
    fn sign_then_verify() {
        let t = sign(&claims(100), b"s3cret");
        assert_eq!(verify(&t, b"s3cret", 50).unwrap(), claims(100));
    }

    #[test]
    fn refusals_say_why() {
        let t = sign(&claims(100), b"s3cret");
        assert_eq!(verify("", b"s3cret", 50), Err(AuthError::Missing));
        assert_eq!(verify(&t, b"other", 50), Err(AuthError::InvalidSignature));
        assert_eq!(verify(&t, b"s3cret", 160), Err(AuthError::Expired { ago_secs: 60 }));
        assert!(matches!(verify("a.b", b"s3cret", 50), Err(AuthError::Malformed(_))));
        let mut tampered = t.clone();
        tampered.insert(t.find('.').unwrap() + 2, 'x');
        assert!(verify(&tampered, b"s3cret", 50).is_err());
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), t.split('.').nth(1).unwrap());
        assert_eq!(verify(&none, b"s3cret", 50), Err(AuthError::UnsupportedAlgorithm));
        assert!(AuthError::Expired { ago_secs: 3 }.to_string().starts_with("token_expired: "));
    }

    #[test]
    fn known_vector() {
        // jwt.io's HS256 example, secret "your-256-bit-secret": the signature checks out, and
        // the claims (no tenantId) are refused as such, not as a bad signature.
        let t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
        assert!(matches!(verify(t, b"your-256-bit-secret", 0), Err(AuthError::InvalidClaims(_))));
        assert_eq!(verify(t, b"wrong", 0), Err(AuthError::InvalidSignature));
    }
}
