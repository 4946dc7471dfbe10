//! IPv6 (RFC 8200): a zero-copy [`Packet`] view of the fixed header with checked
//! construction, extension-header walking ([`walk`]) and a [`Repr`] that parses and emits
//! extension-less headers.
//!
//! The walk goes over Hop-by-Hop Options, Routing, Fragment and Destination Options headers
//! (RFC 8200 §4) to the upper-layer protocol, never past [`MAX_EXTENSION_HEADERS`] of them
//! and never past the buffer (Linux `ipv6_skip_exthdr`, net/ipv6/exthdrs_core.c, with the
//! checks of `ipv6_parse_hopopts` / `ipv6_rthdr_rcv` / `ipv6_frag_rcv` that a host needs).
//! Fragments are recognised but not reassembled: the walk rejects them with
//! [`Error::Fragment`], except atomic fragments (offset 0, M clear), which RFC 6946 §4 says to
//! process as whole packets. Any other next header (ESP, AH, No Next Header, ICMPv6, TCP,
//! unknown...) ends the walk and is returned as the upper-layer protocol.

use std::net::Ipv6Addr;

/// Why an IPv6 packet was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the fixed header, or an extension header runs past the
    /// payload.
    #[error("truncated IPv6 packet")]
    Truncated,
    /// The version field is not 6.
    #[error("IPv6 version field is not 6")]
    BadVersion,
    /// The payload length runs past the buffer (or, when emitting, exceeds 65535: no
    /// jumbograms, RFC 2675).
    #[error("IPv6 payload length inconsistent with buffer")]
    BadPayloadLen,
    /// More than [`MAX_EXTENSION_HEADERS`] extension headers.
    #[error("IPv6 extension header chain too long")]
    TooManyExtensionHeaders,
    /// A Hop-by-Hop Options header anywhere but right after the fixed header (RFC 8200 §4.1),
    /// or options whose lengths overrun their header.
    #[error("malformed IPv6 extension header")]
    BadExtensionHeader,
    /// An option whose type says to discard the packet when not recognised (RFC 8200 §4.2:
    /// action bits other than 00).
    #[error("unrecognised IPv6 option that requires discarding")]
    UnrecognizedOption,
    /// A Routing header with segments left: the packet is to be forwarded, which a host
    /// does not do (RFC 8200 §4.4; type 0 is deprecated by RFC 5095).
    #[error("IPv6 routing header with segments left")]
    SegmentsLeft,
    /// A fragment (offset non-zero or M set); fragments are not reassembled.
    #[error("IPv6 fragment")]
    Fragment,
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Minimum link MTU (RFC 8200 §5).
pub const MIN_MTU: usize = 1280;
/// Default hop limit for packets we originate (Linux `ipv6_devconf.hop_limit`).
pub const DEFAULT_HOP_LIMIT: u8 = 64;
/// At most this many extension headers are walked before giving up: RFC 8200 §4.1 expects
/// at most one of each (Destination Options twice), six in all; a longer chain is hostile.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Next-header values (IANA "Assigned Internet Protocol Numbers").
pub mod next_header {
    /// Hop-by-Hop Options (RFC 8200 §4.3).
    pub const HOP_BY_HOP: u8 = 0;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
    /// Routing (RFC 8200 §4.4).
    pub const ROUTING: u8 = 43;
    /// Fragment (RFC 8200 §4.5).
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (RFC 4303).
    pub const ESP: u8 = 50;
    /// Authentication Header (RFC 4302).
    pub const AH: u8 = 51;
    /// ICMPv6 (RFC 4443).
    pub const ICMPV6: u8 = 58;
    /// No Next Header (RFC 8200 §4.7).
    pub const NO_NEXT_HEADER: u8 = 59;
    /// Destination Options (RFC 8200 §4.6).
    pub const DEST_OPTIONS: u8 = 60;
}

mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const LENGTH: Range<usize> = 4..6;
    pub const NXT_HDR: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// A read/write view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

packet_view!(Packet, Error);

