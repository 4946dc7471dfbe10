//! Throughput benchmark of the sans-IO TCP engine against smoltcp, both driven in memory on
//! one core (`cargo bench -p dataplane --no-default-features --bench bulk`).
//!
//! Two stacks of each kind talk over an in-memory wire: every segment is emitted as an IPv4
//! packet (header, TCP header and options, payload copied in, both checksums computed in
//! software) and parsed and checksum-verified on the other side, so the per-segment cost
//! compares like with like. There is no loss and virtual time advances `STEP_NS` per round,
//! so no retransmission timer ever fires. One thread runs both ends: the figures are the
//! throughput of one core doing the sender's and the receiver's work, timed in thread CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`) so that other load on the machine does not skew them.
//!
//! Scenarios (the same for both stacks where the stack can do it):
//!
//! * `bulk/1mss`: 64 MiB one way in 1-MSS segments (TSO off; smoltcp on a 1500-byte MTU).
//! * `bulk/tso-nic`: TSO on, 64 KiB super-segments handed over whole. Software GSO cost is
//!   EXCLUDED: this is a TSO NIC on the sender and LRO/GRO on the receiver. smoltcp has no
//!   TSO; its counterpart runs on a device whose MTU carries the same 44 x 1460-byte segments.
//! * `bulk/tso-gso`: TSO on, each super-segment cut by [`dataplane::offload::gso_segment`]
//!   into 1-MSS frames (software GSO cost INCLUDED); the receiver sees 1-MSS frames. Its
//!   smoltcp counterpart is `bulk/1mss` (the same frames on the wire).
//! * `rr/1k`: request/response, 1 KiB request, 1 KiB response per transaction, no-delay.
//!
//! A summary table (Gbit/s, segments/s, ratio ours / smoltcp) is printed at the end.
//! Environment: `STRAIT_BENCH_MB` (bulk size in MiB, default 64), `STRAIT_BENCH_TXNS`
//! (transactions of one profile run, default 20000) and `STRAIT_BENCH_PROFILE=<scenario>`,
//! which runs one scenario once without criterion, for `valgrind --tool=callgrind` (see
//! `docs/benchmarks/engine.md`).

use std::cell::RefCell;
use std::rc::Rc;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use nix::time::{clock_gettime, ClockId};

