//! The way out of the network layer for TCP segments: Ethernet + IPv4 or IPv6 + TCP
//! headers written through [`crate::wire`], and the checksum fields set for whoever fills
//! them in (the device, per [`crate::offload::plan`], or software here). The receive side is
//! [`super::interface`]; together they are the one place that knows the IP layouts.

use std::net::IpAddr;

use crate::offload::Cksum;
use crate::wire::tcp::{self as wire_tcp, TcpRepr};
use crate::wire::{checksum, ethernet, ipv4, ipv6};

/// Largest Ethernet + IP + TCP header written here (an IPv6 fixed header, no extension
/// headers; IPv4 without options is shorter).
pub const MAX_TCP_HEADERS: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + wire_tcp::MAX_HEADER_LEN;

/// Why headers could not be written (a TCP header longer than options allow, a length
/// beyond the IP header's, or addresses of different families).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressError;

/// The headers of one TCP segment, built in a fixed buffer.
#[derive(Debug, Clone)]
pub struct TcpHeaders {
    buf: [u8; MAX_TCP_HEADERS],
    len: usize,
    src: IpAddr,
    dst: IpAddr,
    /// The IP header's length: 20 (IPv4) or 40 (IPv6).
    ip_len: usize,
    tcp_header_len: usize,
    payload_len: usize,
}

/// Where the IP header starts.
const IP_START: usize = ethernet::HEADER_LEN;

