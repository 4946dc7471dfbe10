//! [`MbufPayload`]: the TCP engine's [`Payload`] over DPDK mbufs, without copying.
//!
//! A payload is a list of chunks, each a handle to one single-segment mbuf (one DPDK
//! reference, see [`Mbuf::clone_ref`]) plus the byte range of its data in view:
//!
//! * receive: the received frame *is* the payload — the chunk views the TCP segment inside
//!   it (headers and Ethernet padding outside the range); nothing is copied;
//! * `clone` takes one more reference on each chunk's mbuf; `slice`, `split_*` narrow the
//!   ranges; `append` concatenates the lists (merging views that continue each other);
//! * transmit: [`MbufPayload::chain_onto`] puts one indirect mbuf per chunk
//!   ([`Mbuf::clone_range`], DPDK's `rte_pktmbuf_clone`) behind a header mbuf, so the
//!   bytes the peer sent are the bytes that leave (the kernel's `skb_clone` + frags).
//!
//! Copies happen only on fallbacks that cannot be avoided — a received frame the PMD
//! scattered over several segments, software GSO and linearising for a port without
//! multi-segment transmit — and each one is counted ([`copy_stats`]), so that a test can
//! assert the echo path over a capable port copies nothing.
//!
//! This module has no `unsafe`: it builds on the safe [`Mbuf`] API.

use core::fmt;
use core::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{DpdkError, Mbuf, Mempool};
use crate::tcp::Payload;
use crate::wire::checksum;

static COPIES: AtomicU64 = AtomicU64::new(0);
static COPIED_BYTES: AtomicU64 = AtomicU64::new(0);

/// Process-wide count of payload copies (see the module docs for when they happen).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Copy operations.
    pub copies: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// The payload copies made so far in this process.
pub fn copy_stats() -> CopyStats {
    CopyStats { copies: COPIES.load(Ordering::Relaxed), bytes: COPIED_BYTES.load(Ordering::Relaxed) }
}

/// Records one copy of `bytes` payload bytes (used by the lcore's copying fallbacks too).
pub fn count_copy(bytes: usize) {
    COPIES.fetch_add(1, Ordering::Relaxed);
    COPIED_BYTES.fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// A view of `len` bytes at `off` of a single-segment mbuf's data.
#[derive(Debug)]
struct Chunk {
    m: Mbuf,
    off: usize,
    len: usize,
}

impl Clone for Chunk {
    fn clone(&self) -> Self {
        Chunk { m: self.m.clone_ref(), off: self.off, len: self.len }
    }
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        self.m.data().get(self.off..self.off + self.len).unwrap_or(&[])
    }

    /// The sub-view `[start, end)` of this chunk (offsets relative to the view).
    fn sub(&self, start: usize, end: usize) -> Chunk {
        Chunk { m: self.m.clone_ref(), off: self.off + start, len: end - start }
    }
}

#[derive(Debug, Clone)]
enum Parts {
    Empty,
    One(Chunk),
    /// Two or more chunks and their total length.
    Many(Vec<Chunk>, usize),
}

/// Why a received frame could not become a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The segment's range lies outside the frame.
    #[error("segment range {offset}+{len} outside a {frame_len}-byte frame")]
    OutOfRange {
        /// Offset of the segment.
        offset: usize,
        /// Its length.
        len: usize,
        /// The frame's length.
        frame_len: usize,
    },
    /// An mbuf operation failed (pool exhausted while copying a scattered frame).
    #[error(transparent)]
    Dpdk(#[from] DpdkError),
}

/// A zero-copy byte sequence over mbufs: the [`Payload`] of the production TCP engine.
#[derive(Clone)]
pub struct MbufPayload {
    parts: Parts,
}

impl fmt::Debug for MbufPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MbufPayload({} bytes in {} chunks)", self.len(), self.chunk_count())
    }
}

impl MbufPayload {
    /// The `len` bytes at `offset` of a received frame, taking over the frame's
    /// reference. A single-segment frame (the normal case) is viewed in place; a frame
    /// scattered over several segments is copied into fresh mbufs from `pool` (counted in
    /// [`copy_stats`]), since a view must lie within one segment's data.
    pub fn from_rx(m: Mbuf, offset: usize, len: usize, pool: &Mempool) -> Result<MbufPayload, PayloadError> {
        let frame_len = m.len();
        if offset.checked_add(len).filter(|&end| end <= frame_len).is_none() {
            return Err(PayloadError::OutOfRange { offset, len, frame_len });
        }
        if len == 0 {
            return Ok(MbufPayload::empty());
        }
        if m.nb_segs() == 1 {
            return Ok(MbufPayload { parts: Parts::One(Chunk { m, off: offset, len }) });
        }
        Self::copy_scattered(&m, offset, len, pool)
    }

