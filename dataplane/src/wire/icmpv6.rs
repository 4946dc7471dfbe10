//! ICMPv6 (RFC 4443): a zero-copy [`Packet`] view with checked construction and checksum
//! helpers over the IPv6 pseudo-header (RFC 4443 §2.3, RFC 8200 §8.1), and a [`Repr`] for
//! echo request/reply, destination unreachable, packet too big (which drives path MTU
//! discovery, RFC 8201), time exceeded, parameter problem and the neighbour discovery
//! messages of [`ndp`](crate::wire::ndp). Other messages parse as [`Repr::Other`] so that
//! callers can count them.

use std::net::{Ipv6Addr, SocketAddrV6};

use crate::wire::checksum;
use crate::wire::ipv6;
use crate::wire::ndp;

/// Why an ICMPv6 message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Shorter than the 8-byte header (4 for neighbour discovery messages, which check
    /// their own lengths).
    #[error("truncated ICMPv6 message")]
    Truncated,
    /// The checksum does not verify.
    #[error("bad ICMPv6 checksum")]
    BadChecksum,
    /// An error message whose quoted IPv6 header is unusable.
    #[error("malformed ICMPv6 message")]
    Malformed,
    /// An invalid neighbour discovery message (RFC 4861 §6.1, §7.1).
    #[error("invalid neighbour discovery message: {0}")]
    Ndp(#[from] ndp::Error),
}

/// Length of the ICMPv6 header (type, code, checksum, 32 message-specific bits).
pub const HEADER_LEN: usize = 8;
/// Most an error message of ours quotes: the packet must fit the minimum MTU (RFC 4443
/// §2.4 (c)).
pub const MAX_ERROR_LEN: usize = ipv6::MIN_MTU - ipv6::HEADER_LEN;

/// Message types (RFC 4443 §2.1, RFC 4861 §4).
pub mod message {
    /// Destination unreachable.
    pub const DST_UNREACHABLE: u8 = 1;
    /// Packet too big.
    pub const PKT_TOO_BIG: u8 = 2;
    /// Time exceeded.
    pub const TIME_EXCEEDED: u8 = 3;
    /// Parameter problem.
    pub const PARAM_PROBLEM: u8 = 4;
    /// Echo request.
    pub const ECHO_REQUEST: u8 = 128;
    /// Echo reply.
    pub const ECHO_REPLY: u8 = 129;
    /// Router solicitation (RFC 4861 §4.1).
    pub const ROUTER_SOLICIT: u8 = 133;
    /// Router advertisement (RFC 4861 §4.2).
    pub const ROUTER_ADVERT: u8 = 134;
    /// Neighbour solicitation (RFC 4861 §4.3).
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    /// Neighbour advertisement (RFC 4861 §4.4).
    pub const NEIGHBOR_ADVERT: u8 = 136;
    /// Redirect (RFC 4861 §4.5; parsed as [`Repr::Other`](super::Repr::Other)).
    pub const REDIRECT: u8 = 137;
}

mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    pub const ECHO_IDENT: Range<usize> = 4..6;
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    pub const WORD: Range<usize> = 4..8;
    pub const PAYLOAD: usize = 8;
}

/// Destination unreachable codes (RFC 4443 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0: no route to destination.
    NoRoute,
    /// 1: communication administratively prohibited.
    AdminProhibited,
    /// 2: beyond scope of source address.
    BeyondScope,
    /// 3: address unreachable.
    AddrUnreachable,
    /// 4: port unreachable.
    PortUnreachable,
    /// 5: source address failed ingress/egress policy.
    FailedPolicy,
    /// 6: reject route to destination.
    RejectRoute,
    /// Any other code.
    Other(u8),
}