use criterion::{Criterion, SamplingMode, Throughput};
use dataplane::offload::gso_segment;
use dataplane::tcp::{ConnId, Engine, Event, HeapPayload, Payload, StackError, StackEvent, TcpConfig, WriteError, WriteFlags};
use dataplane::time::{Duration, Instant};
use dataplane::wire::{ipv4, tcp as wire_tcp};
use smoltcp::iface::{Config as SmolConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp as smol_tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 443;
/// Virtual time per round of the driver loop.
const STEP_NS: u64 = 10_000;
/// A transfer that needs more rounds than this is stuck.
const MAX_ROUNDS: u64 = 10_000_000;
/// Send and receive buffer of every connection, both stacks.
const BUF: usize = 1 << 20;
/// The application's source data: a pattern this long, written as zero-copy slices.
const SRC_LEN: usize = 1 << 20;
/// Largest single write of the bulk sender.
const WRITE_CHUNK: usize = 64 * 1024;
/// Default largest single read of our receiver (`STRAIT_BENCH_READ_MAX` overrides): what a
/// proxy forwarding into a 64 KiB super-segment would take at once.
const READ_MAX: usize = 64 * 1024;
/// Request and response size of the request/response scenario.
const RR_SIZE: usize = 1024;
/// Ethernet MTU (smoltcp 1-MSS runs: MSS 1460, as ours).
const MTU: usize = 1500;
/// smoltcp's "super-segment" MTU: 44 x 1460 bytes of payload, what our `size_goal` makes
/// of `gso_max_size` 65536 (send-path §1).
const SUPER_MTU: usize = 44 * 1460 + 40;

fn pattern_byte(offset: u64) -> u8 {
    let i = offset % SRC_LEN as u64;
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

fn pattern() -> Vec<u8> {
    (0..SRC_LEN as u64).map(pattern_byte).collect()
}

/// Checks received bytes against the pattern at stream offset `at`.
fn verify(at: u64, data: &[u8]) -> Result<(), String> {
    for (i, &b) in data.iter().enumerate() {
        let off = at + i as u64;
        if b != pattern_byte(off) {
            return Err(format!("stream corrupt at offset {off}"));
        }
    }
    Ok(())
}

/// Measures the CPU time of this thread (`CLOCK_THREAD_CPUTIME_ID`), so that other load on
/// the machine does not inflate the figures; wall time where that clock is unavailable.
struct Stopwatch {
    cpu: Option<StdDuration>,
    wall: StdInstant,
}

fn thread_cpu_time() -> Option<StdDuration> {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(StdDuration::from(t))
}

impl Stopwatch {
    fn start() -> Self {
        Stopwatch { cpu: thread_cpu_time(), wall: StdInstant::now() }
    }

    fn elapsed(&self) -> StdDuration {
        match (self.cpu, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => self.wall.elapsed(),
        }
    }
}

/// What one measured run did.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    elapsed: StdDuration,
    /// Payload bytes (bulk) or transactions (request/response).
    units: u64,
    /// Segments sender -> receiver (client -> server).
    segs_ab: u64,
    /// Segments receiver -> sender.
    segs_ba: u64,
}

impl Sample {
    fn segs(&self) -> u64 {
        self.segs_ab + self.segs_ba
    }
}

// ===================================================================================
// Payloads: the receive buffer becomes the payload
// ===================================================================================

/// Packet buffers of the in-memory wire, recycled like an mbuf pool (no allocator churn
/// and page faults from 64 KiB packets).
type Pool = Rc<RefCell<Vec<Vec<u8>>>>;

fn take_buf(pool: &Pool, capacity: usize) -> Vec<u8> {
    let mut v = pool.try_borrow_mut().ok().and_then(|mut p| p.pop()).unwrap_or_default();
    v.clear();
    v.reserve(capacity);
    v
}

/// A packet buffer that goes back to its pool when the last view of it is dropped.
struct PooledBuf {
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
trait FromWire: Payload {
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
struct WireChunk {
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
enum WireParts {
    Empty,
    One(WireChunk),
    Many(Vec<WireChunk>, usize),
}

/// The benchmark's model of the DPDK adapter's `MbufPayload`: the received buffer is kept
/// (no copy) and chains are a `Vec` of views that `append` extends in amortised O(1), as
/// the mbuf chain does. The `strait-1mss-heap` scenario measures the engine with
/// [`HeapPayload`] instead (`Arc<[u8]>` buffers, a copy per received frame).
#[derive(Clone)]
struct WirePayload {
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

// ===================================================================================
// Strait's engine over the in-memory wire
// ===================================================================================

/// How the sender's segments reach the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxMode {
    /// Every segment as one packet (a super-segment too: TSO NIC + LRO receiver).
    Whole,
    /// Super-segments cut by software GSO into 1-MSS frames.
    SoftGso,
}

/// The wire between the engines: IPv4 packets in flight, in one direction at a time.
struct Wire {
    mode: TxMode,
    ip_id: u16,
    frames: VecDeque<Vec<u8>>,
    gso_headers: Vec<u8>,
    pool: Pool,
    /// Packets that failed to emit, parse or verify: must stay 0.
    errors: u64,
}

impl Wire {
    fn new(mode: TxMode) -> Self {
        Wire { mode, ip_id: 0, frames: VecDeque::new(), gso_headers: Vec::new(), pool: Pool::default(), errors: 0 }
    }

    fn next_ip(&mut self, src: Ipv4Addr, dst: Ipv4Addr, payload_len: usize) -> ipv4::Repr {
        self.ip_id = self.ip_id.wrapping_add(1);
        ipv4::Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: ipv4::protocol::TCP,
            payload_len,
            ttl: ipv4::DEFAULT_TTL,
            ident: self.ip_id,
            dont_frag: true,
        }
    }

    /// Emits everything `engine` has to send; returns the number of packets.
    fn transmit<P: FromWire>(&mut self, engine: &mut Engine<P>, now: Instant) -> u64 {
        let mut n = 0;
        engine.poll_transmit(now, &mut |src, dst, seg| {
            let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (src, dst) else { return };
            n += if self.mode == TxMode::SoftGso && seg.mss > 0 && seg.payload.len() > usize::from(seg.mss) {
                self.emit_gso(src, dst, &seg)
            } else {
                self.emit_whole(src, dst, &seg)
            };
        });
        n
    }

    /// IPv4 header + TCP header + payload, both checksums in software (RFC 791, RFC 9293 §3.1).
    fn emit_whole<P: FromWire>(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &dataplane::tcp::Segment<P>) -> u64 {
        let hlen = seg.repr.header_len();
        let ip = self.next_ip(src, dst, hlen + seg.payload.len());
        let mut buf = take_buf(&self.pool, ip.total_len());
        buf.resize(ipv4::HEADER_LEN + hlen, 0);
        if ip.emit(&mut ipv4::Packet::new_unchecked(&mut buf[..])).is_err() {
            self.errors += 1;
            return 0;
        }
        let Some(tcp) = buf.get_mut(ipv4::HEADER_LEN..) else {
            self.errors += 1;
            return 0;
        };
        if seg.repr.emit(tcp) != hlen {
            self.errors += 1;
            return 0;
        }
        for c in seg.payload.chunks() {
            buf.extend_from_slice(c);
        }
        if let Some(tcp) = buf.get_mut(ipv4::HEADER_LEN..) {
            wire_tcp::fill_checksum(tcp, src, dst);
        }
        self.frames.push_back(buf);
        1
    }

    /// Software GSO of a super-segment: Ethernet + IPv4 + TCP headers, then `gso_segment`
    /// writes each 1-MSS frame with both checksums; the Ethernet header is stripped again.
    fn emit_gso<P: FromWire>(&mut self, src: Ipv4Addr, dst: Ipv4Addr, seg: &dataplane::tcp::Segment<P>) -> u64 {
        const ETH: usize = 14;
        let hlen = seg.repr.header_len();
        let ip = self.next_ip(src, dst, hlen);
        self.gso_headers.clear();
        self.gso_headers.resize(ETH + ipv4::HEADER_LEN + hlen, 0);
        if let Some(t) = self.gso_headers.get_mut(12..14) {
            t.copy_from_slice(&[0x08, 0x00]);
        }
        let ok = match self.gso_headers.get_mut(ETH..) {
            Some(l3) => ip.emit(&mut ipv4::Packet::new_unchecked(l3)).is_ok(),
            None => false,
        } && self.gso_headers.get_mut(ETH + ipv4::HEADER_LEN..).is_some_and(|l4| seg.repr.emit(l4) == hlen);
        if !ok {
            self.errors += 1;
            return 0;
        }
        let chunks: Vec<&[u8]> = seg.payload.chunks().collect();
        let (frames, pool) = (&mut self.frames, &self.pool);
        let mut n = 0;
        let r = gso_segment(&self.gso_headers, &chunks, seg.mss, &mut |frame: &[u8]| {
            let l3 = frame.get(ETH..).unwrap_or(&[]);
            let mut buf = take_buf(pool, l3.len());
            buf.extend_from_slice(l3);
            frames.push_back(buf);
            n += 1;
        });
        if r.is_err() {
            self.errors += 1;
        }
        n
    }

    /// Parses and verifies every packet in flight and hands it to `engine`.
    fn deliver<P: FromWire>(&mut self, engine: &mut Engine<P>, now: Instant) {
        while let Some(buf) = self.frames.pop_front() {
            let parsed =
                ipv4::Packet::new_checked(&buf[..]).and_then(|p| ipv4::Repr::parse(&p, true).map(|r| (r, p.header_len())));
            let Ok((ip, hlen)) = parsed else {
                self.errors += 1;
                continue;
            };
            if ip.protocol != ipv4::protocol::TCP {
                self.errors += 1;
                continue;
            }
            let seg = P::from_wire(buf, &self.pool).slice(hlen..hlen + ip.payload_len);
            if engine.handle_datagram(ip.src_addr, ip.dst_addr, seg, false, now).is_err() {
                self.errors += 1;
            }
        }
    }
}

/// Two engines, one connection between them: `a` the client, `b` the server.
struct OurPair<P: FromWire> {
    a: Engine<P>,
    b: Engine<P>,
    ca: ConnId,
    cb: ConnId,
    now: Instant,
    wire: Wire,
    read_max: usize,
    segs_ab: u64,
    segs_ba: u64,
}

fn our_config(tso: bool, nodelay: bool) -> TcpConfig {
    TcpConfig { tso, nodelay, rcvbuf: BUF as u32, sndbuf: BUF as u32, ..TcpConfig::default() }
}

impl<P: FromWire> OurPair<P> {
    fn new(cfg: TcpConfig, mode: TxMode) -> Result<Self, String> {
        let mut a = Engine::new(cfg.clone(), [1; 16], Instant::ZERO);
        let mut b = Engine::new(cfg, [2; 16], Instant::ZERO);
        let server = SocketAddrV4::new(IP_B, PORT);
        let lid = b.listen(server).map_err(|e| format!("listen: {e}"))?;
        let ca = a.connect(IP_A, server, Instant::ZERO).map_err(|e| format!("connect: {e}"))?;
        let mut wire = Wire::new(mode);
        let (mut cb, mut connected) = (None, false);
        let mut now = Instant::ZERO;
        for _ in 0..100 {
            wire.transmit(&mut a, now);
            wire.deliver(&mut b, now);
            while let Some(ev) = b.poll_event() {
                if let StackEvent::Acceptable(l) = ev {
                    if l == lid && cb.is_none() {
                        cb = b.accept(l);
                    }
                }
            }
            wire.transmit(&mut b, now);
            wire.deliver(&mut a, now);
            while let Some(ev) = a.poll_event() {
                connected |= ev == StackEvent::Conn(ca, Event::Connected);
            }
            now += Duration::from_nanos(STEP_NS);
            if let (Some(cb), true) = (cb, connected) {
                let read_max = usize::try_from(env_u64("STRAIT_BENCH_READ_MAX", READ_MAX as u64)).unwrap_or(READ_MAX);
                return Ok(OurPair { a, b, ca, cb, now, wire, read_max, segs_ab: 0, segs_ba: 0 });
            }
        }
        Err("handshake did not complete".into())
    }

    /// Client -> server: emit, carry, parse, process.
    fn pump_ab(&mut self) {
        self.segs_ab += self.wire.transmit(&mut self.a, self.now);
        self.wire.deliver(&mut self.b, self.now);
    }

    /// Server -> client.
    fn pump_ba(&mut self) {
        self.segs_ba += self.wire.transmit(&mut self.b, self.now);
        self.wire.deliver(&mut self.a, self.now);
    }

    /// Advances virtual time, runs due timers and drains the event queues.
    fn tick(&mut self) {
        self.now += Duration::from_nanos(STEP_NS);
        let now = self.now;
        for e in [&mut self.a, &mut self.b] {
            if e.next_deadline().is_some_and(|d| d <= now) {
                e.handle_timeouts(now);
            }
            while e.poll_event().is_some() {}
        }
    }

    /// Reads everything `conn` has; returns the bytes read.
    fn read_all(&mut self, server: bool, check_at: Option<u64>) -> Result<u64, String> {
        let (engine, conn) = if server { (&mut self.b, self.cb) } else { (&mut self.a, self.ca) };
        let mut n = 0u64;
        loop {
            match engine.read(conn, self.read_max, self.now) {
                Ok(Some(p)) => {
                    if let Some(at) = check_at {
                        let mut off = at + n;
                        for c in p.chunks() {
                            verify(off, c)?;
                            off += c.len() as u64;
                        }
                    }
                    n += p.len() as u64;
                }
                Ok(None) => return Ok(n),
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Writes as much of `data` as the send buffer takes.
    fn write(engine: &mut Engine<P>, conn: ConnId, data: P, now: Instant) -> Result<usize, String> {
        match engine.write(conn, data, WriteFlags::NONE, now) {
            Ok(n) => Ok(n),
            Err(StackError::Write(WriteError::NoSpace)) => Ok(0),
            Err(e) => Err(format!("write: {e}")),
        }
    }
}

/// Sends `total` bytes client -> server; verifies them when `check`.
#[inline(never)]
fn measured_bulk_strait<P: FromWire>(p: &mut OurPair<P>, src: &P, total: u64, check: bool) -> Result<(), String> {
    let (mut sent, mut recvd, mut rounds) = (0u64, 0u64, 0u64);
    while recvd < total {
        while sent < total {
            let off = (sent % SRC_LEN as u64) as usize;
            let n = WRITE_CHUNK.min(SRC_LEN - off).min(usize::try_from(total - sent).unwrap_or(usize::MAX));
            let w = OurPair::<P>::write(&mut p.a, p.ca, src.slice(off..off + n), p.now)?;
            sent += w as u64;
            if w < n {
                break;
            }
        }
        p.pump_ab();
        recvd += p.read_all(true, check.then_some(recvd))?;
        p.pump_ba();
        p.tick();
        rounds += 1;
        if rounds > MAX_ROUNDS {
            return Err(format!("bulk transfer stuck at {recvd} of {total} bytes"));
        }
    }
    if p.wire.errors > 0 {
        return Err(format!("{} packets failed to emit or parse", p.wire.errors));
    }
    Ok(())
}

/// `n` transactions: 1 KiB request, 1 KiB response.
#[inline(never)]
fn measured_rr_strait<P: FromWire>(p: &mut OurPair<P>, req: &P, resp: &P, n: u64, check: bool) -> Result<(), String> {
    for _ in 0..n {
        if OurPair::<P>::write(&mut p.a, p.ca, req.clone(), p.now)? != RR_SIZE {
            return Err("request not accepted whole".into());
        }
        let mut got = 0u64;
        for round in 0.. {
            p.pump_ab();
            got += p.read_all(true, check.then_some(got))?;
            if got >= RR_SIZE as u64 {
                break;
            }
            p.pump_ba();
            p.tick();
            if round > 1000 {
                return Err("request stuck".into());
            }
        }
        if OurPair::<P>::write(&mut p.b, p.cb, resp.clone(), p.now)? != RR_SIZE {
            return Err("response not accepted whole".into());
        }
        got = 0;
        for round in 0.. {
            p.pump_ba();
            got += p.read_all(false, check.then_some(got))?;
            if got >= RR_SIZE as u64 {
                break;
            }
            p.pump_ab();
            p.tick();
            if round > 1000 {
                return Err("response stuck".into());
            }
        }
        p.tick();
    }
    if p.wire.errors > 0 {
        return Err(format!("{} packets failed to emit or parse", p.wire.errors));
    }
    Ok(())
}

fn run_bulk_strait<P: FromWire>(tso: bool, mode: TxMode, src: &P, total: u64, check: bool) -> Result<Sample, String> {
    let mut p = OurPair::<P>::new(our_config(tso, false), mode)?;
    let t = Stopwatch::start();
    measured_bulk_strait(&mut p, src, total, check)?;
    Ok(Sample { elapsed: t.elapsed(), units: total, segs_ab: p.segs_ab, segs_ba: p.segs_ba })
}

// ===================================================================================
// smoltcp over the same kind of in-memory wire
// ===================================================================================

/// A queue device (like smoltcp's `Loopback`, but one end of a pair, with pooled buffers).
/// Medium IP: packets are IPv4 datagrams, as on our wire.
struct QueueDevice {
    mtu: usize,
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    free: Vec<Vec<u8>>,
    spent: Vec<Vec<u8>>,
}

struct QueueRx<'a> {
    buf: Vec<u8>,
    spent: &'a mut Vec<Vec<u8>>,
}

struct QueueTx<'a> {
    tx: &'a mut VecDeque<Vec<u8>>,
    free: &'a mut Vec<Vec<u8>>,
}

impl RxToken for QueueRx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        let QueueRx { buf, spent } = self;
        let r = f(&buf);
        spent.push(buf);
        r
    }
}

impl TxToken for QueueTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = self.free.pop().unwrap_or_default();
        // smoltcp writes every byte of the packet: no need to zero a reused buffer.
        if buf.len() < len {
            buf.resize(len, 0);
        } else {
            buf.truncate(len);
        }
        let r = f(&mut buf);
        self.tx.push_back(buf);
        r
    }
}

