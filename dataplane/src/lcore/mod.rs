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
//! TCP without copies: a received segment becomes an [`MbufPayload`] viewing the frame it
//! arrived in; a transmitted segment is a fresh header mbuf (Ethernet, IPv4, TCP) chained
//! with indirect mbufs over the payload's buffers. A super-segment (`Segment::mss != 0`)
//! goes to the NIC for TSO when the port granted it, and is otherwise cut by software GSO
//! ([`gso_segment`], which copies into fresh frames, counted). Checksums are offloaded when
//! granted and computed in software otherwise.
//!
//! This module has no `unsafe`: it drives DPDK through the safe adapter in [`crate::dpdk`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::net::Ipv4Addr;

use crate::app::proxy::{ProxyError, ProxySpec, ProxyStats};
use crate::app::{AppCounters, AppSpec, Apps};
use crate::impair::{corrupt_ipv4_payload, direction_seed, ImpairConfig, ImpairCounters, Impairer};
use crate::dpdk::{copy_stats, count_copy, tsc, CksumStatus, CopyStats, Mbuf, MbufPayload, Mempool, Port, TxOffload};
use crate::net::{Input, Interface, LinkResult, NetCounters, RxChecksum};
use crate::offload::gso_segment;
use crate::tcp::{Counters, Engine, Payload, Segment, StackError, TcpConfig};
use crate::time::{Duration, Instant};
use crate::wire::{checksum, ethernet, ipv4, tcp as wire_tcp};

mod idle;
pub mod steer;
pub mod wake;

pub use steer::{mesh, Handoff, Route, SteeringLinks, SteeringMode, INBOX_BURST, INBOX_CAPACITY};
pub use wake::Waker;

/// Frames taken from a queue per RX burst.
pub const BURST: usize = 32;
/// Frames (TSO super-frames count once) a port queue keeps for the next pass when its TX
/// ring is full. A full ring is usually momentary (`net_tap`: the kernel has not taken the
/// last writes yet); dropping there would be loss TCP sees as congestion, in bursts.
pub const TX_BACKLOG_MAX: usize = 1024;
/// How long a port queue's TX ring may take nothing while frames wait before the oldest
/// frame is dropped ([`LcoreStats::tx_dropped_refused`]).
const TX_STALL_LIMIT: Duration = Duration::from_millis(5);

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

/// Per-lcore figures the control plane may read at any time (relaxed loads).
#[derive(Debug, Default)]
pub struct LcoreStats {
    /// Frames received on this lcore's queues.
    pub rx_frames: AtomicU64,
    /// Frames handed to the TX queues.
    pub tx_frames: AtomicU64,
    /// Frames dropped because the TX queue stayed full (beyond the per-port backlog of
    /// [`TX_BACKLOG_MAX`] frames kept for the next pass).
    pub tx_dropped_full: AtomicU64,
    /// Frames dropped because the TX ring took nothing for [`TX_STALL_LIMIT`] with them at
    /// its head (a frame the PMD refuses, or a ring that stays full).
    pub tx_dropped_refused: AtomicU64,
    /// Frames that could not be sent because no mbuf was free.
    pub tx_dropped_nombuf: AtomicU64,
    /// TSC cycles spent in iterations that did work.
    pub busy_cycles: AtomicU64,
    /// TSC cycles since the loop started.
    pub total_cycles: AtomicU64,
    /// Loop iterations.
    pub iterations: AtomicU64,
    /// TCP segments handed to the engine.
    pub tcp_rx_segments: AtomicU64,
    /// Received TCP segments whose range lay outside the frame, or that could not be
    /// turned into a payload (no mbuf for a scattered frame's copy).
    pub tcp_rx_dropped: AtomicU64,
    /// TCP segments the engine emitted (super-segments count once).
    pub tcp_tx_segments: AtomicU64,
    /// TCP segments dropped because the next hop was not resolved yet (TCP retransmits).
    pub tcp_tx_unresolved: AtomicU64,
    /// TCP segments dropped because no port has their source address.
    pub tcp_tx_no_route: AtomicU64,
    /// TCP segments whose checksum was computed in software because the device would get
    /// it wrong (a chain with an odd-length piece on `net_tap`; see `PortQueue`).
    pub tx_sw_cksum_odd_pieces: AtomicU64,
    /// TCP segments that could not be built (no mbuf, chain or offload failure).
    pub tcp_tx_build_failed: AtomicU64,
    /// Super-segments handed to the NIC for TSO.
    pub tso_segments: AtomicU64,
    /// Frames produced by software GSO.
    pub gso_frames: AtomicU64,
    /// Received frames the impairment layer dropped (all ports; see [`crate::impair`]).
    pub impair_rx_dropped: AtomicU64,
    /// Received frames the impairment layer held back to be overtaken.
    pub impair_rx_reordered: AtomicU64,
    /// Received frames the impairment layer delivered twice.
    pub impair_rx_duplicated: AtomicU64,
    /// Received frames the impairment layer corrupted.
    pub impair_rx_corrupted: AtomicU64,
    /// Transmitted frames the impairment layer dropped.
    pub impair_tx_dropped: AtomicU64,
    /// Transmitted frames the impairment layer held back to be overtaken.
    pub impair_tx_reordered: AtomicU64,
    /// Transmitted frames the impairment layer sent twice.
    pub impair_tx_duplicated: AtomicU64,
    /// Transmitted frames the impairment layer corrupted.
    pub impair_tx_corrupted: AtomicU64,
    /// Times the TCP engine entered or left memory pressure (free mbufs below
    /// [`PRESSURE_ENTER_DIVISOR`]th of the pool, above [`PRESSURE_LEAVE_DIVISOR`]th).
    pub memory_pressure_changes: AtomicU64,
    /// 1 while the engine is under memory pressure, else 0.
    pub memory_pressure: AtomicU64,
    /// Received TCP segments carrying data dropped before the engine because fewer than
    /// 1/[`RESERVE_DIVISOR`] of the pool's mbufs were free (the sender retransmits; the
    /// reserve keeps ARP, ICMP and ACKs flowing).
    pub tcp_rx_shed: AtomicU64,
    /// Received TCP frames of a flow another lcore owns, handed to it ([`steer`]).
    pub redirected_frames: AtomicU64,
    /// Of those, frames to one of our ephemeral ports: return traffic of connections an
    /// lcore opened (zero where the device steers by RSS).
    pub redirected_active_open_frames: AtomicU64,
    /// Frames other lcores handed to this one.
    pub redirect_received_frames: AtomicU64,
    /// Frames (and ARP copies) that could not be handed over: the owner's inbox was full
    /// or no mbuf was free for an ARP copy.
    pub redirect_dropped_frames: AtomicU64,
    /// Copies of ARP packets addressed to us handed to the other lcores' neighbour tables.
    pub arp_shared_frames: AtomicU64,
    /// Times the idle lcore slept a fixed nap (no RX interrupts, or a timer due sooner
    /// than an interrupt wait).
    pub idle_naps: AtomicU64,
    /// Times the idle lcore blocked until an RX interrupt, a wake-up or a timeout.
    pub idle_interrupt_waits: AtomicU64,
    /// Of those, the waits that ended by an event (a frame or a wake-up) before the timeout.
    pub idle_interrupt_wakeups: AtomicU64,
    /// Copies of the engine's and interfaces' counters, refreshed by the lcore every
    /// [`PUBLISH_INTERVAL`] for the control plane (metrics). The lcore only ever
    /// `try_lock`s it, so a reader can delay a refresh but never stall the loop.
    pub published: Mutex<PublishedCounters>,
}

