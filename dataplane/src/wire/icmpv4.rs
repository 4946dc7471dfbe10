//! ICMPv4 (RFC 792): a zero-copy [`Packet`] view with checked construction and checksum
//! helpers, and a [`Repr`] for echo request/reply, destination unreachable (including
//! "fragmentation needed" with the next-hop MTU of RFC 1191 §4) and time exceeded. Other
//! messages parse as [`Repr::Other`] so that callers can count them.

use std::net::SocketAddrV4;

use crate::wire::checksum;
use crate::wire::ipv4;

/// Why an ICMP message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than the 8-byte header.
    #[error("truncated ICMP message")]
    Truncated,
    /// The checksum does not verify.
    #[error("bad ICMP checksum")]
    BadChecksum,
    /// An error message whose quoted IPv4 header is unusable.
    #[error("malformed ICMP message")]
    Malformed,
}

/// Length of the ICMP header (type, code, checksum, rest-of-header).
pub const HEADER_LEN: usize = 8;
/// How much of the original datagram's payload an error quotes (RFC 792: 64 bits).
pub const QUOTED_PAYLOAD_LEN: usize = 8;

/// Message types (RFC 792).
pub mod message {
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 0;
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 3;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 8;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 11;
}

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const UNUSED: Range<usize> = 4..6;
    pub const MTU: Range<usize> = 6..8;
    pub const PAYLOAD: usize = 8;
}

/// Destination unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0: net unreachable.
    NetUnreachable,
    /// 1: host unreachable.
    HostUnreachable,
    /// 2: protocol unreachable.
    ProtoUnreachable,
    /// 3: port unreachable.
    PortUnreachable,
    /// 4: fragmentation needed and DF set (carries the next-hop MTU, RFC 1191 §4).
    FragRequired,
    /// 5: source route failed.
    SrcRouteFailed,
    /// 13: communication administratively prohibited (RFC 1812).
    AdminProhibited,
    /// Any other code.
    Other(u8),
}

impl From<u8> for DstUnreachable {
    fn from(c: u8) -> Self {
        match c {
            0 => DstUnreachable::NetUnreachable,
            1 => DstUnreachable::HostUnreachable,
            2 => DstUnreachable::ProtoUnreachable,
            3 => DstUnreachable::PortUnreachable,
            4 => DstUnreachable::FragRequired,
            5 => DstUnreachable::SrcRouteFailed,
            13 => DstUnreachable::AdminProhibited,
            other => DstUnreachable::Other(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(c: DstUnreachable) -> u8 {
        match c {
            DstUnreachable::NetUnreachable => 0,
            DstUnreachable::HostUnreachable => 1,
            DstUnreachable::ProtoUnreachable => 2,
            DstUnreachable::PortUnreachable => 3,
            DstUnreachable::FragRequired => 4,
            DstUnreachable::SrcRouteFailed => 5,
            DstUnreachable::AdminProhibited => 13,
            DstUnreachable::Other(v) => v,
        }
    }
}

/// A read/write view of an ICMP message. The buffer must be exactly the message (the IPv4
/// payload): the checksum covers all of it.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

packet_view!(Packet, Error; be16);

impl<T: AsRef<[u8]>> Packet<T> {
    /// The check of `new_checked`: the buffer holds the 8-byte header.
    pub fn check_len(&self) -> Result<(), Error> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Message type (see [`message`]).
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// Echo identifier (echo request/reply).
    pub fn echo_ident(&self) -> u16 {
        self.be16(field::ECHO_IDENT)
    }

    /// Echo sequence number (echo request/reply).
    pub fn echo_seq_no(&self) -> u16 {
        self.be16(field::ECHO_SEQNO)
    }

    /// Next-hop MTU (destination unreachable, fragmentation needed; RFC 1191 §4).
    pub fn next_hop_mtu(&self) -> u16 {
        self.be16(field::MTU)
    }

    /// Everything after the 8-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }

    /// Whether the checksum over the whole message verifies (RFC 792).
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref(), 0)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the message type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Set the message code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v);
    }