impl<T: AsRef<[u8]>> Packet<T> {
    /// The checks of `new_checked`: version and payload length against the buffer. The
    /// buffer may be longer (Ethernet padding); [`Packet::payload`] stops at the payload length.
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_header()?;
        let len = self.buffer.as_ref().len();
        if HEADER_LEN + usize::from(self.payload_len()) > len {
            return Err(Error::BadPayloadLen);
        }
        Ok(())
    }

    /// The checks of a buffer that holds the fixed header only (an outgoing frame's
    /// headers, its payload elsewhere): 40 bytes, version 6. The payload length is not
    /// checked.
    pub fn check_header(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 6 {
            return Err(Error::BadVersion);
        }
        Ok(())
    }

    fn word0(&self) -> u32 {
        let d = &self.buffer.as_ref()[field::VER_TC_FLOW];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    fn addr(&self, r: core::ops::Range<usize>) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[r]);
        Ipv6Addr::from(a)
    }

    /// Version field (6 for a valid packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class (DSCP and ECN, RFC 2474 / RFC 3168).
    pub fn traffic_class(&self) -> u8 {
        ((self.word0() >> 20) & 0xff) as u8
    }

    /// Flow label (RFC 6437), 20 bits.
    pub fn flow_label(&self) -> u32 {
        self.word0() & 0x000f_ffff
    }

    /// Payload length: everything after the fixed header, extension headers included.
    pub fn payload_len(&self) -> u16 {
        let d = self.buffer.as_ref();
        u16::from_be_bytes([d[field::LENGTH.start], d[field::LENGTH.start + 1]])
    }

    /// The Next Header field of the fixed header (see [`next_header`]).
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NXT_HDR]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        self.addr(field::SRC_ADDR)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        self.addr(field::DST_ADDR)
    }

    /// The payload: from the end of the fixed header to the payload length (extension
    /// headers included). Empty if the view is unchecked and too short.
    pub fn payload(&self) -> &[u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_ref().get(HEADER_LEN..end).unwrap_or(&[])
    }

    /// Walk the extension headers of a checked packet to the upper-layer protocol.
    pub fn upper_layer(&self) -> Result<UpperLayer, Error> {
        self.check_len()?;
        let up = walk(self.next_header(), self.payload(), true)?;
        Ok(UpperLayer { protocol: up.protocol, offset: HEADER_LEN + up.offset })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set version, traffic class and flow label (the first 32-bit word).
    pub fn set_version_tc_flow(&mut self, version: u8, traffic_class: u8, flow_label: u32) {
        let w = (u32::from(version & 0x0f) << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        self.buffer.as_mut()[field::VER_TC_FLOW].copy_from_slice(&w.to_be_bytes());
    }

    /// Set the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&v.to_be_bytes());
    }

    /// Set the Next Header field.
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[field::NXT_HDR] = v;
    }

    /// Set the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Set the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Mutable access to the payload (fixed header end to payload length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + usize::from(self.payload_len());
        self.buffer.as_mut().get_mut(HEADER_LEN..end).unwrap_or(&mut [])
    }
}

/// Where the upper-layer header starts, found by [`walk`] / [`Packet::upper_layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol (the last Next Header value).
    pub protocol: u8,
    /// Its offset: from the start of the fixed header for [`Packet::upper_layer`], from the
    /// start of the bytes walked for [`walk`].
    pub offset: usize,
}

/// Options of a Hop-by-Hop or Destination Options header (RFC 8200 §4.2): Pad1 and PadN,
/// and Router Alert (RFC 2711) in Hop-by-Hop, are known; an unknown option is skipped when
/// its action bits are 00 and rejects the packet otherwise (the ICMPv6 parameter problem
/// that RFC 8200 asks for in cases 10 and 11 is left to the caller). Jumbo Payload (RFC
/// 2675) is not supported, so it is unknown (its action bits are 11).
fn check_options(opts: &[u8]) -> Result<(), Error> {
    const PAD1: u8 = 0;
    const PADN: u8 = 1;
    const ROUTER_ALERT: u8 = 5;
    let mut rest = opts;
    while let Some((&ty, tail)) = rest.split_first() {
        if ty == PAD1 {
            rest = tail;
            continue;
        }
        let (&len, tail) = tail.split_first().ok_or(Error::BadExtensionHeader)?;
        rest = tail.get(usize::from(len)..).ok_or(Error::BadExtensionHeader)?;
        if ty != PADN && ty != ROUTER_ALERT && ty >> 6 != 0 {
            return Err(Error::UnrecognizedOption);
        }
    }
    Ok(())
}

