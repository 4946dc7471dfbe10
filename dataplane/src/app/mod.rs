//! Built-in applications that run on an lcore's TCP engine: `echo` (writes back what it
//! reads) and `sink` (reads and discards). They are sans-IO and generic over the payload,
//! so the same code serves the DPDK data plane ([`crate::dpdk::MbufPayload`]: echo sends
//! back the received mbufs without copying) and the heap-payload tests below.
//!
//! Back-pressure: echo holds at most one read's worth of data it could not write yet; while
//! it holds some it reads nothing more, so the receive window closes towards the peer
//! until [`Event::Writable`] lets it flush (the kernel's `splice` loop behaves the same).
//! Both close their side once the peer has closed and everything read was written back.

use std::collections::HashMap;
use std::net::SocketAddrV4;

pub mod proxy;

use proxy::{Proxy, ProxyError, ProxySpec, ProxyStats};

use crate::tcp::{ConnId, Engine, Event, ListenerId, Payload, StackError, StackEvent, WriteError, WriteFlags};
use crate::time::Instant;

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
    /// Listening address (`0.0.0.0` for every local address).
    pub listen: SocketAddrV4,
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
    /// Writes refused or cut short by a full send buffer (back-pressure).
    pub write_stalls: u64,
    /// Connections whose write side failed while data was pending (peer reset).
    pub write_errors: u64,
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
        ]
        .into_iter()
    }
}

struct ConnApp<P> {
    kind: AppKind,
    /// Read but not yet accepted by `write` (echo only).
    pending: P,
    peer_closed: bool,
    closing: bool,
}

/// The services of one engine and the connections they own.
pub struct Apps<P: Payload> {
    listeners: HashMap<ListenerId, AppKind>,
    conns: HashMap<ConnId, ConnApp<P>>,
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
        Apps { listeners: HashMap::new(), conns: HashMap::new(), counters: AppCounters::default(), proxy: Proxy::new() }
    }

    /// Starts `spec`'s service: listens on its address in `engine`.
    pub fn listen(&mut self, engine: &mut Engine<P>, spec: &AppSpec) -> Result<ListenerId, StackError> {
        let lid = engine.listen(spec.listen)?;
        self.listeners.insert(lid, spec.kind);
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

    /// The proxy, to change it (drain, reload, admin: [`crate::control`]).
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

    /// Drains the engine's events and acts on them.
    pub fn poll(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        let mut n = 0;
        while let Some(ev) = engine.poll_event() {
            self.handle_event(engine, ev, now);
            n += 1;
        }
        n + self.proxy.poll_timers(engine, now)
    }

    /// Acts on one engine event; events of connections no service owns are ignored.
    pub fn handle_event(&mut self, engine: &mut Engine<P>, ev: StackEvent, now: Instant) {
        if self.proxy.owns(&ev) {
            self.proxy.handle_event(engine, ev, now);
            return;
        }
        match ev {
            StackEvent::Acceptable(lid) => {
                let Some(&kind) = self.listeners.get(&lid) else { return };
                while let Some(id) = engine.accept(lid) {
                    self.counters.accepted += 1;
                    self.conns.insert(id, ConnApp { kind, pending: P::empty(), peer_closed: false, closing: false });
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
                if self.conns.remove(&id).is_some() {
                    self.counters.closed += 1;
                }
            }
        }
    }

    /// Moves data for one connection until it blocks, then closes it if it is done.
    fn service(&mut self, engine: &mut Engine<P>, id: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&id) else { return };
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
            match engine.read(id, READ_CHUNK, now) {
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

#[cfg(test)]
mod tests;
