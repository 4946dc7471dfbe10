//! The proxy service: client connections accepted on a listener are spliced to a backend
//! server that this same lcore connects to, with payload moved between the two as
//! payload references (with [`crate::dpdk::MbufPayload`]: the received mbufs are written to
//! the other connection without copying).
//!
//! Per session (one client connection, one backend connection):
//!
//! * **Connect.** On accept the pool's [`crate::lb::Balancer`] picks a server (round robin,
//!   least connections, or Maglev on the client address) and an active open
//!   goes out from the address the configuration gives for that server (the port's address
//!   on its subnet; the engine picks the source port). Client bytes that arrive before the
//!   backend is connected stay in the client connection's receive buffer (its window closes
//!   towards the client) until `Connected`. A refused or timed-out attempt is retried on
//!   another server of the pool, at most [`MAX_CONNECT_ATTEMPTS`] times in all; then the
//!   client is reset.
//! * **Back-pressure.** Each direction holds at most one read (≤ [`READ_CHUNK`] bytes) that
//!   the other side's `write` has not accepted; while it holds some, that direction reads
//!   nothing more, so memory per session is bounded by the two connections' send and
//!   receive buffers plus two chunks. `Writable` resumes it.
//! * **Half-close.** `PeerClosed` on one side becomes `shutdown_write` on the other once
//!   everything read from it was written (RFC 9293 §3.10.4); the other direction keeps
//!   flowing. When both directions are finished both connections are closed.
//! * **Reset.** A connection that ends abnormally (RST received, retransmission timeout,
//!   abort) aborts the other one (RFC 9293 §3.10.5: the peer learns with an RST).
//! * **Timeouts.** Each session has one timer in a timing wheel ([`TimerWheel`]), at its
//!   connect deadline while connecting and at `last activity + idle timeout` once
//!   established; an idle session is aborted on both sides. Moving bytes only notes the
//!   time: a timer that fires early (activity since it was set) is re-armed at the real
//!   deadline, as Linux's keepalive timer does (`tcp_keepalive_timer`). The cost is one
//!   wheel operation per deadline that passes, not a walk over every session.
//! * **Limits.** A listener holds at most `max_connections` sessions over all lcores; a
//!   connection accepted beyond that is reset and counted. The lcores' proxies share that
//!   count, every server's connection count and every pool's round-robin position through
//!   one [`ProxyShared`] (`shared.rs`: atomics, lock-free on the session path), so least
//!   connections and round robin balance the whole process, not each lcore on its own.
//!
//! * **PROXY protocol.** A pool with [`PoolSpec::proxy_protocol`] set gets a v1 or v2 header
//!   ([`proxy_protocol`]) on each backend connection once it is established, before any
//!   client byte; the bytes become a payload through the factory the lcore sets
//!   ([`Proxy::set_payload_factory`]). When none can be built (no mbuf) the session is reset
//!   and counted (`refused_proxy_header`).
//!
//! Everything is counted per listener and per server ([`ProxyStats`]).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::IdHash;

mod access_log;
pub mod admin;
mod drain;
mod health;
pub mod histogram;
pub mod proxy_protocol;
mod pump;
mod queue;
mod reload;
mod shared;
mod spec;
mod stats;
pub mod verdict;

pub use histogram::Histogram;
pub use access_log::{log_access, AccessRecord, EndReason};
pub use health::{BackendHealth, CheckSpec, OpsSpec, PoolHealth};
pub use proxy_protocol::ProxyProtocol;
pub use reload::PreparedReload;
pub use shared::{Counter, ProxyShared};
pub use spec::{ListenerSpec, PoolSpec, ProxySpec, ServerSpec};
pub use stats::{ListenerStats, ProxyStats, ServerStats};

use crate::lb::{Backend, Balancer, LbError};
use crate::tcp::timer_wheel::{TimerHandle, TimerWheel};
use crate::tcp::{CloseReason, ConnId, Engine, KeepaliveConfig, Event, ListenerId, Payload, StackError, StackEvent, WriteError, WriteFlags};
use crate::time::{Duration, Instant};

/// Bytes taken per read (one pass may read several times).
pub const READ_CHUNK: usize = 64 * 1024;
/// Connection attempts per session, over distinct servers where the pool has several.
pub const MAX_CONNECT_ATTEMPTS: usize = 3;

/// How a pool chooses a server: the balancers of [`crate::lb`].
pub use crate::lb::Algorithm;