/// Memory pressure starts when fewer than 1/this of the pool's mbufs are free...
pub const PRESSURE_ENTER_DIVISOR: u32 = 8;
/// ...and ends when more than 1/this are free again (hysteresis).
pub const PRESSURE_LEAVE_DIVISOR: u32 = 4;
/// Below 1/this of the pool free, received data segments are shed (see
/// [`LcoreStats::tcp_rx_shed`]).
pub const RESERVE_DIVISOR: u32 = 16;
/// How often an lcore looks at the pool's free mbufs.
const PRESSURE_CHECK_INTERVAL: Duration = Duration::from_millis(1);

/// Whether the engine should be under memory pressure with `available` of `size` mbufs
/// free, given whether it is now (`pressed`).
pub fn memory_pressure_wanted(pressed: bool, available: u32, size: u32) -> bool {
    if pressed {
        available <= size / PRESSURE_LEAVE_DIVISOR
    } else {
        available < size / PRESSURE_ENTER_DIVISOR
    }
}

/// How often an lcore copies its counters into [`LcoreStats::published`].
pub const PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// Counters an lcore keeps in plain fields, as last published.
#[derive(Debug, Clone, Default)]
pub struct PublishedCounters {
    /// Link/network counters per port, in the order the ports were given.
    pub net: Vec<NetCounters>,
    /// TCP engine counters.
    pub tcp: Counters,
    /// Connections in the engine.
    pub tcp_connections: usize,
    /// Proxy counters per listener and server.
    pub proxy: ProxyStats,
    /// Impairment counters per port, in the order the ports were given (zero for a
    /// port without impairment).
    pub impair: Vec<PortImpairCounters>,
}

/// What the impairment layer did to one port's frames on one lcore.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortImpairCounters {
    /// Received frames.
    pub rx: ImpairCounters,
    /// Transmitted frames.
    pub tx: ImpairCounters,
}

