//! The deterministic simulator: two [`Engine`]s joined by two [`SimLink`]s with seeded loss,
//! reordering, duplication and delay. Each side sends a pseudo-random byte stream of a given
//! length, verifies every byte it receives, then half-closes; the run succeeds when both
//! streams arrived intact and both connections closed normally. A run is a pure function of
//! its parameters (the seed included), so any failure replays exactly.
//!
//! Used by `tests/tcp_sim.rs` and by benchmarks.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};

use super::config::TcpConfig;
use super::connection::{CloseReason, Event};
use super::counters::Counters;
use super::engine::{ConnId, Engine, StackError, StackEvent};
use super::payload::{HeapPayload, Payload};
use super::sim_link::{LinkParams, LinkStats, SimLink, SimRng};
use crate::time::{Duration, Instant};
use crate::wire::tcp::{self as wire_tcp};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimParams {
    /// Seeds the links and the byte streams.
    pub seed: u64,
    /// Bytes sent from the client (a) to the server (b).
    pub bytes: u64,
    /// Bytes sent from the server back to the client; [`SimParams::new`] makes it equal to
    /// `bytes`, 0 makes the run a one-way transfer.
    pub bytes_back: u64,
    /// Impairments of both links.
    pub link: LinkParams,
    /// TCP configuration of both engines.
    pub tcp: TcpConfig,
    /// Largest single write.
    pub write_chunk: usize,
    /// Encode every segment to bytes (header, options, checksum) and parse it on arrival,
    /// exercising the full input path; otherwise the parsed header is handed over.
    pub wire_format: bool,
    /// Virtual-time limit.
    pub time_limit: Duration,
    /// The server echoes what it receives instead of writing its own stream (`bytes_back`
    /// is ignored): its sending is then limited by what arrives, as a proxy's or an echo
    /// service's is, so flights are often short and tails frequent.
    pub echo: bool,
}

impl SimParams {
    /// `bytes` each way over links with `link` impairments, default TCP settings.
    pub fn new(seed: u64, bytes: u64, link: LinkParams) -> Self {
        SimParams {
            seed,
            bytes,
            bytes_back: bytes,
            link,
            tcp: TcpConfig::default(),
            write_chunk: 64 * 1024,
            wire_format: true,
            time_limit: Duration::from_secs(3600),
            echo: false,
        }
    }
}

/// One direction's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamResult {
    /// Bytes delivered in order and verified.
    pub bytes: u64,
    /// FNV-1a hash of the delivered stream.
    pub hash: u64,
    /// FNV-1a hash of the stream that was written.
    pub expected_hash: u64,
    /// Virtual time from the start of the run until the last byte was delivered (the
    /// handshake included, the closing handshake not): the time goodput is measured over.
    pub completed: Duration,
}

/// The outcome of a successful run.
#[derive(Debug, Clone)]
pub struct SimReport {
    /// The seed, to replay.
    pub seed: u64,
    /// Virtual time the run took.
    pub elapsed: Duration,
    /// Client to server.
    pub a_to_b: StreamResult,
    /// Server to client.
    pub b_to_a: StreamResult,
    /// Client engine counters.
    pub counters_a: Counters,
    /// Server engine counters.
    pub counters_b: Counters,
    /// Client-to-server link.
    pub link_ab: LinkStats,
    /// Server-to-client link.
    pub link_ba: LinkStats,
}

/// Why a run failed. Every variant names the seed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SimError {
    /// The engine refused an API call.
    #[error("seed {seed}: engine error {error}")]
    Engine {
        /// Seed of the run.
        seed: u64,
        /// The error.
        error: StackError,
    },
    /// A received byte differed from the one sent.
    #[error("seed {seed}: stream {direction} corrupt at offset {offset}")]
    Corrupt {
        /// Seed of the run.
        seed: u64,
        /// "a->b" or "b->a".
        direction: &'static str,
        /// First bad offset.
        offset: u64,
    },
    /// Nothing left to do but the run is not finished.
    #[error("seed {seed}: stalled at {at_ms} ms: {detail}")]
    Stalled {
        /// Seed of the run.
        seed: u64,
        /// Virtual time.
        at_ms: u64,
        /// State of both sides.
        detail: String,
    },
    /// A connection ended other than normally.
    #[error("seed {seed}: connection on side {side} closed with {reason:?}")]
    BadClose {
        /// Seed of the run.
        seed: u64,
        /// "a" or "b".
        side: &'static str,
        /// Why it closed.
        reason: CloseReason,
    },
}

