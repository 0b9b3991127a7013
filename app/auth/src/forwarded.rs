//! The client's address, believing `X-Forwarded-For` only as far as configured.
//!
//! Each reverse proxy appends the address of the peer it saw to `X-Forwarded-For`, and anything
//! to the left of what the proxies wrote came from the client, who can write whatever it likes.
//! Behind `n` trusted proxies the client is therefore the `n`-th entry from the right (the peer
//! the outermost proxy saw). The app stack runs behind two: CloudFront, then the ALB.
//!
//! Invariant: with no trusted proxies (the default) no header is read, and a request that did
//! not pass every trusted proxy (too few entries, or one that is not an address) is counted
//! against the TCP peer, never against an address the client chose.
//!
//! The scheme is deliberately not taken from `X-Forwarded-Proto`: behind CloudFront it describes
//! the CloudFront → ALB hop (plain HTTP), not the browser's, so the app's redirects are relative
//! and its login cookies are always `Secure` instead.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use super::config::TrustedProxies;

/// The most `X-Forwarded-For` entries looked at; a longer chain is padded by the client.
const MAX_ENTRIES: usize = 64;

impl TrustedProxies {
    /// The address of the client of a request that arrived from `peer` with `headers`.
    pub fn client_addr(self, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
        let hops = usize::from(self.0);
        if hops == 0 {
            return peer.ip();
        }
        // Several headers are one comma-separated list in order (RFC 9110, 5.3); a header that is
        // not visible ASCII makes the whole chain unusable.
        let mut entries: Vec<&str> = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(text) = value.to_str() else {
                return peer.ip();
            };
            entries.extend(text.split(',').map(str::trim));
            if entries.len() > MAX_ENTRIES {
                // Only the rightmost entries matter; keep the list bounded.
                entries.drain(..entries.len() - MAX_ENTRIES);
            }
        }
        let Some(index) = entries.len().checked_sub(hops) else {
            return peer.ip();
        };
        parse_entry(entries[index]).unwrap_or_else(|| peer.ip())
    }
}

/// An `X-Forwarded-For` entry: an IPv4 or IPv6 address, possibly with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`) as some proxies write it.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<IpAddr>().ok())
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const PEER: &str = "10.0.1.5:40000";

    fn check(hops: u8, forwarded: &[&str], expected: &str) {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append(
                "x-forwarded-for",
                HeaderValue::from_str(value).expect("header value"),
            );
        }
        let peer: SocketAddr = PEER.parse().expect("peer");
        let got = TrustedProxies(hops).client_addr(&headers, peer);
        assert_eq!(got.to_string(), expected, "{hops} hops, {forwarded:?}");
    }

    #[test]
    fn no_trusted_proxy_reads_no_header() {
        check(0, &["203.0.113.7"], "10.0.1.5");
    }

    #[test]
    fn the_nth_entry_from_the_right() {
        check(1, &["203.0.113.7"], "203.0.113.7");
        check(2, &["203.0.113.7, 130.176.1.1"], "203.0.113.7");
        // The client wrote `1.2.3.4` itself; CloudFront appended the viewer, the ALB CloudFront.
        check(2, &["1.2.3.4, 203.0.113.7, 130.176.1.1"], "203.0.113.7");
        check(2, &["1.2.3.4", "203.0.113.7, 130.176.1.1"], "203.0.113.7");
        check(1, &["2001:db8::1"], "2001:db8::1");
        check(1, &["[2001:db8::1]:4711"], "2001:db8::1");
        check(1, &["[2001:db8::2]"], "2001:db8::2");
        check(1, &["203.0.113.9:4711"], "203.0.113.9");
    }

    #[test]
    fn a_chain_that_missed_a_proxy_falls_back_to_the_peer() {
        check(2, &["203.0.113.7"], "10.0.1.5");
        check(1, &[], "10.0.1.5");
        check(1, &["unknown"], "10.0.1.5");
        check(2, &["garbage, 130.176.1.1"], "10.0.1.5");
    }

    #[test]
    fn a_padded_chain_is_bounded() {
        let padding = vec!["9.9.9.9"; 10_000].join(", ");
        check(1, &[&padding, "203.0.113.7"], "203.0.113.7");
    }
}