impl Device for QueueDevice {
    type RxToken<'a> = QueueRx<'a>;
    type TxToken<'a> = QueueTx<'a>;

    fn receive(&mut self, _timestamp: SmolInstant) -> Option<(QueueRx<'_>, QueueTx<'_>)> {
        let buf = self.rx.pop_front()?;
        Some((QueueRx { buf, spent: &mut self.spent }, QueueTx { tx: &mut self.tx, free: &mut self.free }))
    }

    fn transmit(&mut self, _timestamp: SmolInstant) -> Option<QueueTx<'_>> {
        Some(QueueTx { tx: &mut self.tx, free: &mut self.free })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        // Default checksum capabilities: compute and verify IPv4 and TCP checksums in software.
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = self.mtu;
        caps
    }
}

struct SmolPair {
    dev_a: QueueDevice,
    dev_b: QueueDevice,
    if_a: Interface,
    if_b: Interface,
    set_a: SocketSet<'static>,
    set_b: SocketSet<'static>,
    ha: SocketHandle,
    hb: SocketHandle,
    now_ns: u64,
    segs_ab: u64,
    segs_ba: u64,
}

fn smol_socket(nodelay: bool) -> smol_tcp::Socket<'static> {
    let mut s = smol_tcp::Socket::new(smol_tcp::SocketBuffer::new(vec![0; BUF]), smol_tcp::SocketBuffer::new(vec![0; BUF]));
    s.set_nagle_enabled(!nodelay);
    // Reno, like our NewReno. No timestamps: smoltcp 0.12 does not take the 12 option bytes
    // off the MSS, so full-sized segments with timestamps exceed the MTU and are dropped
    // (without `proto-ipv4-fragmentation`). Ours keeps them on (its default): 12 more header
    // bytes and 1448-byte instead of 1460-byte payloads per segment.
    s.set_tsval_generator(None);
    s.set_congestion_control(smol_tcp::CongestionControl::Reno);
    s
}

