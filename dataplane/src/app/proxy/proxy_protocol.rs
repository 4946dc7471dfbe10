//! PROXY protocol headers towards backends (HAProxy's `proxy-protocol.txt`, versions 1
//! and 2): a pool with `proxy_protocol` set gets, on each backend connection, one header
//! naming the client's address and the address it connected to, written before any client
//! byte, so the backend sees the true client. TCP over IPv4 (`TCP4`, `AF_INET`) or IPv6
//! (`TCP6`, `AF_INET6`).
//!
//! The bytes are built here; the proxy turns them into a payload with its payload factory
//! ([`super::Proxy::set_payload_factory`]), since a [`crate::tcp::Payload`] has no
//! constructor from bytes.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Which PROXY protocol header a pool's backend connections start with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// Version 1, the text line (`proxy-protocol.txt` §2.1).
    V1,
    /// Version 2, the binary header (`proxy-protocol.txt` §2.2).
    V2,
}

/// The 12-byte signature that starts a version 2 header (`proxy-protocol.txt` §2.2).
pub const V2_SIGNATURE: [u8; 12] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

/// Length of a version 2 header for TCP over IPv4: 16 fixed bytes and 12 of addresses.
pub const V2_TCP4_LEN: usize = 28;

/// Length of a version 2 header for TCP over IPv6: 16 fixed bytes and 36 of addresses.
pub const V2_TCP6_LEN: usize = 52;

/// Longest version 1 header (`proxy-protocol.txt` §2.1: 107 bytes, CRLF included).
pub const V1_MAX_LEN: usize = 107;

impl ProxyProtocol {
    /// The configuration name (`"v1"`, `"v2"`).
    pub fn name(self) -> &'static str {
        match self {
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }

    /// The version named `name` in the configuration, if any.
    pub fn from_name(name: &str) -> Option<ProxyProtocol> {
        match name {
            "v1" => Some(ProxyProtocol::V1),
            "v2" => Some(ProxyProtocol::V2),
            _ => None,
        }
    }

    /// The header for a connection from `src` (the client) to `dst` (the address the client
    /// connected to: our listener).
    pub fn header(self, src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
        match self {
            ProxyProtocol::V1 => v1_header(src, dst),
            ProxyProtocol::V2 => v2_header(src, dst),
        }
    }
}

/// The two addresses as IPv6 unless both are IPv4 (`None`): an IPv4 one beside an IPv6 one
/// is written IPv4-mapped (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2), as HAProxy's
/// `make_proxy_line` does when the two sides differ. A client and the listener it reached
/// share a connection, so in practice they are always of one family.
fn ipv6_pair(src: SocketAddr, dst: SocketAddr) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let v6 = |ip: IpAddr| match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    };
    if src.is_ipv4() && dst.is_ipv4() {
        None
    } else {
        Some((v6(src.ip()), v6(dst.ip())))
    }
}

/// `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` or `PROXY TCP6 ...` (`proxy-protocol.txt`
/// §2.1: IPv4 addresses in dotted decimal, IPv6 ones in their canonical text form with one
/// `::` for the longest run of zeroes, ports in decimal, single spaces, CRLF).
pub fn v1_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    match ipv6_pair(src, dst) {
        None => format!("PROXY TCP4 {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port()),
        Some((s, d)) => format!("PROXY TCP6 {} {} {} {}\r\n", s, d, src.port(), dst.port()),
    }
    .into_bytes()
}

