//! The per-lcore loop: RX burst -> parse -> stack input -> transmit -> TX burst -> timers.
//!
//! Each lcore owns one RX and one TX queue on every port, one [`Interface`] per port
//! (neighbour cache, counters) and one TCP [`Engine`] with the services ([`Apps`]) that
//! run on it. Nothing on the fast path is shared with other lcores: every TCP flow has one
//! owning lcore ([`crate::rss`]: symmetric Toeplitz hash and RETA, so both directions
//! agree); frames the device put on another lcore's queue are handed to the owner
//! ([`steer`]). The control plane reads the lcore's [`LcoreStats`] (relaxed atomics
//! written by this lcore only) and asks it to stop through an [`AtomicBool`].
//!
//! TCP without copies where the port allows: a received segment becomes an
//! [`MbufPayload`] viewing the frame it arrived in ([`ingress`]); a transmitted segment is
//! a fresh header mbuf chained with indirect mbufs over the payload's buffers, cut by the
//! device (TSO) or here, or copied into linear frames on ports that take single segments
//! only: [`egress`] carries out what [`crate::offload::plan`] chose from the port's
//! [`crate::offload::TxCaps`]. Frames wait in a bounded per-queue [`tx::TxQueue`] when a
//! ring does not take them.
//!
//! Files: [`stats`] (counters), [`port`] (one port queue), [`ingress`], [`egress`],
//! [`tx`] (backlog and stall rules), `impair` (the impairment layer's adapter), [`steer`]
//! (flow hand-off between lcores), `idle` (naps and RX interrupts), [`wake`].
//!
//! This module has no `unsafe`: it drives DPDK through the safe adapter in [`crate::dpdk`].

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::app::proxy::admin::ProxyCommand;
use crate::app::proxy::{ProxyError, ProxyShared, ProxySpec, ProxyStats};
use crate::app::{AppCounters, AppSpec, Apps};
use crate::capture;
use crate::dpdk::{copy_stats, tsc, CopyStats, Mbuf, MbufPayload, Mempool};
use crate::net::dad::AddrState;
use crate::net::NetCounters;
use crate::tcp::{Counters, Engine, StackError, TcpConfig};
use crate::time::{Duration, Instant};

mod egress;
mod idle;
mod impair;
mod ingress;
pub mod port;
pub mod stats;
pub mod steer;
pub mod tx;
pub mod wake;

pub use port::PortQueue;
pub use stats::{
    memory_limit, memory_pressure_wanted, BusyPasses, LcoreStats, PortImpairCounters, PublishedCounters,
    MEMORY_LIMIT_SIXTEENTHS, PRESSURE_ENTER_DIVISOR, PRESSURE_LEAVE_DIVISOR, PUBLISH_INTERVAL, RESERVE_DIVISOR,
};
pub use steer::{mesh, Handoff, Route, SteeringLinks, SteeringMode, INBOX_BURST, INBOX_CAPACITY};
pub use tx::{TX_BACKLOG_MAX, TX_STALL_FLUSH, TX_STALL_LIMIT};
pub use wake::Waker;

use crate::dpdk::Holding;
use crate::tcp::MemoryAccount;
use stats::PRESSURE_CHECK_INTERVAL;

/// Frames taken from a queue per RX burst.
pub const BURST: usize = 32;

/// RX bursts taken from one queue per pass while they come back full (at most
/// `BURST * RX_BURSTS_PER_PASS` frames), like the per-device budget of Linux's NAPI
/// (`napi_poll`, 64 frames; `netdev_budget`, 300 per softirq). One burst per pass let
/// the AF_XDP rings overflow under a burst of thousands of connections (issue 19): the
/// fill ring holds 2048 frames, and the rest of a pass (timers, the proxy, transmit)
/// took long enough for more than that to arrive.
pub const RX_BURSTS_PER_PASS: usize = 8;

/// Converts TSC cycles to the stack's [`Instant`].
#[derive(Debug, Clone, Copy)]
pub struct TscClock {
    hz: u64,
}

