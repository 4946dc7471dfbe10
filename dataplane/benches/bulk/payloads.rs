//! The payload types of the `bulk` benchmark's in-memory wire: packet buffers recycled like
//! an mbuf pool, and `WirePayload`, which keeps a received packet's buffer as the payload
//! (as an mbuf is kept), so that Strait's engine is measured with the payload handling it
//! has on a port.

use super::*;

// ===================================================================================
// Payloads: the receive buffer becomes the payload
// ===================================================================================

/// Packet buffers of the in-memory wire, recycled like an mbuf pool (no allocator churn
/// and page faults from 64 KiB packets).
pub(super) type Pool = Rc<RefCell<Vec<Vec<u8>>>>;

pub(super) fn take_buf(pool: &Pool, capacity: usize) -> Vec<u8> {
    let mut v = pool.try_borrow_mut().ok().and_then(|mut p| p.pop()).unwrap_or_default();
    v.clear();
    v.reserve(capacity);
    v
}

/// A packet buffer that goes back to its pool when the last view of it is dropped.
pub(super) struct PooledBuf {
    data: Vec<u8>,
    pool: Pool,
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pool.try_borrow_mut() {
            p.push(core::mem::take(&mut self.data));
        }
    }
}

/// A payload the in-memory wire can hand to the engine: the packet buffer itself.
pub(super) trait FromWire: Payload {
    /// The received packet, owned; `pool` takes the buffer back when it is released.
    fn from_wire(buf: Vec<u8>, pool: &Pool) -> Self;
    /// The application's source data.
    fn from_source(data: &[u8]) -> Self;
}

impl FromWire for HeapPayload {
    /// `HeapPayload` stores `Arc<[u8]>`: taking a `Vec` allocates and copies once more.
    fn from_wire(buf: Vec<u8>, _pool: &Pool) -> Self {
        HeapPayload::from_vec(buf)
    }

    fn from_source(data: &[u8]) -> Self {
        HeapPayload::from_slice(data)
    }
}

/// One received buffer (shared) and the range of it in view.
#[derive(Clone)]
pub(super) struct WireChunk {
    buf: Arc<PooledBuf>,
    start: usize,
    end: usize,
}

impl WireChunk {
    fn len(&self) -> usize {
        self.end - self.start
    }

    fn bytes(&self) -> &[u8] {
        self.buf.data.get(self.start..self.end).unwrap_or(&[])
    }
}

#[derive(Clone)]
pub(super) enum WireParts {
    Empty,
    One(WireChunk),
    Many(Vec<WireChunk>, usize),
}

/// The benchmark's model of the DPDK adapter's `MbufPayload`: the received buffer is kept
/// (no copy) and chains are a `Vec` of views that `append` extends in amortised O(1), as
/// the mbuf chain does. The `strait-1mss-heap` scenario measures the engine with
/// [`HeapPayload`] instead (`Arc<[u8]>` buffers, a copy per received frame).
#[derive(Clone)]
pub(super) struct WirePayload {
    parts: WireParts,
}

impl core::fmt::Debug for WirePayload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "WirePayload({} bytes in {} chunks)", self.len(), self.chunk_count())
    }
}

impl WirePayload {
    fn chunk_slice(&self) -> &[WireChunk] {
        match &self.parts {
            WireParts::Empty => &[],
            WireParts::One(c) => core::slice::from_ref(c),
            WireParts::Many(cs, _) => cs,
        }
    }

    fn from_chunks(mut chunks: Vec<WireChunk>) -> Self {
        chunks.retain(|c| c.len() > 0);
        let parts = match chunks.len() {
            0 => WireParts::Empty,
            1 => match chunks.pop() {
                Some(c) => WireParts::One(c),
                None => WireParts::Empty,
            },
            _ => {
                let len = chunks.iter().map(WireChunk::len).sum();
                WireParts::Many(chunks, len)
            }
        };
        WirePayload { parts }
    }
}

impl FromWire for WirePayload {
    fn from_wire(buf: Vec<u8>, pool: &Pool) -> Self {
        let end = buf.len();
        // An atomic count on purpose, like the mbuf's `refcnt` (and `HeapPayload`'s `Arc`).
        #[allow(clippy::arc_with_non_send_sync)]
        let buf = Arc::new(PooledBuf { data: buf, pool: pool.clone() });
        // One view, as `MbufPayload::from_rx` makes (no chain list).
        WirePayload { parts: if end == 0 { WireParts::Empty } else { WireParts::One(WireChunk { buf, start: 0, end }) } }
    }

    fn from_source(data: &[u8]) -> Self {
        Self::from_wire(data.to_vec(), &Pool::default())
    }
}

impl Payload for WirePayload {
    fn empty() -> Self {
        WirePayload { parts: WireParts::Empty }
    }

    fn len(&self) -> usize {
        match &self.parts {
            WireParts::Empty => 0,
            WireParts::One(c) => c.len(),
            WireParts::Many(_, len) => *len,
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
        if let WireParts::One(c) = &self.parts {
            let c = WireChunk { buf: c.buf.clone(), start: c.start + start, end: c.start + end };
            return WirePayload { parts: WireParts::One(c) };
        }
        let mut out = Vec::new();
        let mut off = 0usize;
        for c in self.chunk_slice() {
            let (c_start, c_end) = (off, off + c.len());
            off = c_end;
            if c_end <= start {
                continue;
            }
            if c_start >= end {
                break;
            }
            let s = start.max(c_start) - c_start;
            let e = end.min(c_end) - c_start;
            out.push(WireChunk { buf: c.buf.clone(), start: c.start + s, end: c.start + e });
        }
        Self::from_chunks(out)
    }

    // As the adapter's `MbufPayload::advance`: the view's start moves.
    fn advance(&mut self, n: usize) {
        match &mut self.parts {
            WireParts::One(c) if n < c.len() => c.start += n,
            WireParts::Empty => {}
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
        // As `MbufPayload::append`: the chain grows in place, coalescing a view that
        // continues the previous one in one buffer (skb_can_coalesce).
        let len = self.len() + other.len();
        let mut chunks = match core::mem::replace(&mut self.parts, WireParts::Empty) {
            WireParts::Empty => Vec::new(),
            WireParts::One(c) => {
                let mut v = Vec::with_capacity(4);
                v.push(c);
                v
            }
            WireParts::Many(cs, _) => cs,
        };
        let push = |chunks: &mut Vec<WireChunk>, c: WireChunk| match chunks.last_mut() {
            Some(last) if Arc::ptr_eq(&last.buf, &c.buf) && last.end == c.start => last.end = c.end,
            _ => chunks.push(c),
        };
        match other.parts {
            WireParts::Empty => {}
            WireParts::One(c) => push(&mut chunks, c),
            WireParts::Many(cs, _) => {
                let mut incoming = cs.into_iter();
                if let Some(first) = incoming.next() {
                    push(&mut chunks, first);
                }
                chunks.extend(incoming);
            }
        }
        self.parts = match chunks.len() {
            0 => WireParts::Empty,
            1 => match chunks.pop() {
                Some(c) => WireParts::One(c),
                None => WireParts::Empty,
            },
            _ => WireParts::Many(chunks, len),
        };
    }

    fn chunk_count(&self) -> usize {
        self.chunk_slice().len()
    }

    fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunk_slice().iter().map(WireChunk::bytes)
    }
}