/// The deterministic byte stream of one direction: 8 bytes per SplitMix64 step.
#[derive(Debug, Clone)]
struct Stream {
    rng: SimRng,
    buf: [u8; 8],
    used: usize,
    offset: u64,
    hash: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Stream {
    fn new(seed: u64) -> Self {
        Stream { rng: SimRng::new(seed), buf: [0; 8], used: 8, offset: 0, hash: FNV_OFFSET }
    }

    fn next_byte(&mut self) -> u8 {
        if self.used == 8 {
            self.buf = self.rng.next_u64().to_le_bytes();
            self.used = 0;
        }
        let b = self.buf.get(self.used).copied().unwrap_or(0);
        self.used += 1;
        self.offset += 1;
        self.hash = (self.hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        b
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_byte()).collect()
    }

    /// Checks `data` against the stream; returns the offset of the first mismatch.
    fn verify(&mut self, data: &[u8]) -> Result<(), u64> {
        for &b in data {
            let at = self.offset;
            if self.next_byte() != b {
                return Err(at);
            }
        }
        Ok(())
    }
}

/// A packet on a simulated link: the IPv4 addresses and the segment.
#[derive(Debug, Clone)]
enum Packet {
    Parsed(IpAddr, IpAddr, super::connection::Segment<HeapPayload>),
    Wire(IpAddr, IpAddr, HeapPayload),
}

fn packet_len(p: &Packet) -> usize {
    40 + match p {
        Packet::Parsed(_, _, s) => s.payload.len() + s.repr.options.wire_len(),
        Packet::Wire(_, _, b) => b.len(),
    }
}

struct Side {
    engine: Engine<HeapPayload>,
    conn: Option<ConnId>,
    tx: Stream,
    rx: Stream,
    /// Bytes this side writes.
    to_send: u64,
    /// Bytes this side expects to receive, and when the last of them arrived.
    to_receive: u64,
    received_at: Option<Instant>,
    pending_write: Option<HeapPayload>,
    /// Echo mode: received data waiting to be written back, and the bytes taken from it.
    echo: Option<VecDeque<HeapPayload>>,
    echoed: u64,
    shut: bool,
    closed: Option<CloseReason>,
    name: &'static str,
}

impl Side {
    fn done_sending(&self) -> bool {
        let taken = match &self.echo {
            Some(q) => q.is_empty() && self.echoed >= self.to_send,
            None => self.tx.offset >= self.to_send,
        };
        taken && self.pending_write.is_none()
    }