impl LcoreStats {
    fn add(counter: &AtomicU64, n: u64) {
        // Only the owning lcore writes: a load + store is enough and avoids a locked RMW.
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// `(name, value)` of every frame and segment counter (relaxed loads).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        [
            ("rx_frames", &self.rx_frames),
            ("tx_frames", &self.tx_frames),
            ("tx_dropped_full", &self.tx_dropped_full),
            ("tx_dropped_nombuf", &self.tx_dropped_nombuf),
            ("tx_dropped_refused", &self.tx_dropped_refused),
            ("tcp_rx_segments", &self.tcp_rx_segments),
            ("tcp_rx_dropped", &self.tcp_rx_dropped),
            ("tcp_tx_segments", &self.tcp_tx_segments),
            ("tcp_tx_unresolved", &self.tcp_tx_unresolved),
            ("tcp_tx_no_route", &self.tcp_tx_no_route),
            ("tx_sw_cksum_odd_pieces", &self.tx_sw_cksum_odd_pieces),
            ("tcp_tx_build_failed", &self.tcp_tx_build_failed),
            ("tso_segments", &self.tso_segments),
            ("gso_frames", &self.gso_frames),
            ("impair_rx_dropped", &self.impair_rx_dropped),
            ("impair_rx_reordered", &self.impair_rx_reordered),
            ("impair_rx_duplicated", &self.impair_rx_duplicated),
            ("impair_rx_corrupted", &self.impair_rx_corrupted),
            ("impair_tx_dropped", &self.impair_tx_dropped),
            ("impair_tx_reordered", &self.impair_tx_reordered),
            ("impair_tx_duplicated", &self.impair_tx_duplicated),
            ("impair_tx_corrupted", &self.impair_tx_corrupted),
            ("memory_pressure_changes", &self.memory_pressure_changes),
            ("memory_pressure", &self.memory_pressure),
            ("tcp_rx_shed", &self.tcp_rx_shed),
            ("redirected_frames", &self.redirected_frames),
            ("redirected_active_open_frames", &self.redirected_active_open_frames),
            ("redirect_received_frames", &self.redirect_received_frames),
            ("redirect_dropped_frames", &self.redirect_dropped_frames),
            ("arp_shared_frames", &self.arp_shared_frames),
            ("idle_naps", &self.idle_naps),
            ("idle_interrupt_waits", &self.idle_interrupt_waits),
            ("idle_interrupt_wakeups", &self.idle_interrupt_wakeups),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.load(Ordering::Relaxed)))
    }

    /// Sets the impairment atomics to the sums of `ports` (the counters are cumulative).
    fn store_impair(&self, ports: &[PortImpairCounters]) {
        let sum = |f: fn(&PortImpairCounters) -> u64| ports.iter().map(f).fold(0u64, u64::wrapping_add);
        let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        set(&self.impair_rx_dropped, sum(|c| c.rx.dropped + c.rx.overflow));
        set(&self.impair_rx_reordered, sum(|c| c.rx.reordered));
        set(&self.impair_rx_duplicated, sum(|c| c.rx.duplicated));
        set(&self.impair_rx_corrupted, sum(|c| c.rx.corrupted));
        set(&self.impair_tx_dropped, sum(|c| c.tx.dropped + c.tx.overflow));
        set(&self.impair_tx_reordered, sum(|c| c.tx.reordered));
        set(&self.impair_tx_duplicated, sum(|c| c.tx.duplicated));
        set(&self.impair_tx_corrupted, sum(|c| c.tx.corrupted));
    }

    /// Busy cycles / total cycles, between 0 and 1.
    pub fn busy_ratio(&self) -> f64 {
        let total = self.total_cycles.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        self.busy_cycles.load(Ordering::Relaxed) as f64 / total as f64
    }
}

/// One port as seen by one lcore: the queue pair it owns and the interface state.
pub struct PortQueue {
    /// The port (shared: bursts on distinct queues may run concurrently).
    pub port: Arc<Port>,
    /// The RX and TX queue index this lcore owns.
    pub queue: u16,
    /// Link/network layer state for this port on this lcore.
    pub iface: Interface,
    /// Whether the device verifies RX checksums (else software does).
    pub rx_cksum_offload: bool,
    /// The PMD checks `l2_len + l3_len + l4_len + tso_segsz` against the (IP) MTU, so
    /// TSO segments must be cut that much smaller (DPDK `net_tap`, `pmd_tx_burst`).
    tso_frame_within_mtu: bool,
    /// The PMD's software checksum "offload" sums each segment of a chain on its own and
    /// adds the sums up, which is only right when every segment but the last has an even
    /// length (RFC 1071 §2: an odd-length piece shifts the byte order of what follows).
    /// DPDK 22.11 `net_tap` (`tap_tx_l4_add_rcksum`), also behind its software TSO. A
    /// frame whose payload has such a piece gets its TCP checksum in software instead
    /// (and is not handed over for TSO).
    odd_piece_cksum_broken: bool,
    tx: Vec<Mbuf>,
    /// Frames the TX ring did not take, oldest first, sent before new ones on the next
    /// pass (at most [`TX_BACKLOG_MAX`]).
    tx_backlog: Vec<Mbuf>,
    /// Since when the TX ring has taken nothing while frames waited.
    tx_stalled_since: Option<Instant>,
    /// Seeded impairment of this port's frames (`[port.impair]`), off by default.
    impair: Option<Box<PortImpair>>,
}

/// An mbuf as the impairment layer holds it: duplicating takes another reference.
struct Frame(Mbuf);

impl Clone for Frame {
    fn clone(&self) -> Self {
        Frame(self.0.clone_ref())
    }
}

/// Both directions of one port's impairment.
struct PortImpair {
    rx: Impairer<Frame>,
    tx: Impairer<Frame>,
}

impl PortImpair {
    fn counters(&self) -> PortImpairCounters {
        PortImpairCounters { rx: self.rx.counters(), tx: self.tx.counters() }
    }
}

/// Corrupts a received frame: its first segment is ours alone straight off the ring.
fn corrupt_rx(f: &mut Frame, bits: u64) -> bool {
    f.0.data_mut().is_some_and(|d| corrupt_ipv4_payload(d, bits))
}

/// Corrupts a frame about to be sent, so that the peer's checksum validation rejects it:
/// a byte of the (header) mbuf's IPv4 payload is flipped and checksum offload is turned
/// off, as the device would otherwise checksum the flipped byte in; the fields then still
/// hold what offload wants (IPv4: 0, TCP: the pseudo-header sum), which is wrong. A TSO
/// super-frame is left alone (the device rewrites every checksum of its segments).
fn corrupt_tx(f: &mut Frame, bits: u64) -> bool {
    let off = f.0.tx_offload();
    if off.tso {
        return false;
    }
    if !f.0.data_mut().is_some_and(|d| corrupt_ipv4_payload(d, bits)) {
        return false;
    }
    if off.ip_cksum || off.tcp_cksum || off.udp_cksum {
        let plain = TxOffload { ip_cksum: false, tcp_cksum: false, udp_cksum: false, ..off };
        // Only fails on a shared head, which a fresh header mbuf is not; the frame is
        // corrupted either way.
        let _ = f.0.set_tx_offload(plain);
    }
    true
}