fn smol_iface(dev: &mut QueueDevice, ip: Ipv4Addr) -> Result<Interface, String> {
    let mut cfg = SmolConfig::new(HardwareAddress::Ip);
    cfg.random_seed = 0x5eed;
    let mut iface = Interface::new(cfg, dev, SmolInstant::ZERO);
    let mut ok = true;
    iface.update_ip_addrs(|a| ok = a.push(IpCidr::new(IpAddress::Ipv4(ip), 24)).is_ok());
    if ok {
        Ok(iface)
    } else {
        Err("smoltcp: no room for an address".into())
    }
}

impl SmolPair {
    fn new(mtu: usize, nodelay: bool) -> Result<Self, String> {
        let dev = |mtu| QueueDevice { mtu, rx: VecDeque::new(), tx: VecDeque::new(), free: Vec::new(), spent: Vec::new() };
        let (mut dev_a, mut dev_b) = (dev(mtu), dev(mtu));
        let mut if_a = smol_iface(&mut dev_a, IP_A)?;
        let if_b = smol_iface(&mut dev_b, IP_B)?;
        let mut set_a = SocketSet::new(vec![]);
        let mut set_b = SocketSet::new(vec![]);
        let mut server = smol_socket(nodelay);
        server.listen(PORT).map_err(|e| format!("smoltcp listen: {e}"))?;
        let hb = set_b.add(server);
        let mut client = smol_socket(nodelay);
        client
            .connect(if_a.context(), (IpAddress::Ipv4(IP_B), PORT), 49152)
            .map_err(|e| format!("smoltcp connect: {e}"))?;
        let ha = set_a.add(client);
        let mut p = SmolPair { dev_a, dev_b, if_a, if_b, set_a, set_b, ha, hb, now_ns: 0, segs_ab: 0, segs_ba: 0 };
        for _ in 0..100 {
            p.pump_ab();
            p.poll_b();
            p.pump_ba();
            p.poll_a();
            p.tick();
            if p.set_a.get::<smol_tcp::Socket>(p.ha).may_send() && p.set_b.get::<smol_tcp::Socket>(p.hb).may_recv() {
                return Ok(p);
            }
        }
        Err("smoltcp handshake did not complete".into())
    }

