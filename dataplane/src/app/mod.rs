//! Built-in applications that run on an lcore's TCP engine: `echo` (writes back what it
//! reads) and `sink` (reads and discards). They are sans-IO and generic over the payload,
//! so the same code serves the DPDK data plane ([`crate::dpdk::MbufPayload`]: echo sends
//! back the received mbufs without copying) and the heap-payload tests below.
//!
//! Back-pressure: echo holds at most one read's worth of data it could not write yet; while
//! it holds some it reads nothing more, so the receive window closes towards the peer
//! until [`Event::Writable`] lets it flush (the kernel's `splice` loop behaves the same).
//! Both close their side once the peer has closed and everything read was written back.
//!
//! Limits (issue 14, hostile peers): each service accepts at most `max_connections` at once
//! (more are reset, as the proxy's listeners do) and resets a connection that moved nothing
//! for `idle_timeout`, so idle peers cannot hold connections, and the buffers behind them,
//! for ever. The idle check keeps one deadline per connection in a heap, moved forward
//! when it comes up and the connection was active meanwhile.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;

/// The hasher of the applications' maps keyed by handles the engine or the application
/// itself hands out (`ConnId`, `ListenerId`, session numbers): std's SipHash. foldhash
/// (as the engine's 4-tuple table uses, `tcp/tuple_hash.rs`) was tried here and measured
/// worse where it matters: with 10 000 keep-alive clients through the proxy the AF_XDP RX
/// rings overflowed 2-10x more often and wrk timed out in most runs, against none with
/// SipHash (docs/benchmarks/many-connections.md, session 10), although it costs fewer
/// instructions per lookup. Kept as one alias so the maps change together.
pub(crate) type IdHash = std::collections::hash_map::RandomState;

pub mod proxy;

use proxy::{Proxy, ProxyError, ProxySpec, ProxyStats};

use crate::tcp::{ConnId, Engine, Event, ListenerId, Payload, StackError, StackEvent, WriteError, WriteFlags};
use crate::time::{Duration, Instant};

/// Bytes taken per read (one pass may read several times).
const READ_CHUNK: usize = 64 * 1024;

/// What a service does with a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppKind {
    /// Writes back everything it reads.
    Echo,
    /// Reads and discards everything.
    Sink,
}

impl AppKind {
    /// The configuration name (`"echo"`, `"sink"`).
    pub fn name(self) -> &'static str {
        match self {
            AppKind::Echo => "echo",
            AppKind::Sink => "sink",
        }
    }
}

/// One configured service: what it does and where it listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppSpec {
    /// Echo or sink.
    pub kind: AppKind,
    /// Listening address (`0.0.0.0` for every local IPv4 address, `[::]` for every IPv6
    /// one).
    pub listen: SocketAddr,
    /// Connections at most at once; more are reset on accept.
    pub max_connections: u32,
    /// A connection that moves no byte for this long is reset.
    pub idle_timeout: Duration,
}

impl AppSpec {
    /// Connections at most by default (as a proxy listener's).
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;
    /// Idle timeout by default (as a proxy listener's).
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

    /// A service with the default limits.
    pub fn new(kind: AppKind, listen: impl Into<SocketAddr>) -> Self {
        AppSpec {
            kind,
            listen: listen.into(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
        }
    }
}

/// Counters of all services of one engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppCounters {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections that reached their `Closed` event.
    pub closed: u64,
    /// Payload bytes read.
    pub bytes_read: u64,
    /// Payload bytes written.
    pub bytes_written: u64,
    /// Writes refused or cut short, or reads held back, for a full send buffer
    /// (back-pressure).
    pub write_stalls: u64,
    /// Connections whose write side failed while data was pending (peer reset).
    pub write_errors: u64,
    /// Connections reset on accept because the service had `max_connections`.
    pub refused_max_connections: u64,
    /// Connections reset after moving nothing for `idle_timeout`.
    pub idle_timeouts: u64,
}

