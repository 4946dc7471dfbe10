//! The engine allocates nothing per segment or per transaction in the steady state.
//!
//! Two engines talk over an in-memory wire like the bulk benchmark's (`benches/bulk.rs`):
//! every segment is emitted as an IPv4 packet with both checksums and parsed and verified
//! on the other side. The wire does not allocate once warm: frames live in a pool of
//! reference-counted buffers, reused once no payload views them (an mbuf pool), and the
//! payload type keeps two views inline. After a warm-up, dhat's heap statistics (its
//! testing mode; the global allocator of this test binary only) count the allocations over
//! a bulk transfer of N segments and over N request/response transactions.
//!
//! Every test here shares the one global profiler, so they run one at a time (a mutex).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Mutex;

use dataplane::tcp::{ConnId, Engine, Event, Payload, StackEvent, TcpConfig, WriteFlags};
use dataplane::time::{Duration, Instant};
use dataplane::wire::{ipv4, tcp as wire_tcp};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

static PROFILER: Mutex<()> = Mutex::new(());

const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 443;
const STEP_NS: u64 = 10_000;
const BUF: usize = 1 << 20;
/// The application's source data, written again and again as slices of one buffer.
const SRC_LEN: usize = 1 << 20;
/// Frames the wire's pool holds from the start: more than a 1 MiB window of 1-MSS frames
/// in flight plus the receive queue.
const POOL_FRAMES: usize = 4096;

/// The source's byte at `i`.
fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

// ----- the payload: pooled frame buffers, two views inline -----

#[derive(Clone)]
struct View {
    buf: Rc<Vec<u8>>,
    start: usize,
    end: usize,
}

impl View {
    fn len(&self) -> usize {
        self.end - self.start
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }
}

/// Up to two views inline (a segment spanning two writes, a read spanning two received
/// segments); a longer chain allocates (`Many`), which the steady state must not need.
#[derive(Clone)]
enum Parts {
    Empty,
    One(View),
    Two([View; 2]),
    Many(Vec<View>),
}

#[derive(Clone)]
struct PoolPayload {
    parts: Parts,
    len: usize,
}

impl core::fmt::Debug for PoolPayload {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PoolPayload({} bytes in {} views)", self.len(), self.chunk_count())
    }
}

impl PoolPayload {
    fn one(v: View) -> Self {
        let len = v.len();
        PoolPayload { parts: Parts::One(v), len }
    }

    fn views(&self) -> &[View] {
        match &self.parts {
            Parts::Empty => &[],
            Parts::One(v) => core::slice::from_ref(v),
            Parts::Two(vs) => vs,
            Parts::Many(vs) => vs,
        }
    }

    /// Appends a view, joining it to the last one when it continues it in one buffer.
    fn push(&mut self, v: View) {
        if v.len() == 0 {
            return;
        }
        self.len += v.len();
        self.parts = match core::mem::replace(&mut self.parts, Parts::Empty) {
            Parts::Empty => Parts::One(v),
            Parts::One(mut a) => {
                if Rc::ptr_eq(&a.buf, &v.buf) && a.end == v.start {
                    a.end = v.end;
                    Parts::One(a)
                } else {
                    Parts::Two([a, v])
                }
            }
            Parts::Two([a, mut b]) => {
                if Rc::ptr_eq(&b.buf, &v.buf) && b.end == v.start {
                    b.end = v.end;
                    Parts::Two([a, b])
                } else {
                    Parts::Many(vec![a, b, v])
                }
            }
            Parts::Many(mut vs) => {
                match vs.last_mut() {
                    Some(last) if Rc::ptr_eq(&last.buf, &v.buf) && last.end == v.start => last.end = v.end,
                    _ => vs.push(v),
                }
                Parts::Many(vs)
            }
        };
    }
}