    /// The next chunk to write, if any is ready.
    fn next_chunk(&mut self, chunk_max: usize) -> Option<HeapPayload> {
        if let Some(c) = self.pending_write.take() {
            return Some(c);
        }
        match self.echo.as_mut() {
            Some(q) => {
                let c = q.pop_front()?;
                self.echoed += c.len() as u64;
                Some(c)
            }
            None => {
                let left = self.to_send.saturating_sub(self.tx.offset);
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(chunk_max.max(1));
                Some(HeapPayload::from_vec(self.tx.take(n)))
            }
        }
    }
}

/// Runs one simulation. See the module documentation.
pub fn run(p: &SimParams) -> Result<SimReport, SimError> {
    let seed = p.seed;
    let ip_a = Ipv4Addr::new(10, 0, 0, 1);
    let ip_b = Ipv4Addr::new(10, 0, 0, 2);
    let server = SocketAddrV4::new(ip_b, 443);
    let mut a = Side {
        engine: Engine::new(p.tcp.clone(), seed.to_le_bytes().repeat(2).try_into().unwrap_or([1; 16]), Instant::ZERO),
        conn: None,
        tx: Stream::new(seed ^ 0xa),
        rx: Stream::new(if p.echo { seed ^ 0xa } else { seed ^ 0xb }),
        to_send: p.bytes,
        to_receive: if p.echo { p.bytes } else { p.bytes_back },
        received_at: None,
        pending_write: None,
        echo: None,
        echoed: 0,
        shut: false,
        closed: None,
        name: "a",
    };
    let mut b = Side {
        engine: Engine::new(p.tcp.clone(), (!seed).to_le_bytes().repeat(2).try_into().unwrap_or([2; 16]), Instant::ZERO),
        conn: None,
        tx: Stream::new(seed ^ 0xb),
        rx: Stream::new(seed ^ 0xa),
        to_send: if p.echo { p.bytes } else { p.bytes_back },
        to_receive: p.bytes,
        received_at: None,
        pending_write: None,
        echo: p.echo.then(VecDeque::new),
        echoed: 0,
        shut: false,
        closed: None,
        name: "b",
    };
    let mut link_ab: SimLink<Packet> = SimLink::new(p.link.clone(), seed.wrapping_mul(3).wrapping_add(1)).with_len(packet_len);
    let mut link_ba: SimLink<Packet> = SimLink::new(p.link.clone(), seed.wrapping_mul(5).wrapping_add(2)).with_len(packet_len);
    let engine_err = |error| SimError::Engine { seed, error };
    let lid = b.engine.listen(server).map_err(engine_err)?;
    let mut now = Instant::ZERO;
    a.conn = Some(a.engine.connect(ip_a, server, now).map_err(engine_err)?);
    let limit = Instant::ZERO + p.time_limit;
    loop {
        // Arrivals.
        while let Some(pkt) = link_ab.poll(now) {
            deliver(&mut b.engine, pkt, now);
        }
        while let Some(pkt) = link_ba.poll(now) {
            deliver(&mut a.engine, pkt, now);
        }
        // Timers.
        for side in [&mut a, &mut b] {
            if side.engine.next_deadline().is_some_and(|d| d <= now) {
                side.engine.handle_timeouts(now);
            }
        }
        // Applications.
        app(&mut a, p, now, None).map_err(|e| with_seed(e, seed))?;
        app(&mut b, p, now, Some(lid)).map_err(|e| with_seed(e, seed))?;
        // Transmission.
        a.engine.poll_transmit(now, &mut |s, d, seg| link_ab.send(now, encode(p.wire_format, s, d, seg)));
        b.engine.poll_transmit(now, &mut |s, d, seg| link_ba.send(now, encode(p.wire_format, s, d, seg)));

        if a.closed.is_some() && b.closed.is_some() {
            break;
        }
        let next = [link_ab.next_delivery(), link_ba.next_delivery(), a.engine.next_deadline(), b.engine.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        let Some(next) = next else {
            return Err(SimError::Stalled { seed, at_ms: now.as_millis(), detail: detail(&a, &b) });
        };
        // Timer wheels may report a slightly early deadline; always move forward.
        now = next.max(now + Duration::from_micros(1));
        if now > limit {
            return Err(SimError::Stalled { seed, at_ms: now.as_millis(), detail: format!("time limit; {}", detail(&a, &b)) });
        }
    }
    for side in [&a, &b] {
        if let Some(reason) = side.closed.filter(|r| *r != CloseReason::Normal) {
            return Err(SimError::BadClose { seed, side: side.name, reason });
        }
    }
    Ok(SimReport {
        seed,
        elapsed: now - Instant::ZERO,
        a_to_b: StreamResult {
            bytes: b.rx.offset,
            hash: b.rx.hash,
            expected_hash: a.tx.hash,
            completed: b.received_at.unwrap_or(now) - Instant::ZERO,
        },
        b_to_a: StreamResult {
            bytes: a.rx.offset,
            hash: a.rx.hash,
            expected_hash: if p.echo { a.tx.hash } else { b.tx.hash },
            completed: a.received_at.unwrap_or(now) - Instant::ZERO,
        },
        counters_a: a.engine.counters().clone(),
        counters_b: b.engine.counters().clone(),
        link_ab: link_ab.stats(),
        link_ba: link_ba.stats(),
    })
}

fn with_seed(e: SimError, seed: u64) -> SimError {
    match e {
        SimError::Engine { error, .. } => SimError::Engine { seed, error },
        SimError::Corrupt { direction, offset, .. } => SimError::Corrupt { seed, direction, offset },
        SimError::Stalled { at_ms, detail, .. } => SimError::Stalled { seed, at_ms, detail },
        SimError::BadClose { side, reason, .. } => SimError::BadClose { seed, side, reason },
    }
}

fn detail(a: &Side, b: &Side) -> String {
    let info = |s: &Side| s.conn.and_then(|c| s.engine.info(c).ok());
    format!(
        "a: sent {} recv {} shut {} closed {:?} {:?}; b: sent {} recv {} shut {} closed {:?} {:?}",
        a.tx.offset,
        a.rx.offset,
        a.shut,
        a.closed,
        info(a),
        b.tx.offset,
        b.rx.offset,
        b.shut,
        b.closed,
        info(b)
    )
}

fn encode(wire: bool, src: IpAddr, dst: IpAddr, seg: super::connection::Segment<HeapPayload>) -> Packet {
    if !wire {
        return Packet::Parsed(src, dst, seg);
    }
    let hlen = seg.repr.header_len();
    let mut buf = vec![0u8; hlen + seg.payload.len()];
    let written = seg.repr.emit(&mut buf);
    let mut off = written;
    for c in seg.payload.chunks() {
        if let Some(dst_slice) = buf.get_mut(off..off + c.len()) {
            dst_slice.copy_from_slice(c);
        }
        off += c.len();
    }
    buf.truncate(off);
    wire_tcp::fill_checksum(&mut buf, src, dst);
    Packet::Wire(src, dst, HeapPayload::from_vec(buf))
}

fn deliver(engine: &mut Engine<HeapPayload>, pkt: Packet, now: Instant) {
    match pkt {
        Packet::Parsed(src, dst, seg) => engine.handle_segment(src, dst, &seg.repr, seg.payload, now),
        Packet::Wire(src, dst, bytes) => {
            // Rejections are counted by the engine; the simulator never corrupts bytes.
            let _ = engine.handle_datagram(src, dst, bytes, false, now);
        }
    }
}

/// The application on one side: accept, read and verify, write the stream, half-close.
fn app(side: &mut Side, p: &SimParams, now: Instant, listener: Option<super::engine::ListenerId>) -> Result<(), SimError> {
    let err = |error| SimError::Engine { seed: 0, error };
    while let Some(ev) = side.engine.poll_event() {
        match ev {
            StackEvent::Acceptable(l) if Some(l) == listener && side.conn.is_none() => {
                side.conn = side.engine.accept(l);
            }
            StackEvent::Conn(id, Event::Closed { reason }) if Some(id) == side.conn => {
                side.closed = Some(reason);
            }
            _ => {}
        }
    }
    let Some(id) = side.conn else { return Ok(()) };
    // Read and verify everything available.
    while let Ok(Some(data)) = side.engine.read(id, usize::MAX, now) {
        for c in data.chunks() {
            if let Err(offset) = side.rx.verify(c) {
                return Err(SimError::Corrupt { seed: 0, direction: if side.name == "a" { "b->a" } else { "a->b" }, offset });
            }
        }
        if let Some(q) = side.echo.as_mut() {
            q.push_back(data);
        }
    }
    if side.received_at.is_none() && side.rx.offset >= side.to_receive {
        side.received_at = Some(now);
    }
    if side.closed.is_some() {
        return Ok(());
    }
    // Write until the send buffer is full.
    while !side.done_sending() {
        let Some(chunk) = side.next_chunk(p.write_chunk) else { break };
        match side.engine.write(id, chunk.clone(), super::connection::WriteFlags::NONE, now) {
            Ok(n) if n < chunk.len() => {
                side.pending_write = Some(chunk.slice(n..chunk.len()));
                break;
            }
            Ok(_) => {}
            Err(StackError::Write(super::connection::WriteError::NoSpace)) => {
                side.pending_write = Some(chunk);
                break;
            }
            Err(e) => return Err(err(e)),
        }
    }
    if side.done_sending() && !side.shut {
        side.engine.shutdown_write(id, now).map_err(err)?;
        side.shut = true;
    }
    Ok(())
}