/// Walk the extension headers of `data` (an IPv6 payload, or the quoted start of one)
/// whose first header is `first`, to the upper-layer protocol and its offset in `data`.
/// `first_after_fixed` says whether `data` follows the fixed header directly (a Hop-by-Hop
/// header is only allowed there, RFC 8200 §4.1). Never reads past `data` and never walks
/// more than [`MAX_EXTENSION_HEADERS`] headers.
pub fn walk(first: u8, data: &[u8], first_after_fixed: bool) -> Result<UpperLayer, Error> {
    let mut nh = first;
    let mut offset = 0usize;
    for i in 0..=MAX_EXTENSION_HEADERS {
        let len = match nh {
            next_header::HOP_BY_HOP | next_header::ROUTING | next_header::DEST_OPTIONS | next_header::FRAGMENT => {
                if i == MAX_EXTENSION_HEADERS {
                    return Err(Error::TooManyExtensionHeaders);
                }
                let hdr = data.get(offset..).ok_or(Error::Truncated)?;
                let (&next, rest) = hdr.split_first().ok_or(Error::Truncated)?;
                let &ext_len = rest.first().ok_or(Error::Truncated)?;
                // Fragment headers are 8 bytes; the others count 8-octet units after the first.
                let len = if nh == next_header::FRAGMENT { 8 } else { (usize::from(ext_len) + 1) * 8 };
                let body = hdr.get(..len).ok_or(Error::Truncated)?;
                match nh {
                    next_header::HOP_BY_HOP if i != 0 || !first_after_fixed => {
                        return Err(Error::BadExtensionHeader);
                    }
                    next_header::HOP_BY_HOP | next_header::DEST_OPTIONS => check_options(body.get(2..).unwrap_or(&[]))?,
                    next_header::ROUTING => {
                        // RFC 8200 §4.4: Routing Type, then Segments Left.
                        if body.get(3).copied().unwrap_or(0) != 0 {
                            return Err(Error::SegmentsLeft);
                        }
                    }
                    _ => {
                        // RFC 8200 §4.5: 13-bit offset, 2 reserved bits, M flag.
                        let off_m = u16::from_be_bytes([body.get(2).copied().unwrap_or(0), body.get(3).copied().unwrap_or(0)]);
                        if off_m & 0xfff9 != 0 {
                            return Err(Error::Fragment);
                        }
                    }
                }
                nh = next;
                len
            }
            protocol => return Ok(UpperLayer { protocol, offset }),
        };
        offset += len;
    }
    Err(Error::TooManyExtensionHeaders)
}

/// An IPv6 header in high-level form (no extension headers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Upper-layer protocol (after any extension headers; see [`next_header`]).
    pub next_header: u8,
    /// Upper-layer payload length in bytes (payload length minus extension headers).
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
}

