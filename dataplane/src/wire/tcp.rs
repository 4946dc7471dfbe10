//! TCP header: a zero-copy [`Packet`] view with checked construction, the [`TcpRepr`]
//! high-level representation (parse/emit, including options), and checksum helpers.
//!
//! Header layout: RFC 9293 §3.1. Options: MSS (RFC 9293 §3.2), window scale and timestamps
//! (RFC 7323), SACK-permitted and SACK (RFC 2018). Options are emitted in the order Linux uses
//! (`tcp_options_write`) so that middleboxes see the familiar layout.

use core::fmt;
use core::ops::{BitAnd, BitOr, BitOrAssign, Not};
use std::net::{IpAddr, Ipv4Addr};

use crate::tcp::seq::SeqNum;
use crate::wire::checksum;

/// Why a TCP header was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the fixed header, or than the header length it declares.
    #[error("truncated TCP header")]
    Truncated,
    /// A field or option is inconsistent (data offset below 5, bad option length, ...).
    #[error("malformed TCP header")]
    Malformed,
}

/// IP protocol number of TCP.
pub const PROTOCOL: u8 = 6;
/// Length of the fixed header, without options.
pub const HEADER_LEN: usize = 20;
/// Largest header: data offset is a 4-bit count of 32-bit words.
pub const MAX_HEADER_LEN: usize = 60;
/// Largest option space.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;
/// Largest window-scale shift (RFC 7323 §2.3).
pub const MAX_WINDOW_SCALE: u8 = 14;

mod field {
    use core::ops::Range;
    pub const SRC_PORT: Range<usize> = 0..2;
    pub const DST_PORT: Range<usize> = 2..4;
    pub const SEQ_NUM: Range<usize> = 4..8;
    pub const ACK_NUM: Range<usize> = 8..12;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: Range<usize> = 14..16;
    pub const CHECKSUM: Range<usize> = 16..18;
    pub const URGENT: Range<usize> = 18..20;
}

mod opt {
    pub const EOL: u8 = 0;
    pub const NOP: u8 = 1;
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERM: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
}

/// The eight TCP control bits of byte 13 (RFC 9293 §3.1, RFC 3168 §6.1 for ECE/CWR).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// No bits set.
    pub const NONE: Flags = Flags(0);
    /// No more data from sender.
    pub const FIN: Flags = Flags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: Flags = Flags(0x02);
    /// Reset the connection.
    pub const RST: Flags = Flags(0x04);
    /// Push function.
    pub const PSH: Flags = Flags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: Flags = Flags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: Flags = Flags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: Flags = Flags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: Flags = Flags(0x80);

    /// The raw bits.
    #[inline]
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set in `self`.
    #[inline]
    pub const fn intersects(self, other: Flags) -> bool {
        self.0 & other.0 != 0
    }

    /// Set the bits of `other`.
    #[inline]
    pub fn insert(&mut self, other: Flags) {
        self.0 |= other.0;
    }

    /// Clear the bits of `other`.
    #[inline]
    pub fn remove(&mut self, other: Flags) {
        self.0 &= !other.0;
    }

    /// Whether no bit is set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

impl BitAnd for Flags {
    type Output = Flags;
    fn bitand(self, rhs: Flags) -> Flags {
        Flags(self.0 & rhs.0)
    }
}

impl Not for Flags {
    type Output = Flags;
    fn not(self) -> Flags {
        Flags(!self.0)
    }
}

/// tcpdump style: `S`, `S.`, `F.`, `P.`, `R`; `.` stands for ACK, `none` for no bits.
impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        // tcpdump prints in bit order: F S R P . U E W.
        const NAMES: [(Flags, char); 8] = [
            (Flags::FIN, 'F'),
            (Flags::SYN, 'S'),
            (Flags::RST, 'R'),
            (Flags::PSH, 'P'),
            (Flags::ACK, '.'),
            (Flags::URG, 'U'),
            (Flags::ECE, 'E'),
            (Flags::CWR, 'W'),
        ];
        for (flag, c) in NAMES {
            if self.contains(flag) {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

/// Up to four SACK blocks `(left edge, right edge)` (RFC 2018 §3).
#[derive(Clone, Copy, Default)]
pub struct SackBlocks {
    blocks: [(SeqNum, SeqNum); 4],
    len: u8,
}

impl SackBlocks {
    /// The most blocks an option can carry (40 bytes of option space, RFC 2018 §3).
    pub const MAX: usize = 4;

    /// No blocks.
    pub const fn new() -> Self {
        SackBlocks { blocks: [(SeqNum(0), SeqNum(0)); 4], len: 0 }
    }

    /// Append a block; returns `false` (and drops it) when four are already held.
    pub fn push(&mut self, left: SeqNum, right: SeqNum) -> bool {
        match self.blocks.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = (left, right);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Remove all blocks.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keep only the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        if n < usize::from(self.len) {
            // n < len <= 4, so this fits in a u8.
            self.len = n as u8;
        }
    }

    /// Number of blocks.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no blocks.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The blocks, in the order they were pushed.
    pub fn as_slice(&self) -> &[(SeqNum, SeqNum)] {
        self.blocks.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Iterate over the blocks.
    pub fn iter(&self) -> core::slice::Iter<'_, (SeqNum, SeqNum)> {
        self.as_slice().iter()
    }
}

impl PartialEq for SackBlocks {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SackBlocks {}

impl fmt::Debug for SackBlocks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|(l, r)| l.0..r.0)).finish()
    }
}