/// The binary header (`proxy-protocol.txt` §2.2): signature, version 2 + command PROXY
/// (0x21), AF_INET + STREAM (0x11) with 12 address bytes or AF_INET6 + STREAM (0x21) with 36
/// (length big endian), then source address, destination address, source port, destination
/// port, all in network byte order.
pub fn v2_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut h = Vec::with_capacity(V2_TCP6_LEN);
    h.extend_from_slice(&V2_SIGNATURE);
    match ipv6_pair(src, dst) {
        None => {
            h.extend_from_slice(&[0x21, 0x11]);
            h.extend_from_slice(&12u16.to_be_bytes());
            for ip in [src.ip(), dst.ip()] {
                if let IpAddr::V4(a) = ip {
                    h.extend_from_slice(&a.octets());
                }
            }
        }
        Some((s, d)) => {
            h.extend_from_slice(&[0x21, 0x21]);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
        }
    }
    h.extend_from_slice(&src.port().to_be_bytes());
    h.extend_from_slice(&dst.port().to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV6};

    use super::*;

    fn src() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(198, 18, 123, 1), 51234))
    }

    fn dst() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(198, 18, 123, 2), 80))
    }

    fn src6() -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new("2001:db8::1".parse().unwrap(), 51234, 0, 0))
    }

    fn dst6() -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new("2001:db8:0:1::2".parse().unwrap(), 443, 0, 0))
    }

    #[test]
    fn v1_is_the_exact_text_line() {
        assert_eq!(v1_header(src(), dst()), b"PROXY TCP4 198.18.123.1 198.18.123.2 51234 80\r\n".to_vec());
        assert_eq!(ProxyProtocol::V1.header(src(), dst()), v1_header(src(), dst()));
    }

    #[test]
    fn v1_over_ipv6_is_tcp6_with_compressed_addresses() {
        assert_eq!(v1_header(src6(), dst6()), b"PROXY TCP6 2001:db8::1 2001:db8:0:1::2 51234 443\r\n".to_vec());
    }

    #[test]
    fn v1_mixed_families_map_the_ipv4_side() {
        assert_eq!(
            v1_header(src(), dst6()),
            b"PROXY TCP6 ::ffff:198.18.123.1 2001:db8:0:1::2 51234 443\r\n".to_vec()
        );
    }

    #[test]
    fn v1_longest_lines_fit_the_spec_limit() {
        let a = SocketAddr::from((Ipv4Addr::new(255, 255, 255, 255), 65535));
        let line = v1_header(a, a);
        // TCP4 with the longest addresses and ports: well under the 107-byte bound.
        assert_eq!(line.len(), 56);
        let b = SocketAddr::from(([0xffffu16; 8], 65535));
        let line = v1_header(b, b);
        // TCP6 with the longest addresses (39 characters each): 104 bytes, within the bound
        // (§2.1's 107 is for "UNKNOWN" in place of "TCP6").
        assert_eq!(line.len(), 104);
        assert!(line.len() <= V1_MAX_LEN);
        assert!(line.ends_with(b"\r\n"));
    }

    #[test]
    fn v2_is_the_exact_binary_header() {
        let expected: [u8; V2_TCP4_LEN] = [
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, // signature
            0x21, // version 2, PROXY
            0x11, // AF_INET, STREAM
            0x00, 0x0C, // 12 address bytes
            198, 18, 123, 1, // source address
            198, 18, 123, 2, // destination address
            0xC8, 0x22, // source port 51234
            0x00, 0x50, // destination port 80
        ];
        assert_eq!(v2_header(src(), dst()), expected.to_vec());
        assert_eq!(ProxyProtocol::V2.header(src(), dst()), expected.to_vec());
    }

    #[test]
    fn v2_over_ipv6_is_the_exact_binary_header() {
        let mut expected = V2_SIGNATURE.to_vec();
        expected.extend_from_slice(&[0x21, 0x21, 0x00, 0x24]); // PROXY; AF_INET6, STREAM; 36 bytes
        expected.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        expected.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2]);
        expected.extend_from_slice(&[0xC8, 0x22, 0x01, 0xBB]); // ports 51234, 443
        assert_eq!(expected.len(), V2_TCP6_LEN);
        assert_eq!(v2_header(src6(), dst6()), expected);
        // Mixed: the IPv4 side IPv4-mapped, still AF_INET6.
        let mixed = v2_header(src(), dst6());
        assert_eq!(mixed.len(), V2_TCP6_LEN);
        assert_eq!(mixed.get(16..32), Some(&Ipv4Addr::new(198, 18, 123, 1).to_ipv6_mapped().octets()[..]));
    }

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for v in [ProxyProtocol::V1, ProxyProtocol::V2] {
            assert_eq!(ProxyProtocol::from_name(v.name()), Some(v));
        }
        assert_eq!(ProxyProtocol::from_name("V1"), None);
        assert_eq!(ProxyProtocol::from_name("v3"), None);
        assert_eq!(ProxyProtocol::from_name(""), None);
    }
}
