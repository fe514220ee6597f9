//! The few URL operations the core needs: parse the server URL, build Engine.IO and feed URLs.
//!
//! Kept minimal on purpose (no `url` crate: it would add its IDNA tables to the browser build).

use std::fmt;

use crate::text;

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
        let (secure, rest) = [("https://", true), ("wss://", true), ("http://", false), ("ws://", false)]
            .into_iter()
            .find_map(|(scheme, secure)| strip_prefix_ci(input, scheme).map(|r| (secure, r)))
            .ok_or(UrlError("the scheme must be http, https, ws or wss"))?;
        // The delimiters are ASCII bytes, so splitting at them stays on char boundaries. Byte
        // searches (`split_byte`) rather than `split`/`find` with char patterns, and `get` rather
        // than `split_at`: less code in the browser build, and no panic path.
        let rest = split_byte(rest, b'#', false).map_or(rest, |(r, _)| r);
        let auth_end = rest.bytes().position(|c| c == b'/' || c == b'?').unwrap_or(rest.len());
        let (authority, tail) = (rest.get(..auth_end).unwrap_or(rest), rest.get(auth_end..).unwrap_or_default());
        if authority.bytes().any(|c| c == b'@') {
            return Err(UrlError("credentials in the URL are not supported (pass a token with auth)"));
        }
        let (host, port) = split_host_port(authority)?;
        let (path, mut query) = split_byte(tail, b'?', false).unwrap_or((tail, ""));
        let namespace =
            if path.is_empty() || path == "/" { "/".to_string() } else { text::trim_end_byte(path, b'/').to_string() };
        // `k=v` pairs separated by `&`; empty ones are skipped.
        let mut pairs = Vec::new();
        loop {
            let (kv, more) = split_byte(query, b'&', false).map_or((query, None), |(kv, more)| (kv, Some(more)));
            if !kv.is_empty() {
                let (k, v) = split_byte(kv, b'=', false).unwrap_or((kv, ""));
                pairs.push((k.to_string(), v.to_string()));
            }
            let Some(more) = more else { break };
            query = more;
        }
        Ok(Self { secure, host, port, namespace, query: pairs })
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

/// `s` split around its first (`last`: its last) byte `b`, which must be ASCII.
fn split_byte(s: &str, b: u8, last: bool) -> Option<(&str, &str)> {
    let mut at = s.bytes().enumerate().filter(|&(_, c)| c == b).map(|(i, _)| i);
    let i = if last { at.next_back() } else { at.next() }?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), UrlError> {
    if authority.is_empty() {
        return Err(UrlError("the host is missing"));
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = split_byte(rest, b']', false).ok_or(UrlError("unterminated IPv6 literal"))?;
        let host = crate::text::concat(&["[", inside, "]"]);
        match after.strip_prefix(':') {
            Some(p) => (host, Some(p)),
            None if after.is_empty() => (host, None),
            None => return Err(UrlError("unexpected characters after the IPv6 literal")),
        }
    } else {
        match split_byte(authority, b':', true) {
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

    /// Scheme, host, port, namespace, query and origin.
    type Parsed = (bool, String, Option<u16>, String, Vec<(String, String)>, String);

    /// The parser as it was written with `str` patterns, `split_at` and `format!`: the byte
    /// searches must read every URL the same way.
    fn reference(input: &str) -> Result<Parsed, UrlError> {
        let input = input.trim();
        let (secure, rest) = [("https://", true), ("wss://", true), ("http://", false), ("ws://", false)]
            .into_iter()
            .find_map(|(p, secure)| strip_prefix_ci(input, p).map(|r| (secure, r)))
            .ok_or(UrlError("the scheme must be http, https, ws or wss"))?;
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        if authority.contains('@') {
            return Err(UrlError("credentials in the URL are not supported (pass a token with auth)"));
        }
        if authority.is_empty() {
            return Err(UrlError("the host is missing"));
        }
        let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
            let end = rest.find(']').ok_or(UrlError("unterminated IPv6 literal"))?;
            let host = format!("[{}]", &rest[..end]);
            let after = &rest[end + 1..];
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
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
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
        let origin = match port {
            Some(p) => format!("{}://{host}:{p}", if secure { "https" } else { "http" }),
            None => format!("{}://{host}", if secure { "https" } else { "http" }),
        };
        Ok((secure, host, port, namespace, query, origin))
    }

    fn ours(input: &str) -> Result<Parsed, UrlError> {
        ServerUrl::parse(input).map(|u| {
            let origin = u.http_origin();
            (u.secure, u.host, u.port, u.namespace, u.query, origin)
        })
    }

    #[test]
    fn parses_as_the_reference_does() {
        for url in [
            " HTTPS://h:1/a/b/?x=1&&y=&z#frag?q",
            "ws://[::1]",
            "ws://[::1]x",
            "ws://[::1:80",
            "ws://[]:80/",
            "wss://h:/n",
            "http://h:+80",
            "http://h:65536",
            "http://a:b:c",
            "http://é.example:8é/ü?é=ü",
            "http://h?",
            "http://h#/x",
            "http://h/?=&=v&k=v=w",
            "http:// h",
            "http://h\\x",
            "http://:80",
            "ftp://h",
        ] {
            assert_eq!(ours(url), reference(url), "{url}");
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn parses_any_text_as_the_reference_does(scheme in 0usize..5, rest in "[a-c:@/?#&=\\[\\] 0-9é+]{0,24}") {
            let url = format!("{}{rest}", ["http://", "WSS://", "ws://", "https://", ""][scheme]);
            proptest::prop_assert_eq!(ours(&url), reference(&url), "{}", url);
        }
    }

    #[test]
    fn encodes_components() {
        let mut s = String::new();
        encode_component("a b/é", &mut s);
        assert_eq!(s, "a%20b%2F%C3%A9");
    }
}