impl<'a> IntoIterator for &'a SackBlocks {
    type Item = &'a (SeqNum, SeqNum);
    type IntoIter = core::slice::Iter<'a, (SeqNum, SeqNum)>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// The TCP options Strait understands. Unknown options are skipped on parse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2).
    pub mss: Option<u16>,
    /// Window scale shift (kind 3), clamped to 14 on parse (RFC 7323 §2.3).
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4, RFC 2018 §2).
    pub sack_permitted: bool,
    /// Timestamps (kind 8): `(TSval, TSecr)` (RFC 7323 §3).
    pub timestamps: Option<(u32, u32)>,
    /// SACK blocks (kind 5, RFC 2018 §3).
    pub sack_blocks: SackBlocks,
}

impl TcpOptions {
    /// Parse an option area (the bytes between the fixed header and the data offset).
    ///
    /// NOP and EOL are honoured, unknown kinds are skipped by their length, and any option whose
    /// length is below 2, runs past the area, or differs from its kind's fixed length is
    /// [`Error::Malformed`]. A repeated option overrides the earlier one.
    pub fn parse(mut area: &[u8]) -> Result<TcpOptions, Error> {
        let mut o = TcpOptions::default();
        // Linux `tcp_parse_aligned_timestamp` (from `tcp_fast_parse_options`): the option
        // area of nearly every segment after the handshake is NOP, NOP, timestamps
        // (RFC 7323 Appendix A's layout), read at once without walking it.
        if let [opt::NOP, opt::NOP, opt::TIMESTAMPS, 10, v0, v1, v2, v3, e0, e1, e2, e3] = *area {
            o.timestamps = Some((u32::from_be_bytes([v0, v1, v2, v3]), u32::from_be_bytes([e0, e1, e2, e3])));
            return Ok(o);
        }
        while let Some((&kind, rest)) = area.split_first() {
            match kind {
                opt::EOL => break,
                opt::NOP => {
                    area = rest;
                    continue;
                }
                _ => {}
            }
            let len = usize::from(*rest.first().ok_or(Error::Malformed)?);
            if len < 2 {
                return Err(Error::Malformed);
            }
            let body = area.get(2..len).ok_or(Error::Malformed)?;
            match kind {
                opt::MSS => match *body {
                    [a, b] => o.mss = Some(u16::from_be_bytes([a, b])),
                    _ => return Err(Error::Malformed),
                },
                opt::WSCALE => match *body {
                    // RFC 7323 §2.3: a shift above 14 MUST be treated as 14.
                    [shift] => o.window_scale = Some(shift.min(MAX_WINDOW_SCALE)),
                    _ => return Err(Error::Malformed),
                },
                opt::SACK_PERM => {
                    if !body.is_empty() {
                        return Err(Error::Malformed);
                    }
                    o.sack_permitted = true;
                }
                opt::SACK => {
                    // RFC 2018 §3: length is 2 + 8n, with 1..=4 blocks.
                    if body.is_empty() || body.len() % 8 != 0 || body.len() > 8 * SackBlocks::MAX {
                        return Err(Error::Malformed);
                    }
                    let mut blocks = SackBlocks::new();
                    for b in body.chunks_exact(8) {
                        if let [l0, l1, l2, l3, r0, r1, r2, r3] = *b {
                            blocks.push(
                                SeqNum(u32::from_be_bytes([l0, l1, l2, l3])),
                                SeqNum(u32::from_be_bytes([r0, r1, r2, r3])),
                            );
                        }
                    }
                    o.sack_blocks = blocks;
                }
                opt::TIMESTAMPS => match *body {
                    [v0, v1, v2, v3, e0, e1, e2, e3] => {
                        o.timestamps =
                            Some((u32::from_be_bytes([v0, v1, v2, v3]), u32::from_be_bytes([e0, e1, e2, e3])))
                    }
                    _ => return Err(Error::Malformed),
                },
                _ => {} // Unknown: skipped by length (RFC 9293 §3.2, MUST-6).
            }
            area = area.get(len..).unwrap_or(&[]);
        }
        Ok(o)
    }

