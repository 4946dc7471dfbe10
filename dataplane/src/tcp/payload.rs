//! The payload abstraction the TCP engine moves around without copying.
//!
//! The engine never owns bytes itself: the send queue holds what the application wrote, the
//! receive queue holds what the wire delivered, and both are handed on by reference. A
//! [`Payload`] is a cheaply clonable view of a byte sequence made of one or more contiguous
//! chunks (the kernel's skb linear area plus page frags; the DPDK adapter's mbuf chain).
//! Cloning takes a reference, slicing and splitting adjust offsets, appending links chains.
//!
//! [`HeapPayload`] is the heap implementation used by tests, the simulator and benchmarks.

use core::fmt;
use core::ops::Range;
use std::sync::Arc;

/// A zero-copy byte sequence: the unit of data the TCP engine queues, transmits and delivers.
///
/// Implementations must make `clone`, `slice`, `split_off` and `append` cheap (reference
/// counts and offsets, no byte copies). Indices are byte offsets from the start of `self`;
/// out-of-range indices are clamped rather than panicking.
pub trait Payload: Clone + fmt::Debug {
    /// The empty payload.
    fn empty() -> Self;

    /// Number of bytes.
    fn len(&self) -> usize;

    /// Whether there are no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in `range` (clamped to `0..len`), sharing storage with `self`.
    fn slice(&self, range: Range<usize>) -> Self;

    /// Drops the first `n` bytes (clamped) in place (Linux `__skb_pull`, DPDK
    /// `rte_pktmbuf_adj`): a received segment loses its TCP header this way. The default
    /// goes through [`slice`](Self::slice); a payload whose first chunk is a view moves the
    /// view's start instead, taking no new reference to the buffer and dropping none.
    fn advance(&mut self, n: usize) {
        if n > 0 {
            *self = self.slice(n..self.len());
        }
    }

    /// Splits at `at` (clamped): `self` keeps `[0, at)`, the result is `[at, len)`.
    fn split_off(&mut self, at: usize) -> Self {
        // Splits at an end move the whole payload instead of taking and dropping
        // references (the send queue cuts a write that fits one segment at its end).
        if at >= self.len() {
            return Self::empty();
        }
        if at == 0 {
            return core::mem::replace(self, Self::empty());
        }
        let tail = self.slice(at..self.len());
        *self = self.slice(0..at);
        tail
    }

    /// Splits at `at` (clamped): the result is `[0, at)`, `self` keeps `[at, len)`.
    fn split_to(&mut self, at: usize) -> Self {
        if at >= self.len() {
            return core::mem::replace(self, Self::empty());
        }
        if at == 0 {
            return Self::empty();
        }
        let head = self.slice(0..at);
        self.advance(at);
        head
    }

    /// Appends `other` after the last byte of `self` (chain concatenation, no byte copy).
    fn append(&mut self, other: Self);

    /// Number of contiguous chunks (chain segments); the send queue stops coalescing into a
    /// queued segment once this reaches the configured chain limit.
    fn chunk_count(&self) -> usize;

    /// The contiguous chunks, in order; empty chunks may be skipped.
    fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_;

    /// Bytes of buffer this payload pins (Linux `skb->truesize`): every buffer it views
    /// counts whole, however few of its bytes are in view, so a 1-byte segment received
    /// in a 2 KiB mbuf costs 2 KiB. Connections charge their queues with it
    /// (`sk_rmem_alloc`, `sk_wmem_queued`). Defaults to the length (no overhead known).
    fn truesize(&self) -> usize {
        self.len()
    }

    /// Appends a copy of `other` into the spare room after the last byte of `self`'s
    /// last buffer, when that buffer is referenced by `self` alone and the bytes fit:
    /// the copy branch of Linux `skb_try_coalesce` (used by `tcp_try_coalesce`,
    /// `tcp_ooo_try_coalesce` and `tcp_collapse`). Small segments then share one buffer
    /// instead of pinning one each. Returns whether it copied; `false` leaves both as
    /// they were (the default for payload types that cannot write into their buffers).
    fn try_copy_append(&mut self, other: &Self) -> bool {
        let _ = other;
        false
    }

    /// Copies the bytes into a new vector (tests and diagnostics only: the data path never
    /// copies).
    fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for c in self.chunks() {
            v.extend_from_slice(c);
        }
        v
    }
}

/// One shared, immutable buffer and the byte range of it that is in view.
#[derive(Clone)]
struct Chunk {
    buf: Arc<[u8]>,
    start: usize,
    end: usize,
    /// The whole buffer is charged ([`HeapPayload::in_buffer`], a model of an mbuf);
    /// otherwise only the bytes in view, since tests slice one large write into many
    /// segments that share its buffer.
    whole: bool,
}

impl Chunk {
    fn len(&self) -> usize {
        self.end - self.start
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }
}

#[derive(Clone)]
enum Parts {
    Empty,
    One(Chunk),
    /// A chain of two or more chunks; shared so that cloning is a reference count, and a
    /// `Vec` so that appending to a chain nobody else holds extends it in place (amortised
    /// O(1), like linking an mbuf chain) instead of copying the chunk list each time, which
    /// made a read joining n segments O(n^2).
    Many(Arc<Vec<Chunk>>, usize),
}