/// The balancer of one pool ([`crate::lb::Balancer`], indices local to the pool) and where
/// its servers start in the flat server list.
#[derive(Debug)]
struct PoolState {
    /// Index of the pool's first server in the flat server list.
    first: usize,
    balancer: Balancer,
    /// The PROXY protocol header of the pool's backend connections, if any.
    proxy_protocol: Option<ProxyProtocol>,
    /// Backend connections without Nagle's delay.
    nodelay: bool,
    /// Keepalive of the pool's backend connections.
    keepalive: Option<KeepaliveConfig>,
    /// The counters every lcore shares: tickets and global connections per server.
    shared: shared::PoolShared,
    /// Server limits and the sessions of this lcore waiting for a server (`queue.rs`).
    queue: queue::PoolQueue,
}

impl PoolState {
    /// A pool-local server index for `client`: first one not in `tried`; once every
    /// pickable server was tried (retries outnumber them), any pickable one.
    #[cfg(test)]
    fn pick(&mut self, client: SocketAddr, tried: &[usize]) -> Option<usize> {
        self.pick_where(client, tried, |_| true)
    }

    /// [`PoolState::pick`] among the servers for which `up` holds (health, admin state).
    fn pick_where(&mut self, client: SocketAddr, tried: &[usize], up: impl Fn(usize) -> bool) -> Option<usize> {
        let PoolState { balancer, shared, queue, .. } = self;
        // A server at its `max_connections` is not eligible (`queue.rs`).
        let up = |i: usize| up(i) && queue.has_room(shared, i);
        balancer.pick_shared(client, |i| up(i) && !tried.contains(&i), &*shared).or_else(|| {
            if tried.is_empty() {
                None
            } else {
                balancer.pick_shared(client, up, &*shared)
            }
        })
    }
}

/// Which connection of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Backend,
}

use pump::Pipe;

struct Session<P> {
    listener: usize,
    client: ConnId,
    client_addr: SocketAddr,
    /// The address the client connected to (the listener's, or the port's for `0.0.0.0`).
    front_addr: SocketAddr,
    /// No `Closed` seen for the client connection yet.
    client_open: bool,
    /// The current backend connection (attempt) and whether it is still open.
    backend: Option<ConnId>,
    backend_open: bool,
    /// The current server (flat index) and the pool-local ones already tried.
    server: Option<usize>,
    /// The current attempt's unit of its server's global connection count.
    server_slot: Option<shared::Held>,
    /// The session's unit of its listener's global session count (given back when the
    /// session is removed, whatever ended it).
    _admission: shared::Held,
    /// While it waits for a server with room: its unit of the pool's global queue length
    /// and when it stops waiting (`queue.rs`).
    queued: Option<shared::Held>,
    queue_deadline: Option<Instant>,
    tried: Vec<usize>,
    /// Deadline of the current attempt while connecting.
    connect_deadline: Option<Instant>,
    established: bool,
    /// Client -> backend.
    up: Pipe<P>,
    /// Backend -> client.
    down: Pipe<P>,
    last_activity: Instant,
    /// When the client connection was accepted.
    started: Instant,
    /// When the current connection attempt started.
    attempt_started: Instant,
    /// When the current backend connection was established.
    backend_connected_at: Option<Instant>,
    /// Both connections were closed (or aborted) by us: nothing more moves.
    finished: bool,
    /// The session's connect or idle timer in [`Proxy::timers`].
    timer: Option<TimerHandle>,
    /// Bytes and end reason for the access log (`access_log.rs`).
    log: access_log::SessionLog,
}

struct ListenerState {
    spec: ListenerSpec,
    /// Sessions of this listener on every lcore ([`ProxyShared`]).
    sessions: std::sync::Arc<Counter>,
}

/// The proxy of one engine. See the module documentation.
pub struct Proxy<P: Payload> {
    listeners: Vec<ListenerState>,
    by_listener_id: HashMap<ListenerId, usize, IdHash>,
    pools: Vec<PoolState>,
    servers: Vec<ServerSpec>,
    sessions: HashMap<u64, Session<P>, IdHash>,
    by_conn: HashMap<ConnId, (u64, Side), IdHash>,
    next_session: u64,
    /// One timer per session (connect or idle deadline), created at the first use.
    timers: Option<TimerWheel<u64>>,
    /// Sessions whose timer fired, reused across passes.
    due: Vec<u64>,
    stats: ProxyStats,
    /// Admin state, health and access log (`reload.rs`, `health.rs`, `access_log.rs`).
    ops: reload::OpsState,
    /// Builds payloads from bytes (PROXY protocol headers); set by the lcore.
    payload_factory: Option<PayloadFactory<P>>,
    /// The counters shared with the other lcores' proxies (`shared.rs`).
    shared: ProxyShared,
    /// This proxy's member index in `shared` (which servers it checks: `verdict.rs`).
    member: u32,
}