    /// How many SACK blocks fit next to the other options in 40 bytes (RFC 2018 §3: three
    /// when timestamps are present); extra blocks are not emitted.
    fn sack_blocks_emitted(&self) -> usize {
        if self.sack_blocks.is_empty() {
            return 0;
        }
        let room = MAX_OPTIONS_LEN.saturating_sub(self.len_without_sack() + 4);
        self.sack_blocks.len().min(room / 8)
    }

    fn len_without_sack(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.timestamps.is_some() {
            n += 12; // NOP NOP TS, or SACK-perm TS
        } else if self.sack_permitted {
            n += 4; // NOP NOP SACK-perm
        }
        if self.window_scale.is_some() {
            n += 4; // NOP wscale
        }
        n
    }

    /// The timestamps alone: the options of nearly every segment after the handshake,
    /// written as RFC 7323 Appendix A's aligned NOP, NOP, timestamps (Linux
    /// `tcp_options_write` with only `OPTION_TS`; the read side is
    /// `tcp_parse_aligned_timestamp`, in [`Self::parse`]).
    fn aligned_timestamps(&self) -> Option<(u32, u32)> {
        if self.mss.is_none() && self.window_scale.is_none() && !self.sack_permitted && self.sack_blocks.is_empty() {
            self.timestamps
        } else {
            None
        }
    }

    /// Bytes these options take on the wire (always a multiple of 4, at most 40).
    pub fn wire_len(&self) -> usize {
        if self.aligned_timestamps().is_some() {
            return 12;
        }
        let sack = self.sack_blocks_emitted();
        let n = self.len_without_sack() + if sack > 0 { 4 + 8 * sack } else { 0 };
        n.min(MAX_OPTIONS_LEN)
    }

    /// Write the options in Linux order: MSS; SACK-permitted + timestamps packed as
    /// `4 2 8 10`, or timestamps as `NOP NOP 8 10`; `NOP` window scale; `NOP NOP` SACK-permitted
    /// when there are no timestamps; `NOP NOP` SACK blocks. `buf` must hold [`Self::wire_len`]
    /// bytes; returns the number written.
    fn emit(&self, buf: &mut [u8]) -> usize {
        if let (Some((tsval, tsecr)), Some(dst)) = (self.aligned_timestamps(), buf.get_mut(..12)) {
            let (v, e) = (tsval.to_be_bytes(), tsecr.to_be_bytes());
            dst.copy_from_slice(&[opt::NOP, opt::NOP, opt::TIMESTAMPS, 10, v[0], v[1], v[2], v[3], e[0], e[1], e[2], e[3]]);
            return 12;
        }
        let mut w = Writer { buf, pos: 0 };
        if let Some(mss) = self.mss {
            w.put(&[opt::MSS, 4]);
            w.put(&mss.to_be_bytes());
        }
        if let Some((tsval, tsecr)) = self.timestamps {
            if self.sack_permitted {
                w.put(&[opt::SACK_PERM, 2, opt::TIMESTAMPS, 10]);
            } else {
                w.put(&[opt::NOP, opt::NOP, opt::TIMESTAMPS, 10]);
            }
            w.put(&tsval.to_be_bytes());
            w.put(&tsecr.to_be_bytes());
        }
        if let Some(shift) = self.window_scale {
            w.put(&[opt::NOP, opt::WSCALE, 3, shift.min(MAX_WINDOW_SCALE)]);
        }
        if self.sack_permitted && self.timestamps.is_none() {
            w.put(&[opt::NOP, opt::NOP, opt::SACK_PERM, 2]);
        }
        let n = self.sack_blocks_emitted();
        if n > 0 {
            // n <= 4, so 2 + 8n <= 34.
            w.put(&[opt::NOP, opt::NOP, opt::SACK, (2 + 8 * n) as u8]);
            for &(l, r) in self.sack_blocks.iter().take(n) {
                w.put(&l.0.to_be_bytes());
                w.put(&r.0.to_be_bytes());
            }
        }
        w.pos
    }
}