    fn now(&self) -> SmolInstant {
        SmolInstant::from_micros(i64::try_from(self.now_ns / 1000).unwrap_or(i64::MAX))
    }

    /// Polls until the interface sends nothing more (smoltcp emits one segment per socket
    /// and poll).
    fn poll_a(&mut self) {
        let now = self.now();
        loop {
            let before = self.dev_a.tx.len();
            self.if_a.poll(now, &mut self.dev_a, &mut self.set_a);
            if self.dev_a.tx.len() == before {
                break;
            }
        }
    }

    fn poll_b(&mut self) {
        let now = self.now();
        loop {
            let before = self.dev_b.tx.len();
            self.if_b.poll(now, &mut self.dev_b, &mut self.set_b);
            if self.dev_b.tx.len() == before {
                break;
            }
        }
    }

    /// Client polls (ACKs in, data out); its packets move to the server's receive queue.
    fn pump_ab(&mut self) {
        self.poll_a();
        self.segs_ab += self.dev_a.tx.len() as u64;
        self.dev_b.rx.append(&mut self.dev_a.tx);
        self.dev_a.free.append(&mut self.dev_b.spent);
    }

    fn pump_ba(&mut self) {
        self.poll_b();
        self.segs_ba += self.dev_b.tx.len() as u64;
        self.dev_a.rx.append(&mut self.dev_b.tx);
        self.dev_b.free.append(&mut self.dev_a.spent);
    }

    fn tick(&mut self) {
        self.now_ns += STEP_NS;
    }

