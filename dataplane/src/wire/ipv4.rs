//! IPv4 (RFC 791): a zero-copy [`Packet`] view with checked construction, header checksum
//! verification and filling, and a [`Repr`] that parses and emits option-less headers.
//!
//! Options in received headers are skipped (the payload starts at IHL * 4). Fragments are
//! recognised but not reassembled: [`Repr::parse`] rejects them with [`Error::Fragment`].

use std::net::Ipv4Addr;

use crate::wire::checksum;

/// Why an IPv4 packet was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the fixed header, or than the declared header length.
    #[error("truncated IPv4 header")]
    Truncated,
    /// The version field is not 4.
    #[error("IPv4 version field is not 4")]
    BadVersion,
    /// IHL below 5 words.
    #[error("IPv4 header length below 20 bytes")]
    BadHeaderLen,
    /// Total length shorter than the header or longer than the buffer (or, when emitting,
    /// above 65535).
    #[error("IPv4 total length inconsistent with header or buffer")]
    BadTotalLen,
    /// The header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    BadChecksum,
    /// The packet is a fragment (MF set or non-zero offset); fragments are not reassembled.
    #[error("IPv4 fragment")]
    Fragment,
}

/// Length of the header without options.
pub const HEADER_LEN: usize = 20;
/// Largest header: IHL is a 4-bit count of 32-bit words.
pub const MAX_HEADER_LEN: usize = 60;
/// Default TTL for packets we originate (RFC 1700 / Linux `ip_default_ttl`).
pub const DEFAULT_TTL: u8 = 64;

/// IP protocol numbers (IANA "Assigned Internet Protocol Numbers").
pub mod protocol {
    /// ICMP (RFC 792).
    pub const ICMP: u8 = 1;
    /// TCP (RFC 9293).
    pub const TCP: u8 = 6;
    /// UDP (RFC 768).
    pub const UDP: u8 = 17;
}

mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const IDENT: Range<usize> = 4..6;
    pub const FLG_OFF: Range<usize> = 6..8;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: Range<usize> = 10..12;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Flag bits of the flags/fragment-offset word (RFC 791 §3.1).
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A read/write view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

packet_view!(Packet, Error; be16);

impl<T: AsRef<[u8]>> Packet<T> {
    /// The checks of `new_checked`: version, header length and total length against the
    /// buffer. The buffer may be longer than the total length (Ethernet padding);
    /// [`Packet::payload`] stops at the total length.
    pub fn check_len(&self) -> Result<(), Error> {
        self.check_header()?;
        let len = self.buffer.as_ref().len();
        let hlen = self.header_len();
        let total = usize::from(self.total_len());
        if total < hlen || total > len {
            return Err(Error::BadTotalLen);
        }
        Ok(())
    }

    /// The checks of a buffer that holds the header only (an outgoing frame's headers, its
    /// payload elsewhere): version 4, IHL at least 5 words and within the buffer. The
    /// header's getters and setters are then in bounds; the total length is not checked.
    pub fn check_header(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.version() != 4 {
            return Err(Error::BadVersion);
        }
        let hlen = self.header_len();
        if hlen < HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        if hlen > len {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn addr(&self, r: core::ops::Range<usize>) -> Ipv4Addr {
        let d = &self.buffer.as_ref()[r];
        Ipv4Addr::new(d[0], d[1], d[2], d[3])
    }

    /// Version field (4 for a valid packet).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4), options included.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Differentiated services code point (RFC 2474).
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// ECN field (RFC 3168).
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// Total length of the datagram, header included.
    pub fn total_len(&self) -> u16 {
        self.be16(field::LENGTH)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        self.be16(field::IDENT)
    }

    /// Don't Fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.be16(field::FLG_OFF) & FLAG_DF != 0
    }

    /// More Fragments flag.
    pub fn more_frags(&self) -> bool {
        self.be16(field::FLG_OFF) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.be16(field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// Whether this is a fragment of a larger datagram (RFC 791 §3.2: MF set or offset
    /// non-zero).
    pub fn is_fragment(&self) -> bool {
        self.more_frags() || self.frag_offset() != 0
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload (see [`protocol`]).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        self.addr(field::SRC_ADDR)
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        self.addr(field::DST_ADDR)
    }

    /// Whether the header checksum verifies (RFC 791 §3.1: the ones'-complement sum over the
    /// header, checksum included, is all ones).
    pub fn verify_checksum(&self) -> bool {
        let hdr = &self.buffer.as_ref()[..self.header_len()];
        checksum::fold(checksum::sum(hdr, 0)) == 0xffff
    }

    /// Options bytes (between the fixed header and the payload).
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.header_len()]
    }

    /// The payload: from the end of the header to the total length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the version field.
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Set the header length in bytes (rounded down to words; at most 60).
    pub fn set_header_len(&mut self, len: usize) {
        let words = u8::try_from(len / 4).unwrap_or(15).min(15);
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | words;
    }

    /// Set DSCP and ECN.
    pub fn set_dscp_ecn(&mut self, dscp: u8, ecn: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = (dscp << 2) | (ecn & 0x03);
    }

    /// Set the total length.
    pub fn set_total_len(&mut self, v: u16) {
        self.set_be16(field::LENGTH, v);
    }

    /// Set the identification.
    pub fn set_ident(&mut self, v: u16) {
        self.set_be16(field::IDENT, v);
    }

    /// Set flags and fragment offset (in bytes, must be a multiple of 8) together.
    pub fn set_frag(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut w = (offset >> 3) & OFFSET_MASK;
        if dont_frag {
            w |= FLAG_DF;
        }
        if more_frags {
            w |= FLAG_MF;
        }
        self.set_be16(field::FLG_OFF, w);
    }

    /// Set the time to live.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Set the protocol.
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = v;
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v);
    }

    /// Set the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Set the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Compute the header checksum and store it (RFC 791 §3.1).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let hlen = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..hlen]);
        self.set_checksum(c);
    }

    /// Mutable access to the payload (header end to total length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        let end = usize::from(self.total_len());
        &mut self.buffer.as_mut()[start..end]
    }
}