/// Makes a payload from bytes the proxy produces itself (PROXY protocol headers): the lcore
/// copies them into an mbuf, tests into a heap buffer. `None` when nothing can be
/// allocated.
pub type PayloadFactory<P> = Box<dyn FnMut(&[u8]) -> Option<P> + Send>;

impl<P: Payload> Default for Proxy<P> {
    fn default() -> Self {
        Self::new()
    }
}

impl<P: Payload> core::fmt::Debug for Proxy<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Proxy")
            .field("listeners", &self.listeners.len())
            .field("sessions", &self.sessions.len())
            .field("stats", &self.stats)
            .finish()
    }
}

/// Why the proxy could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The engine refused to listen.
    #[error("listener `{name}` on {listen}: {source}")]
    Listen {
        /// The listener.
        name: String,
        /// Its address.
        listen: SocketAddr,
        /// What the engine said.
        source: StackError,
    },
    /// A listener names a pool index that does not exist, or a pool has no server.
    #[error("listener `{0}`: its pool does not exist or has no server")]
    NoPool(String),
    /// The balancer refused a pool (duplicate servers, zero total weight, ...).
    #[error("pool `{name}`: {source}")]
    Pool {
        /// The pool.
        name: String,
        /// What the balancer said.
        source: LbError,
    },
}

impl<P: Payload> Proxy<P> {
    /// No listeners.
    pub fn new() -> Self {
        let shared = ProxyShared::new();
        let member = shared.join();
        Proxy {
            listeners: Vec::new(),
            by_listener_id: HashMap::default(),
            pools: Vec::new(),
            servers: Vec::new(),
            sessions: HashMap::default(),
            by_conn: HashMap::default(),
            next_session: 0,
            timers: None,
            due: Vec::new(),
            stats: ProxyStats::default(),
            ops: reload::OpsState::default(),
            payload_factory: None,
            shared,
            member,
        }
    }

    /// Shares listener, server and pool counters with the other lcores' proxies given the
    /// same `shared` (global `max_connections`, least connections and round robin). Call
    /// it before [`Proxy::start`]; without it the proxy counts on its own.
    pub fn set_shared(&mut self, shared: ProxyShared) {
        self.member = shared.join();
        self.shared = shared;
        self.rebind_health();
    }

    /// The counters shared with the other lcores.
    pub fn shared(&self) -> &ProxyShared {
        &self.shared
    }

    /// Sets how the proxy turns bytes it produces (PROXY protocol headers) into payload.
    /// Without one, sessions of a pool with `proxy_protocol` are reset and counted.
    pub fn set_payload_factory(&mut self, factory: PayloadFactory<P>) {
        self.payload_factory = Some(factory);
    }