impl AppCounters {
    /// `(name, value)` for every counter.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("app_accepted", self.accepted),
            ("app_closed", self.closed),
            ("app_bytes_read", self.bytes_read),
            ("app_bytes_written", self.bytes_written),
            ("app_write_stalls", self.write_stalls),
            ("app_write_errors", self.write_errors),
            ("app_refused_max_connections", self.refused_max_connections),
            ("app_idle_timeouts", self.idle_timeouts),
        ]
        .into_iter()
    }
}

struct ConnApp<P> {
    kind: AppKind,
    listener: ListenerId,
    /// Last time the connection had an event (data, window, close).
    last_active: Instant,
    /// Read but not yet accepted by `write` (echo only).
    pending: P,
    peer_closed: bool,
    closing: bool,
}

/// The services of one engine and the connections they own.
pub struct Apps<P: Payload> {
    listeners: HashMap<ListenerId, Service, IdHash>,
    conns: HashMap<ConnId, ConnApp<P>, IdHash>,
    /// One idle deadline per connection (stale ones, of closed connections, are skipped).
    idle: BinaryHeap<Reverse<(Instant, ConnId)>>,
    counters: AppCounters,
    /// The proxy service ([`proxy`]): client connections spliced to backend servers.
    proxy: Proxy<P>,
}

impl<P: Payload> Default for Apps<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Payload> core::fmt::Debug for Apps<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Apps")
            .field("listeners", &self.listeners.len())
            .field("connections", &self.conns.len())
            .field("counters", &self.counters)
            .finish()
    }
}

impl<P: Payload> Apps<P> {
    /// No services.
    pub fn new() -> Self {
        Apps {
            listeners: HashMap::default(),
            conns: HashMap::default(),
            idle: BinaryHeap::new(),
            counters: AppCounters::default(),
            proxy: Proxy::new(),
        }
    }

    /// Starts `spec`'s service: listens on its address in `engine`.
    pub fn listen(&mut self, engine: &mut Engine<P>, spec: &AppSpec) -> Result<ListenerId, StackError> {
        let lid = engine.listen(spec.listen)?;
        self.listeners.insert(lid, Service { spec: *spec, active: 0 });
        Ok(lid)
    }

    /// Starts the proxy's listeners (see [`proxy`]).
    pub fn start_proxy(&mut self, engine: &mut Engine<P>, spec: &ProxySpec) -> Result<(), ProxyError> {
        self.proxy.start(engine, spec)
    }

    /// The proxy's counters.
    pub fn proxy_stats(&self) -> &ProxyStats {
        self.proxy.stats()
    }

    /// The proxy (sessions, counters).
    pub fn proxy(&self) -> &Proxy<P> {
        &self.proxy
    }

    /// The proxy, to change it (drain, reload, admin: [`crate::command`]).
    pub fn proxy_mut(&mut self) -> &mut Proxy<P> {
        &mut self.proxy
    }

    /// The counters.
    pub fn counters(&self) -> &AppCounters {
        &self.counters
    }

    /// Connections currently owned by a service.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Drains the engine's events and acts on them; runs the services' timers, the proxy's
    /// queues and its health checks.
    pub fn poll(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        let mut n = 0;
        while let Some(ev) = engine.poll_event() {
            self.handle_event(engine, ev, now);
            n += 1;
        }
        n + self.expire_idle(engine, now)
            + self.proxy.poll_timers(engine, now)
            + self.proxy.serve_queues(engine, now)
            + self.proxy.poll_health(engine, now)
    }

    /// Resets the connections idle for their service's `idle_timeout`; a deadline that
    /// comes up for a connection active meanwhile moves to its new deadline.
    fn expire_idle(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        let mut n = 0;
        while let Some(&Reverse((at, id))) = self.idle.peek() {
            if at > now {
                break;
            }
            self.idle.pop();
            let Some(c) = self.conns.get_mut(&id) else { continue };
            if c.closing {
                continue;
            }
            let idle = self.listeners.get(&c.listener).map_or(AppSpec::DEFAULT_IDLE_TIMEOUT, |s| s.spec.idle_timeout);
            let due = c.last_active + idle;
            if due > now {
                self.idle.push(Reverse((due, id)));
                continue;
            }
            self.counters.idle_timeouts += 1;
            c.closing = true;
            c.pending = P::empty();
            let _ = engine.abort(id, now);
            n += 1;
        }
        n
    }