    fn read_all(set: &mut SocketSet<'static>, h: SocketHandle, check_at: Option<u64>) -> Result<u64, String> {
        let s = set.get_mut::<smol_tcp::Socket>(h);
        let mut n = 0u64;
        loop {
            let r = s.recv(|buf| {
                let v = match check_at {
                    Some(at) => verify(at + n, buf),
                    None => Ok(()),
                };
                (buf.len(), v.map(|()| buf.len()))
            });
            match r {
                Ok(Ok(0)) => return Ok(n),
                Ok(Ok(k)) => n += k as u64,
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(format!("smoltcp recv: {e}")),
            }
        }
    }

    fn write(set: &mut SocketSet<'static>, h: SocketHandle, data: &[u8]) -> Result<usize, String> {
        let s = set.get_mut::<smol_tcp::Socket>(h);
        let mut n = 0;
        while n < data.len() {
            match s.send_slice(data.get(n..).unwrap_or(&[])) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => return Err(format!("smoltcp send: {e}")),
            }
        }
        Ok(n)
    }
}

/// The smoltcp counterpart of [`measured_bulk_strait`]. smoltcp's API copies written data
/// into its send ring (`send_slice`); reads are zero-copy views of its receive ring.
#[inline(never)]
fn measured_bulk_smoltcp(p: &mut SmolPair, src: &[u8], total: u64, check: bool) -> Result<(), String> {
    let (mut sent, mut recvd, mut rounds) = (0u64, 0u64, 0u64);
    while recvd < total {
        while sent < total {
            let off = (sent % SRC_LEN as u64) as usize;
            let n = WRITE_CHUNK.min(SRC_LEN - off).min(usize::try_from(total - sent).unwrap_or(usize::MAX));
            let w = SmolPair::write(&mut p.set_a, p.ha, src.get(off..off + n).unwrap_or(&[]))?;
            sent += w as u64;
            if w < n {
                break;
            }
        }
        p.pump_ab();
        p.poll_b();
        recvd += SmolPair::read_all(&mut p.set_b, p.hb, check.then_some(recvd))?;
        p.pump_ba();
        p.tick();
        rounds += 1;
        if rounds > MAX_ROUNDS {
            let (a, b) = (p.set_a.get::<smol_tcp::Socket>(p.ha), p.set_b.get::<smol_tcp::Socket>(p.hb));
            return Err(format!(
                "smoltcp bulk transfer stuck at {recvd} of {total} bytes: client {} (send queue {}), server {} (recv queue {}), segments {}/{}",
                a.state(),
                a.send_queue(),
                b.state(),
                b.recv_queue(),
                p.segs_ab,
                p.segs_ba
            ));
        }
    }
    Ok(())
}

#[inline(never)]
fn measured_rr_smoltcp(p: &mut SmolPair, req: &[u8], resp: &[u8], n: u64, check: bool) -> Result<(), String> {
    for _ in 0..n {
        if SmolPair::write(&mut p.set_a, p.ha, req)? != req.len() {
            return Err("smoltcp request not accepted whole".into());
        }
        let mut got = 0u64;
        for round in 0.. {
            p.pump_ab();
            p.poll_b();
            got += SmolPair::read_all(&mut p.set_b, p.hb, check.then_some(got))?;
            if got >= RR_SIZE as u64 {
                break;
            }
            p.pump_ba();
            p.tick();
            if round > 1000 {
                return Err("smoltcp request stuck".into());
            }
        }
        if SmolPair::write(&mut p.set_b, p.hb, resp)? != resp.len() {
            return Err("smoltcp response not accepted whole".into());
        }
        got = 0;
        for round in 0.. {
            p.pump_ba();
            p.poll_a();
            got += SmolPair::read_all(&mut p.set_a, p.ha, check.then_some(got))?;
            if got >= RR_SIZE as u64 {
                break;
            }
            p.pump_ab();
            p.tick();
            if round > 1000 {
                return Err("smoltcp response stuck".into());
            }
        }
        p.tick();
    }
    Ok(())
}

fn run_bulk_smoltcp(mtu: usize, src: &[u8], total: u64, check: bool) -> Result<Sample, String> {
    let mut p = SmolPair::new(mtu, false)?;
    let t = Stopwatch::start();
    measured_bulk_smoltcp(&mut p, src, total, check)?;
    Ok(Sample { elapsed: t.elapsed(), units: total, segs_ab: p.segs_ab, segs_ba: p.segs_ba })
}

// ===================================================================================
// Scenarios, criterion, summary
// ===================================================================================

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    Strait1Mss,
    Strait1MssHeap,
    StraitTsoNic,
    StraitTsoGso,
    StraitRr,
    Smoltcp1Mss,
    Smoltcp64k,
    SmoltcpRr,
}