    fn copy_scattered(m: &Mbuf, offset: usize, len: usize, pool: &Mempool) -> Result<MbufPayload, PayloadError> {
        let mut out = MbufPayload::empty();
        let mut cur: Option<Mbuf> = None;
        let mut skip = offset;
        let mut need = len;
        for seg in m.segments() {
            if need == 0 {
                break;
            }
            if skip >= seg.len() {
                skip -= seg.len();
                continue;
            }
            let mut src = seg.get(skip..).unwrap_or(&[]);
            skip = 0;
            src = src.get(..need.min(src.len())).unwrap_or(&[]);
            need -= src.len();
            while !src.is_empty() {
                let mut dst = match cur.take() {
                    Some(d) if d.tailroom() > 0 => d,
                    Some(full) => {
                        out.append(MbufPayload::from_mbuf(full));
                        Mbuf::alloc(pool)?
                    }
                    None => Mbuf::alloc(pool)?,
                };
                let n = dst.tailroom().min(src.len());
                let (head, rest) = src.split_at(n);
                match dst.append(n) {
                    Some(room) => room.copy_from_slice(head),
                    None => return Err(DpdkError::InvalidArgument("fresh mbuf refused append".into()).into()),
                }
                src = rest;
                cur = Some(dst);
            }
        }
        if let Some(last) = cur {
            out.append(MbufPayload::from_mbuf(last));
        }
        count_copy(len);
        Ok(out)
    }

    /// The whole data of a single-segment mbuf (a chain is viewed as its first segment
    /// only: build chains with [`MbufPayload::append`] instead).
    pub fn from_mbuf(m: Mbuf) -> MbufPayload {
        let len = m.data_len();
        if len == 0 {
            return MbufPayload::empty();
        }
        MbufPayload { parts: Parts::One(Chunk { m, off: 0, len }) }
    }

    /// New data an application produces (copied once into mbufs from `pool`; not a
    /// payload copy, so not counted).
    pub fn from_slice(pool: &Mempool, mut data: &[u8]) -> Result<MbufPayload, DpdkError> {
        let mut out = MbufPayload::empty();
        while !data.is_empty() {
            let mut m = Mbuf::alloc(pool)?;
            let n = m.tailroom().min(data.len());
            if n == 0 {
                return Err(DpdkError::InvalidArgument("mbufs without data room".into()));
            }
            let (head, rest) = data.split_at(n);
            m.append(n)
                .ok_or_else(|| DpdkError::InvalidArgument("fresh mbuf refused append".into()))?
                .copy_from_slice(head);
            out.append(MbufPayload::from_mbuf(m));
            data = rest;
        }
        Ok(out)
    }

    fn chunk_slice(&self) -> &[Chunk] {
        match &self.parts {
            Parts::Empty => &[],
            Parts::One(c) => core::slice::from_ref(c),
            Parts::Many(cs, _) => cs,
        }
    }

    fn from_chunks(mut chunks: Vec<Chunk>) -> Self {
        chunks.retain(|c| c.len > 0);
        match chunks.len() {
            0 => Self::empty(),
            1 => match chunks.pop() {
                Some(c) => MbufPayload { parts: Parts::One(c) },
                None => Self::empty(),
            },
            _ => {
                let len = chunks.iter().map(|c| c.len).sum();
                MbufPayload { parts: Parts::Many(chunks, len) }
            }
        }
    }

    /// Appends `c` to a chain, coalescing a view that continues the previous one in the
    /// same mbuf (the kernel's skb_can_coalesce): slices of one received segment re-joined.
    fn push_coalescing(chunks: &mut Vec<Chunk>, c: Chunk) {
        if let Some(last) = chunks.last_mut() {
            if last.m.same_mbuf(&c.m) && last.off + last.len == c.off {
                last.len += c.len;
                return;
            }
        }
        chunks.push(c);
    }

    /// Chains one indirect mbuf per chunk (header from `pool`, data shared) behind `head`,
    /// which must be exclusively owned. On error `head` may hold part of the payload; drop
    /// it. No byte is copied.
    pub fn chain_onto(&self, head: &mut Mbuf, pool: &Mempool) -> Result<(), DpdkError> {
        for c in self.chunk_slice() {
            let view = c.m.clone_range(pool, c.off, c.len)?;
            head.chain(view).map_err(|_| DpdkError::InvalidArgument("cannot chain payload view".into()))?;
        }
        Ok(())
    }

    /// The one's-complement sum of the bytes, continuing `initial` as if they started
    /// at an even offset (RFC 1071 §2: odd-length chunks swap the byte order of what
    /// follows). For software TCP checksums over a gather list.
    pub fn checksum_sum(&self, initial: u32) -> u32 {
        let mut acc = u64::from(initial);
        let mut odd = false;
        for c in self.chunk_slice() {
            let b = c.bytes();
            let s = checksum::fold(checksum::sum(b, 0));
            acc += u64::from(if odd { s.swap_bytes() } else { s });
            odd ^= b.len() % 2 == 1;
        }
        while acc > 0xffff_ffff {
            acc = (acc & 0xffff_ffff) + (acc >> 32);
        }
        u32::try_from(acc).unwrap_or(u32::MAX)
    }

    /// Copies the bytes into the front of `out` (linearising fallbacks; counted in
    /// [`copy_stats`]). Returns the bytes copied (at most `out.len()`).
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        let mut n = 0;
        for c in self.chunk_slice() {
            let b = c.bytes();
            let Some(dst) = out.get_mut(n..) else { break };
            let take = b.len().min(dst.len());
            if let (Some(d), Some(s)) = (dst.get_mut(..take), b.get(..take)) {
                d.copy_from_slice(s);
            }
            n += take;
        }
        count_copy(n);
        n
    }
}