    /// Set the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        self.set_be16(field::ECHO_IDENT, v);
    }

    /// Set the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        self.set_be16(field::ECHO_SEQNO, v);
    }

    /// Set the next-hop MTU (and zero the unused half of the rest-of-header).
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        self.set_be16(field::UNUSED, 0);
        self.set_be16(field::MTU, v);
    }

    /// Zero the rest-of-header word (unused in time exceeded and most unreachables).
    pub fn clear_rest_of_header(&mut self) {
        self.set_be16(field::UNUSED, 0);
        self.set_be16(field::MTU, 0);
    }

    /// Mutable access to everything after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }

    /// Compute the checksum over the whole buffer and store it.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An ICMPv4 message in high-level form, borrowing its data from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data to be echoed.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier, copied from the request.
        ident: u16,
        /// Sequence number, copied from the request.
        seq_no: u16,
        /// Data, copied from the request.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// Why.
        reason: DstUnreachable,
        /// Next-hop MTU for [`DstUnreachable::FragRequired`] (0 from pre-RFC 1191 routers);
        /// zero otherwise.
        next_hop_mtu: u16,
        /// The quoted header of the datagram that could not be delivered.
        header: ipv4::Repr,
        /// The quoted start of its payload (at least 8 bytes from a conforming sender).
        data: &'a [u8],
    },
    /// Time exceeded (type 11; code 0 TTL exceeded in transit, 1 reassembly time exceeded).
    TimeExceeded {
        /// The code.
        code: u8,
        /// The quoted header.
        header: ipv4::Repr,
        /// The quoted start of its payload.
        data: &'a [u8],
    },
    /// Any other message, kept only so that it can be counted.
    Other {
        /// Message type.
        msg_type: u8,
        /// Message code.
        code: u8,
    },
}

impl<'a> Repr<'a> {
    /// Parse a message, verifying the checksum when `verify_checksum` is set.
    pub fn parse<T>(packet: &Packet<&'a T>, verify_checksum: bool) -> Result<Repr<'a>, Error>
    where
        T: AsRef<[u8]> + ?Sized,
    {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum() {
            return Err(Error::BadChecksum);
        }
        let data: &'a [u8] = packet.buffer.as_ref().get(field::PAYLOAD..).ok_or(Error::Truncated)?;
        let quoted = |data: &'a [u8]| ipv4::Repr::parse_quoted(data).map_err(|_| Error::Malformed);
        match (packet.msg_type(), packet.msg_code()) {
            (message::ECHO_REQUEST, 0) => {
                Ok(Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            (message::ECHO_REPLY, 0) => {
                Ok(Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            (message::DST_UNREACHABLE, code) => {
                let reason = DstUnreachable::from(code);
                let next_hop_mtu = if reason == DstUnreachable::FragRequired { packet.next_hop_mtu() } else { 0 };
                let (header, data) = quoted(data)?;
                Ok(Repr::DstUnreachable { reason, next_hop_mtu, header, data })
            }
            (message::TIME_EXCEEDED, code) => {
                let (header, data) = quoted(data)?;
                Ok(Repr::TimeExceeded { code, header, data })
            }
            (msg_type, code) => Ok(Repr::Other { msg_type, code }),
        }
    }

    /// Length of the emitted message. `Other` emits only its header.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Repr::DstUnreachable { data, .. } | Repr::TimeExceeded { data, .. } => {
                HEADER_LEN + ipv4::HEADER_LEN + data.len()
            }
            Repr::Other { .. } => HEADER_LEN,
        }
    }

    /// Write the message into the first [`Repr::buffer_len`] bytes of `packet` and fill the
    /// checksum over exactly those bytes. Quoted headers are emitted without options.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) -> Result<(), Error> {
        let len = self.buffer_len();
        let buf = packet.buffer.as_mut().get_mut(..len).ok_or(Error::Truncated)?;
        let mut p = Packet::new_unchecked(buf);
        match *self {
            Repr::EchoRequest { ident, seq_no, data } | Repr::EchoReply { ident, seq_no, data } => {
                let t =
                    if matches!(self, Repr::EchoRequest { .. }) { message::ECHO_REQUEST } else { message::ECHO_REPLY };
                p.set_msg_type(t);
                p.set_msg_code(0);
                p.set_echo_ident(ident);
                p.set_echo_seq_no(seq_no);
                p.payload_mut().copy_from_slice(data);
            }
            Repr::DstUnreachable { reason, next_hop_mtu, header, data } => {
                p.set_msg_type(message::DST_UNREACHABLE);
                p.set_msg_code(u8::from(reason));
                p.set_next_hop_mtu(next_hop_mtu);
                emit_quote(&mut p, &header, data)?;
            }
            Repr::TimeExceeded { code, header, data } => {
                p.set_msg_type(message::TIME_EXCEEDED);
                p.set_msg_code(code);
                p.clear_rest_of_header();
                emit_quote(&mut p, &header, data)?;
            }
            Repr::Other { msg_type, code } => {
                p.set_msg_type(msg_type);
                p.set_msg_code(code);
                p.clear_rest_of_header();
            }
        }
        p.fill_checksum();
        Ok(())
    }
}

/// The TCP segment quoted in an ICMP error: the addresses and ports of a segment *we*
/// sent (so its source is our side) and its sequence number, from the first 8 quoted
/// payload bytes RFC 792 guarantees (source port, destination port, sequence number; RFC
/// 9293 §3.1). What Linux `tcp_v4_err` reads from the quote before looking up the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedTcp {
    /// Our address and port (the quoted segment's source).
    pub local: SocketAddrV4,
    /// The peer's address and port (the quoted segment's destination).
    pub remote: SocketAddrV4,
    /// The quoted sequence number.
    pub seq: u32,
}

