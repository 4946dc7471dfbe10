//! The way out of the network layer for TCP segments: Ethernet + IPv4 + TCP headers
//! written through [`crate::wire`], and the checksum fields set for whoever fills them in
//! (the device, per [`crate::offload::plan`], or software here). The receive side of IPv4
//! is [`super::interface`]; together they are the one place that knows IPv4's layout.

use std::net::Ipv4Addr;

use crate::offload::Cksum;
use crate::wire::tcp::{self as wire_tcp, TcpRepr};
use crate::wire::{checksum, ethernet, ipv4};

/// Largest Ethernet + IPv4 + TCP header written here (no IP options).
pub const MAX_TCP_HEADERS: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + wire_tcp::MAX_HEADER_LEN;

/// Why headers could not be written (a TCP header longer than options allow, or a length
/// beyond IPv4's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EgressError;

/// The headers of one TCP segment, built in a fixed buffer.
#[derive(Debug, Clone)]
pub struct TcpHeaders {
    buf: [u8; MAX_TCP_HEADERS],
    len: usize,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    tcp_header_len: usize,
    payload_len: usize,
}

/// Where the IPv4 header starts.
const IP_START: usize = ethernet::HEADER_LEN;
/// Where the TCP header starts.
const TCP_START: usize = IP_START + ipv4::HEADER_LEN;

impl TcpHeaders {
    /// Writes the link header `link` (from the neighbour cache), an IPv4 header from `src`
    /// to `dst` with identification `ident` and DF set (RFC 1191 §3: TCP does path-MTU
    /// discovery) and its checksum filled in, and the TCP header `repr` for
    /// `payload_len` bytes of payload, its checksum field zero.
    pub fn new(
        link: &[u8; ethernet::HEADER_LEN],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ident: u16,
        repr: &TcpRepr,
        payload_len: usize,
    ) -> Result<TcpHeaders, EgressError> {
        let mut buf = [0u8; MAX_TCP_HEADERS];
        let tcp_header_len = repr.header_len();
        let len = TCP_START + tcp_header_len;
        buf.get_mut(..IP_START).ok_or(EgressError)?.copy_from_slice(link);
        let ip = ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: ipv4::protocol::TCP,
            payload_len: tcp_header_len + payload_len,
            ttl: ipv4::DEFAULT_TTL,
            ident,
            dont_frag: true,
        };
        ip.emit(&mut ipv4::Packet::new_unchecked(buf.get_mut(IP_START..TCP_START).ok_or(EgressError)?))
            .map_err(|_| EgressError)?;
        if repr.emit(buf.get_mut(TCP_START..len).ok_or(EgressError)?) != tcp_header_len {
            return Err(EgressError);
        }
        Ok(TcpHeaders { buf, len, src, dst, tcp_header_len, payload_len })
    }

    /// The headers written.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Their length (Ethernet + IPv4 + TCP).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: there is at least an Ethernet header.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The TCP header's length.
    pub fn tcp_header_len(&self) -> usize {
        self.tcp_header_len
    }

    fn ip(&mut self) -> ipv4::Packet<&mut [u8]> {
        ipv4::Packet::new_unchecked(&mut self.buf[IP_START..TCP_START])
    }

    fn tcp(&mut self) -> wire_tcp::Packet<&mut [u8]> {
        let end = self.len;
        wire_tcp::Packet::new_unchecked(&mut self.buf[TCP_START..end])
    }

    /// Sets the fields a TSO device expects: IPv4 checksum zero, and in the TCP checksum
    /// the pseudo-header sum without the length (DPDK `rte_net_intel_cksum_prepare`; the
    /// device adds each frame's length and payload).
    pub fn prepare_tso(&mut self) {
        self.ip().set_checksum(0);
        let pseudo = checksum::fold(checksum::pseudo_header_v4(self.src, self.dst, wire_tcp::PROTOCOL, 0));
        self.tcp().set_checksum(pseudo);
    }

    /// Sets the checksum fields of a single frame: the IPv4 checksum stays as written
    /// (software) or is zeroed for the device; the TCP checksum holds the pseudo-header
    /// sum for the device, or the full sum over pseudo-header, header and payload, where
    /// `payload_sum(initial)` adds the payload to a running one's-complement sum
    /// (RFC 9293 §3.1).
    pub fn set_checksums(&mut self, ip: Cksum, tcp: Cksum, payload_sum: impl FnOnce(u32) -> u32) -> Result<(), EgressError> {
        if ip == Cksum::Device {
            self.ip().set_checksum(0);
        }
        let tcp_total = u16::try_from(self.tcp_header_len + self.payload_len).map_err(|_| EgressError)?;
        self.tcp().set_checksum(0);
        let value = match tcp {
            Cksum::Device => wire_tcp::pseudo_header_checksum(self.src, self.dst, tcp_total),
            Cksum::Software => {
                let pseudo = checksum::pseudo_header_v4(self.src, self.dst, wire_tcp::PROTOCOL, tcp_total);
                let head = checksum::sum(&self.buf[TCP_START..self.len], pseudo);
                !checksum::fold(payload_sum(head))
            }
        };
        self.tcp().set_checksum(value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn software_checksums_verify_over_the_whole_frame() {
        let payload = b"hello, world!".to_vec();
        let mut h = TcpHeaders::new(&link(), SRC, DST, 9, &repr(), payload.len()).unwrap();
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
        let mut h = TcpHeaders::new(&link(), SRC, DST, 1, &repr(), 100).unwrap();
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