impl Scenario {
    const ALL: [Scenario; 8] = [
        Scenario::Strait1Mss,
        Scenario::Strait1MssHeap,
        Scenario::StraitTsoNic,
        Scenario::StraitTsoGso,
        Scenario::StraitRr,
        Scenario::Smoltcp1Mss,
        Scenario::Smoltcp64k,
        Scenario::SmoltcpRr,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Strait1Mss => "strait-1mss",
            Scenario::Strait1MssHeap => "strait-1mss-heap",
            Scenario::StraitTsoNic => "strait-tso-nic",
            Scenario::StraitTsoGso => "strait-tso-gso",
            Scenario::StraitRr => "strait-rr",
            Scenario::Smoltcp1Mss => "smoltcp-1mss",
            Scenario::Smoltcp64k => "smoltcp-64k",
            Scenario::SmoltcpRr => "smoltcp-rr",
        }
    }

    fn is_rr(self) -> bool {
        matches!(self, Scenario::StraitRr | Scenario::SmoltcpRr)
    }

    /// One bulk transfer.
    fn run_bulk(self, d: &Data, total: u64, check: bool) -> Result<Sample, String> {
        match self {
            Scenario::Strait1Mss => run_bulk_strait(false, TxMode::Whole, &d.src, total, check),
            Scenario::Strait1MssHeap => run_bulk_strait(false, TxMode::Whole, &d.src_heap, total, check),
            Scenario::StraitTsoNic => run_bulk_strait(true, TxMode::Whole, &d.src, total, check),
            Scenario::StraitTsoGso => run_bulk_strait(true, TxMode::SoftGso, &d.src, total, check),
            Scenario::Smoltcp1Mss => run_bulk_smoltcp(MTU, &d.src_vec, total, check),
            Scenario::Smoltcp64k => run_bulk_smoltcp(SUPER_MTU, &d.src_vec, total, check),
            Scenario::StraitRr | Scenario::SmoltcpRr => Err("not a bulk scenario".into()),
        }
    }
}

/// A request/response pair, kept across criterion's calls.
enum RrPair {
    Strait(Box<OurPair<WirePayload>>),
    Smoltcp(Box<SmolPair>),
}

impl RrPair {
    fn new(s: Scenario) -> Result<Self, String> {
        match s {
            Scenario::StraitRr => Ok(RrPair::Strait(Box::new(OurPair::new(our_config(false, true), TxMode::Whole)?))),
            _ => Ok(RrPair::Smoltcp(Box::new(SmolPair::new(MTU, true)?))),
        }
    }

    fn segs(&self) -> (u64, u64) {
        match self {
            RrPair::Strait(p) => (p.segs_ab, p.segs_ba),
            RrPair::Smoltcp(p) => (p.segs_ab, p.segs_ba),
        }
    }

    fn run(&mut self, d: &Data, n: u64, check: bool) -> Result<Sample, String> {
        let (ab, ba) = self.segs();
        let t = Stopwatch::start();
        match self {
            RrPair::Strait(p) => measured_rr_strait(p, &d.req, &d.resp, n, check)?,
            RrPair::Smoltcp(p) => measured_rr_smoltcp(p, &d.src_vec[..RR_SIZE], &d.src_vec[..RR_SIZE], n, check)?,
        }
        let elapsed = t.elapsed();
        let (ab2, ba2) = self.segs();
        Ok(Sample { elapsed, units: n, segs_ab: ab2 - ab, segs_ba: ba2 - ba })
    }
}

/// The applications' data.
struct Data {
    src_vec: Vec<u8>,
    src: WirePayload,
    src_heap: HeapPayload,
    req: WirePayload,
    resp: WirePayload,
}

impl Data {
    fn new() -> Self {
        let src_vec = pattern();
        let src = WirePayload::from_source(&src_vec);
        let src_heap = HeapPayload::from_source(&src_vec);
        let req = src.slice(0..RR_SIZE);
        let resp = src.slice(0..RR_SIZE);
        Data { src_vec, src, src_heap, req, resp }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&v| v > 0).unwrap_or(default)
}

fn fail(msg: &str) -> ! {
    eprintln!("bench failed: {msg}");
    std::process::exit(1)
}

/// Every scenario once with every byte verified, so that the figures measure real transfers.
fn correctness_check(d: &Data) -> Result<(), String> {
    for s in Scenario::ALL {
        if s.is_rr() {
            let sample = RrPair::new(s)?.run(d, 100, true)?;
            if sample.segs() < 200 {
                return Err(format!("{}: {} segments for 100 transactions", s.name(), sample.segs()));
            }
        } else {
            s.run_bulk(d, 8 << 20, true).map_err(|e| format!("{}: {e}", s.name()))?;
        }
    }
    Ok(())
}

/// `STRAIT_BENCH_PROFILE=<scenario>`: one run, no criterion (for callgrind).
fn profile(d: &Data, name: &str) -> Result<(), String> {
    let s = Scenario::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scenario {name:?}; one of {}", names.join(", "))
    })?;
    let sample = if s.is_rr() {
        RrPair::new(s)?.run(d, env_u64("STRAIT_BENCH_TXNS", 20_000), false)?
    } else {
        s.run_bulk(d, env_u64("STRAIT_BENCH_MB", 64) << 20, false)?
    };
    println!(
        "{}: {} {} in {:.3} s; segments a->b {} b->a {} total {}",
        s.name(),
        sample.units,
        if s.is_rr() { "transactions" } else { "bytes" },
        sample.elapsed.as_secs_f64(),
        sample.segs_ab,
        sample.segs_ba,
        sample.segs()
    );
    Ok(())
}

type Results = RefCell<BTreeMap<Scenario, Vec<Sample>>>;

fn record(results: &Results, s: Scenario, sample: Sample) {
    results.borrow_mut().entry(s).or_default().push(sample);
}

/// Median bulk sample by throughput; request/response samples are summed.
fn summarize(samples: &[Sample], rr: bool) -> Option<Sample> {
    if rr {
        let mut t = Sample::default();
        for s in samples {
            t.elapsed += s.elapsed;
            t.units += s.units;
            t.segs_ab += s.segs_ab;
            t.segs_ba += s.segs_ba;
        }
        return (t.units > 0).then_some(t);
    }
    let mut v: Vec<Sample> = samples.to_vec();
    v.sort_by_key(|s| s.elapsed);
    v.get(v.len() / 2).copied()
}