impl TcpHeaders {
    /// Writes the link header `link` (from the neighbour cache), an IP header from `src`
    /// to `dst`, and the TCP header `repr` for `payload_len` bytes of payload, its checksum
    /// field zero. IPv4 (`ip_queue_xmit`): identification `ident`, TTL 64, DF set (RFC 1191
    /// §3: TCP does path-MTU discovery), checksum filled in; `hop_limit` is unused. IPv6
    /// (`ip6_xmit`): traffic class and flow label 0, hop limit `hop_limit` (the interface's,
    /// `Interface::ipv6_hop_limit`: 64 unless a router advertised another, RFC 4861 §6.3.4);
    /// there is no header checksum, and routers never fragment (RFC 8200 §5); `ident` is
    /// unused.
    pub fn new(
        link: &[u8; ethernet::HEADER_LEN],
        src: IpAddr,
        dst: IpAddr,
        ident: u16,
        hop_limit: u8,
        repr: &TcpRepr,
        payload_len: usize,
    ) -> Result<TcpHeaders, EgressError> {
        let mut buf = [0u8; MAX_TCP_HEADERS];
        let tcp_header_len = repr.header_len();
        buf.get_mut(..IP_START).ok_or(EgressError)?.copy_from_slice(link);
        let ip_len = match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                let ip = ipv4::Repr {
                    src_addr: s,
                    dst_addr: d,
                    protocol: ipv4::protocol::TCP,
                    payload_len: tcp_header_len + payload_len,
                    ttl: ipv4::DEFAULT_TTL,
                    ident,
                    dont_frag: true,
                };
                let end = IP_START + ipv4::HEADER_LEN;
                ip.emit(&mut ipv4::Packet::new_unchecked(buf.get_mut(IP_START..end).ok_or(EgressError)?))
                    .map_err(|_| EgressError)?;
                ipv4::HEADER_LEN
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                let ip = ipv6::Repr {
                    src_addr: s,
                    dst_addr: d,
                    next_header: ipv6::next_header::TCP,
                    payload_len: tcp_header_len + payload_len,
                    hop_limit,
                    traffic_class: 0,
                    flow_label: 0,
                };
                let end = IP_START + ipv6::HEADER_LEN;
                ip.emit(&mut ipv6::Packet::new_unchecked(buf.get_mut(IP_START..end).ok_or(EgressError)?))
                    .map_err(|_| EgressError)?;
                ipv6::HEADER_LEN
            }
            _ => return Err(EgressError),
        };
        let tcp_start = IP_START + ip_len;
        let len = tcp_start + tcp_header_len;
        if repr.emit(buf.get_mut(tcp_start..len).ok_or(EgressError)?) != tcp_header_len {
            return Err(EgressError);
        }
        Ok(TcpHeaders { buf, len, src, dst, ip_len, tcp_header_len, payload_len })
    }

    /// The headers written.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Their length (Ethernet + IP + TCP).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: there is at least an Ethernet header.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The IP header's length (DPDK `l3_len`).
    pub fn ip_header_len(&self) -> usize {
        self.ip_len
    }

    /// Whether the headers are IPv6's (DPDK `RTE_MBUF_F_TX_IPV6`).
    pub fn is_ipv6(&self) -> bool {
        self.ip_len == ipv6::HEADER_LEN
    }

    /// The TCP header's length.
    pub fn tcp_header_len(&self) -> usize {
        self.tcp_header_len
    }

    /// Zeroes the IPv4 header checksum for the device (no-op over IPv6: no such field).
    fn clear_ip_checksum(&mut self) {
        if self.ip_len == ipv4::HEADER_LEN {
            ipv4::Packet::new_unchecked(&mut self.buf[IP_START..IP_START + ipv4::HEADER_LEN]).set_checksum(0);
        }
    }

    fn tcp(&mut self) -> wire_tcp::Packet<&mut [u8]> {
        let (start, end) = (IP_START + self.ip_len, self.len);
        wire_tcp::Packet::new_unchecked(&mut self.buf[start..end])
    }

    /// Sets the fields a TSO device expects: IPv4 checksum zero, and in the TCP checksum
    /// the pseudo-header sum without the length (DPDK `rte_net_intel_cksum_prepare`, with
    /// `rte_ipv4_phdr_cksum` or `rte_ipv6_phdr_cksum`; the device adds each frame's length
    /// and payload).
    pub fn prepare_tso(&mut self) {
        self.clear_ip_checksum();
        let pseudo = wire_tcp::pseudo_header_sum(self.src, self.dst, 0).map(checksum::fold).unwrap_or(0);
        self.tcp().set_checksum(pseudo);
    }

    /// Sets the checksum fields of a single frame: the IPv4 checksum stays as written
    /// (software) or is zeroed for the device (IPv6 has none); the TCP checksum holds the
    /// pseudo-header sum for the device, or the full sum over pseudo-header, header and
    /// payload, where `payload_sum(initial)` adds the payload to a running one's-complement
    /// sum (RFC 9293 §3.1; IPv6's pseudo-header per RFC 8200 §8.1).
    pub fn set_checksums(&mut self, ip: Cksum, tcp: Cksum, payload_sum: impl FnOnce(u32) -> u32) -> Result<(), EgressError> {
        if ip == Cksum::Device {
            self.clear_ip_checksum();
        }
        let tcp_total = self.tcp_header_len + self.payload_len;
        let pseudo = wire_tcp::pseudo_header_sum(self.src, self.dst, tcp_total).ok_or(EgressError)?;
        self.tcp().set_checksum(0);
        let value = match tcp {
            Cksum::Device => checksum::fold(pseudo),
            Cksum::Software => {
                let head = checksum::sum(&self.buf[IP_START + self.ip_len..self.len], pseudo);
                !checksum::fold(payload_sum(head))
            }
        };
        self.tcp().set_checksum(value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::tcp::seq::SeqNum;
    use crate::wire::tcp::{Flags, TcpOptions};

    fn repr() -> TcpRepr {
        TcpRepr {
            src_port: 7,
            dst_port: 40000,
            seq: SeqNum(1000),
            ack: SeqNum(5),
            flags: Flags::ACK | Flags::PSH,
            window: 512,
            urgent: 0,
            options: TcpOptions::default(),
        }
    }

    fn link() -> [u8; 14] {
        let mut l = [0u8; 14];
        l[12] = 0x08;
        l
    }

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const TCP_START: usize = IP_START + ipv4::HEADER_LEN;
    const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const TCP_START6: usize = IP_START + ipv6::HEADER_LEN;

    fn link6() -> [u8; 14] {
        let mut l = [0u8; 14];
        l[12] = 0x86;
        l[13] = 0xdd;
        l
    }

    /// `ip6_xmit` + `tcp_v6_send_check`: the IPv6 header as Linux writes it for TCP (hop
    /// limit 64, flow label 0 here) and a TCP checksum over the v6 pseudo-header.
    #[test]
    fn ipv6_headers_and_software_checksums() {
        let payload = b"hello, v6 world".to_vec();
        let mut h = TcpHeaders::new(&link6(), SRC6.into(), DST6.into(), 9, 64, &repr(), payload.len()).unwrap();
        assert!(h.is_ipv6());
        assert_eq!((h.ip_header_len(), h.len()), (40, 14 + 40 + 20));
        h.set_checksums(Cksum::Software, Cksum::Software, |s| checksum::sum(&payload, s)).unwrap();
        let mut frame = h.bytes().to_vec();
        frame.extend_from_slice(&payload);
        let ip = ipv6::Packet::new_checked(&frame[IP_START..]).unwrap();
        assert_eq!((ip.version(), ip.next_header(), ip.hop_limit(), ip.flow_label()), (6, 6, 64, 0));
        assert_eq!((ip.src_addr(), ip.dst_addr()), (SRC6, DST6));
        assert_eq!(usize::from(ip.payload_len()), frame.len() - TCP_START6);
        assert!(wire_tcp::verify_checksum(&frame[TCP_START6..], SRC6, DST6));
    }

    #[test]
    fn ipv6_device_checksums_hold_the_v6_pseudo_header() {
        let mut h = TcpHeaders::new(&link6(), SRC6.into(), DST6.into(), 1, 64, &repr(), 100).unwrap();
        let before = h.bytes()[IP_START..TCP_START6].to_vec();
        h.set_checksums(Cksum::Device, Cksum::Device, |s| s).unwrap();
        assert_eq!(&h.bytes()[IP_START..TCP_START6], &before[..], "no IP checksum to clear");
        let tcp_len = (h.tcp_header_len() + 100) as u32;
        let tcp = wire_tcp::Packet::new_unchecked(&h.bytes()[TCP_START6..]);
        assert_eq!(tcp.checksum(), checksum::fold(checksum::pseudo_header_v6(SRC6, DST6, 6, tcp_len)));
        let mut t = h.clone();
        t.prepare_tso();
        let tcp = wire_tcp::Packet::new_unchecked(&t.bytes()[TCP_START6..]);
        assert_eq!(tcp.checksum(), checksum::fold(checksum::pseudo_header_v6(SRC6, DST6, 6, 0)));
        // Mixed families are refused.
        assert!(TcpHeaders::new(&link6(), SRC6.into(), DST.into(), 1, 64, &repr(), 0).is_err());
    }

    #[test]
    fn software_checksums_verify_over_the_whole_frame() {
        let payload = b"hello, world!".to_vec();
        let mut h = TcpHeaders::new(&link(), SRC.into(), DST.into(), 9, 64, &repr(), payload.len()).unwrap();
        h.set_checksums(Cksum::Software, Cksum::Software, |s| checksum::sum(&payload, s)).unwrap();
        let mut frame = h.bytes().to_vec();
        frame.extend_from_slice(&payload);
        assert!(crate::offload::verify_checksums(&frame), "IPv4 and TCP checksums verify");
        let ip = ipv4::Packet::new_checked(&frame[IP_START..]).unwrap();
        assert_eq!(usize::from(ip.total_len()), frame.len() - IP_START);
        assert_eq!(ip.ident(), 9);
    }

    #[test]
    fn device_checksums_leave_what_the_device_expects() {
        let mut h = TcpHeaders::new(&link(), SRC.into(), DST.into(), 1, 64, &repr(), 100).unwrap();
        h.set_checksums(Cksum::Device, Cksum::Device, |s| s).unwrap();
        let tcp_len = (h.tcp_header_len() + 100) as u16;
        let ip = ipv4::Packet::new_unchecked(&h.bytes()[IP_START..TCP_START]);
        assert_eq!(ip.checksum(), 0);
        let tcp = wire_tcp::Packet::new_unchecked(&h.bytes()[TCP_START..]);
        assert_eq!(tcp.checksum(), wire_tcp::pseudo_header_checksum(SRC, DST, tcp_len));
        let mut t = h.clone();
        t.prepare_tso();
        let tcp = wire_tcp::Packet::new_unchecked(&t.bytes()[TCP_START..]);
        assert_eq!(tcp.checksum(), checksum::fold(checksum::pseudo_header_v4(SRC, DST, 6, 0)));
    }
}