    /// Acts on one engine event; events of connections no service owns are ignored.
    pub fn handle_event(&mut self, engine: &mut Engine<P>, ev: StackEvent, now: Instant) {
        if self.proxy.owns(&ev) {
            self.proxy.handle_event(engine, ev, now);
            return;
        }
        match ev {
            StackEvent::Acceptable(lid) => {
                let Some(service) = self.listeners.get_mut(&lid) else { return };
                while let Some(id) = engine.accept(lid) {
                    if service.active >= service.spec.max_connections {
                        self.counters.refused_max_connections += 1;
                        let _ = engine.abort(id, now);
                        continue;
                    }
                    service.active += 1;
                    self.counters.accepted += 1;
                    let kind = service.spec.kind;
                    self.idle.push(Reverse((now + service.spec.idle_timeout, id)));
                    let c = ConnApp {
                        kind,
                        listener: lid,
                        last_active: now,
                        pending: P::empty(),
                        peer_closed: false,
                        closing: false,
                    };
                    self.conns.insert(id, c);
                }
            }
            StackEvent::Conn(_, Event::Connected) => {}
            StackEvent::Conn(id, Event::Readable | Event::Writable) => self.service(engine, id, now),
            StackEvent::Conn(id, Event::PeerClosed) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.peer_closed = true;
                }
                self.service(engine, id, now);
            }
            StackEvent::Conn(id, Event::Closed { .. }) => {
                if let Some(c) = self.conns.remove(&id) {
                    self.counters.closed += 1;
                    if let Some(s) = self.listeners.get_mut(&c.listener) {
                        s.active = s.active.saturating_sub(1);
                    }
                }
            }
        }
    }

    /// Moves data for one connection until it blocks, then closes it if it is done.
    fn service(&mut self, engine: &mut Engine<P>, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else { return };
        c.last_active = now;
        if c.closing {
            // Closed by us: nothing more is read or written; wait for `Closed`.
            return;
        }
        loop {
            if !c.pending.is_empty() {
                let len = c.pending.len();
                match engine.write(id, c.pending.clone(), WriteFlags::NONE, now) {
                    Ok(n) => {
                        self.counters.bytes_written += n as u64;
                        c.pending = c.pending.slice(n..len);
                        if !c.pending.is_empty() {
                            self.counters.write_stalls += 1;
                            return;
                        }
                    }
                    Err(StackError::Write(WriteError::NoSpace)) => {
                        self.counters.write_stalls += 1;
                        return;
                    }
                    Err(_) => {
                        // The peer reset or the write side is gone: nothing can be echoed.
                        self.counters.write_errors += 1;
                        c.pending = P::empty();
                        c.closing = true;
                        let _ = engine.abort(id, now);
                        return;
                    }
                }
            }
            // An echo reads only what it can pass on: what it cannot write stays in the
            // receive queue, where the engine accounts for it (and, under memory pressure,
            // bounds it), and the peer's window closes.
            let chunk = if c.kind == AppKind::Echo {
                match engine.send_space(id) {
                    Ok(0) => {
                        self.counters.write_stalls += 1;
                        return;
                    }
                    Ok(room) => READ_CHUNK.min(room),
                    Err(_) => return,
                }
            } else {
                READ_CHUNK
            };
            match engine.read(id, chunk, now) {
                Ok(Some(data)) if !data.is_empty() => {
                    self.counters.bytes_read += data.len() as u64;
                    if c.kind == AppKind::Echo {
                        c.pending = data;
                    }
                }
                Ok(_) => break,
                Err(_) => {
                    // Reaped under us (its `Closed` event follows or came already).
                    return;
                }
            }
        }
        if c.peer_closed && c.pending.is_empty() {
            c.closing = true;
            let _ = engine.close(id, now);
        }
    }
}

/// A service's spec and how many connections it holds.
#[derive(Debug, Clone, Copy)]
struct Service {
    spec: AppSpec,
    active: u32,
}

#[cfg(test)]
mod tests;
