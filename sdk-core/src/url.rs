//! The few URL operations the core needs: parse the server URL, build Engine.IO and feed URLs.
//!
//! Kept minimal on purpose (no `url` crate: it would add its IDNA tables to the browser build).

use std::fmt;

/// Why a URL was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlError(pub &'static str);

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Two `write_str`s rather than `write!`: no `core::fmt` argument machinery.
        f.write_str("invalid URL: ")?;
        f.write_str(self.0)
    }
}

impl std::error::Error for UrlError {}

/// A Socket.IO server address, split the way socket.io-client splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `https`/`wss` (true) or `http`/`ws` (false).
    pub secure: bool,
    /// Host, with brackets for IPv6 literals.
    pub host: String,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// The path of the URL, which names the namespace (`/` when empty), as in `io("http://h/admin")`.
    pub namespace: String,
    /// Extra query pairs (already percent-encoded as given), kept in order.
    pub query: Vec<(String, String)>,
}

impl ServerUrl {
    /// Parses `http://`, `https://`, `ws://` or `wss://` URLs.
    pub fn parse(input: &str) -> Result<Self, UrlError> {
        let input = input.trim();
        let (secure, rest) = if let Some(r) = strip_prefix_ci(input, "https://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(input, "wss://") {
            (true, r)
        } else if let Some(r) = strip_prefix_ci(input, "http://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(input, "ws://") {
            (false, r)
        } else {
            return Err(UrlError("the scheme must be http, https, ws or wss"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        // `find` returns a char boundary; `get` keeps `split_at`'s panic path (and its message
        // formatting) out of the browser build.
        let (authority, tail) = (rest.get(..auth_end).unwrap_or(rest), rest.get(auth_end..).unwrap_or_default());
        if authority.contains('@') {
            return Err(UrlError("credentials in the URL are not supported (pass a token with auth)"));
        }
        let (host, port) = split_host_port(authority)?;
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, q),
            None => (tail, ""),
        };
        let namespace =
            if path.is_empty() || path == "/" { "/".to_string() } else { path.trim_end_matches('/').to_string() };
        let query = query
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv.to_string(), String::new()),
            })
            .collect();
        Ok(Self { secure, host, port, namespace, query })
    }

    /// `scheme://host[:port]`. Built with `push_str` rather than `format!`: the URL is built on
    /// every connection attempt, and `core::fmt` is kilobytes of the browser build.
    fn origin(&self, scheme: &str) -> String {
        let mut out = String::with_capacity(scheme.len() + 3 + self.host.len() + 6);
        out.push_str(scheme);
        out.push_str("://");
        out.push_str(&self.host);
        if let Some(p) = self.port {
            out.push(':');
            crate::json::write_u64(&mut out, u64::from(p));
        }
        out
    }

    /// `http(s)://host[:port]`.
    pub fn http_origin(&self) -> String {
        self.origin(if self.secure { "https" } else { "http" })
    }

    /// `ws(s)://host[:port]`.
    pub fn ws_origin(&self) -> String {
        self.origin(if self.secure { "wss" } else { "ws" })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) { s.get(prefix.len()..) } else { None }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), UrlError> {
    if authority.is_empty() {
        return Err(UrlError("the host is missing"));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or(UrlError("unterminated IPv6 literal"))?;
        let host = authority.get(..end + 2).unwrap_or_default().to_string();
        let after = rest.get(end + 1..).unwrap_or_default();
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(UrlError("unexpected characters after the IPv6 literal")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c == '/' || c == '\\') {
        return Err(UrlError("the host is invalid"));
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| UrlError("the port is not a number from 0 to 65535"))?),
        None => None,
    };
    Ok((host, port))
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass through).
pub fn encode_component(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            for nibble in [b >> 4, b & 15] {
                out.push(char::from(HEX.get(usize::from(nibble)).copied().unwrap_or(b'0')));
            }
        }
    }
}

const HEX: [u8; 16] = *b"0123456789ABCDEF";

/// A namespace as the protocol names it: with its leading `/` (`admin` and `/admin` are the same
/// namespace; an empty name is `/`). Both drivers accept either form through this one rule.
pub fn namespace_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    if !name.starts_with('/') {
        out.push('/');
    }
    out.push_str(name);
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_namespace_gets_its_leading_slash() {
        assert_eq!(super::namespace_path("admin"), "/admin");
        assert_eq!(super::namespace_path("/admin"), "/admin");
        assert_eq!(super::namespace_path(""), "/");
    }
    use super::*;

    #[test]
    fn parses_namespace_port_and_query() {
        let u = ServerUrl::parse("https://example.com:8443/admin?x=1&y").unwrap();
        assert!(u.secure);
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(8443));
        assert_eq!(u.namespace, "/admin");
        assert_eq!(u.query, vec![("x".into(), "1".into()), ("y".into(), String::new())]);
        assert_eq!(u.ws_origin(), "wss://example.com:8443");
    }

    #[test]
    fn parses_ipv6_and_plain() {
        let u = ServerUrl::parse("ws://[::1]:3000").unwrap();
        assert_eq!(u.host, "[::1]");
        assert_eq!(u.namespace, "/");
        assert_eq!(u.http_origin(), "http://[::1]:3000");
        assert!(ServerUrl::parse("ftp://x").is_err());
        assert!(ServerUrl::parse("http://").is_err());
        assert!(ServerUrl::parse("http://h:99999").is_err());
        assert!(ServerUrl::parse("http://user:pw@h").is_err());
    }

    #[test]
    fn encodes_components() {
        let mut s = String::new();
        encode_component("a b/é", &mut s);
        assert_eq!(s, "a%20b%2F%C3%A9");
    }
}