    /// Starts every listener of `spec` in `engine`.
    pub fn start(&mut self, engine: &mut Engine<P>, spec: &ProxySpec) -> Result<(), ProxyError> {
        for l in &spec.listeners {
            if spec.pools.get(l.pool).is_none_or(|p| p.servers.is_empty()) {
                return Err(ProxyError::NoPool(l.name.clone()));
            }
        }
        // Every pool is checked before anything is kept.
        let mut pools = Vec::with_capacity(spec.pools.len());
        let mut first = self.servers.len();
        for pool in &spec.pools {
            let backends: Vec<Backend> = pool
                .servers
                .iter()
                .enumerate()
                .map(|(id, s)| Backend { id, addr: s.addr, weight: s.weight })
                .collect();
            let balancer = Balancer::new(pool.algorithm, &backends)
                .map_err(|source| ProxyError::Pool { name: pool.name.clone(), source })?;
            pools.push(PoolState {
                first,
                balancer,
                proxy_protocol: pool.proxy_protocol,
                nodelay: pool.nodelay,
                keepalive: pool.keepalive,
                shared: shared::PoolShared::lookup(&self.shared, &pool.name, pool.servers.iter().map(|s| s.addr)),
                queue: queue::PoolQueue::new(pool),
            });
            first += backends.len();
        }
        for (pool, state) in spec.pools.iter().zip(pools) {
            self.pools.push(state);
            for s in &pool.servers {
                self.servers.push(*s);
                self.stats.servers.push(ServerStats { pool: pool.name.clone(), addr: Some(s.addr), ..ServerStats::default() });
            }
        }
        for l in &spec.listeners {
            let lid = engine.listen(l.listen).map_err(|source| ProxyError::Listen {
                name: l.name.clone(),
                listen: l.listen,
                source,
            })?;
            self.by_listener_id.insert(lid, self.listeners.len());
            self.listeners.push(ListenerState { spec: l.clone(), sessions: self.shared.listener(&l.name) });
            let pool = spec.pools.get(l.pool).map(|p| p.name.clone()).unwrap_or_default();
            self.stats.listeners.push(ListenerStats { name: l.name.clone(), pool, ..ListenerStats::default() });
        }
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> &ProxyStats {
        &self.stats
    }

    /// The addresses of every server the proxy may connect to (configured, or kept by
    /// a reload until their sessions end).
    pub fn server_addrs(&self) -> impl Iterator<Item = IpAddr> + '_ {
        self.servers.iter().map(|s| s.addr.ip())
    }

    /// Sessions open.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Whether `ev` concerns a listener or connection of the proxy.
    pub fn owns(&self, ev: &StackEvent) -> bool {
        match ev {
            StackEvent::Acceptable(lid) => self.by_listener_id.contains_key(lid),
            StackEvent::Conn(id, _) => self.by_conn.contains_key(id),
        }
    }

    /// Acts on one engine event (events of others are ignored).
    pub fn handle_event(&mut self, engine: &mut Engine<P>, ev: StackEvent, now: Instant) {
        match ev {
            StackEvent::Acceptable(lid) => {
                let Some(&li) = self.by_listener_id.get(&lid) else { return };
                while let Some(id) = engine.accept(lid) {
                    self.start_session(engine, li, id, now);
                }
            }
            StackEvent::Conn(id, ev) => {
                let Some(&(sid, side)) = self.by_conn.get(&id) else { return };
                match ev {
                    Event::Connected => {
                        if side == Side::Backend {
                            self.on_backend_connected(sid, now);
                            if self.send_proxy_header(engine, sid, now) {
                                self.pump(engine, sid, now);
                            }
                        }
                    }
                    Event::Readable | Event::Writable => self.pump(engine, sid, now),
                    Event::PeerClosed => {
                        if let Some(s) = self.sessions.get_mut(&sid) {
                            match side {
                                Side::Client => s.up.eof = true,
                                Side::Backend => s.down.eof = true,
                            }
                            if s.established {
                                s.log.peer_closed(side == Side::Client);
                            }
                        }
                        self.pump(engine, sid, now);
                    }
                    Event::Closed { reason } => self.on_closed(engine, sid, side, id, reason, now),
                }
            }
        }
    }

    /// Runs the connect and idle timeouts that are due; returns the sessions acted on.
    /// Work is proportional to the timers that fire, not to the number of sessions.
    pub fn poll_timers(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        let Some(timers) = self.timers.as_mut() else { return 0 };
        if timers.next_deadline().is_none_or(|d| d > now) {
            return 0;
        }
        let mut due = core::mem::take(&mut self.due);
        due.clear();
        timers.expire(now, &mut due);
        let mut acted = 0;
        for &sid in &due {
            let Some(deadline) = self.session_deadline(sid, true) else { continue };
            if now < deadline {
                // Activity since the timer was set (or a reload moved the deadline).
                self.arm(sid, deadline, now);
                continue;
            }
            acted += 1;
            let Some(s) = self.sessions.get(&sid) else { continue };
            if s.queue_deadline.is_some() {
                self.queue_timed_out(engine, sid, now);
                continue;
            }
            if s.connect_deadline.is_some() {
                self.connect_timed_out(engine, sid, now);
                continue;
            }
            if let Some(l) = self.stats.listeners.get_mut(s.listener) {
                l.idle_timeouts += 1;
            }
            self.note_end(sid, EndReason::Idle);
            self.abort_session(engine, sid, now);
        }
        self.due = due;
        acted
    }