/// Sequential writer that stops (instead of panicking) at the end of its buffer.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.pos + bytes.len();
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(bytes);
            self.pos = end;
        }
    }
}

/// A read/write view of a TCP segment (header, options and payload).
///
/// Construct with [`Packet::new_checked`] for untrusted input; after that every getter is
/// panic-free. [`Packet::new_unchecked`] is for buffers the caller sized itself.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

packet_view!(Packet, Error; be16);

impl<T: AsRef<[u8]>> Packet<T> {
    /// The checks of `new_checked`: the buffer holds the fixed header and the declared
    /// header length (data offset between 5 and 15 words, within the buffer).
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        let off = *data.get(field::DATA_OFF).ok_or(Error::Truncated)?;
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hlen = usize::from(off >> 4) * 4;
        if hlen < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if hlen > data.len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    fn be32(&self, r: core::ops::Range<usize>) -> u32 {
        let d = self.buffer.as_ref();
        u32::from_be_bytes([d[r.start], d[r.start + 1], d[r.start + 2], d[r.start + 3]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.be16(field::SRC_PORT)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.be16(field::DST_PORT)
    }

    /// Sequence number.
    pub fn seq_number(&self) -> SeqNum {
        SeqNum(self.be32(field::SEQ_NUM))
    }

    /// Acknowledgement number.
    pub fn ack_number(&self) -> SeqNum {
        SeqNum(self.be32(field::ACK_NUM))
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFF] >> 4) * 4
    }

    /// Control bits.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Window field (unscaled).
    pub fn window_len(&self) -> u16 {
        self.be16(field::WIN_SIZE)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.be16(field::CHECKSUM)
    }

    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        self.be16(field::URGENT)
    }

    /// The option area.
    pub fn options(&self) -> &[u8] {
        let hlen = self.header_len();
        self.buffer.as_ref().get(HEADER_LEN..hlen).unwrap_or(&[])
    }

    /// The payload after the header.
    pub fn payload(&self) -> &[u8] {
        let hlen = self.header_len();
        self.buffer.as_ref().get(hlen..).unwrap_or(&[])
    }

    /// Total segment length (header + payload).
    pub fn total_len(&self) -> usize {
        self.buffer.as_ref().len()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_be32(&mut self, r: core::ops::Range<usize>, v: u32) {
        self.buffer.as_mut()[r].copy_from_slice(&v.to_be_bytes());
    }

    /// Set the source port.
    pub fn set_src_port(&mut self, v: u16) {
        self.set_be16(field::SRC_PORT, v);
    }

    /// Set the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        self.set_be16(field::DST_PORT, v);
    }

    /// Set the sequence number.
    pub fn set_seq_number(&mut self, v: SeqNum) {
        self.set_be32(field::SEQ_NUM, v.0);
    }

    /// Set the acknowledgement number.
    pub fn set_ack_number(&mut self, v: SeqNum) {
        self.set_be32(field::ACK_NUM, v.0);
    }

    /// Set the header length in bytes (rounded down to a multiple of 4, clamped to 20..=60).
    /// The low nibble of byte 12 (reserved bits) is cleared.
    pub fn set_header_len(&mut self, len: usize) {
        let words = (len.clamp(HEADER_LEN, MAX_HEADER_LEN) / 4) as u8;
        self.buffer.as_mut()[field::DATA_OFF] = words << 4;
    }

    /// Set the control bits.
    pub fn set_flags(&mut self, f: Flags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }

    /// Set the window field.
    pub fn set_window_len(&mut self, v: u16) {
        self.set_be16(field::WIN_SIZE, v);
    }

    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_be16(field::CHECKSUM, v);
    }

    /// Set the urgent pointer.
    pub fn set_urgent_at(&mut self, v: u16) {
        self.set_be16(field::URGENT, v);
    }

    /// The option area, mutably.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hlen = self.header_len();
        self.buffer.as_mut().get_mut(HEADER_LEN..hlen).unwrap_or(&mut [])
    }

    /// The payload, mutably.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hlen = self.header_len();
        self.buffer.as_mut().get_mut(hlen..).unwrap_or(&mut [])
    }
}

/// A parsed TCP header (payload not included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: SeqNum,
    /// Acknowledgement number (meaningful only with [`Flags::ACK`]).
    pub ack: SeqNum,
    /// Control bits.
    pub flags: Flags,
    /// Window field, unscaled.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options.
    pub options: TcpOptions,
}