fn print_summary(results: &Results, total: u64) {
    let r = results.borrow();
    let get = |s: Scenario| r.get(&s).and_then(|v| summarize(v, s.is_rr()));
    let gbps = |s: &Sample| s.units as f64 * 8.0 / s.elapsed.as_secs_f64() / 1e9;
    let segs = |s: &Sample| s.segs() as f64 / s.elapsed.as_secs_f64();
    println!();
    println!(
        "==== Summary: one core runs both ends (thread CPU time); {} MiB per bulk transfer, median run ====",
        total >> 20
    );
    println!(
        "{:<16} {:>9} {:>11} {:>10} {:>9} | {:<13} {:>9} {:>11} | {:>11}",
        "scenario", "Gbit/s", "Msegs/s", "data segs", "acks", "smoltcp", "Gbit/s", "Msegs/s", "ours/smol"
    );
    let bulk = [
        (Scenario::Strait1Mss, Scenario::Smoltcp1Mss),
        (Scenario::Strait1MssHeap, Scenario::Smoltcp1Mss),
        (Scenario::StraitTsoNic, Scenario::Smoltcp64k),
        (Scenario::StraitTsoGso, Scenario::Smoltcp1Mss),
    ];
    for (ours, smol) in bulk {
        let (Some(o), Some(s)) = (get(ours), get(smol)) else { continue };
        println!(
            "{:<16} {:>9.2} {:>11.3} {:>10} {:>9} | {:<13} {:>9.2} {:>11.3} | {:>10.2}x",
            ours.name(),
            gbps(&o),
            segs(&o) / 1e6,
            o.segs_ab,
            o.segs_ba,
            smol.name(),
            gbps(&s),
            segs(&s) / 1e6,
            gbps(&o) / gbps(&s)
        );
    }
    if let (Some(o), Some(s)) = (get(Scenario::StraitRr), get(Scenario::SmoltcpRr)) {
        let tps = |s: &Sample| s.units as f64 / s.elapsed.as_secs_f64();
        let us = |s: &Sample| s.elapsed.as_secs_f64() * 1e6 / s.units as f64;
        let spt = |s: &Sample| s.segs() as f64 / s.units as f64;
        println!();
        println!(
            "{:<16} {:>9} {:>11} {:>10} {:>9} | {:<13} {:>9} {:>11} | {:>11}",
            "request/resp", "ktxn/s", "us/txn", "segs/txn", "Msegs/s", "smoltcp", "ktxn/s", "us/txn", "ours/smol"
        );
        println!(
            "{:<16} {:>9.1} {:>11.3} {:>10.2} {:>9.3} | {:<13} {:>9.1} {:>11.3} | {:>10.2}x",
            "strait-rr-1k",
            tps(&o) / 1e3,
            us(&o),
            spt(&o),
            segs(&o) / 1e6,
            "smoltcp-rr",
            tps(&s) / 1e3,
            us(&s),
            tps(&o) / tps(&s)
        );
    }
    println!("(tso-nic: 64 KiB super-segments handed over whole, software GSO cost excluded; its smoltcp");
    println!(" counterpart uses a {SUPER_MTU}-byte MTU. tso-gso: software GSO cost included, compared with smoltcp-1mss.)");
}

fn main() {
    let d = Data::new();
    if let Ok(name) = std::env::var("STRAIT_BENCH_PROFILE") {
        if let Err(e) = profile(&d, &name) {
            fail(&e);
        }
        return;
    }
    if let Err(e) = correctness_check(&d) {
        fail(&e);
    }
    println!("correctness check passed: every scenario delivered every byte intact");

    let total = env_u64("STRAIT_BENCH_MB", 64) << 20;
    let results: Results = RefCell::new(BTreeMap::new());
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(StdDuration::from_millis(500))
        .measurement_time(StdDuration::from_secs(2))
        .configure_from_args();

    {
        let mut g = c.benchmark_group(format!("bulk_{}MiB", total >> 20));
        g.sampling_mode(SamplingMode::Flat).throughput(Throughput::Bytes(total));
        for s in Scenario::ALL.into_iter().filter(|s| !s.is_rr()) {
            g.bench_function(s.name(), |b| {
                b.iter_custom(|iters| {
                    let mut elapsed = StdDuration::ZERO;
                    for _ in 0..iters {
                        match s.run_bulk(&d, total, false) {
                            Ok(sample) => {
                                elapsed += sample.elapsed;
                                record(&results, s, sample);
                            }
                            Err(e) => fail(&format!("{}: {e}", s.name())),
                        }
                    }
                    elapsed
                })
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("rr_1KiB");
        g.throughput(Throughput::Elements(1));
        for s in [Scenario::StraitRr, Scenario::SmoltcpRr] {
            let mut pair = RrPair::new(s).unwrap_or_else(|e| fail(&e));
            g.bench_function(s.name(), |b| {
                b.iter_custom(|iters| match pair.run(&d, iters, false) {
                    Ok(sample) => {
                        record(&results, s, sample);
                        sample.elapsed
                    }
                    Err(e) => fail(&format!("{}: {e}", s.name())),
                })
            });
        }
        g.finish();
    }
    c.final_summary();
    print_summary(&results, total);
}