/// An IPv4 header in high-level form (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol (see [`protocol`]).
    pub protocol: u8,
    /// Payload length in bytes (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// Don't Fragment.
    pub dont_frag: bool,
}

impl Repr {
    /// Parse a packet. Verifies the header checksum when `verify_checksum` is set (pass
    /// `false` when the NIC already did). Fragments are rejected with [`Error::Fragment`].
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>, verify_checksum: bool) -> Result<Repr, Error> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        if packet.is_fragment() {
            return Err(Error::Fragment);
        }
        Ok(Self::fields_of(packet))
    }

    /// Parse the header quoted inside an ICMP error (RFC 792: "Internet Header + 64 bits of
    /// Original Data Datagram"). The quote is usually cut short, so only the header itself
    /// must be present; total length, checksum and fragment fields are not checked against
    /// the buffer. Returns the header and the quoted payload bytes that follow it.
    pub fn parse_quoted(data: &[u8]) -> Result<(Repr, &[u8]), Error> {
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let p = Packet::new_unchecked(data);
        if p.version() != 4 {
            return Err(Error::BadVersion);
        }
        let hlen = p.header_len();
        if hlen < HEADER_LEN {
            return Err(Error::BadHeaderLen);
        }
        let rest = data.get(hlen..).ok_or(Error::Truncated)?;
        if usize::from(p.total_len()) < hlen {
            return Err(Error::BadTotalLen);
        }
        Ok((Self::fields_of(&p), rest))
    }

    fn fields_of<T: AsRef<[u8]>>(packet: &Packet<T>) -> Repr {
        Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()).saturating_sub(packet.header_len()),
            ttl: packet.ttl(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
        }
    }

    /// Length of the emitted header.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Total length of the datagram this header describes.
    pub const fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len
    }

    /// Write a 20-byte header (no options, DSCP/ECN zero) into `packet`, with the checksum
    /// filled in. The payload is left untouched. Fails if the buffer is shorter than the
    /// header, or if the total length does not fit 16 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        if packet.buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let total = u16::try_from(self.total_len()).map_err(|_| Error::BadTotalLen)?;
        packet.set_version(4);
        packet.set_header_len(HEADER_LEN);
        packet.set_dscp_ecn(0, 0);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_frag(self.dont_frag, false, 0);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.fill_checksum();
        Ok(())
    }

    /// The emitted header as an array.
    pub fn to_bytes(&self) -> Result<[u8; HEADER_LEN], Error> {
        let mut out = [0u8; HEADER_LEN];
        self.emit(&mut Packet::new_unchecked(&mut out[..]))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // A 24-byte UDP datagram (header + 4 bytes payload), DF set, TTL 64, ident 0x1234.
    fn sample() -> Vec<u8> {
        let mut b = vec![
            0x45, 0x00, 0x00, 0x18, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 10, 0, 0, 2, 10, 0, 0, 1, 0xde,
            0xad, 0xbe, 0xef,
        ];
        let c = checksum::checksum(&b[..20]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
        b
    }

    fn sample_repr() -> Repr {
        Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 2),
            dst_addr: Ipv4Addr::new(10, 0, 0, 1),
            protocol: protocol::UDP,
            payload_len: 4,
            ttl: 64,
            ident: 0x1234,
            dont_frag: true,
        }
    }

    #[test]
    fn parses_fields() {
        let b = sample();
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.payload(), &[0xde, 0xad, 0xbe, 0xef]);
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p, true), Ok(sample_repr()));
    }

    #[test]
    fn padding_after_total_length_is_ignored() {
        let mut b = sample();
        b.extend_from_slice(&[0u8; 22]);
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.payload().len(), 4);
        assert_eq!(Repr::parse(&p, true), Ok(sample_repr()));
    }

    #[test]
    fn rejects_truncated() {
        let b = sample();
        for n in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&b[..n]).err(), Some(Error::Truncated));
        }
        // IHL 6 (24 bytes of header) in a 20-byte buffer.
        let mut b = sample();
        b[0] = 0x46;
        assert_eq!(Packet::new_checked(&b[..20]).err(), Some(Error::Truncated));
    }

    #[test]
    fn rejects_bad_version_and_ihl() {
        let mut b = sample();
        b[0] = 0x65;
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::BadVersion));
        for ihl in 0..5u8 {
            b[0] = 0x40 | ihl;
            assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::BadHeaderLen));
        }
    }

    #[test]
    fn rejects_bad_total_len() {
        let mut b = sample();
        b[2..4].copy_from_slice(&25u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::BadTotalLen));
        b[2..4].copy_from_slice(&19u16.to_be_bytes());
        assert_eq!(Packet::new_checked(&b[..]).err(), Some(Error::BadTotalLen));
    }

    #[test]
    fn bad_checksum_only_when_verifying() {
        let mut b = sample();
        b[11] ^= 0x01;
        let p = Packet::new_checked(&b[..]).expect("lengths are fine");
        assert!(!p.verify_checksum());
        assert_eq!(Repr::parse(&p, true), Err(Error::BadChecksum));
        assert_eq!(Repr::parse(&p, false), Ok(sample_repr()));
    }

    #[test]
    fn fragments_are_rejected() {
        let mut b = sample();
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_frag(false, true, 0);
        p.fill_checksum();
        assert!(p.is_fragment());
        assert_eq!(Repr::parse(&p, true), Err(Error::Fragment));
        p.set_frag(false, false, 1480);
        p.fill_checksum();
        assert_eq!(p.frag_offset(), 1480);
        assert_eq!(Repr::parse(&p, true), Err(Error::Fragment));
    }

    #[test]
    fn options_are_skipped() {
        // IHL 6 with a 4-byte option (NOP NOP NOP EOL).
        let mut b = vec![0x46, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 1, 1, 0];
        b.extend_from_slice(&[9, 9, 9, 9]);
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        let p = Packet::new_checked(&b[..]).expect("valid");
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[9, 9, 9, 9]);
        assert_eq!(Repr::parse(&p, true).map(|r| r.payload_len), Ok(4));
    }

    #[test]
    fn construct() {
        let mut buf = vec![0xa5u8; 24];
        let repr = sample_repr();
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).expect("fits");
        buf[20..].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(buf, sample());
        let p = Packet::new_checked(&buf[..]).expect("valid");
        assert_eq!(Repr::parse(&p, true), Ok(repr));
        assert_eq!(repr.to_bytes().ok().as_ref().map(|a| &a[..]), Some(&sample()[..20]));
    }

    #[test]
    fn emit_rejects_short_buffer_and_oversize() {
        let mut short = [0xa5u8; 19];
        assert_eq!(sample_repr().emit(&mut Packet::new_unchecked(&mut short[..])), Err(Error::Truncated));
        let huge = Repr { payload_len: 65_516, ..sample_repr() };
        assert_eq!(huge.to_bytes(), Err(Error::BadTotalLen));
        let max = Repr { payload_len: 65_515, ..sample_repr() };
        assert!(max.to_bytes().is_ok());
    }

    #[test]
    fn quoted_header_may_be_cut_short() {
        let mut b = sample();
        // Claim a 1000-byte datagram but quote only header + 4 bytes, as ICMP errors do.
        b[2..4].copy_from_slice(&1000u16.to_be_bytes());
        let (r, rest) = Repr::parse_quoted(&b).expect("quote parses");
        assert_eq!(r.payload_len, 980);
        assert_eq!(rest, &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(Repr::parse_quoted(&b[..19]).err(), Some(Error::Truncated));
        b[0] = 0x4f;
        assert_eq!(Repr::parse_quoted(&b).err(), Some(Error::Truncated));
    }

    proptest! {
        #[test]
        fn new_checked_never_panics(data in proptest::collection::vec(any::<u8>(), 0..96)) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                let _ = p.options();
                let _ = p.payload();
                if let Ok(r) = Repr::parse(&p, true) {
                    prop_assert_eq!(r.payload_len, p.payload().len());
                }
            }
            let _ = Repr::parse_quoted(&data);
        }

        #[test]
        fn emit_parse_round_trip(
            src in any::<u32>(), dst in any::<u32>(), proto in any::<u8>(),
            len in 0usize..2000, ttl in any::<u8>(), ident in any::<u16>(), df in any::<bool>(),
        ) {
            let repr = Repr {
                src_addr: Ipv4Addr::from(src), dst_addr: Ipv4Addr::from(dst), protocol: proto,
                payload_len: len, ttl, ident, dont_frag: df,
            };
            let mut buf = vec![0xa5u8; repr.total_len()];
            repr.emit(&mut Packet::new_unchecked(&mut buf[..])).expect("fits");
            let p = Packet::new_checked(&buf[..]).expect("valid");
            prop_assert_eq!(Repr::parse(&p, true), Ok(repr));
        }
    }
}