mod quoted_field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
}

impl QuotedTcp {
    /// The quoted segment of an ICMP error whose quoted IPv4 header is `header` and whose
    /// quoted payload is `data`: [`Error::Malformed`] unless it quotes TCP and holds the 8
    /// bytes of ports and sequence number. (We never fragment, DF is always set: a quote
    /// of a non-initial fragment is forged, and fails the connection and window checks.)
    pub fn parse(header: &ipv4::Repr, data: &[u8]) -> Result<QuotedTcp, Error> {
        if header.protocol != ipv4::protocol::TCP {
            return Err(Error::Malformed);
        }
        let q = data.get(..QUOTED_PAYLOAD_LEN).ok_or(Error::Malformed)?;
        let be16 = |r: core::ops::Range<usize>| u16::from_be_bytes([q[r.start], q[r.start + 1]]);
        let s = quoted_field::SEQ_NUM.start;
        let seq = u32::from_be_bytes([q[s], q[s + 1], q[s + 2], q[s + 3]]);
        Ok(QuotedTcp {
            local: SocketAddrV4::new(header.src_addr, be16(quoted_field::SRC_PORT)),
            remote: SocketAddrV4::new(header.dst_addr, be16(quoted_field::DST_PORT)),
            seq,
        })
    }

    /// The quote of a `DstUnreachable` / `TimeExceeded` message, `None` for other
    /// messages or when it does not quote a TCP segment ([`QuotedTcp::parse`]).
    pub fn of(repr: &Repr<'_>) -> Option<QuotedTcp> {
        match repr {
            Repr::DstUnreachable { header, data, .. } | Repr::TimeExceeded { header, data, .. } => {
                QuotedTcp::parse(header, data).ok()
            }
            _ => None,
        }
    }
}