    /// When session `sid` times out: its connect deadline while connecting, `last activity +
    /// idle timeout` once established; `None` for a finished (or unknown) session.
    /// `fired`: its timer just fired (the handle is gone).
    fn session_deadline(&mut self, sid: u64, fired: bool) -> Option<Instant> {
        let s = self.sessions.get_mut(&sid)?;
        if fired {
            s.timer = None;
        }
        if s.finished {
            return None;
        }
        match s.queue_deadline.or(s.connect_deadline) {
            Some(d) => Some(d),
            None if s.established => {
                let idle = self.listeners.get(s.listener).map_or(Duration::MAX, |l| l.spec.idle_timeout);
                Some(s.last_activity + idle)
            }
            None => None,
        }
    }

    /// Sets session `sid`'s timer to `deadline` (one timer per session).
    fn arm(&mut self, sid: u64, deadline: Instant, now: Instant) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        let timers = self.timers.get_or_insert_with(|| TimerWheel::new(now));
        match s.timer {
            Some(h) if timers.reschedule(h, deadline) => {}
            _ => s.timer = Some(timers.insert(deadline, sid)),
        }
    }

    /// Re-arms every session's timer from the current listener settings (after a reload
    /// changed a timeout; a reload is rare, so one walk is fine there).
    fn rearm_all(&mut self, now: Instant) {
        let sids: Vec<u64> = self.sessions.keys().copied().collect();
        for sid in sids {
            if let Some(deadline) = self.session_deadline(sid, false) {
                self.arm(sid, deadline, now);
            }
        }
    }

    // ----- session life cycle -----

    fn start_session(&mut self, engine: &mut Engine<P>, li: usize, client: ConnId, now: Instant) {
        let Some(l) = self.listeners.get(li) else { return };
        let max = u64::from(l.spec.max_connections);
        let Some(ls) = self.stats.listeners.get_mut(li) else { return };
        // The limit is the process's: every lcore's sessions of this listener count.
        let Some(admission) = l.sessions.try_hold(max) else {
            ls.refused_max_connections += 1;
            if let Ok((_, peer)) = engine.addresses(client) {
                access_log::log_refusal(self.ops.access_log, &l.spec.name, peer, EndReason::RefusedMaxConnections);
            }
            let _ = engine.abort(client, now);
            return;
        };
        if l.spec.nodelay {
            let _ = engine.set_nodelay(client, true, now);
        }
        if l.spec.keepalive.is_some() {
            let _ = engine.set_keepalive(client, l.spec.keepalive, now);
        }
        // Both ends are of the listener's family (IPv4 or IPv6); the server may be of
        // either (a v4 client to a v6 server and the reverse).
        let unspecified = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
        let (front_addr, client_addr) = engine.addresses(client).unwrap_or((unspecified, unspecified));
        ls.active += 1;
        ls.total += 1;
        let sid = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        self.by_conn.insert(client, (sid, Side::Client));
        self.sessions.insert(
            sid,
            Session {
                listener: li,
                client,
                client_addr,
                front_addr,
                client_open: true,
                backend: None,
                backend_open: false,
                server: None,
                server_slot: None,
                _admission: admission,
                queued: None,
                queue_deadline: None,
                tried: Vec::new(),
                connect_deadline: None,
                established: false,
                up: Pipe::new(),
                down: Pipe::new(),
                last_activity: now,
                started: now,
                attempt_started: now,
                backend_connected_at: None,
                finished: false,
                timer: None,
                log: access_log::SessionLog::default(),
            },
        );
        let next = self.connect_next(engine, sid, now);
        self.refuse_unless_started(engine, sid, next, EndReason::NoServer, now);
    }

    /// Starts a connection attempt to the next server, or queues the session when every
    /// available server is at its `max_connections` (`queue.rs`). `Failed` when no server
    /// is left (all tried, attempts used up, or no source port).
    fn connect_next(&mut self, engine: &mut Engine<P>, sid: u64, now: Instant) -> queue::Next {
        use queue::Next;
        // Each failed slot reservation (another lcore took the last place first) makes
        // that server ineligible: bounded by the pool's size.
        let mut races = 0usize;
        loop {
            let Some(s) = self.sessions.get_mut(&sid) else { return Next::Failed };
            if s.tried.len() >= MAX_CONNECT_ATTEMPTS {
                return Next::Failed;
            }
            let Some(l) = self.listeners.get(s.listener) else { return Next::Failed };
            let (pool_ix, timeout) = (l.spec.pool, l.spec.connect_timeout);
            let Some(pool) = self.pools.get_mut(pool_ix) else { return Next::Failed };
            // Another server than those tried; once every one was, any (`PoolState::pick`).
            // Down, ejected and drained servers (`reload.rs`) get no new session.
            let (first, ops) = (pool.first, &self.ops);
            let Some(local) = pool.pick_where(s.client_addr, &s.tried, |i| ops.available(first + i, now)) else {
                if pool.queue.should_wait(&pool.shared, |i| ops.available(first + i, now)) {
                    return self.enqueue(sid, pool_ix, now);
                }
                return Next::Failed;
            };
            let Some(slot) = pool.queue.reserve(&pool.shared, local) else {
                races += 1;
                if races > pool.balancer.backends().len() {
                    return Next::Failed;
                }
                continue;
            };
            // Out of the queue (if it was in it): its place there is given back.
            s.queued = None;
            s.queue_deadline = None;
            let flat = pool.first + local;
            s.tried.push(local);
            let Some(server) = self.servers.get(flat).copied() else { return Next::Failed };
            if let Some(st) = self.stats.servers.get_mut(flat) {
                st.attempts += 1;
            }
            match engine.connect(server.local_ip, server.addr, now) {
                Ok(bid) => {
                    if pool.nodelay {
                        let _ = engine.set_nodelay(bid, true, now);
                    }
                    if pool.keepalive.is_some() {
                        let _ = engine.set_keepalive(bid, pool.keepalive, now);
                    }
                    s.backend = Some(bid);
                    s.backend_open = true;
                    s.server = Some(flat);
                    s.connect_deadline = Some(now + timeout);
                    s.attempt_started = now;
                    s.server_slot = Some(slot);
                    if let Some(st) = self.stats.servers.get_mut(flat) {
                        st.active += 1;
                    }
                    self.by_conn.insert(bid, (sid, Side::Backend));
                    self.arm(sid, now + timeout, now);
                    return Next::Started;
                }
                Err(_) => {
                    // No free source port towards this server: try another one.
                    if let Some(st) = self.stats.servers.get_mut(flat) {
                        st.connect_other += 1;
                    }
                }
            }
        }
    }

    fn on_backend_connected(&mut self, sid: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        s.connect_deadline = None;
        s.established = true;
        s.last_activity = now;
        s.backend_connected_at = Some(now);
        if let Some(st) = s.server.and_then(|i| self.stats.servers.get_mut(i)) {
            st.connected += 1;
            st.connect_duration.observe(now.saturating_duration_since(s.attempt_started));
        }
        let idle = self.listeners.get(s.listener).map_or(Duration::MAX, |l| l.spec.idle_timeout);
        self.arm(sid, now + idle, now);
    }

    /// Writes the pool's PROXY protocol header (if it has one) to the just-established
    /// backend connection, before any client byte: client bytes wait in the client
    /// connection until the session is established, and what `write` does not take now stays
    /// in the up pipe, which `move_data` empties before it reads the client again. False when
    /// the session was reset (no payload could be built, or the write failed).
    fn send_proxy_header(&mut self, engine: &mut Engine<P>, sid: u64, now: Instant) -> bool {
        let Some(s) = self.sessions.get_mut(&sid) else { return false };
        let pool = self.listeners.get(s.listener).and_then(|l| self.pools.get(l.spec.pool));
        let Some(version) = pool.and_then(|p| p.proxy_protocol) else { return true };
        let Some(bid) = s.backend else { return false };
        let bytes = version.header(s.client_addr, s.front_addr);
        let payload = self.payload_factory.as_mut().and_then(|make| make(&bytes)).filter(|p| p.len() == bytes.len());
        let written = match payload {
            None => None,
            Some(p) => match engine.write(bid, p.clone(), WriteFlags::NONE, now) {
                Ok(n) => Some(p.slice(n..p.len())),
                Err(StackError::Write(WriteError::NoSpace)) => Some(p),
                Err(_) => None,
            },
        };
        match written {
            Some(rest) => {
                s.up.pending = rest;
                true
            }
            None => {
                if let Some(ls) = self.stats.listeners.get_mut(s.listener) {
                    ls.refused_proxy_header += 1;
                }
                self.note_end(sid, EndReason::Reset);
                self.abort_session(engine, sid, now);
                false
            }
        }
    }

    /// Releases the current backend attempt's bookkeeping (server active count, handle).
    fn drop_backend(&mut self, sid: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        if let Some(bid) = s.backend.take() {
            self.by_conn.remove(&bid);
        }
        s.backend_open = false;
        let connected_at = s.backend_connected_at.take();
        // Gives the server's global count back (whatever index the server has now).
        s.server_slot = None;
        if let Some(flat) = s.server.take() {
            if let Some(st) = self.stats.servers.get_mut(flat) {
                st.active = st.active.saturating_sub(1);
                if let Some(t) = connected_at {
                    st.connection_duration.observe(now.saturating_duration_since(t));
                }
            }
        }
    }

    /// The current attempt failed (counted by the caller): retry or give up.
    fn retry_connect(&mut self, engine: &mut Engine<P>, sid: u64, now: Instant) {
        self.drop_backend(sid, now);
        let next = self.connect_next(engine, sid, now);
        self.refuse_unless_started(engine, sid, next, EndReason::ConnectFailed, now);
    }

    fn connect_timed_out(&mut self, engine: &mut Engine<P>, sid: u64, now: Instant) {
        let Some(s) = self.sessions.get(&sid) else { return };
        if let Some(st) = s.server.and_then(|i| self.stats.servers.get_mut(i)) {
            st.connect_timeout += 1;
        }
        if let Some(bid) = s.backend {
            // Its `Closed` event is ignored: the handle is forgotten first.
            self.by_conn.remove(&bid);
            let _ = engine.abort(bid, now);
        }
        self.retry_connect(engine, sid, now);
    }

    fn on_closed(&mut self, engine: &mut Engine<P>, sid: u64, side: Side, id: ConnId, reason: CloseReason, now: Instant) {
        self.by_conn.remove(&id);
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        match side {
            Side::Client => s.client_open = false,
            Side::Backend => s.backend_open = false,
        }
        if reason != CloseReason::Normal && (side == Side::Client || s.established) {
            s.log.peer_closed(side == Side::Client);
        }
        if side == Side::Backend && !s.established && !s.finished {
            // A failed attempt.
            if let Some(st) = s.server.and_then(|i| self.stats.servers.get_mut(i)) {
                match reason {
                    CloseReason::Refused => st.connect_refused += 1,
                    CloseReason::Timeout => st.connect_timeout += 1,
                    _ => st.connect_other += 1,
                }
            }
            if s.client_open {
                self.retry_connect(engine, sid, now);
            } else {
                self.drop_backend(sid, now);
            }
        } else if reason != CloseReason::Normal && !s.finished {
            // RFC 9293 §3.10.5: a reset (or failure) on one side resets the other.
            if let Some(ls) = self.stats.listeners.get_mut(s.listener) {
                ls.resets += 1;
            }
            self.abort_session(engine, sid, now);
        } else {
            // A normal close: the other side may still have data to deliver.
            self.pump(engine, sid, now);
        }
        self.maybe_remove(sid, now);
    }

    /// Aborts whatever of the session is still open; the session goes once every
    /// connection reported `Closed`.
    fn abort_session(&mut self, engine: &mut Engine<P>, sid: u64, now: Instant) {
        let Some(s) = self.sessions.get_mut(&sid) else { return };
        s.finished = true;
        s.up.pending = P::empty();
        s.down.pending = P::empty();
        s.connect_deadline = None;
        s.queued = None;
        s.queue_deadline = None;
        if s.client_open {
            let _ = engine.abort(s.client, now);
        }
        if let (true, Some(bid)) = (s.backend_open, s.backend) {
            let _ = engine.abort(bid, now);
        }
        self.maybe_remove(sid, now);
    }

    /// Removes a session whose connections are all closed.
    fn maybe_remove(&mut self, sid: u64, now: Instant) {
        let Some(s) = self.sessions.get(&sid) else { return };
        if s.client_open || s.backend_open {
            return;
        }
        let li = s.listener;
        let lived = now.saturating_duration_since(s.started);
        self.log_session_end(sid, now);
        self.by_conn.remove(&s.client);
        let timer = s.timer;
        self.drop_backend(sid, now);
        if let (Some(h), Some(timers)) = (timer, self.timers.as_mut()) {
            timers.cancel(h);
        }
        self.sessions.remove(&sid);
        if let Some(ls) = self.stats.listeners.get_mut(li) {
            ls.active = ls.active.saturating_sub(1);
            ls.connection_duration.observe(lived);
        }
    }
}

#[cfg(test)]
mod tests;