/// A heap-backed [`Payload`]: `Arc<[u8]>` buffers plus ranges, chained when appended.
#[derive(Clone)]
pub struct HeapPayload {
    parts: Parts,
}

impl HeapPayload {
    /// A payload viewing a copy of `data` at the start of a buffer of `buf_size` bytes
    /// (at least `data.len()`): models a received frame in an mbuf, whose
    /// [`Payload::truesize`] is the whole buffer and whose spare room
    /// [`Payload::try_copy_append`] can fill.
    pub fn in_buffer(data: &[u8], buf_size: usize) -> Self {
        if data.is_empty() {
            return Self::empty();
        }
        let mut buf = vec![0u8; buf_size.max(data.len())];
        if let Some(dst) = buf.get_mut(..data.len()) {
            dst.copy_from_slice(data);
        }
        HeapPayload { parts: Parts::One(Chunk { buf: Arc::from(buf), start: 0, end: data.len(), whole: true }) }
    }

    /// A payload viewing a copy of `data` (the one copy made when data enters the engine
    /// from a test or simulator).
    pub fn from_slice(data: &[u8]) -> Self {
        Self::from_vec(data.to_vec())
    }

    /// A payload taking ownership of `data`.
    pub fn from_vec(data: Vec<u8>) -> Self {
        if data.is_empty() {
            return Self::empty();
        }
        let end = data.len();
        HeapPayload { parts: Parts::One(Chunk { buf: Arc::from(data), start: 0, end, whole: false }) }
    }

    fn chunk_slice(&self) -> &[Chunk] {
        match &self.parts {
            Parts::Empty => &[],
            Parts::One(c) => core::slice::from_ref(c),
            Parts::Many(cs, _) => cs.as_slice(),
        }
    }

    fn from_chunks(mut chunks: Vec<Chunk>) -> Self {
        chunks.retain(|c| c.len() > 0);
        match chunks.len() {
            0 => Self::empty(),
            1 => match chunks.pop() {
                Some(c) => HeapPayload { parts: Parts::One(c) },
                None => Self::empty(),
            },
            _ => {
                let len = chunks.iter().map(Chunk::len).sum();
                HeapPayload { parts: Parts::Many(Arc::new(chunks), len) }
            }
        }
    }
}

impl From<&[u8]> for HeapPayload {
    fn from(data: &[u8]) -> Self {
        Self::from_slice(data)
    }
}

impl From<Vec<u8>> for HeapPayload {
    fn from(data: Vec<u8>) -> Self {
        Self::from_vec(data)
    }
}

impl fmt::Debug for HeapPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeapPayload({} bytes in {} chunks)", self.len(), self.chunk_count())
    }
}

impl PartialEq for HeapPayload {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.to_vec() == other.to_vec()
    }
}

impl Eq for HeapPayload {}

impl Payload for HeapPayload {
    fn empty() -> Self {
        HeapPayload { parts: Parts::Empty }
    }

    fn len(&self) -> usize {
        match &self.parts {
            Parts::Empty => 0,
            Parts::One(c) => c.len(),
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
            let c = Chunk { buf: c.buf.clone(), start: c.start + start, end: c.start + end, whole: c.whole };
            return HeapPayload { parts: Parts::One(c) };
        }
        let mut out = Vec::new();
        let mut off = 0usize;
        for c in self.chunk_slice() {
            let c_start = off;
            let c_end = off + c.len();
            off = c_end;
            if c_end <= start {
                continue;
            }
            if c_start >= end {
                break;
            }
            let s = start.max(c_start) - c_start;
            let e = end.min(c_end) - c_start;
            out.push(Chunk { buf: c.buf.clone(), start: c.start + s, end: c.start + e, whole: c.whole });
        }
        Self::from_chunks(out)
    }

    fn advance(&mut self, n: usize) {
        match &mut self.parts {
            Parts::One(c) if n < c.len() => c.start += n,
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
        // Coalesce when `other` continues the same buffer (the kernel's skb_can_coalesce).
        if let (Parts::One(a), Parts::One(b)) = (&mut self.parts, &other.parts) {
            if Arc::ptr_eq(&a.buf, &b.buf) && a.end == b.start {
                a.end = b.end;
                return;
            }
        }
        match &mut self.parts {
            Parts::Many(cs, len) => {
                // Copies the list only when another payload shares it (`Arc::make_mut`).
                let cs = Arc::make_mut(cs);
                cs.extend(other.chunk_slice().iter().filter(|c| c.len() > 0).cloned());
                *len += other.len();
            }
            _ => {
                let mut chunks: Vec<Chunk> = Vec::with_capacity(self.chunk_count() + other.chunk_count());
                chunks.extend_from_slice(self.chunk_slice());
                chunks.extend_from_slice(other.chunk_slice());
                *self = Self::from_chunks(chunks);
            }
        }
    }

    fn chunk_count(&self) -> usize {
        self.chunk_slice().len()
    }

    fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunk_slice().iter().map(Chunk::bytes)
    }

