//! The client's real address: the TCP peer, or what a trusted reverse proxy says it is.
//!
//! `X-Forwarded-For` is believed only when the peer itself is a configured proxy
//! (CVE-2024-32977 let a spoofed header bypass OctoPrint's authentication). The header is read
//! from the right, skipping further trusted proxies: the first untrusted hop is the client.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Resolves the address rate limits and logs should use.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer_ip = peer.ip().to_canonical();
    if !is_trusted(&peer_ip) {
        return peer_ip;
    }
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            return peer_ip;
        };
        for part in text.split(',') {
            match part.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip.to_canonical()),
                // A malformed chain from our own proxy: fall back to what we know for sure.
                Err(_) => return peer_ip,
            }
        }
    }
    hops.iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .or(hops.first())
        .copied()
        .unwrap_or(peer_ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn untrusted_peer_header_is_ignored() {
        let peer: SocketAddr = "203.0.113.9:4000".parse().unwrap();
        let ip = client_ip(peer, &headers("127.0.0.1"), &[]);
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_proxy_chain_is_walked_from_the_right() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        // The leftmost entry is attacker-controlled; the rightmost untrusted one is the client.
        let ip = client_ip(
            peer,
            &headers("127.0.0.1, 198.51.100.7, 10.0.0.2"),
            &trusted,
        );
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        let ip = client_ip(peer, &headers("garbage"), &trusted);
        assert_eq!(ip, "10.0.0.1".parse::<IpAddr>().unwrap());
        let ip = client_ip(peer, &HeaderMap::new(), &trusted);
        assert_eq!(ip, "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