impl TcpRepr {
    /// Parse the header of a checked packet. Does not verify the checksum (see
    /// [`verify_checksum`]; the NIC often already has).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<TcpRepr, Error> {
        p.check_len()?;
        Ok(TcpRepr {
            src_port: p.src_port(),
            dst_port: p.dst_port(),
            seq: p.seq_number(),
            ack: p.ack_number(),
            flags: p.flags(),
            window: p.window_len(),
            urgent: p.urgent_at(),
            options: TcpOptions::parse(p.options())?,
        })
    }

    /// Header length with options: 20 + options, a multiple of 4, at most 60.
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.wire_len()
    }

    /// Write the header (checksum field zero) into `buf` and return its length.
    ///
    /// SACK blocks that do not fit in the 40-byte option space are left out. If `buf` is
    /// shorter than [`Self::header_len`], nothing is written and 0 is returned.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let hlen = self.header_len();
        let Some(hdr) = buf.get_mut(..hlen) else { return 0 };
        let mut p = Packet::new_unchecked(hdr);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq);
        p.set_ack_number(self.ack);
        p.set_header_len(hlen);
        p.set_flags(self.flags);
        p.set_window_len(self.window);
        p.set_checksum(0);
        p.set_urgent_at(self.urgent);
        let written = self.options.emit(p.options_mut());
        debug_assert_eq!(written + HEADER_LEN, hlen);
        hlen
    }

    /// Sequence space the segment occupies: payload plus one each for SYN and FIN
    /// (RFC 9293 §3.4, SEG.LEN).
    pub fn seg_len(&self, payload_len: usize) -> u32 {
        let mut n = u32::try_from(payload_len).unwrap_or(u32::MAX);
        if self.flags.contains(Flags::SYN) {
            n = n.saturating_add(1);
        }
        if self.flags.contains(Flags::FIN) {
            n = n.saturating_add(1);
        }
        n
    }
}

/// The pseudo-header sum of a TCP segment of `tcp_len` bytes from `src` to `dst`: IPv4's
/// (RFC 9293 §3.1) or IPv6's (RFC 8200 §8.1, Linux `tcp_v6_check`). `None` when the two
/// addresses are of different families or the length does not fit IPv4's 16 bits.
pub fn pseudo_header_sum(src: IpAddr, dst: IpAddr, tcp_len: usize) -> Option<u32> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            Some(checksum::pseudo_header_v4(s, d, PROTOCOL, u16::try_from(tcp_len).ok()?))
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            Some(checksum::pseudo_header_v6(s, d, PROTOCOL, u32::try_from(tcp_len).ok()?))
        }
        _ => None,
    }
}

/// Compute the full software checksum over pseudo-header and `segment` (header + payload) and
/// store it in the checksum field (RFC 9293 §3.1; IPv6's pseudo-header per RFC 8200 §8.1).
/// Does nothing if `segment` is shorter than the fixed header or the addresses are of
/// different families.
pub fn fill_checksum(segment: &mut [u8], src: impl Into<IpAddr>, dst: impl Into<IpAddr>) {
    if segment.len() < HEADER_LEN {
        return;
    }
    let Some(pseudo) = pseudo_header_sum(src.into(), dst.into(), segment.len()) else { return };
    let mut p = Packet::new_unchecked(&mut *segment);
    p.set_checksum(0);
    let c = !checksum::fold(checksum::sum(segment, pseudo));
    Packet::new_unchecked(segment).set_checksum(c);
}

/// Whether the checksum of `segment` (header + payload) is correct.
pub fn verify_checksum(segment: &[u8], src: impl Into<IpAddr>, dst: impl Into<IpAddr>) -> bool {
    if segment.len() < HEADER_LEN || segment.len() > usize::from(u16::MAX) {
        return false;
    }
    let Some(pseudo) = pseudo_header_sum(src.into(), dst.into(), segment.len()) else { return false };
    checksum::fold(checksum::sum(segment, pseudo)) == 0xffff
}

/// The folded, non-complemented pseudo-header sum that TX checksum offload expects in the
/// checksum field (what DPDK's `rte_ipv4_phdr_cksum` returns).
pub fn pseudo_header_checksum(src: Ipv4Addr, dst: Ipv4Addr, tcp_len: u16) -> u16 {
    checksum::fold(checksum::pseudo_header_v4(src, dst, PROTOCOL, tcp_len))
}

#[cfg(test)]
#[path = "tcp_tests.rs"]
mod tests;