impl Payload for PoolPayload {
    fn empty() -> Self {
        PoolPayload { parts: Parts::Empty, len: 0 }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn slice(&self, range: Range<usize>) -> Self {
        let len = self.len();
        let start = range.start.min(len);
        let end = range.end.clamp(start, len);
        if start == 0 && end == len {
            return self.clone();
        }
        let mut out = Self::empty();
        let mut off = 0usize;
        for v in self.views() {
            let (v_start, v_end) = (off, off + v.len());
            off = v_end;
            if v_end <= start || v_start >= end {
                continue;
            }
            let s = start.max(v_start) - v_start;
            let e = end.min(v_end) - v_start;
            out.push(View { buf: v.buf.clone(), start: v.start + s, end: v.start + e });
        }
        out
    }

    fn append(&mut self, other: Self) {
        match other.parts {
            Parts::Empty => {}
            Parts::One(v) => self.push(v),
            Parts::Two(vs) => vs.into_iter().for_each(|v| self.push(v)),
            Parts::Many(vs) => vs.into_iter().for_each(|v| self.push(v)),
        }
    }

    fn chunk_count(&self) -> usize {
        self.views().len()
    }

    fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.views().iter().map(View::bytes)
    }
}

// ----- the wire -----

/// Frame buffers; one is free again when only the pool holds it.
struct Pool {
    frames: Vec<Rc<Vec<u8>>>,
    cursor: usize,
}

impl Pool {
    fn new() -> Self {
        Pool { frames: (0..POOL_FRAMES).map(|_| Rc::new(Vec::with_capacity(2048))).collect(), cursor: 0 }
    }

    /// Fills a free buffer with `fill`; a new one only when every buffer is in use.
    fn frame(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> Rc<Vec<u8>> {
        let n = self.frames.len();
        for i in 0..n {
            let at = (self.cursor + i) % n;
            if let Some(buf) = self.frames.get_mut(at).and_then(Rc::get_mut) {
                buf.clear();
                fill(buf);
                self.cursor = at + 1;
                return self.frames[at].clone();
            }
        }
        let mut buf = Vec::with_capacity(2048);
        fill(&mut buf);
        let buf = Rc::new(buf);
        self.frames.push(buf.clone());
        buf
    }
}

struct Wire {
    pool: Pool,
    in_flight: VecDeque<Rc<Vec<u8>>>,
    ip_id: u16,
    errors: u64,
    segments: u64,
}

impl Wire {
    fn new() -> Self {
        Wire { pool: Pool::new(), in_flight: VecDeque::with_capacity(POOL_FRAMES), ip_id: 0, errors: 0, segments: 0 }
    }

    fn transmit(&mut self, engine: &mut Engine<PoolPayload>, now: Instant) {
        let Wire { pool, in_flight, ip_id, errors, segments } = self;
        engine.poll_transmit(now, &mut |src, dst, seg| {
            let (IpAddr::V4(src), IpAddr::V4(dst)) = (src, dst) else {
                *errors += 1;
                return;
            };
            let hlen = seg.repr.header_len();
            *ip_id = ip_id.wrapping_add(1);
            let ip = ipv4::Repr {
                src_addr: src,
                dst_addr: dst,
                protocol: ipv4::protocol::TCP,
                payload_len: hlen + seg.payload.len(),
                ttl: ipv4::DEFAULT_TTL,
                ident: *ip_id,
                dont_frag: true,
            };
            let mut ok = true;
            let frame = pool.frame(|buf| {
                buf.resize(ipv4::HEADER_LEN + hlen, 0);
                ok &= ip.emit(&mut ipv4::Packet::new_unchecked(&mut buf[..])).is_ok();
                ok &= buf.get_mut(ipv4::HEADER_LEN..).is_some_and(|tcp| seg.repr.emit(tcp) == hlen);
                for c in seg.payload.chunks() {
                    buf.extend_from_slice(c);
                }
                if let Some(tcp) = buf.get_mut(ipv4::HEADER_LEN..) {
                    wire_tcp::fill_checksum(tcp, src, dst);
                }
            });
            if ok {
                in_flight.push_back(frame);
                *segments += 1;
            } else {
                *errors += 1;
            }
        });
    }