impl From<u8> for DstUnreachable {
    fn from(c: u8) -> Self {
        match c {
            0 => DstUnreachable::NoRoute,
            1 => DstUnreachable::AdminProhibited,
            2 => DstUnreachable::BeyondScope,
            3 => DstUnreachable::AddrUnreachable,
            4 => DstUnreachable::PortUnreachable,
            5 => DstUnreachable::FailedPolicy,
            6 => DstUnreachable::RejectRoute,
            other => DstUnreachable::Other(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(c: DstUnreachable) -> u8 {
        match c {
            DstUnreachable::NoRoute => 0,
            DstUnreachable::AdminProhibited => 1,
            DstUnreachable::BeyondScope => 2,
            DstUnreachable::AddrUnreachable => 3,
            DstUnreachable::PortUnreachable => 4,
            DstUnreachable::FailedPolicy => 5,
            DstUnreachable::RejectRoute => 6,
            DstUnreachable::Other(v) => v,
        }
    }
}

/// A read/write view of an ICMPv6 message. The buffer must be exactly the message (the
/// upper-layer payload of the IPv6 packet): the checksum covers all of it.
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

    /// The 32-bit word after the checksum: the MTU of a packet too big (RFC 4443 §3.2), the
    /// pointer of a parameter problem (§3.4).
    pub fn word(&self) -> u32 {
        let d = &self.buffer.as_ref()[field::WORD];
        u32::from_be_bytes([d[0], d[1], d[2], d[3]])
    }

    /// Everything after the 8-byte header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }

    /// Whether the checksum over the pseudo-header of `src` and `dst` and the whole message
    /// verifies (RFC 4443 §2.3).
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let Ok(len) = u32::try_from(data.len()) else { return false };
        let ph = checksum::pseudo_header_v6(src, dst, ipv6::next_header::ICMPV6, len);
        checksum::fold(checksum::sum(data, ph)) == 0xffff
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

    /// Set the 32-bit word after the checksum (MTU, pointer, or zero where unused).
    pub fn set_word(&mut self, v: u32) {
        self.buffer.as_mut()[field::WORD].copy_from_slice(&v.to_be_bytes());
    }

    /// Mutable access to everything after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }

    /// Compute the checksum over the pseudo-header and the whole buffer and store it.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        self.set_checksum(0);
        let data = self.buffer.as_ref();
        // Callers' buffers are IPv6 payloads (at most 65535 bytes, no jumbograms).
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let ph = checksum::pseudo_header_v6(src, dst, ipv6::next_header::ICMPV6, len);
        let c = !checksum::fold(checksum::sum(data, ph));
        self.set_checksum(c);
    }
}

/// An ICMPv6 message in high-level form, borrowing its data from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr<'a> {
    /// Echo request (type 128).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Data to be echoed.
        data: &'a [u8],
    },
    /// Echo reply (type 129).
    EchoReply {
        /// Identifier, copied from the request.
        ident: u16,
        /// Sequence number, copied from the request.
        seq_no: u16,
        /// Data, copied from the request.
        data: &'a [u8],
    },
    /// Destination unreachable (type 1).
    DstUnreachable {
        /// Why.
        reason: DstUnreachable,
        /// The quoted header of the packet that could not be delivered.
        header: ipv6::Repr,
        /// The quoted start of its upper-layer data.
        data: &'a [u8],
    },
    /// Packet too big (type 2, RFC 4443 §3.2): the MTU of the next-hop link.
    PktTooBig {
        /// The MTU.
        mtu: u32,
        /// The quoted header.
        header: ipv6::Repr,
        /// The quoted start of its upper-layer data.
        data: &'a [u8],
    },
    /// Time exceeded (type 3; code 0 hop limit exceeded, 1 reassembly time exceeded).
    TimeExceeded {
        /// The code.
        code: u8,
        /// The quoted header.
        header: ipv6::Repr,
        /// The quoted start of its upper-layer data.
        data: &'a [u8],
    },
    /// Parameter problem (type 4, RFC 4443 §3.4).
    ParamProblem {
        /// The code (0 erroneous header field, 1 unrecognised next header, 2 unrecognised
        /// option).
        code: u8,
        /// Offset of the error in the quoted packet.
        pointer: u32,
        /// The quoted header.
        header: ipv6::Repr,
        /// The quoted start of its upper-layer data.
        data: &'a [u8],
    },
    /// A neighbour discovery message (types 133 to 136).
    Ndp(ndp::Repr),
    /// Any other message, kept only so that it can be counted.
    Other {
        /// Message type.
        msg_type: u8,
        /// Message code.
        code: u8,
    },
}