impl PortQueue {
    /// Wraps `port`'s queue pair `queue` with the interface state `iface`.
    pub fn new(port: Arc<Port>, queue: u16, iface: Interface) -> Self {
        let rx_cksum_offload = port.granted().rx_cksum;
        let tso_frame_within_mtu = port.driver() == "net_tap";
        let odd_piece_cksum_broken = port.driver() == "net_tap";
        PortQueue {
            port,
            queue,
            iface,
            rx_cksum_offload,
            tso_frame_within_mtu,
            odd_piece_cksum_broken,
            tx: Vec::with_capacity(BURST),
            tx_backlog: Vec::new(),
            tx_stalled_since: None,
            impair: None,
        }
    }

    /// Impairs this port's frames on this lcore as `cfg` says (nothing when every
    /// probability and the delay are zero). `lcore` and `port_index` vary the seed so
    /// that each queue draws its own stream.
    #[must_use]
    pub fn with_impairment(mut self, cfg: &ImpairConfig, lcore: u32, port_index: usize) -> Self {
        self.impair = (!cfg.is_passthrough()).then(|| {
            Box::new(PortImpair {
                rx: Impairer::new(cfg.rx, direction_seed(cfg.seed, lcore, port_index, false)),
                tx: Impairer::new(cfg.tx, direction_seed(cfg.seed, lcore, port_index, true)),
            })
        });
        self
    }