impl Repr {
    /// Parse a packet, walking its extension headers: `next_header` is the upper-layer
    /// protocol and `payload_len` the length from the upper-layer header on. Use
    /// [`Packet::upper_layer`] for where that header starts.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, Error> {
        let up = packet.upper_layer()?;
        Ok(Self::fields_of(packet, up))
    }

    fn fields_of<T: AsRef<[u8]>>(packet: &Packet<T>, up: UpperLayer) -> Repr {
        Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            next_header: up.protocol,
            payload_len: (HEADER_LEN + usize::from(packet.payload_len())).saturating_sub(up.offset),
            hop_limit: packet.hop_limit(),
            traffic_class: packet.traffic_class(),
            flow_label: packet.flow_label(),
        }
    }

    /// Parse the packet quoted inside an ICMPv6 error (RFC 4443 §3: as much of the invoking
    /// packet as fits in the minimum MTU). The quote is usually cut short, so only the fixed
    /// header must be present; the extension headers are walked within the quote. Returns
    /// the header and the quoted upper-layer bytes.
    pub fn parse_quoted(data: &[u8]) -> Result<(Repr, &[u8]), Error> {
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let p = Packet::new_unchecked(data);
        if p.version() != 6 {
            return Err(Error::BadVersion);
        }
        let quoted = data.get(HEADER_LEN..).ok_or(Error::Truncated)?;
        let up = walk(p.next_header(), quoted, true)?;
        let rest = quoted.get(up.offset..).ok_or(Error::Truncated)?;
        let up = UpperLayer { protocol: up.protocol, offset: HEADER_LEN + up.offset };
        Ok((Self::fields_of(&p, up), rest))
    }

    /// Length of the emitted header.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Total length of the packet this header describes.
    pub const fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write the 40-byte fixed header into `packet`; the payload is left untouched. Fails if
    /// the buffer is shorter than the header or the payload length does not fit 16 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = u16::try_from(self.payload_len).map_err(|_| Error::BadPayloadLen)?;
        packet.set_version_tc_flow(6, self.traffic_class, self.flow_label);
        packet.set_payload_len(len);
        packet.set_next_header(self.next_header);
        packet.set_hop_limit(self.hop_limit);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        Ok(())
    }
}

/// Address helpers (RFC 4291).
pub mod addr {
    use std::net::Ipv6Addr;

    use crate::wire::ethernet::EthernetAddress;

    /// The all-nodes link-local multicast address ff02::1 (RFC 4291 §2.7.1).
    pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    /// The all-routers link-local multicast address ff02::2 (RFC 4291 §2.7.1).
    pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);

    /// The solicited-node multicast address of `a`: ff02::1:ff00:0/104 with the low 24
    /// bits of `a` (RFC 4291 §2.7.1; Linux `addrconf_addr_solict_mult`).
    pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
        let o = a.octets();
        Ipv6Addr::from([0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff, o[13], o[14], o[15]])
    }

    /// The Ethernet multicast address of an IPv6 multicast address: 33:33 and its low 32
    /// bits (RFC 2464 §7; Linux `ipv6_eth_mc_map`).
    pub fn multicast_mac(a: Ipv6Addr) -> EthernetAddress {
        let o = a.octets();
        EthernetAddress([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }

    /// The modified EUI-64 interface identifier of a MAC: ff:fe in the middle and the U/L
    /// bit inverted (RFC 4291 §2.5.1 and Appendix A; Linux `addrconf_ifid_eui48`).
    pub fn eui64_interface_id(mac: EthernetAddress) -> [u8; 8] {
        let m = mac.0;
        [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
    }

    /// The link-local address fe80::/64 with the modified EUI-64 identifier of `mac` (RFC
    /// 4862 §5.3, RFC 4291 §2.5.6).
    pub fn link_local_from_mac(mac: EthernetAddress) -> Ipv6Addr {
        let id = eui64_interface_id(mac);
        let mut o = [0u8; 16];
        o[0] = 0xfe;
        o[1] = 0x80;
        o[8..].copy_from_slice(&id);
        Ipv6Addr::from(o)
    }

    /// Whether `a` is link-local unicast (fe80::/10, RFC 4291 §2.5.6).
    pub fn is_link_local(a: Ipv6Addr) -> bool {
        a.segments()[0] & 0xffc0 == 0xfe80
    }

    /// Whether `a` and `b` share their first `prefix_len` bits (at most 128).
    pub fn same_prefix(a: Ipv6Addr, b: Ipv6Addr, prefix_len: u8) -> bool {
        let n = u32::from(prefix_len.min(128));
        if n == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - n);
        (u128::from(a) & mask) == (u128::from(b) & mask)
    }
}

#[cfg(test)]
#[path = "ipv6_tests.rs"]
mod tests;