impl Payload for MbufPayload {
    fn empty() -> Self {
        MbufPayload { parts: Parts::Empty }
    }

    fn len(&self) -> usize {
        match &self.parts {
            Parts::Empty => 0,
            Parts::One(c) => c.len,
            Parts::Many(_, len) => *len,
        }
    }

    fn slice(&self, range: Range<usize>) -> Self {
        let len = self.len();
        let start = range.start.min(len);
        let end = range.end.clamp(start, len);
        if start == end {
            return Self::empty();
        }
        if start == 0 && end == len {
            return self.clone();
        }
        if let Parts::One(c) = &self.parts {
            return MbufPayload { parts: Parts::One(c.sub(start, end)) };
        }
        let mut out = Vec::new();
        let mut off = 0usize;
        for c in self.chunk_slice() {
            let (c_start, c_end) = (off, off + c.len);
            off = c_end;
            if c_end <= start {
                continue;
            }
            if c_start >= end {
                break;
            }
            out.push(c.sub(start.max(c_start) - c_start, end.min(c_end) - c_start));
        }
        Self::from_chunks(out)
    }

    fn advance(&mut self, n: usize) {
        match &mut self.parts {
            // `rte_pktmbuf_adj` on the view: the chunk's mbuf reference is kept as it is.
            Parts::One(c) if n < c.len => {
                c.off += n;
                c.len -= n;
            }
            Parts::Empty => {}
            _ if n == 0 => {}
            _ => *self = self.slice(n..self.len()),
        }
    }

    fn append(&mut self, other: Self) {
        if other.is_empty() {
            return;
        }
        if self.is_empty() {
            *self = other;
            return;
        }
        // The chain grows in place (amortised O(1) per append, as linking an mbuf chain
        // is): a `Vec` is made once, when a single view becomes a chain; the list is not
        // rebuilt nor re-summed each time, which made a read joining n segments O(n^2) and
        // allocated on every append.
        let len = self.len() + other.len();
        let mut chunks = match core::mem::replace(&mut self.parts, Parts::Empty) {
            Parts::Empty => Vec::new(),
            Parts::One(c) => {
                let mut v = Vec::with_capacity(4);
                v.push(c);
                v
            }
            Parts::Many(cs, _) => cs,
        };
        match other.parts {
            Parts::Empty => {}
            Parts::One(c) => Self::push_coalescing(&mut chunks, c),
            Parts::Many(cs, _) => {
                let mut incoming = cs.into_iter();
                if let Some(first) = incoming.next() {
                    Self::push_coalescing(&mut chunks, first);
                }
                chunks.extend(incoming);
            }
        }
        self.parts = match chunks.len() {
            0 => Parts::Empty,
            1 => match chunks.pop() {
                Some(c) => Parts::One(c),
                None => Parts::Empty,
            },
            _ => Parts::Many(chunks, len),
        };
    }

    fn chunk_count(&self) -> usize {
        self.chunk_slice().len()
    }

    fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunk_slice().iter().map(Chunk::bytes)
    }

    fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for c in self.chunks() {
            v.extend_from_slice(c);
        }
        count_copy(v.len());
        v
    }

    /// The whole buffer of every chunk's mbuf (headroom, data and tailroom: `buf_len`; a
    /// chunk is one segment). Read on every segment queued or freed, for the memory
    /// accounting, so one field read per chunk.
    fn truesize(&self) -> usize {
        self.chunk_slice().iter().map(|c| c.m.buf_len()).sum()
    }

    /// Copies `other` into the last chunk's mbuf after the bytes in view (over frame
    /// padding, then into the tailroom), when that mbuf is referenced by this chunk alone
    /// (refcount 1, so no other view or transmission can see the bytes change). Counted
    /// in [`copy_stats`].
    fn try_copy_append(&mut self, other: &Self) -> bool {
        let n = other.len();
        if n == 0 {
            return true;
        }
        let last = match &mut self.parts {
            Parts::Empty => return false,
            Parts::One(c) => c,
            Parts::Many(cs, _) => match cs.last_mut() {
                Some(c) => c,
                None => return false,
            },
        };
        if last.m.nb_segs() != 1 || last.m.is_shared() {
            return false;
        }
        let end = last.off + last.len;
        let grow = (end + n).saturating_sub(last.m.data_len());
        if grow > last.m.tailroom() || (grow > 0 && last.m.append(grow).is_none()) {
            return false;
        }
        let Some(dst) = last.m.data_mut().and_then(|d| d.get_mut(end..end + n)) else { return false };
        let mut at = 0;
        for c in other.chunks() {
            if let Some(d) = dst.get_mut(at..at + c.len()) {
                d.copy_from_slice(c);
            }
            at += c.len();
        }
        last.len += n;
        if let Parts::Many(_, len) = &mut self.parts {
            *len += n;
        }
        count_copy(n);
        true
    }
}
