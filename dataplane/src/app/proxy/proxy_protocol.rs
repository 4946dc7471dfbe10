//! PROXY protocol headers towards backends (HAProxy's `proxy-protocol.txt`, versions 1
//! and 2): a pool with `proxy_protocol` set gets, on each backend connection, one header
//! naming the client's address and the address it connected to, written before any client
//! byte, so the backend sees the true client (TCP over IPv4 only: the stack is IPv4).
//!
//! The bytes are built here; the proxy turns them into a payload with its payload factory
//! ([`super::Proxy::set_payload_factory`]), since a [`crate::tcp::Payload`] has no
//! constructor from bytes.

use std::net::SocketAddrV4;

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
    pub fn header(self, src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
        match self {
            ProxyProtocol::V1 => v1_header(src, dst),
            ProxyProtocol::V2 => v2_header(src, dst).to_vec(),
        }
    }
}

/// `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (`proxy-protocol.txt` §2.1: addresses in
/// dotted decimal, ports in decimal, single spaces, CRLF).
pub fn v1_header(src: SocketAddrV4, dst: SocketAddrV4) -> Vec<u8> {
    format!("PROXY TCP4 {} {} {} {}\r\n", src.ip(), dst.ip(), src.port(), dst.port()).into_bytes()
}

/// The binary header (`proxy-protocol.txt` §2.2): signature, version 2 + command PROXY
/// (0x21), AF_INET + STREAM (0x11), address length 12 (big endian), then source address,
/// destination address, source port, destination port, all in network byte order.
pub fn v2_header(src: SocketAddrV4, dst: SocketAddrV4) -> [u8; V2_TCP4_LEN] {
    let mut h = [0u8; V2_TCP4_LEN];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        if let Some(slot) = h.get_mut(at..at + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
        at += bytes.len();
    };
    put(&V2_SIGNATURE);
    put(&[0x21, 0x11]);
    put(&12u16.to_be_bytes());
    put(&src.ip().octets());
    put(&dst.ip().octets());
    put(&src.port().to_be_bytes());
    put(&dst.port().to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn src() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 123, 1), 51234)
    }

    fn dst() -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 123, 2), 80)
    }

    #[test]
    fn v1_is_the_exact_text_line() {
        assert_eq!(v1_header(src(), dst()), b"PROXY TCP4 198.18.123.1 198.18.123.2 51234 80\r\n".to_vec());
        assert_eq!(ProxyProtocol::V1.header(src(), dst()), v1_header(src(), dst()));
    }

    #[test]
    fn v1_longest_line_fits_the_spec_limit() {
        let a = SocketAddrV4::new(Ipv4Addr::new(255, 255, 255, 255), 65535);
        let line = v1_header(a, a);
        // TCP4 with the longest addresses and ports: well under the 107-byte bound.
        assert_eq!(line.len(), 56);
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
        assert_eq!(v2_header(src(), dst()), expected);
        assert_eq!(ProxyProtocol::V2.header(src(), dst()), expected.to_vec());
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