    fn truesize(&self) -> usize {
        self.chunk_slice().iter().map(|c| if c.whole { c.buf.len() } else { c.len() }).sum()
    }

    fn try_copy_append(&mut self, other: &Self) -> bool {
        let n = other.len();
        if n == 0 {
            return true;
        }
        let last = match &mut self.parts {
            Parts::Empty => return false,
            Parts::One(c) => c,
            Parts::Many(cs, _) => match Arc::get_mut(cs).and_then(|cs| cs.last_mut()) {
                Some(c) => c,
                None => return false,
            },
        };
        let end = last.end;
        // Only a buffer nobody else views may be written (`skb_cloned` refuses it too).
        let Some(buf) = Arc::get_mut(&mut last.buf) else { return false };
        let Some(dst) = buf.get_mut(end..end.saturating_add(n)) else { return false };
        let mut at = 0;
        for c in other.chunks() {
            if let Some(d) = dst.get_mut(at..at + c.len()) {
                d.copy_from_slice(c);
            }
            at += c.len();
        }
        last.end = end + n;
        if let Parts::Many(_, len) = &mut self.parts {
            *len += n;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_and_split_share_storage_and_clamp() {
        let p = HeapPayload::from_slice(b"hello world");
        assert_eq!(p.slice(0..5).to_vec(), b"hello");
        assert_eq!(p.slice(6..100).to_vec(), b"world");
        assert!(p.slice(20..30).is_empty());
        let mut q = p.clone();
        let tail = q.split_off(5);
        assert_eq!(q.to_vec(), b"hello");
        assert_eq!(tail.to_vec(), b" world");
        let mut r = p.clone();
        let head = r.split_to(6);
        assert_eq!(head.to_vec(), b"hello ");
        assert_eq!(r.to_vec(), b"world");
    }

    #[test]
    fn advance_drops_the_front_in_place_as_slice_would() {
        let one = HeapPayload::in_buffer(b"0123456789", 64);
        let mut many = HeapPayload::from_slice(b"0123");
        many.append(HeapPayload::from_slice(b"456"));
        many.append(HeapPayload::from_slice(b"789"));
        for p in [one, many] {
            for n in 0..=12 {
                let mut q = p.clone();
                q.advance(n);
                let want = p.slice(n..p.len());
                assert_eq!(q.to_vec(), want.to_vec(), "advance({n})");
                assert_eq!(q.truesize(), want.truesize(), "advance({n}) keeps the buffer charge");
            }
        }
    }

    #[test]
    fn append_chains_and_coalesces_contiguous_views() {
        let p = HeapPayload::from_slice(b"abcdef");
        let mut a = p.slice(0..3);
        a.append(p.slice(3..6));
        assert_eq!(a.chunk_count(), 1, "contiguous views of one buffer coalesce");
        assert_eq!(a.to_vec(), b"abcdef");

        let mut c = HeapPayload::from_slice(b"12");
        c.append(HeapPayload::from_slice(b"345"));
        c.append(HeapPayload::from_slice(b"6789"));
        assert_eq!(c.chunk_count(), 3);
        assert_eq!(c.len(), 9);
        assert_eq!(c.slice(1..8).to_vec(), b"2345678");
        assert_eq!(c.slice(2..5).chunk_count(), 1);
        let mut d = c.clone();
        let t = d.split_off(4);
        assert_eq!(d.to_vec(), b"1234");
        assert_eq!(t.to_vec(), b"56789");
        c.append(HeapPayload::empty());
        assert_eq!(c.len(), 9);
    }

    #[test]
    fn truesize_counts_whole_buffers_and_copy_append_fills_spare_room() {
        let mut a = HeapPayload::in_buffer(b"a", 2048);
        assert_eq!((a.len(), a.truesize()), (1, 2048));
        assert!(a.try_copy_append(&HeapPayload::in_buffer(b"bc", 2048)));
        assert_eq!((a.to_vec(), a.truesize()), (b"abc".to_vec(), 2048));
        let shared = a.clone();
        assert!(!a.try_copy_append(&HeapPayload::from_slice(b"d")), "a shared buffer is not written");
        drop(shared);
        assert!(!a.try_copy_append(&HeapPayload::from_slice(&[0u8; 2046])), "does not fit");
        assert_eq!(a.to_vec(), b"abc");
        let mut b = HeapPayload::from_slice(b"xy");
        assert!(!b.try_copy_append(&HeapPayload::from_slice(b"z")), "no spare room");
        let mut chain = HeapPayload::from_slice(b"12");
        chain.append(HeapPayload::in_buffer(b"3", 64));
        assert!(chain.try_copy_append(&HeapPayload::from_slice(b"45")));
        assert_eq!((chain.to_vec(), chain.len(), chain.truesize()), (b"12345".to_vec(), 5, 66));
        let big = HeapPayload::from_slice(&[0u8; 1000]);
        assert_eq!(big.slice(0..10).truesize(), 10, "slices of a write charge their bytes");
    }
}