impl TscClock {
    /// A clock for a TSC running at `hz` (from `rte_get_tsc_hz`); a zero `hz` is treated
    /// as 1 GHz rather than dividing by zero.
    pub fn new(hz: u64) -> Self {
        TscClock { hz: if hz == 0 { 1_000_000_000 } else { hz } }
    }

    /// The instant at TSC value `cycles`.
    pub fn instant(&self, cycles: u64) -> Instant {
        let nanos = u128::from(cycles) * 1_000_000_000 / u128::from(self.hz);
        Instant::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

/// What a worker hands back when it stops.
#[derive(Debug)]
pub struct WorkerReport {
    /// The lcore it ran on.
    pub lcore: u32,
    /// Final link/network counters per port, in the order the ports were given.
    pub net: Vec<NetCounters>,
    /// Final TCP counters of the lcore's engine.
    pub tcp: Counters,
    /// Final counters of the services.
    pub apps: AppCounters,
    /// Final proxy counters per listener and server.
    pub proxy: ProxyStats,
    /// Connections still in the engine when the loop stopped.
    pub tcp_connections: usize,
    /// Process-wide payload copies when the loop stopped.
    pub copies: CopyStats,
    /// Mbufs out of the pool when the loop stopped, with this lcore's connections still
    /// alive (approximate while other lcores run).
    pub pool_in_use: u32,
    /// Final impairment counters per port, in the order the ports were given.
    pub impair: Vec<PortImpairCounters>,
}

/// What each lcore's TCP stack runs: the engine's settings ([`TcpConfig`]), the key of its
/// ISN generator and SYN cookies, and the built-in services on it.
#[derive(Debug, Clone)]
pub struct StackSpec {
    /// Engine settings. `mss` is lowered to fit the smallest port MTU, and `tso` is set:
    /// every port segments super-segments, in hardware or by software GSO.
    pub config: TcpConfig,
    /// Key of the ISN generator and SYN cookies (from a CSPRNG).
    pub secret: [u8; 16],
    /// Services to start.
    pub apps: Vec<AppSpec>,
}

/// The loop of one lcore.
pub struct Worker {
    lcore: u32,
    ports: Vec<PortQueue>,
    pool: Mempool,
    clock: TscClock,
    stop: Arc<AtomicBool>,
    stats: Arc<LcoreStats>,
    rx: Vec<Mbuf>,
    /// Frames due for the network layer, with whether impairment corrupted them.
    rx_due: Vec<(Mbuf, bool)>,
    scratch: Vec<u8>,
    engine: Engine<MbufPayload>,
    apps: Apps<MbufPayload>,
    /// Below this many free mbufs, received data segments are shed (see
    /// [`LcoreStats::tcp_rx_shed`]).
    shed_below: u32,
    /// Commands from the control plane, polled once per iteration ([`crate::command`]).
    control: Option<crate::command::Inbox<ProxyCommand>>,
    /// Flow steering to and from the other lcores (none with a single lcore).
    steer: Option<SteeringLinks>,
    /// A fingerprint of the server addresses last pinned ([`Worker::pin_servers`]).
    pinned_servers: u64,
    /// What this lcore last reported into the pool's account ([`crate::dpdk::PoolAccount`]).
    reported: Holding,
    /// Durations of the passes that did work, published with the counters.
    busy_passes: BusyPasses,
}

impl Worker {
    /// A worker for `lcore` over `ports`, allocating TX frames from `pool`, with a TCP
    /// engine set up from `tcp` and its services listening. Fails if a service cannot
    /// listen (two on one address).
    pub fn new(
        lcore: u32,
        ports: Vec<PortQueue>,
        pool: Mempool,
        clock: TscClock,
        stop: Arc<AtomicBool>,
        stats: Arc<LcoreStats>,
        tcp: StackSpec,
    ) -> Result<Self, StackError> {
        let mut cfg = tcp.config;
        // RFC 9293 §3.7.1: the MSS is the MTU minus the fixed IPv4 and TCP headers, less
        // what a port's device needs so that it cuts TSO frames where the engine cuts
        // segments (`TxCaps::max_mss`).
        if let Some(fit) = ports.iter().map(|p| p.caps.max_mss(p.iface.mtu())).min() {
            cfg.mss = cfg.mss.min(fit);
        }
        cfg.tso = true;
        let mut engine = Engine::new(cfg, tcp.secret, clock.instant(tsc()));
        let shed_below = pool.in_use().saturating_add(pool.available()) / RESERVE_DIVISOR;
        let mut apps = Apps::new();
        // PROXY protocol headers (`app::proxy::proxy_protocol`) and health checks' `send`
        // bytes are copied into mbufs of the lcore's pool; `None` (pool empty) resets the
        // session, counted (a check fails).
        let header_pool = pool.clone();
        apps.proxy_mut().set_payload_factory(Box::new(move |b: &[u8]| MbufPayload::from_slice(&header_pool, b).ok()));
        for spec in &tcp.apps {
            apps.listen(&mut engine, spec)?;
        }
        Ok(Worker {
            lcore,
            ports,
            pool,
            clock,
            stop,
            stats,
            rx: Vec::with_capacity(BURST),
            rx_due: Vec::with_capacity(BURST),
            scratch: Vec::new(),
            engine,
            apps,
            shed_below,
            control: None,
            steer: None,
            pinned_servers: 0,
            reported: Holding::default(),
            busy_passes: BusyPasses::default(),
        })
    }

    /// The TCP engine (counters, connections).
    pub fn engine(&self) -> &Engine<MbufPayload> {
        &self.engine
    }

    /// The services' counters.
    pub fn app_counters(&self) -> &AppCounters {
        self.apps.counters()
    }

    /// Joins the steering mesh: TCP frames of flows another lcore owns are handed to it,
    /// frames handed to this lcore are processed here, and active opens take only source
    /// ports whose flow this lcore owns.
    #[must_use]
    pub fn with_steering(mut self, links: SteeringLinks) -> Self {
        if links.lcores() > 1 {
            self.engine.set_steering(Some(links.lcore_steering()));
        }
        tracing::info!(
            lcore = self.lcore,
            index = links.index(),
            lcores = links.lcores(),
            mode = links.mode().name(),
            "flow steering"
        );
        self.steer = Some(links);
        self
    }

    /// Takes commands from the control plane through `inbox` ([`crate::command`]); the
    /// lcore's application, the proxy, runs those of [`ProxyCommand`].
    pub fn set_control(&mut self, inbox: crate::command::Inbox<ProxyCommand>) {
        self.control = Some(inbox);
    }

    /// Starts the proxy's listeners on this lcore's engine ([`crate::app::proxy`]), with
    /// the counters every lcore shares (`shared`: one per process, so that listener limits,
    /// least connections and round robin are global).
    pub fn start_proxy(&mut self, spec: &ProxySpec, shared: &ProxyShared) -> Result<(), ProxyError> {
        self.apps.proxy_mut().set_shared(shared.clone());
        self.apps.start_proxy(&mut self.engine, spec)
    }

    /// The proxy's counters.
    pub fn proxy_stats(&self) -> &ProxyStats {
        self.apps.proxy_stats()
    }

    /// Keeps the next hops of the proxy's servers pinned in every port's neighbour table
    /// (spoofed sources cannot evict them, and their resolution is never rate-limited), as
    /// a reload adds or removes servers. Work: one pass over the servers per publish
    /// interval; the table changes only when their addresses did.
    fn pin_servers(&mut self) {
        let print = self.apps.proxy().server_addrs().fold(0xcbf2_9ce4_8422_2325u64, |h, a| {
            let bits = match a {
                std::net::IpAddr::V4(v4) => u128::from(u32::from(v4)),
                std::net::IpAddr::V6(v6) => u128::from(v6),
            };
            (h ^ (bits as u64) ^ ((bits >> 64) as u64)).wrapping_mul(0x0100_0000_01b3)
        });
        if print == self.pinned_servers {
            return;
        }
        self.pinned_servers = print;
        // Each family in its own neighbour table.
        let (mut v4s, mut v6s): (Vec<Ipv4Addr>, Vec<std::net::Ipv6Addr>) = (Vec::new(), Vec::new());
        for a in self.apps.proxy().server_addrs() {
            match a {
                std::net::IpAddr::V4(v4) => v4s.push(v4),
                std::net::IpAddr::V6(v6) => v6s.push(v6),
            }
        }
        for p in &mut self.ports {
            p.iface.pin_neighbors(v4s.iter().copied());
            p.iface.pin_neighbors_v6(v6s.iter().copied());
        }
    }

    /// Hands the engine the IPv6 link MTU routers advertised below a port's own MTU (the
    /// smallest over the ports, as the engine's MSS is), or `None` again when none does
    /// (RFC 4861 §6.3.4; [`Engine::set_ipv6_link_mtu`]). Checked every publish interval:
    /// advertisements are rare.
    fn follow_ipv6_link_mtu(&mut self, now: Instant) {
        let advertised =
            self.ports.iter().map(|p| (p.iface.ipv6_mtu(), p.iface.mtu())).filter(|&(v6, own)| v6 < own).map(|(v6, _)| v6).min();
        if advertised != self.engine.config().ipv6_link_mtu {
            let reduced = self.engine.set_ipv6_link_mtu(advertised, now);
            tracing::info!(lcore = self.lcore, mtu = ?advertised, connections_reduced = reduced, "IPv6 link MTU from router advertisements");
        }
    }

    /// Copies the plain counters into [`LcoreStats::published`] unless a reader holds it.
    fn publish(&self) {
        if let Ok(mut p) = self.stats.published.try_lock() {
            p.net.clear();
            p.net.extend(self.ports.iter().map(|q| q.iface.counters().clone()));
            p.tcp = self.engine.counters().clone();
            p.tcp_connections = self.engine.connection_count();
            p.tcp_time_wait = self.engine.time_wait_count();
            p.tcp_buffer_bytes = self.engine.buffer_bytes();
            p.apps.clone_from(self.apps.counters());
            p.proxy.clone_from(self.apps.proxy_stats());
            p.busy_passes = self.busy_passes;
            p.impair.clear();
            p.impair.extend(self.ports.iter().map(PortQueue::impair_counters));
            self.stats.store_impair(&p.impair);
        }
    }

    /// Logs each IPv6 address's duplicate address detection verdict once: usable, or
    /// duplicate (an error the operator must act on: the address is never used).
    fn log_address_verdicts(&mut self) {
        for p in &mut self.ports {
            let c = p.iface.counters();
            let verdicts = c.dad_preferred + c.dad_failed;
            if verdicts == p.dad_logged {
                continue;
            }
            p.dad_logged = verdicts;
            for (addr, state) in p.iface.ipv6_addresses() {
                match state {
                    AddrState::Duplicate => tracing::error!(
                        lcore = self.lcore,
                        port = p.port.id(),
                        %addr,
                        "duplicate IPv6 address: another node on the link has it (RFC 4862 §5.4.5); it is not used until the conflict is fixed and strait restarted"
                    ),
                    AddrState::Preferred => tracing::info!(lcore = self.lcore, port = p.port.id(), %addr, "IPv6 address usable"),
                    AddrState::Tentative => {}
                }
            }
        }
    }

    /// Puts the engine under memory pressure when the pool runs low, and out of it once
    /// enough mbufs came back; each change is counted and logged.
    fn check_memory(&mut self, pool_size: u32) {
        let available = self.pool.available();
        // This lcore's connections' holding into the pool's account; the engine learns what
        // the other lcores hold and the limit they share.
        let own = Holding { bytes: self.engine.buffer_bytes(), connections: self.engine.connection_count() };
        let all = self.pool.account().report(self.reported, own);
        self.reported = own;
        let limit = memory_limit(pool_size, self.pool.data_room());
        self.engine.set_memory_account(MemoryAccount {
            limit,
            foreign: all.bytes.saturating_sub(own.bytes),
            connections: all.connections,
        });
        let wanted = memory_pressure_wanted(self.engine.memory_pressure(), available, pool_size, all.bytes, limit);
        if !self.engine.set_memory_pressure(wanted) {
            return;
        }
        LcoreStats::add(&self.stats.memory_pressure_changes, 1);
        self.stats.memory_pressure.store(u64::from(wanted), Ordering::Relaxed);
        if wanted {
            tracing::warn!(
                lcore = self.lcore,
                available,
                pool_size,
                held_bytes = all.bytes,
                limit_bytes = limit,
                "memory pressure: buffers low, clamping receive windows and holding each connection to its share"
            );
        } else {
            tracing::info!(lcore = self.lcore, available, pool_size, held_bytes = all.bytes, "memory pressure over");
        }
    }

    /// Queues a gratuitous ARP on every port (RFC 5227 §3 announcement) so that peers
    /// learn our address at start.
    pub fn announce(&mut self) {
        for p in &mut self.ports {
            p.iface.gratuitous_arp();
        }
    }

    /// Runs until the stop flag is raised, then returns the final counters.
    pub fn run(mut self) -> WorkerReport {
        tracing::info!(lcore = self.lcore, ports = self.ports.len(), "lcore loop started");
        let start = tsc();
        let mut last = start;
        let mut idle_spins = 0u32;
        let mut next_publish = Instant::ZERO;
        let mut next_pressure_check = Instant::ZERO;
        let pool_size = self.pool.in_use().saturating_add(self.pool.available());
        let waker = self.steer.as_ref().map(SteeringLinks::waker);
        let interrupts = self.register_rx_interrupts(waker.as_deref());
        while !self.stop.load(Ordering::Relaxed) {
            let t0 = tsc();
            let now = self.clock.instant(t0);
            if now >= next_publish {
                self.log_address_verdicts();
                self.follow_ipv6_link_mtu(now);
                self.publish();
                self.pin_servers();
                next_publish = now + PUBLISH_INTERVAL;
            }
            if now >= next_pressure_check {
                self.check_memory(pool_size);
                next_pressure_check = now + PRESSURE_CHECK_INTERVAL;
            }
            let mut work = 0;
            if let Some(inbox) = self.control.as_mut() {
                work += crate::command::poll(inbox, &mut self.engine, self.apps.proxy_mut(), now);
            }
            let work = work + self.poll_once(now);
            let t1 = tsc();
            if work > 0 {
                LcoreStats::add(&self.stats.busy_cycles, t1.wrapping_sub(t0));
                self.busy_passes.0.observe(self.clock.instant(t1).saturating_duration_since(now));
                idle_spins = 0;
            } else {
                idle_spins = idle_spins.saturating_add(1);
                // A frame handed over by another lcore rang the waker: poll again at once.
                let rung = waker.as_ref().is_some_and(|w| w.take());
                if idle_spins > idle::IDLE_SPINS_BEFORE_NAP && !rung {
                    let naps = idle_spins - idle::IDLE_SPINS_BEFORE_NAP;
                    if self.back_off(now, naps, interrupts, waker.as_deref()) > 0 {
                        idle_spins = 0;
                    }
                }
            }
            let t2 = tsc();
            LcoreStats::add(&self.stats.total_cycles, t2.wrapping_sub(last));
            LcoreStats::add(&self.stats.iterations, 1);
            last = t2;
        }
        tracing::info!(lcore = self.lcore, busy_ratio = self.stats.busy_ratio(), "lcore loop stopped");
        self.reap_tx();
        let impair: Vec<PortImpairCounters> = self.ports.iter().map(PortQueue::impair_counters).collect();
        self.stats.store_impair(&impair);
        for (port, p) in self.ports.iter_mut().enumerate() {
            // Frames still waiting for the ring, and those the impairer held, go back to
            // the pool before it is counted.
            if p.release().is_none() {
                continue;
            }
            let c = impair.get(port).copied().unwrap_or_default();
            for (direction, d) in [("rx", c.rx), ("tx", c.tx)] {
                tracing::info!(
                    lcore = self.lcore,
                    port,
                    direction,
                    frames = d.frames,
                    dropped = d.dropped,
                    reordered = d.reordered,
                    duplicated = d.duplicated,
                    corrupted = d.corrupted,
                    overflow = d.overflow,
                    "impairment counters"
                );
            }
        }
        WorkerReport {
            lcore: self.lcore,
            net: self.ports.iter().map(|p| p.iface.counters().clone()).collect(),
            tcp: self.engine.counters().clone(),
            apps: self.apps.counters().clone(),
            proxy: self.apps.proxy_stats().clone(),
            tcp_connections: self.engine.connection_count(),
            copies: copy_stats(),
            pool_in_use: self.pool.in_use(),
            impair,
        }
    }

    /// Gives the PMDs up to 50 ms to hand back the mbufs of frames still being sent (a
    /// kernel peer of an AF_XDP port frees them when it has taken the frame), so that the
    /// pool is counted with nothing in flight.
    fn reap_tx(&mut self) {
        let mut last = self.pool.in_use();
        for i in 0..50 {
            for p in &self.ports {
                p.port.reap_tx(p.queue);
            }
            let now = self.pool.in_use();
            if now == last && i >= 5 {
                break;
            }
            last = now;
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// One pass over every port: receive, process, run timers, transmit. Returns the
    /// number of frames received plus sent (0 means the pass was idle).
    pub fn poll_once(&mut self, now: Instant) -> usize {
        let mut work = 0;
        let Worker { ports, pool, stats, rx, rx_due, scratch, engine, apps, shed_below, steer, control, .. } = self;
        // Off (no session), capture costs this test per burst and per flush.
        let mut tap = control.as_mut().and_then(crate::command::Inbox::capture_mut);
        let ephemeral = engine.config().ephemeral_ports;
        for (port_index, p) in ports.iter_mut().enumerate() {
            // Each RX queue this lcore polls on the port (one, but for an AF_XDP port with
            // more queues than lcores).
            for source in 0..=p.more_rx.len() {
                if !p.rx_due(source) {
                    continue;
                }
                // A full burst means more frames wait: take up to RX_BURSTS_PER_PASS bursts
                // before the timers and the transmit side run (Linux's NAPI budget per device).
                for burst in 0..RX_BURSTS_PER_PASS {
                    rx.clear();
                    let Some((device, queue)) = p.rx_queue(source) else { break };
                    let n = device.rx_burst(queue, rx, BURST);
                    if burst == 0 {
                        p.rx_polled(source, n);
                    }
                    LcoreStats::add(&stats.rx_frames, n as u64);
                    work += n;
                    if let Some(t) = tap.as_deref_mut().filter(|t| n > 0 && t.wants(port_index, queue)) {
                        let wall = capture::unix_nanos();
                        let origin = capture::Origin { port: port_index, queue, direction: capture::Direction::Rx };
                        for m in rx.iter() {
                            t.offer(origin, now, wall, m.len(), m.segments());
                        }
                    }
                    // Checked per burst: data already acknowledged holds its mbufs until the
                    // application and the peer release them, so what is not acknowledged yet is
                    // dropped (and retransmitted by the peer) before the reserve is gone.
                    let shed = n > 0 && pool.available() < *shed_below;
                    engine.set_rx_shedding(shed);
                    let shed_before = engine.counters().ofo_drop + engine.counters().rcvq_drop;
                    rx_due.clear();
                    match p.impair.as_mut() {
                        // Impairment sits between the ring and the network layer.
                        Some(imp) => imp.receive(now, rx, rx_due),
                        None => rx_due.extend(rx.drain(..).map(|m| (m, false))),
                    }
                    for (m, corrupted) in rx_due.drain(..) {
                        if let Some(links) = steer.as_ref() {
                            match links.route(m.data(), p.iface.ipv4()) {
                                Route::Here => {}
                                Route::Owner { lcore, dst_port } => {
                                    let to_ephemeral = (ephemeral.0..=ephemeral.1).contains(&dst_port);
                                    match links.send(lcore, Handoff { port: port_index, frame: m, corrupted }) {
                                        Ok(()) => {
                                            LcoreStats::add(&stats.redirected_frames, 1);
                                            if to_ephemeral {
                                                LcoreStats::add(&stats.redirected_active_open_frames, 1);
                                            }
                                        }
                                        // Dropped (the frame with it): TCP retransmits.
                                        Err(_) => LcoreStats::add(&stats.redirect_dropped_frames, 1),
                                    }
                                    continue;
                                }
                                Route::Share => {
                                    let (shared, dropped) = links.share_arp(port_index, m.data(), pool);
                                    LcoreStats::add(&stats.arp_shared_frames, shared);
                                    LcoreStats::add(&stats.redirect_dropped_frames, dropped);
                                }
                            }
                        }
                        ingress::receive_frame(p, m, corrupted, now, pool, stats, scratch, engine);
                    }
                    if shed {
                        let shed_after = engine.counters().ofo_drop + engine.counters().rcvq_drop;
                        LcoreStats::add(&stats.tcp_rx_shed, shed_after.saturating_sub(shed_before));
                    }
                    if n < BURST {
                        break;
                    }
                }
            }
            p.iface.poll(now);
        }
        if let Some(links) = steer.as_ref() {
            let mut shed = None;
            for _ in 0..INBOX_BURST {
                let Some(h) = links.recv() else { break };
                LcoreStats::add(&stats.redirect_received_frames, 1);
                work += 1;
                let shed = *shed.get_or_insert_with(|| pool.available() < *shed_below);
                engine.set_rx_shedding(shed);
                // A port index out of range cannot come from a peer; dropping is safe.
                if let Some(p) = ports.get_mut(h.port) {
                    ingress::receive_frame(p, h.frame, h.corrupted, now, pool, stats, scratch, engine);
                }
            }
        }
        // Segments held for ARP go before newer ones of the same flows.
        work += egress::release_unresolved(ports, pool, stats, now);
        if engine.next_deadline().is_some_and(|t| t <= now) {
            engine.handle_timeouts(now);
        }
        work += apps.poll(engine, now);
        let mut tx_out = 0usize;
        // The callback only builds frames; they go to the rings once it has returned.
        engine.poll_transmit(now, &mut |src, dst, seg| {
            tx_out += 1;
            egress::transmit_segment(ports, pool, stats, src, dst, seg, now);
        });
        LcoreStats::add(&stats.tcp_tx_segments, tx_out as u64);
        work += tx_out;
        for (port_index, p) in ports.iter_mut().enumerate() {
            work += p.flush(pool, stats, now, port_index, tap.as_deref_mut());
        }
        work
    }

    /// Earliest timer among the interfaces and the TCP engine (used by callers that
    /// sleep between polls).
    pub fn next_deadline(&self) -> Option<Instant> {
        let held = self.ports.iter().filter_map(PortQueue::next_impaired_delivery);
        self.ports
            .iter()
            .filter_map(|p| p.iface.next_deadline())
            .chain(self.engine.next_deadline())
            .chain(held)
            .min()
    }
}

/// How long a stopped lcore may take to notice its stop flag, for callers that wait.
pub const STOP_LATENCY: Duration = Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_clock_converts_cycles_to_nanoseconds() {
        let c = TscClock::new(2_000_000_000);
        assert_eq!(c.instant(2_000_000_000).as_millis(), 1000);
        assert_eq!(c.instant(u64::MAX), Instant::from_nanos(u64::MAX / 2));
        let z = TscClock::new(0);
        assert_eq!(z.instant(5).as_nanos(), 5);
    }
}