impl<'a> Repr<'a> {
    /// Parse a message carried from `src` to `dst`, verifying the checksum when
    /// `verify_checksum` is set. Neighbour discovery messages are validated per RFC 4861
    /// except for what needs the IP header (hop limit 255, source checks): see [`ndp`].
    pub fn parse<T>(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        packet: &Packet<&'a T>,
        verify_checksum: bool,
    ) -> Result<Repr<'a>, Error>
    where
        T: AsRef<[u8]> + ?Sized,
    {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        let msg: &'a [u8] = packet.buffer.as_ref();
        let data: &'a [u8] = msg.get(field::PAYLOAD..).ok_or(Error::Truncated)?;
        let quoted = |data: &'a [u8]| ipv6::Repr::parse_quoted(data).map_err(|_| Error::Malformed);
        match (packet.msg_type(), packet.msg_code()) {
            (message::ECHO_REQUEST, 0) => {
                Ok(Repr::EchoRequest { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            (message::ECHO_REPLY, 0) => {
                Ok(Repr::EchoReply { ident: packet.echo_ident(), seq_no: packet.echo_seq_no(), data })
            }
            (message::DST_UNREACHABLE, code) => {
                let (header, data) = quoted(data)?;
                Ok(Repr::DstUnreachable { reason: DstUnreachable::from(code), header, data })
            }
            (message::PKT_TOO_BIG, 0) => {
                let (header, data) = quoted(data)?;
                Ok(Repr::PktTooBig { mtu: packet.word(), header, data })
            }
            (message::TIME_EXCEEDED, code) => {
                let (header, data) = quoted(data)?;
                Ok(Repr::TimeExceeded { code, header, data })
            }
            (message::PARAM_PROBLEM, code) => {
                let (header, data) = quoted(data)?;
                Ok(Repr::ParamProblem { code, pointer: packet.word(), header, data })
            }
            (
                message::ROUTER_SOLICIT | message::ROUTER_ADVERT | message::NEIGHBOR_SOLICIT | message::NEIGHBOR_ADVERT,
                _,
            ) => Ok(Repr::Ndp(ndp::Repr::parse(msg)?)),
            (msg_type, code) => Ok(Repr::Other { msg_type, code }),
        }
    }

    /// Length of the emitted message. `Other` emits only its header.
    pub fn buffer_len(&self) -> usize {
        match self {
            Repr::EchoRequest { data, .. } | Repr::EchoReply { data, .. } => HEADER_LEN + data.len(),
            Repr::DstUnreachable { data, .. }
            | Repr::PktTooBig { data, .. }
            | Repr::TimeExceeded { data, .. }
            | Repr::ParamProblem { data, .. } => HEADER_LEN + ipv6::HEADER_LEN + data.len(),
            Repr::Ndp(n) => n.buffer_len(),
            Repr::Other { .. } => HEADER_LEN,
        }
    }

    /// Write the message into the first [`Repr::buffer_len`] bytes of `packet` and fill the
    /// checksum for a packet from `src` to `dst` over exactly those bytes. Quoted headers are
    /// emitted without extension headers.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        packet: &mut Packet<T>,
    ) -> Result<(), Error> {
        let len = self.buffer_len();
        let buf = packet.buffer.as_mut().get_mut(..len).ok_or(Error::Truncated)?;
        if let Repr::Ndp(n) = self {
            n.emit(buf)?;
            Packet::new_unchecked(buf).fill_checksum(src, dst);
            return Ok(());
        }
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
            Repr::DstUnreachable { reason, header, data } => {
                emit_error(&mut p, message::DST_UNREACHABLE, u8::from(reason), 0, &header, data)?;
            }
            Repr::PktTooBig { mtu, header, data } => {
                emit_error(&mut p, message::PKT_TOO_BIG, 0, mtu, &header, data)?;
            }
            Repr::TimeExceeded { code, header, data } => {
                emit_error(&mut p, message::TIME_EXCEEDED, code, 0, &header, data)?;
            }
            Repr::ParamProblem { code, pointer, header, data } => {
                emit_error(&mut p, message::PARAM_PROBLEM, code, pointer, &header, data)?;
            }
            Repr::Other { msg_type, code } => {
                p.set_msg_type(msg_type);
                p.set_msg_code(code);
                p.set_word(0);
            }
            Repr::Ndp(_) => {}
        }
        p.fill_checksum(src, dst);
        Ok(())
    }
}

fn emit_error(
    p: &mut Packet<&mut [u8]>,
    msg_type: u8,
    code: u8,
    word: u32,
    header: &ipv6::Repr,
    data: &[u8],
) -> Result<(), Error> {
    p.set_msg_type(msg_type);
    p.set_msg_code(code);
    p.set_word(word);
    let payload = p.payload_mut();
    let (hdr, rest) = payload.split_at_mut(ipv6::HEADER_LEN);
    header.emit(&mut ipv6::Packet::new_unchecked(hdr)).map_err(|_| Error::Malformed)?;
    rest.copy_from_slice(data);
    Ok(())
}

/// The TCP segment quoted in an ICMPv6 error: the addresses and ports of a segment *we*
/// sent (its source is our side) and its sequence number, from the first 8 bytes of the
/// quoted TCP header (RFC 9293 §3.1). What Linux `tcp_v6_err` reads before looking up the
/// socket. The flow label and scope are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedTcp {
    /// Our address and port (the quoted segment's source).
    pub local: SocketAddrV6,
    /// The peer's address and port (the quoted segment's destination).
    pub remote: SocketAddrV6,
    /// The quoted sequence number.
    pub seq: u32,
}

impl QuotedTcp {
    /// The quoted segment of an error whose quoted header is `header` (its upper layer
    /// already found by [`ipv6::Repr::parse_quoted`]) and whose quoted upper-layer bytes are
    /// `data`: [`Error::Malformed`] unless it quotes TCP and holds ports and sequence number.
    pub fn parse(header: &ipv6::Repr, data: &[u8]) -> Result<QuotedTcp, Error> {
        if header.next_header != ipv6::next_header::TCP {
            return Err(Error::Malformed);
        }
        let q: &[u8; 8] = data.get(..8).and_then(|q| q.try_into().ok()).ok_or(Error::Malformed)?;
        Ok(QuotedTcp {
            local: SocketAddrV6::new(header.src_addr, u16::from_be_bytes([q[0], q[1]]), 0, 0),
            remote: SocketAddrV6::new(header.dst_addr, u16::from_be_bytes([q[2], q[3]]), 0, 0),
            seq: u32::from_be_bytes([q[4], q[5], q[6], q[7]]),
        })
    }

    /// The quote of an error message, `None` for other messages or when it does not quote
    /// a TCP segment.
    pub fn of(repr: &Repr<'_>) -> Option<QuotedTcp> {
        match repr {
            Repr::DstUnreachable { header, data, .. }
            | Repr::PktTooBig { header, data, .. }
            | Repr::TimeExceeded { header, data, .. }
            | Repr::ParamProblem { header, data, .. } => QuotedTcp::parse(header, data).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "icmpv6_tests.rs"]
mod tests;