    fn deliver(&mut self, engine: &mut Engine<PoolPayload>, now: Instant) {
        while let Some(buf) = self.in_flight.pop_front() {
            let parsed =
                ipv4::Packet::new_checked(&buf[..]).and_then(|p| ipv4::Repr::parse(&p, true).map(|r| (r, p.header_len())));
            let Ok((ip, hlen)) = parsed else {
                self.errors += 1;
                continue;
            };
            let seg = PoolPayload::one(View { start: hlen, end: hlen + ip.payload_len, buf });
            if engine.handle_datagram(ip.src_addr, ip.dst_addr, seg, false, now).is_err() {
                self.errors += 1;
            }
        }
    }
}

// ----- two engines, one connection -----

struct Pair {
    a: Engine<PoolPayload>,
    b: Engine<PoolPayload>,
    ca: ConnId,
    cb: ConnId,
    now: Instant,
    wire: Wire,
    /// The application's data: one buffer, written as slices of it.
    src: PoolPayload,
}

impl Pair {
    fn new(nodelay: bool) -> Pair {
        let cfg = TcpConfig { nodelay, rcvbuf: BUF as u32, sndbuf: BUF as u32, ..TcpConfig::default() };
        let mut a = Engine::new(cfg.clone(), [1; 16], Instant::ZERO);
        let mut b = Engine::new(cfg, [2; 16], Instant::ZERO);
        let server = SocketAddrV4::new(IP_B, PORT);
        let lid = b.listen(server).expect("listen");
        let ca = a.connect(IP_A, server, Instant::ZERO).expect("connect");
        let data: Vec<u8> = (0..SRC_LEN).map(pattern).collect();
        let src = PoolPayload::one(View { buf: Rc::new(data), start: 0, end: SRC_LEN });
        let mut p = Pair { a, b, ca, cb: ca, now: Instant::ZERO, wire: Wire::new(), src };
        let (mut cb, mut connected) = (None, false);
        for _ in 0..100 {
            p.wire.transmit(&mut p.a, p.now);
            p.wire.deliver(&mut p.b, p.now);
            while let Some(ev) = p.b.poll_event() {
                if ev == StackEvent::Acceptable(lid) && cb.is_none() {
                    cb = p.b.accept(lid);
                }
            }
            p.wire.transmit(&mut p.b, p.now);
            p.wire.deliver(&mut p.a, p.now);
            while let Some(ev) = p.a.poll_event() {
                connected |= ev == StackEvent::Conn(ca, Event::Connected);
            }
            p.now += Duration::from_nanos(STEP_NS);
            if let (Some(cb), true) = (cb, connected) {
                p.cb = cb;
                return p;
            }
        }
        panic!("handshake did not complete");
    }

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

    /// Reads what `server` (or the client) has, at most a segment's worth at a time (a
    /// larger read joins more segments into a chain than this payload holds inline; an
    /// mbuf chain would link them without allocating); checks the bytes against the
    /// source at stream offset `*at` and returns how many were read.
    fn read_all(&mut self, server: bool, at: &mut usize) -> usize {
        let (engine, conn) = if server { (&mut self.b, self.cb) } else { (&mut self.a, self.ca) };
        let mut n = 0;
        while let Some(p) = engine.read(conn, 1448, self.now).expect("read") {
            for c in p.chunks() {
                for &b in c {
                    assert_eq!(b, pattern(*at % SRC_LEN), "stream corrupt at {at}");
                    *at += 1;
                }
            }
            n += p.len();
        }
        n
    }