    /// What the impairment layer did so far (zero without impairment).
    pub fn impair_counters(&self) -> PortImpairCounters {
        self.impair.as_ref().map(|i| i.counters()).unwrap_or_default()
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

/// The TCP side of a worker: engine settings, key and services.
#[derive(Debug, Clone)]
pub struct TcpSetup {
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
    ip_ident: u16,
    /// Below this many free mbufs, received data segments are shed (see
    /// [`LcoreStats::tcp_rx_shed`]).
    shed_below: u32,
    /// Commands from the control plane, polled once per iteration ([`crate::control`]).
    control: Option<crate::control::Inbox>,
    /// Flow steering to and from the other lcores (none with a single lcore).
    steer: Option<SteeringLinks>,
}

/// Whether the TCP segment at `frame[l4_offset..l4_offset + l4_len]` carries data (more
/// than its header); `true` when the header cannot be read, so that it is shed rather than kept.
fn carries_data(frame: &[u8], l4_offset: usize, l4_len: usize) -> bool {
    match frame.get(l4_offset + 12) {
        Some(b) => l4_len > usize::from(b >> 4) * 4,
        None => true,
    }
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
        tcp: TcpSetup,
    ) -> Result<Self, StackError> {
        let mut cfg = tcp.config;
        // RFC 9293 §3.7.1: the MSS is the MTU minus the fixed IPv4 and TCP headers.
        if let Some(mtu) = ports.iter().map(|p| p.iface.mtu()).min() {
            let fit = mtu.saturating_sub((ipv4::HEADER_LEN + wire_tcp::HEADER_LEN) as u16);
            cfg.mss = cfg.mss.min(fit);
        }
        cfg.tso = true;
        let mut engine = Engine::new(cfg, tcp.secret, clock.instant(tsc()));
        let shed_below = pool.in_use().saturating_add(pool.available()) / RESERVE_DIVISOR;
        let mut apps = Apps::new();
        // PROXY protocol headers (`app::proxy::proxy_protocol`) are copied into mbufs of
        // the lcore's pool; `None` (pool empty) resets the session, counted.
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
            ip_ident: 0,
            shed_below,
            control: None,
            steer: None,
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

    /// Takes commands from the control plane through `inbox` ([`crate::control`]).
    pub fn set_control(&mut self, inbox: crate::control::Inbox) {
        self.control = Some(inbox);
    }

    /// Starts the proxy's listeners on this lcore's engine ([`crate::app::proxy`]).
    pub fn start_proxy(&mut self, spec: &ProxySpec) -> Result<(), ProxyError> {
        self.apps.start_proxy(&mut self.engine, spec)
    }

    /// The proxy's counters.
    pub fn proxy_stats(&self) -> &ProxyStats {
        self.apps.proxy_stats()
    }

    /// Copies the plain counters into [`LcoreStats::published`] unless a reader holds it.
    fn publish(&self) {
        if let Ok(mut p) = self.stats.published.try_lock() {
            p.net.clear();
            p.net.extend(self.ports.iter().map(|q| q.iface.counters().clone()));
            p.tcp = self.engine.counters().clone();
            p.tcp_connections = self.engine.connection_count();
            p.proxy.clone_from(self.apps.proxy_stats());
            p.impair.clear();
            p.impair.extend(self.ports.iter().map(PortQueue::impair_counters));
            self.stats.store_impair(&p.impair);
        }
    }

    /// Puts the engine under memory pressure when the pool runs low, and out of it once
    /// enough mbufs came back; each change is counted and logged.
    fn check_memory(&mut self, pool_size: u32) {
        let available = self.pool.available();
        let wanted = memory_pressure_wanted(self.engine.memory_pressure(), available, pool_size);
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
                "memory pressure: mbufs low, refusing new connections and clamping receive windows"
            );
        } else {
            tracing::info!(lcore = self.lcore, available, pool_size, "memory pressure over: accepting connections again");
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
                self.publish();
                next_publish = now + PUBLISH_INTERVAL;
            }
            if now >= next_pressure_check {
                self.check_memory(pool_size);
                next_pressure_check = now + PRESSURE_CHECK_INTERVAL;
            }
            let mut work = 0;
            if let Some(inbox) = self.control.as_mut() {
                let pool = &self.pool;
                let mut make = |b: &[u8]| MbufPayload::from_slice(pool, b).ok();
                work += crate::control::poll(inbox, &mut self.engine, &mut self.apps, now, &mut make);
            }
            let work = work + self.poll_once(now);
            let t1 = tsc();
            if work > 0 {
                LcoreStats::add(&self.stats.busy_cycles, t1.wrapping_sub(t0));
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
        let impair: Vec<PortImpairCounters> = self.ports.iter().map(PortQueue::impair_counters).collect();
        self.stats.store_impair(&impair);
        for (port, p) in self.ports.iter_mut().enumerate() {
            // Frames still waiting for the ring go back to the pool before it is counted.
            p.tx_backlog.clear();
            if p.impair.take().is_none() {
                continue;
            }
            // Taking the impairer freed the frames it held, before the pool is counted.
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

    /// One pass over every port: receive, process, run timers, transmit. Returns the
    /// number of frames received plus sent (0 means the pass was idle).
    pub fn poll_once(&mut self, now: Instant) -> usize {
        let mut work = 0;
        let Worker { ports, pool, stats, rx, rx_due, scratch, engine, apps, ip_ident, shed_below, steer, .. } = self;
        let ephemeral = engine.config().ephemeral_ports;
        for (port_index, p) in ports.iter_mut().enumerate() {
            rx.clear();
            let n = p.port.rx_burst(p.queue, rx, BURST);
            LcoreStats::add(&stats.rx_frames, n as u64);
            work += n;
            // Checked per burst: data already acknowledged holds its mbufs until the
            // application and the peer release them, so what is not acknowledged yet is
            // dropped (and retransmitted by the peer) before the reserve is gone.
            let shed = n > 0 && pool.available() < *shed_below;
            rx_due.clear();
            match p.impair.as_mut() {
                // Impairment sits between the ring and the network layer.
                Some(imp) => {
                    for m in rx.drain(..) {
                        imp.rx.push(now, Frame(m), corrupt_rx);
                    }
                    while let Some(d) = imp.rx.poll(now) {
                        rx_due.push((d.frame.0, d.corrupted));
                    }
                }
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
                receive_frame(p, m, corrupted, shed, now, pool, stats, scratch, engine);
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
                // A port index out of range cannot come from a peer; dropping is safe.
                if let Some(p) = ports.get_mut(h.port) {
                    receive_frame(p, h.frame, h.corrupted, shed, now, pool, stats, scratch, engine);
                }
            }
        }
        if engine.next_deadline().is_some_and(|t| t <= now) {
            engine.handle_timeouts(now);
        }
        work += apps.poll(engine, now);
        let mut tx_out = 0usize;
        engine.poll_transmit(now, &mut |src, dst, seg| {
            tx_out += 1;
            transmit_segment(ports, pool, stats, ip_ident, src, dst, seg, now);
        });
        LcoreStats::add(&stats.tcp_tx_segments, tx_out as u64);
        work += tx_out;
        for p in ports.iter_mut() {
            work += Self::transmit(p, pool, stats, now);
        }
        work
    }

    fn transmit(p: &mut PortQueue, pool: &Mempool, stats: &LcoreStats, now: Instant) -> usize {
        let tx = &mut p.tx;
        p.iface.poll_transmit(now, &mut |frame: &[u8]| match Mbuf::from_slice(pool, frame) {
            Ok(m) => tx.push(m),
            Err(_) => LcoreStats::add(&stats.tx_dropped_nombuf, 1),
        });
        if let Some(imp) = p.impair.as_mut() {
            // Impairment sits between the stack and the ring.
            for m in tx.drain(..) {
                imp.tx.push(now, Frame(m), corrupt_tx);
            }
            while let Some(d) = imp.tx.poll(now) {
                tx.push(d.frame.0);
            }
        }
        if !p.tx_backlog.is_empty() {
            // What the ring did not take last time goes first: `tx` = backlog + new.
            p.tx_backlog.append(tx);
            std::mem::swap(tx, &mut p.tx_backlog);
        }
        if tx.is_empty() {
            return 0;
        }
        let mut sent = 0;
        // A full TX ring gets a few immediate retries; what still does not fit waits for
        // the next pass, up to TX_BACKLOG_MAX frames; beyond that, the newest are dropped
        // and counted (TCP retransmits; ARP/ICMP are best effort).
        for _ in 0..4 {
            sent += p.port.tx_prepare_and_burst(p.queue, tx);
            if tx.is_empty() {
                break;
            }
        }
        LcoreStats::add(&stats.tx_frames, sent as u64);
        if sent > 0 || tx.is_empty() {
            p.tx_stalled_since = None;
        } else {
            // Nothing taken: a full ring, or a frame the PMD refuses (a PMD stops its
            // burst at a frame it cannot send, which would block every frame behind it).
            // Once that lasts TX_STALL_LIMIT, the head frame goes.
            let since = *p.tx_stalled_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= TX_STALL_LIMIT {
                tx.remove(0);
                LcoreStats::add(&stats.tx_dropped_refused, 1);
                p.tx_stalled_since = Some(now);
            }
        }
        if !tx.is_empty() {
            if tx.len() > TX_BACKLOG_MAX {
                LcoreStats::add(&stats.tx_dropped_full, (tx.len() - TX_BACKLOG_MAX) as u64);
                tx.truncate(TX_BACKLOG_MAX);
            }
            std::mem::swap(tx, &mut p.tx_backlog);
        }
        sent
    }

    /// Earliest timer among the interfaces and the TCP engine (used by callers that
    /// sleep between polls).
    pub fn next_deadline(&self) -> Option<Instant> {
        let held = self.ports.iter().filter_map(|p| p.impair.as_ref()).flat_map(|i| {
            [i.rx.next_delivery(), i.tx.next_delivery()].into_iter().flatten()
        });
        self.ports
            .iter()
            .filter_map(|p| p.iface.next_deadline())
            .chain(self.engine.next_deadline())
            .chain(held)
            .min()
    }
}

/// Passes one received frame of port `p` through the network layer and, for TCP, into
/// the engine (the frame becomes the payload: no copy). `corrupted`: the impairment
/// layer changed it, so the NIC's checksum verdict no longer holds; `shed`: the pool is
/// below its reserve, data segments are dropped.
#[allow(clippy::too_many_arguments)]
fn receive_frame(
    p: &mut PortQueue,
    m: Mbuf,
    corrupted: bool,
    shed: bool,
    now: Instant,
    pool: &Mempool,
    stats: &LcoreStats,
    scratch: &mut Vec<u8>,
    engine: &mut Engine<MbufPayload>,
) {
    // The NIC's verdict predates a corruption: software verifies then.
    let csum = if p.rx_cksum_offload && !corrupted {
        rx_checksum(m.ip_cksum(), m.l4_cksum())
    } else {
        RxChecksum::Unknown
    };
    // A chained frame is linearised into a scratch buffer for the checks
    // rather than misparsed (the TCP payload itself is not taken from it).
    let input = if m.nb_segs() > 1 {
        scratch.clear();
        for seg in m.segments() {
            scratch.extend_from_slice(seg);
        }
        p.iface.handle_frame(scratch, now, csum)
    } else {
        p.iface.handle_frame(m.data(), now, csum)
    };
    if let Input::Tcp { src, dst, l4_offset, l4_len, l4_checksum_verified } = input {
        if shed && carries_data(m.data(), l4_offset, l4_len) {
            LcoreStats::add(&stats.tcp_rx_shed, 1);
            return;
        }
        // The frame becomes the payload: no copy (RFC 9293 §3.10.7 from here on).
        match MbufPayload::from_rx(m, l4_offset, l4_len, pool) {
            Ok(segment) => {
                LcoreStats::add(&stats.tcp_rx_segments, 1);
                // Malformed segments and bad checksums are counted by the engine.
                let _ = engine.handle_datagram(src, dst, segment, l4_checksum_verified, now);
            }
            Err(_) => LcoreStats::add(&stats.tcp_rx_dropped, 1),
        }
    }
}

/// Largest Ethernet + IPv4 + TCP header this module builds (no IP options).
const MAX_HEADERS: usize = ethernet::HEADER_LEN + ipv4::HEADER_LEN + wire_tcp::MAX_HEADER_LEN;

/// Builds the frame(s) of one TCP segment and queues them on the port that owns `src`.
/// Every failure is counted; a lost segment is recovered by TCP's retransmission.
#[allow(clippy::too_many_arguments)]
fn transmit_segment(
    ports: &mut [PortQueue],
    pool: &Mempool,
    stats: &LcoreStats,
    ip_ident: &mut u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seg: Segment<MbufPayload>,
    now: Instant,
) {
    let Some(p) = ports.iter_mut().find(|p| p.iface.ipv4() == src) else {
        LcoreStats::add(&stats.tcp_tx_no_route, 1);
        return;
    };
    let eth = match p.iface.link_header_for(dst, now) {
        LinkResult::Ready(h) => h,
        LinkResult::Pending => {
            LcoreStats::add(&stats.tcp_tx_unresolved, 1);
            return;
        }
    };
    let ident = *ip_ident;
    *ip_ident = ident.wrapping_add(u16::try_from(seg.frame_count()).unwrap_or(u16::MAX));
    if build_frames(p, pool, stats, &eth, ident, src, dst, &seg).is_err() {
        LcoreStats::add(&stats.tcp_tx_build_failed, 1);
        return;
    }
    if p.tx.len() >= BURST {
        Worker::transmit(p, pool, stats, now);
    }
}

/// Why a segment could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BuildError;

impl From<crate::dpdk::DpdkError> for BuildError {
    fn from(_: crate::dpdk::DpdkError) -> Self {
        BuildError
    }
}

/// Writes Ethernet + IPv4 + TCP headers for `seg` into `hdr`; returns their length.
fn write_headers(
    hdr: &mut [u8; MAX_HEADERS],
    eth: &[u8; ethernet::HEADER_LEN],
    ident: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seg: &Segment<MbufPayload>,
) -> Result<usize, BuildError> {
    let tcp_len = seg.repr.header_len();
    let ip_start = ethernet::HEADER_LEN;
    let tcp_start = ip_start + ipv4::HEADER_LEN;
    let end = tcp_start + tcp_len;
    hdr.get_mut(..ip_start).ok_or(BuildError)?.copy_from_slice(eth);
    let ip = ipv4::Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: ipv4::protocol::TCP,
        payload_len: tcp_len + seg.payload.len(),
        ttl: ipv4::DEFAULT_TTL,
        ident,
        // RFC 1191 §3: TCP does path-MTU discovery, so its packets carry DF.
        dont_frag: true,
    };
    ip.emit(&mut ipv4::Packet::new_unchecked(hdr.get_mut(ip_start..tcp_start).ok_or(BuildError)?))
        .map_err(|_| BuildError)?;
    if seg.repr.emit(hdr.get_mut(tcp_start..end).ok_or(BuildError)?) != tcp_len {
        return Err(BuildError);
    }
    Ok(end)
}

/// Whether a piece of `payload` other than the last has an odd length.
fn has_odd_inner_piece(payload: &MbufPayload) -> bool {
    let mut pieces = payload.chunks().peekable();
    while let Some(c) = pieces.next() {
        if pieces.peek().is_some() && c.len() % 2 == 1 {
            return true;
        }
    }
    false
}

fn put16(buf: &mut [u8], at: usize, v: u16) {
    if let Some(b) = buf.get_mut(at..at + 2) {
        b.copy_from_slice(&v.to_be_bytes());
    }
}

/// The frame(s) of one segment, queued on `p.tx`. See the module documentation for the
/// choice between TSO, GSO, a chained frame and a linear copy.
#[allow(clippy::too_many_arguments)]
fn build_frames(
    p: &mut PortQueue,
    pool: &Mempool,
    stats: &LcoreStats,
    eth: &[u8; ethernet::HEADER_LEN],
    ident: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    seg: &Segment<MbufPayload>,
) -> Result<(), BuildError> {
    let granted = p.port.granted();
    let mut hdr = [0u8; MAX_HEADERS];
    let hlen = write_headers(&mut hdr, eth, ident, src, dst, seg)?;
    let ip_start = ethernet::HEADER_LEN;
    let tcp_start = ip_start + ipv4::HEADER_LEN;
    let tcp_hlen = hlen - tcp_start;
    let plen = seg.payload.len();
    let mss = usize::from(seg.mss);
    let needs_segmentation = mss != 0 && plen > mss;
    let l4_len = u8::try_from(tcp_hlen).map_err(|_| BuildError)?;
    let base = TxOffload {
        l2_len: ethernet::HEADER_LEN as u8,
        l3_len: ipv4::HEADER_LEN as u16,
        l4_len,
        ipv4: true,
        ..TxOffload::default()
    };

    // See `PortQueue::odd_piece_cksum_broken`.
    let cksum_in_software = p.odd_piece_cksum_broken && has_odd_inner_piece(&seg.payload);
    if cksum_in_software {
        LcoreStats::add(&stats.tx_sw_cksum_odd_pieces, 1);
    }

    // With impairment on, the device must not segment: the impairment layer acts on wire
    // frames, and dropping one TSO super-frame would lose up to 44 of them at once (a
    // burst, not the configured loss rate). Cut them here instead (no copy).
    let cut_here = cksum_in_software || p.impair.is_some();

    if needs_segmentation && granted.tso && granted.multi_seg && !cut_here {
        // Hardware TSO: the NIC cuts the payload into `mss` pieces and computes every
        // checksum; it wants the IPv4 checksum zero and the pseudo-header sum without
        // the length in the TCP checksum field (DPDK `rte_net_intel_cksum_prepare`).
        put16(&mut hdr, ip_start + 10, 0);
        let pseudo = checksum::fold(checksum::pseudo_header_v4(src, dst, wire_tcp::PROTOCOL, 0));
        put16(&mut hdr, tcp_start + 16, pseudo);
        let mut tso_segsz = seg.mss;
        if p.tso_frame_within_mtu {
            let limit = usize::from(p.port.mtu()).saturating_sub(hlen).max(1);
            tso_segsz = tso_segsz.min(u16::try_from(limit).unwrap_or(u16::MAX));
        }
        let mut m = header_mbuf(pool, &hdr[..hlen])?;
        seg.payload.chain_onto(&mut m, pool)?;
        m.set_tx_offload(TxOffload { tso_segsz, ip_cksum: true, tcp_cksum: true, tso: true, ..base })?;
        LcoreStats::add(&stats.tso_segments, 1);
        p.tx.push(m);
        return Ok(());
    }
    if needs_segmentation && cut_here && granted.multi_seg {
        // The device could take the super-segment but would checksum it wrongly, or the
        // impairment layer needs wire frames: cut it here without copying (Linux `tcp_gso_segment` semantics: CWR on the first
        // frame only, FIN and PSH on the last only, IP ids counting up), each frame a
        // header mbuf chained to its slice of the payload.
        let mut off = 0usize;
        let mut i: u16 = 0;
        while off < plen {
            let len = mss.min(plen - off);
            let last = off + len >= plen;
            let mut repr = seg.repr;
            repr.seq = seg.repr.seq + u32::try_from(off).map_err(|_| BuildError)?;
            if off > 0 {
                repr.flags.remove(wire_tcp::Flags::CWR);
            }
            if !last {
                repr.flags.remove(wire_tcp::Flags::FIN);
                repr.flags.remove(wire_tcp::Flags::PSH);
            }
            let piece = Segment { repr, payload: seg.payload.slice(off..off + len), mss: 0 };
            build_frames(p, pool, stats, eth, ident.wrapping_add(i), src, dst, &piece)?;
            off += len;
            i = i.wrapping_add(1);
        }
        return Ok(());
    }
    if needs_segmentation {
        // Software GSO (Linux `tcp_gso_segment`): copies into MTU-sized frames, checksums
        // computed in software.
        let chunks: Vec<&[u8]> = seg.payload.chunks().collect();
        let tx = &mut p.tx;
        let mut failed = false;
        let frames = gso_segment(&hdr[..hlen], &chunks, seg.mss, &mut |frame: &[u8]| match Mbuf::from_slice(pool, frame) {
            Ok(m) => tx.push(m),
            Err(_) => failed = true,
        })
        .map_err(|_| BuildError)?;
        count_copy(plen);
        LcoreStats::add(&stats.gso_frames, frames as u64);
        return if failed { Err(BuildError) } else { Ok(()) };
    }

    // One frame. Checksums: offloaded when granted, else in software.
    let mut off = base;
    if granted.ipv4_cksum {
        put16(&mut hdr, ip_start + 10, 0);
        off.ip_cksum = true;
    }
    let tcp_total = u16::try_from(tcp_hlen + plen).map_err(|_| BuildError)?;
    put16(&mut hdr, tcp_start + 16, 0);
    if granted.tcp_cksum && !cksum_in_software {
        off.tcp_cksum = true;
        put16(&mut hdr, tcp_start + 16, wire_tcp::pseudo_header_checksum(src, dst, tcp_total));
    } else {
        // RFC 9293 §3.1: pseudo-header, TCP header, payload (summed in place).
        let pseudo = checksum::pseudo_header_v4(src, dst, wire_tcp::PROTOCOL, tcp_total);
        let head = checksum::sum(hdr.get(tcp_start..hlen).ok_or(BuildError)?, pseudo);
        let c = !checksum::fold(seg.payload.checksum_sum(head));
        put16(&mut hdr, tcp_start + 16, c);
    }
    let offloaded = off.ip_cksum || off.tcp_cksum;
    let mut m = if plen == 0 || granted.multi_seg {
        let mut m = header_mbuf(pool, &hdr[..hlen])?;
        seg.payload.chain_onto(&mut m, pool)?;
        m
    } else {
        // No scatter-gather on this port: one linear frame (a counted copy).
        let mut m = header_mbuf(pool, &hdr[..hlen])?;
        let room = m.append(plen).ok_or(BuildError)?;
        if seg.payload.copy_to(room) != plen {
            return Err(BuildError);
        }
        m
    };
    if !offloaded && m.len() < crate::net::interface::MIN_FRAME_LEN {
        // Not every PMD pads short frames; the IPv4 total length excludes the padding.
        // (A short frame whose last segment is a shared payload view stays unpadded.)
        if let Some(pad) = m.append(crate::net::interface::MIN_FRAME_LEN - m.len()) {
            pad.fill(0);
        }
    }
    if offloaded {
        m.set_tx_offload(off)?;
    }
    p.tx.push(m);
    Ok(())
}

/// A fresh mbuf holding `headers`.
fn header_mbuf(pool: &Mempool, headers: &[u8]) -> Result<Mbuf, BuildError> {
    Ok(Mbuf::from_slice(pool, headers)?)
}

/// The interface's `Good` means "IP header and L4 checksum both verified by the NIC";
/// anything less is `Unknown` (software verifies), a bad IP header is `Bad`.
fn rx_checksum(ip: CksumStatus, l4: CksumStatus) -> RxChecksum {
    let good = |s| matches!(s, CksumStatus::Good | CksumStatus::None);
    match (ip, l4) {
        (CksumStatus::Bad, _) => RxChecksum::Bad,
        (ip, l4) if good(ip) && good(l4) => RxChecksum::Good,
        _ => RxChecksum::Unknown,
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

    #[test]
    fn stats_iter_names_every_counter() {
        let s = LcoreStats::default();
        LcoreStats::add(&s.gso_frames, 3);
        LcoreStats::add(&s.tcp_tx_unresolved, 1);
        let v: Vec<(&str, u64)> = s.iter().collect();
        assert_eq!(v.len(), 33);
        assert!(v.contains(&("gso_frames", 3)) && v.contains(&("tcp_tx_unresolved", 1)));
        assert_eq!(v.iter().filter(|(_, n)| *n != 0).count(), 2);
    }

    #[test]
    fn impairment_atomics_are_the_sums_over_ports() {
        let s = LcoreStats::default();
        let port = |dropped, overflow, corrupted| PortImpairCounters {
            rx: ImpairCounters { frames: 100, dropped, overflow, corrupted, ..ImpairCounters::default() },
            tx: ImpairCounters { frames: 50, reordered: dropped, duplicated: corrupted, ..ImpairCounters::default() },
        };
        s.store_impair(&[port(3, 1, 2), port(4, 0, 5)]);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(get(&s.impair_rx_dropped), 8, "drops include overflow");
        assert_eq!(get(&s.impair_rx_corrupted), 7);
        assert_eq!(get(&s.impair_tx_reordered), 7);
        assert_eq!(get(&s.impair_tx_duplicated), 7);
        assert_eq!(get(&s.impair_tx_dropped), 0);
        // Cumulative counters are stored, not added: publishing twice does not double.
        s.store_impair(&[port(3, 1, 2), port(4, 0, 5)]);
        assert_eq!(get(&s.impair_rx_dropped), 8);
    }

    #[test]
    fn only_segments_with_data_are_shed() {
        // 14 + 20 bytes of headers, then a TCP header with data offset 5 (20 bytes).
        let mut f = vec![0u8; 34 + 20 + 10];
        f[34 + 12] = 5 << 4;
        assert!(!carries_data(&f, 34, 20), "a pure ACK is kept");
        assert!(carries_data(&f, 34, 30), "10 bytes of data");
        f[34 + 12] = 8 << 4;
        assert!(!carries_data(&f, 34, 32), "options are not data");
        assert!(carries_data(&f, 100, 20), "unreadable header: shed");
    }

    #[test]
    fn memory_pressure_has_hysteresis() {
        // 1024 mbufs: enter below 128 free, leave above 256 free.
        assert!(!memory_pressure_wanted(false, 128, 1024));
        assert!(memory_pressure_wanted(false, 127, 1024));
        assert!(memory_pressure_wanted(true, 200, 1024), "still pressed between the marks");
        assert!(memory_pressure_wanted(true, 256, 1024));
        assert!(!memory_pressure_wanted(true, 257, 1024));
        assert!(!memory_pressure_wanted(false, 0, 0), "an empty pool of size 0 is never low");
    }

    #[test]
    fn busy_ratio_is_busy_over_total() {
        let s = LcoreStats::default();
        assert_eq!(s.busy_ratio(), 0.0);
        LcoreStats::add(&s.total_cycles, 100);
        LcoreStats::add(&s.busy_cycles, 25);
        assert!((s.busy_ratio() - 0.25).abs() < 1e-9);
    }
}
