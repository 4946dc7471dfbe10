//! Adaptive polling: an lcore busy-polls while there is work and backs off when idle.
//! Where every RX queue it owns has interrupts (`[dpdk] rx_interrupts`, and a PMD that
//! offers them, like `net_tap`), it blocks until a frame arrives, a timer is due or
//! another lcore wakes it (DPDK `l3fwd-power`'s pattern: arm, poll once more, wait);
//! elsewhere it naps ([`IDLE_NAP`], then [`DEEP_IDLE_NAP`]). Either way the first frame
//! after a quiet spell is served at once where interrupts exist, and an idle appliance
//! does not burn its cores.

use super::{LcoreStats, Waker, Worker};
use crate::dpdk::intr;
use crate::time::{Duration, Instant};

/// Empty loop iterations before the lcore starts backing off.
pub(super) const IDLE_SPINS_BEFORE_NAP: u32 = 256;
/// Length of one nap when idle. Short enough that a ping sees well under a millisecond
/// added, long enough that an idle appliance does not burn its cores.
const IDLE_NAP: std::time::Duration = std::time::Duration::from_micros(100);
/// Naps of [`IDLE_NAP`] (about 10 ms of idleness) before the lcore naps
/// [`DEEP_IDLE_NAP`] instead: an appliance idle for longer wakes ~1000 times a second per
/// lcore rather than ~7000, and the first frame after a quiet spell waits at most 1 ms.
const NAPS_BEFORE_DEEP_IDLE: u32 = 64;
/// Length of one nap once deeply idle.
const DEEP_IDLE_NAP: std::time::Duration = std::time::Duration::from_millis(1);
/// Longest block on RX interrupts: the control-plane inbox, the drain deadline and the
/// mbuf pressure check are polled, so they wait at most this long.
const INTERRUPT_WAIT_MS: u16 = 1;

impl Worker {
    /// Registers every RX queue of this lcore with this thread's interrupt wait, and the
    /// steering waker's socket. All or nothing: one port without interrupts means naps.
    pub(super) fn register_rx_interrupts(&mut self, waker: Option<&Waker>) -> bool {
        let wanted = !self.ports.is_empty() && self.ports.iter().flat_map(|p| p.rx_queues()).all(|(d, _)| d.rx_intr_configured());
        if !wanted {
            return false;
        }
        for (device, queue) in self.ports.iter().flat_map(|p| p.rx_queues()) {
            if let Err(e) = device.rx_intr_register(queue) {
                tracing::info!(lcore = self.lcore, port = device.id(), error = %e, "no RX interrupt: the lcore naps when idle");
                return false;
            }
        }
        if let Some(w) = waker {
            match w.socket().map(intr::register_wake_socket) {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    tracing::info!(lcore = self.lcore, error = %e, "cannot wait on the steering waker: the lcore naps when idle");
                    return false;
                }
                None => return false,
            }
        }
        tracing::info!(lcore = self.lcore, "idle lcore waits for RX interrupts");
        true
    }

    /// One back-off step after `naps` of them in a row; returns the work a last poll found
    /// (non-zero: the lcore is busy again).
    pub(super) fn back_off(&mut self, now: Instant, naps: u32, interrupts: bool, waker: Option<&Waker>) -> usize {
        // Timers keep their precision: never block past the next deadline.
        let room = self.next_deadline().map_or(Duration::MAX, |d| d.saturating_duration_since(now));
        let wait = Duration::from_millis(u64::from(INTERRUPT_WAIT_MS));
        // Every RX queue is polled in the pass after a nap or a wait (and in the last poll
        // before one): extra queues found empty sit out passes only while busy.
        for p in &mut self.ports {
            p.rx_wake();
        }
        if !interrupts || room < wait {
            let nap = if naps > NAPS_BEFORE_DEEP_IDLE { DEEP_IDLE_NAP } else { IDLE_NAP };
            LcoreStats::add(&self.stats.idle_naps, 1);
            std::thread::sleep(nap.min(room));
            return 0;
        }
        self.arm_rx_interrupts(true);
        let sleeping = waker.is_none_or(Waker::prepare_sleep);
        // A frame that arrived before the queue was armed raised no interrupt.
        let work = if sleeping { self.poll_once(now) } else { 0 };
        if sleeping && work == 0 {
            LcoreStats::add(&self.stats.idle_interrupt_waits, 1);
            match intr::wait(INTERRUPT_WAIT_MS) {
                Ok(0) => {}
                Ok(_) => LcoreStats::add(&self.stats.idle_interrupt_wakeups, 1),
                // EINTR (a signal) or a failing epoll: poll again; a repeated failure
                // costs at most a busy loop, never a stuck lcore.
                Err(e) => tracing::debug!(lcore = self.lcore, error = %e, "interrupt wait failed"),
            }
        }
        if let Some(w) = waker {
            w.end_sleep();
        }
        self.arm_rx_interrupts(false);
        for p in &mut self.ports {
            p.rx_wake();
        }
        work
    }

    fn arm_rx_interrupts(&self, on: bool) {
        for (device, queue) in self.ports.iter().flat_map(|p| p.rx_queues()) {
            if let Err(e) = device.rx_intr_arm(queue, on) {
                tracing::debug!(lcore = self.lcore, port = device.id(), on, error = %e, "RX interrupt arm/disarm failed");
            }
        }
    }
}