    /// `total` bytes client -> server, written as 64 KiB slices of the source.
    fn bulk(&mut self, total: usize) {
        let (mut sent, mut recvd, mut at) = (0, 0, 0);
        let mut rounds = 0;
        while recvd < total {
            while sent < total {
                let off = sent % SRC_LEN;
                let n = (64 * 1024).min(SRC_LEN - off).min(total - sent);
                let w = match self.a.write(self.ca, self.src.slice(off..off + n), WriteFlags::NONE, self.now) {
                    Ok(w) => w,
                    Err(dataplane::tcp::StackError::Write(dataplane::tcp::WriteError::NoSpace)) => 0,
                    Err(e) => panic!("write: {e}"),
                };
                sent += w;
                if w < n {
                    break;
                }
            }
            self.wire.transmit(&mut self.a, self.now);
            self.wire.deliver(&mut self.b, self.now);
            recvd += self.read_all(true, &mut at);
            self.wire.transmit(&mut self.b, self.now);
            self.wire.deliver(&mut self.a, self.now);
            self.tick();
            rounds += 1;
            assert!(rounds < 10_000_000, "bulk transfer stuck at {recvd} of {total}");
        }
        assert_eq!(self.wire.errors, 0);
    }

    /// `n` transactions of a 1 KiB request and a 1 KiB response.
    fn request_response(&mut self, n: usize) {
        for _ in 0..n {
            for server in [true, false] {
                let (engine, conn) = if server { (&mut self.a, self.ca) } else { (&mut self.b, self.cb) };
                let w = engine.write(conn, self.src.slice(0..1024), WriteFlags::NONE, self.now).expect("write");
                assert_eq!(w, 1024);
                let (mut got, mut at) = (0, 0);
                for round in 0.. {
                    let (from, to) = if server { (&mut self.a, &mut self.b) } else { (&mut self.b, &mut self.a) };
                    self.wire.transmit(from, self.now);
                    self.wire.deliver(to, self.now);
                    got += self.read_all(server, &mut at);
                    if got >= 1024 {
                        break;
                    }
                    let (from, to) = if server { (&mut self.b, &mut self.a) } else { (&mut self.a, &mut self.b) };
                    self.wire.transmit(from, self.now);
                    self.wire.deliver(to, self.now);
                    self.tick();
                    assert!(round < 1000, "transaction stuck");
                }
            }
            self.tick();
        }
        assert_eq!(self.wire.errors, 0);
    }
}

fn allocations() -> (u64, u64) {
    let s = dhat::HeapStats::get();
    (s.total_blocks, s.total_bytes)
}

#[test]
fn bulk_transfer_allocates_nothing_per_segment() {
    let _one = PROFILER.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut p = Pair::new(false);
    p.bulk(32 << 20);
    let (blocks, bytes) = allocations();
    let segments = p.wire.segments;
    p.bulk(16 << 20);
    let (blocks2, bytes2) = allocations();
    let segments = p.wire.segments - segments;
    assert!(segments > 10_000, "{segments} segments");
    eprintln!("bulk: {} allocations ({} bytes) over {segments} segments", blocks2 - blocks, bytes2 - bytes);
    dhat::assert_eq!(blocks2 - blocks, 0);
}

#[test]
fn request_response_allocates_nothing_per_transaction() {
    let _one = PROFILER.lock().unwrap_or_else(|e| e.into_inner());
    let _profiler = dhat::Profiler::builder().testing().build();
    let mut p = Pair::new(true);
    // About 300 ms of virtual time: long enough for the timer filed at the start (the
    // RTO, which only moves earlier in the wheel, `Engine::refile`) to fire early once,
    // so the expiry's scratch lists have grown before the count starts.
    p.request_response(12_000);
    let (blocks, bytes) = allocations();
    let segments = p.wire.segments;
    p.request_response(10_000);
    let (blocks2, bytes2) = allocations();
    let segments = p.wire.segments - segments;
    assert!(segments >= 20_000, "{segments} segments");
    eprintln!("rr: {} allocations ({} bytes) over 10 000 transactions, {segments} segments", blocks2 - blocks, bytes2 - bytes);
    dhat::assert_eq!(blocks2 - blocks, 0);
}
