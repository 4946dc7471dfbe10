//! The per-lcore loop: RX burst -> parse -> stack input -> transmit -> TX burst -> timers.
//!
//! Each lcore owns one RX and one TX queue on every port, and one [`Interface`] per port
//! (neighbour cache, counters). Nothing on the fast path is shared with other lcores: the
//! control plane reads the lcore's [`LcoreStats`] (relaxed atomics written by this lcore
//! only) and asks it to stop through an [`AtomicBool`].
//!
//! This module has no `unsafe`: it drives DPDK through the safe adapter in [`crate::dpdk`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::dpdk::{tsc, CksumStatus, Mbuf, Mempool, Port};
use crate::net::{Input, Interface, NetCounters, RxChecksum};
use crate::time::{Duration, Instant};

/// Frames taken from a queue per RX burst.
pub const BURST: usize = 32;

/// Empty loop iterations before the lcore starts napping between polls.
const IDLE_SPINS_BEFORE_NAP: u32 = 256;
/// Length of one nap when idle. Short enough that a ping sees well under a millisecond
/// added, long enough that an idle appliance does not burn its cores.
const IDLE_NAP: std::time::Duration = std::time::Duration::from_micros(100);

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
    /// Frames dropped because the TX queue stayed full.
    pub tx_dropped_full: AtomicU64,
    /// Frames that could not be sent because no mbuf was free.
    pub tx_dropped_nombuf: AtomicU64,
    /// TSC cycles spent in iterations that did work.
    pub busy_cycles: AtomicU64,
    /// TSC cycles since the loop started.
    pub total_cycles: AtomicU64,
    /// Loop iterations.
    pub iterations: AtomicU64,
}

impl LcoreStats {
    fn add(counter: &AtomicU64, n: u64) {
        // Only the owning lcore writes: a load + store is enough and avoids a locked RMW.
        counter.store(counter.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
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
    tx: Vec<Mbuf>,
}

impl PortQueue {
    /// Wraps `port`'s queue pair `queue` with the interface state `iface`.
    pub fn new(port: Arc<Port>, queue: u16, iface: Interface) -> Self {
        let rx_cksum_offload = port.granted().rx_cksum;
        PortQueue { port, queue, iface, rx_cksum_offload, tx: Vec::with_capacity(BURST) }
    }
}

/// What a worker hands back when it stops.
#[derive(Debug)]
pub struct WorkerReport {
    /// The lcore it ran on.
    pub lcore: u32,
    /// Final link/network counters per port, in the order the ports were given.
    pub net: Vec<NetCounters>,
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
    scratch: Vec<u8>,
}

impl Worker {
    /// A worker for `lcore` over `ports`, allocating TX frames from `pool`.
    pub fn new(
        lcore: u32,
        ports: Vec<PortQueue>,
        pool: Mempool,
        clock: TscClock,
        stop: Arc<AtomicBool>,
        stats: Arc<LcoreStats>,
    ) -> Self {
        Worker { lcore, ports, pool, clock, stop, stats, rx: Vec::with_capacity(BURST), scratch: Vec::new() }
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
        while !self.stop.load(Ordering::Relaxed) {
            let t0 = tsc();
            let now = self.clock.instant(t0);
            let work = self.poll_once(now);
            let t1 = tsc();
            if work > 0 {
                LcoreStats::add(&self.stats.busy_cycles, t1.wrapping_sub(t0));
                idle_spins = 0;
            } else {
                idle_spins = idle_spins.saturating_add(1);
                if idle_spins > IDLE_SPINS_BEFORE_NAP {
                    std::thread::sleep(IDLE_NAP);
                }
            }
            let t2 = tsc();
            LcoreStats::add(&self.stats.total_cycles, t2.wrapping_sub(last));
            LcoreStats::add(&self.stats.iterations, 1);
            last = t2;
        }
        tracing::info!(lcore = self.lcore, busy_ratio = self.stats.busy_ratio(), "lcore loop stopped");
        WorkerReport { lcore: self.lcore, net: self.ports.iter().map(|p| p.iface.counters().clone()).collect() }
    }

    /// One pass over every port: receive, process, run timers, transmit. Returns the
    /// number of frames received plus sent (0 means the pass was idle).
    pub fn poll_once(&mut self, now: Instant) -> usize {
        let mut work = 0;
        for p in &mut self.ports {
            self.rx.clear();
            let n = p.port.rx_burst(p.queue, &mut self.rx, BURST);
            LcoreStats::add(&self.stats.rx_frames, n as u64);
            work += n;
            for m in self.rx.drain(..) {
                let csum =
                    if p.rx_cksum_offload { rx_checksum(m.ip_cksum(), m.l4_cksum()) } else { RxChecksum::Unknown };
                // ARP and ICMP frames fit one segment; a chained frame is linearised into
                // a scratch buffer rather than misparsed.
                let input = if m.nb_segs() > 1 {
                    self.scratch.clear();
                    for seg in m.segments() {
                        self.scratch.extend_from_slice(seg);
                    }
                    p.iface.handle_frame(&self.scratch, now, csum)
                } else {
                    p.iface.handle_frame(m.data(), now, csum)
                };
                match input {
                    Input::Consumed | Input::Dropped(_) => {}
                    // The TCP stack joins the loop with the data-plane issue; until then a
                    // TCP segment is counted by the interface and freed here.
                    Input::Tcp { .. } => {}
                }
                drop(m);
            }
            p.iface.poll(now);
            work += Self::transmit(p, &self.pool, &self.stats, now);
        }
        work
    }

    fn transmit(p: &mut PortQueue, pool: &Mempool, stats: &LcoreStats, now: Instant) -> usize {
        let tx = &mut p.tx;
        p.iface.poll_transmit(now, &mut |frame: &[u8]| match Mbuf::from_slice(pool, frame) {
            Ok(m) => tx.push(m),
            Err(_) => LcoreStats::add(&stats.tx_dropped_nombuf, 1),
        });
        if tx.is_empty() {
            return 0;
        }
        let mut sent = 0;
        // A full TX ring gets a few immediate retries; what still does not fit is
        // dropped and counted (TCP retransmits; ARP/ICMP are best effort).
        for _ in 0..4 {
            sent += p.port.tx_prepare_and_burst(p.queue, tx);
            if tx.is_empty() {
                break;
            }
        }
        LcoreStats::add(&stats.tx_frames, sent as u64);
        if !tx.is_empty() {
            LcoreStats::add(&stats.tx_dropped_full, tx.len() as u64);
            tx.clear();
        }
        sent
    }

    /// Earliest timer among the interfaces (used by callers that sleep between polls).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.ports.iter().filter_map(|p| p.iface.next_deadline()).min()
    }
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
    fn busy_ratio_is_busy_over_total() {
        let s = LcoreStats::default();
        assert_eq!(s.busy_ratio(), 0.0);
        LcoreStats::add(&s.total_cycles, 100);
        LcoreStats::add(&s.busy_cycles, 25);
        assert!((s.busy_ratio() - 0.25).abs() < 1e-9);
    }
}