fn emit_quote(p: &mut Packet<&mut [u8]>, header: &ipv4::Repr, data: &[u8]) -> Result<(), Error> {
    let payload = p.payload_mut();
    let (hdr, rest) = payload.split_at_mut(ipv4::HEADER_LEN);
    header.emit(&mut ipv4::Packet::new_unchecked(hdr)).map_err(|_| Error::Malformed)?;
    rest.copy_from_slice(data);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    // Echo request id 0x1234 seq 1 with payload "abcd".
    fn echo_request() -> Vec<u8> {
        let mut b = vec![8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd'];
        let c = checksum::checksum(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        b
    }

    fn quoted_header() -> ipv4::Repr {
        ipv4::Repr {
            src_addr: Ipv4Addr::new(10, 0, 0, 1),
            dst_addr: Ipv4Addr::new(198, 51, 100, 7),
            protocol: ipv4::protocol::TCP,
            payload_len: 1480,
            ttl: 63,
            ident: 7,
            dont_frag: true,
        }
    }

    #[test]
    fn parses_echo_request() {
        let b = echo_request();
        let p = Packet::new_checked(&b[..]).expect("long enough");
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p, true), Ok(Repr::EchoRequest { ident: 0x1234, seq_no: 1, data: b"abcd" }));
    }

    #[test]
    fn truncated_and_bad_checksum() {
        let b = echo_request();
        for n in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&b[..n]).err(), Some(Error::Truncated));
        }
        let mut b = echo_request();
        b[9] ^= 0xff;
        let p = Packet::new_checked(&b[..]).expect("long enough");
        assert_eq!(Repr::parse(&p, true), Err(Error::BadChecksum));
        assert!(Repr::parse(&p, false).is_ok());
    }

    #[test]
    fn unknown_types_are_other() {
        // Timestamp request (13) and an echo request with a non-zero code.
        for (t, c) in [(13u8, 0u8), (8, 1), (5, 1)] {
            let mut b = [t, c, 0, 0, 0, 0, 0, 0];
            Packet::new_unchecked(&mut b[..]).fill_checksum();
            let p = Packet::new_checked(&b[..]).expect("long enough");
            assert_eq!(Repr::parse(&p, true), Ok(Repr::Other { msg_type: t, code: c }));
        }
    }

    #[test]
    fn construct_echo_reply() {
        let repr = Repr::EchoReply { ident: 0xbeef, seq_no: 42, data: b"hello, world" };
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).expect("fits");
        assert_eq!(&buf[..2], &[0, 0]);
        let p = Packet::new_checked(&buf[..]).expect("long enough");
        assert!(p.verify_checksum());
        assert_eq!(Repr::parse(&p, true), Ok(repr));
    }

    #[test]
    fn construct_echo_request_matches_bytes() {
        let repr = Repr::EchoRequest { ident: 0x1234, seq_no: 1, data: b"abcd" };
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).expect("fits");
        assert_eq!(buf, echo_request());
    }

    #[test]
    fn construct_frag_needed() {
        let quote = [0x01, 0xbb, 0xc3, 0x50, 0, 0, 0, 1];
        let repr = Repr::DstUnreachable {
            reason: DstUnreachable::FragRequired,
            next_hop_mtu: 1400,
            header: quoted_header(),
            data: &quote,
        };
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        assert_eq!(buf.len(), 8 + 20 + 8);
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).expect("fits");
        assert_eq!(&buf[..2], &[3, 4]);
        assert_eq!(&buf[4..8], &[0, 0, 0x05, 0x78]);
        let p = Packet::new_checked(&buf[..]).expect("long enough");
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(Repr::parse(&p, true), Ok(repr));
    }

    #[test]
    fn construct_time_exceeded() {
        let quote = [1, 2, 3, 4, 5, 6, 7, 8];
        let repr = Repr::TimeExceeded { code: 0, header: quoted_header(), data: &quote };
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).expect("fits");
        assert_eq!(&buf[..8], &[11, 0, buf[2], buf[3], 0, 0, 0, 0]);
        let p = Packet::new_checked(&buf[..]).expect("long enough");
        assert_eq!(Repr::parse(&p, true), Ok(repr));
    }

    #[test]
    fn unreachable_with_broken_quote_is_malformed() {
        let mut b = vec![3, 3, 0, 0, 0, 0, 0, 0, 0x45, 0, 0];
        Packet::new_unchecked(&mut b[..]).fill_checksum();
        let p = Packet::new_checked(&b[..]).expect("long enough");
        assert_eq!(Repr::parse(&p, true), Err(Error::Malformed));
    }

    #[test]
    fn emit_into_short_buffer_fails() {
        let repr = Repr::EchoReply { ident: 1, seq_no: 2, data: b"xyz" };
        let mut buf = [0xa5u8; 10];
        assert_eq!(repr.emit(&mut Packet::new_unchecked(&mut buf[..])), Err(Error::Truncated));
        assert_eq!(buf, [0xa5; 10]);
    }

    #[test]
    fn quoted_tcp_reads_ports_and_sequence_number() {
        // Source port 443, destination port 50000, sequence number 0x01020304.
        let quote = [0x01, 0xbb, 0xc3, 0x50, 1, 2, 3, 4];
        let q = QuotedTcp::parse(&quoted_header(), &quote).expect("TCP quote");
        assert_eq!(q.local, SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 443));
        assert_eq!(q.remote, SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 7), 50000));
        assert_eq!(q.seq, 0x0102_0304);
        // A longer quote (RFC 1812 routers quote as much as fits) reads the same.
        let mut long = quote.to_vec();
        long.extend_from_slice(&[0xee; 40]);
        assert_eq!(QuotedTcp::parse(&quoted_header(), &long), Ok(q));
        // Through a whole message.
        let repr = Repr::DstUnreachable {
            reason: DstUnreachable::FragRequired,
            next_hop_mtu: 1280,
            header: quoted_header(),
            data: &quote,
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut Packet::new_unchecked(&mut buf[..])).expect("fits");
        let p = Packet::new_checked(&buf[..]).expect("long enough");
        let parsed = Repr::parse(&p, true).expect("valid");
        assert_eq!(QuotedTcp::of(&parsed), Some(q));
        assert_eq!(QuotedTcp::of(&Repr::Other { msg_type: 13, code: 0 }), None);
    }

    #[test]
    fn quoted_tcp_rejects_short_quotes_and_other_protocols() {
        let quote = [0x01, 0xbb, 0xc3, 0x50, 1, 2, 3, 4];
        for n in 0..QUOTED_PAYLOAD_LEN {
            assert_eq!(QuotedTcp::parse(&quoted_header(), &quote[..n]), Err(Error::Malformed), "{n} bytes");
        }
        let udp = ipv4::Repr { protocol: 17, ..quoted_header() };
        assert_eq!(QuotedTcp::parse(&udp, &quote), Err(Error::Malformed));
        let icmp = ipv4::Repr { protocol: ipv4::protocol::ICMP, ..quoted_header() };
        assert_eq!(QuotedTcp::parse(&icmp, &quote), Err(Error::Malformed));
    }

    proptest! {
        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..80), verify in any::<bool>()) {
            if let Ok(p) = Packet::new_checked(&data[..]) {
                if let Ok(r) = Repr::parse(&p, verify) {
                    let _ = QuotedTcp::of(&r);
                    let mut out = vec![0u8; r.buffer_len()];
                    prop_assert!(r.emit(&mut Packet::new_unchecked(&mut out[..])).is_ok());
                }
            }
        }
    }
}
