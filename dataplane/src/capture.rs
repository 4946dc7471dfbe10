//! Packet capture on a live lcore (`strait ctl capture`, issue 16): tcpdump cannot see a
//! port DPDK drives, so the lcore copies the frames it receives and hands to its TX queues
//! to the control plane, which writes them to a file.
//!
//! The lcore side is a [`Tap`] per lcore, installed and removed through the lcore's
//! command queue ([`crate::command::Command::Capture`]). Off, it costs one `Option` test
//! per RX burst and per TX flush. On, it never blocks and never allocates: frames are
//! copied into buffers the control plane allocated up front and lent to the lcore
//! ([`session`]: [`BUFFERS_PER_LCORE`] per lcore), and go back on a bounded channel with
//! `try_send`. A frame the tap cannot take is not captured, and counted by reason:
//! over the rate ([`TapCounters::over_rate`], a token bucket of `rate` frames per second
//! per lcore), no buffer free or channel full ([`TapCounters::no_buffer`]: the writer is
//! behind), or past the session's frame budget ([`TapCounters::over_limit`], shared by
//! every lcore).
//!
//! What is captured is what the port sees, like tcpdump on a NIC: received frames as the
//! ring delivered them (before the impairment layer), transmitted frames as they are
//! handed to the TX ring (after it), TSO super-frames whole, with the checksums the
//! device completes still partial. Frames longer than `snaplen` are cut (the original
//! length is kept).
//!
//! Sans-IO like the rest of the core: the caller hands in `now` and the wall clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;

use crate::time::{Duration, Instant};

/// Buffers lent to each lcore for one session: frames in flight between an lcore and the
/// writer at most.
pub const BUFFERS_PER_LCORE: usize = 256;
/// The largest frame a port hands over (a TSO super-frame: 64 KiB of IPv4 datagram plus
/// its Ethernet header).
pub const MAX_SNAPLEN: u32 = 65_535 + 14;

/// Which frames a session takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filter {
    /// Only this port (its index in the configuration); `None`: every port.
    pub port: Option<usize>,
    /// Only this queue (the lcore's queue index on the port); `None`: every queue.
    pub queue: Option<u16>,
}

impl Filter {
    /// Whether frames of `port` and `queue` are taken.
    pub fn matches(&self, port: usize, queue: u16) -> bool {
        !matches!(self.port, Some(p) if p != port) && !matches!(self.queue, Some(q) if q != queue)
    }
}

/// What a session captures and its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// Ports and queues.
    pub filter: Filter,
    /// Bytes kept of each frame (1..=[`MAX_SNAPLEN`]).
    pub snaplen: u32,
    /// Frames per second each lcore captures at most (a token bucket with one second of
    /// burst).
    pub rate: u32,
    /// Frames captured in total, every lcore together.
    pub max_frames: u64,
}

/// A frame's direction, seen from Strait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received from the port.
    Rx,
    /// Handed to the port's TX ring.
    Tx,
}

/// Where a frame was seen: port, queue and direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// Port index (configuration order).
    pub port: usize,
    /// Queue index on the port.
    pub queue: u16,
    /// Received or sent.
    pub direction: Direction,
}

/// One captured frame.
#[derive(Debug)]
pub struct Frame {
    /// The lcore that captured it (its buffer goes back there: [`Sink::recycle`]).
    pub lcore: u32,
    /// Port index (configuration order).
    pub port: usize,
    /// Queue index on the port.
    pub queue: u16,
    /// Received or sent.
    pub direction: Direction,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub unix_nanos: u64,
    /// The frame's length on the wire.
    pub original_len: u32,
    /// Its first `snaplen` bytes.
    pub data: Vec<u8>,
}

/// What the taps of one session did, every lcore summed.
#[derive(Debug, Default)]
pub struct TapCounters {
    /// Frames copied to the writer.
    pub captured: AtomicU64,
    /// Frames matching the filter skipped by the rate limit.
    pub over_rate: AtomicU64,
    /// Frames skipped because no lent buffer was free or the channel was full.
    pub no_buffer: AtomicU64,
    /// Frames matching the filter after the session's frame budget was used up.
    pub over_limit: AtomicU64,
}

/// The lcore's end of a capture session. See the module docs.
#[derive(Debug)]
pub struct Tap {
    lcore: u32,
    spec: Spec,
    tokens: u64,
    refilled: Option<Instant>,
    /// Frames the session may still take (all lcores).
    budget: Arc<AtomicU64>,
    free: Receiver<Vec<u8>>,
    out: SyncSender<Frame>,
    counters: Arc<TapCounters>,
}

impl Tap {
    /// Whether frames of `port` and `queue` are captured (call before [`Tap::offer`] to
    /// skip the per-frame work for other queues).
    pub fn wants(&self, port: usize, queue: u16) -> bool {
        self.spec.filter.matches(port, queue)
    }

    /// Copies one frame (`len` bytes in `segments`, seen at `origin`) if the rate, the budget and a free
    /// buffer allow; counts it otherwise. `unix_nanos` is the wall clock, `now` the
    /// lcore's clock (for the rate).
    pub fn offer<'a>(
        &mut self,
        origin: Origin,
        now: Instant,
        unix_nanos: u64,
        len: usize,
        segments: impl Iterator<Item = &'a [u8]>,
    ) {
        let Origin { port, queue, direction } = origin;
        if !self.wants(port, queue) {
            return;
        }
        self.refill(now);
        if self.tokens == 0 {
            self.counters.over_rate.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| b.checked_sub(1)).is_err() {
            self.counters.over_limit.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let Ok(mut data) = self.free.try_recv() else {
            self.budget.fetch_add(1, Ordering::Relaxed);
            self.counters.no_buffer.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.tokens -= 1;
        data.clear();
        let snaplen = self.spec.snaplen as usize;
        for s in segments {
            let room = snaplen.saturating_sub(data.len());
            if room == 0 {
                break;
            }
            // Within the capacity lent (snaplen): no allocation.
            data.extend_from_slice(&s[..s.len().min(room)]);
        }
        let frame = Frame {
            lcore: self.lcore,
            port,
            queue,
            direction,
            unix_nanos,
            original_len: u32::try_from(len).unwrap_or(u32::MAX),
            data,
        };
        match self.out.try_send(frame) {
            Ok(()) => {
                self.counters.captured.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                // The buffer is lost with the frame: the writer is behind or gone.
                self.budget.fetch_add(1, Ordering::Relaxed);
                self.counters.no_buffer.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn refill(&mut self, now: Instant) {
        let rate = u64::from(self.spec.rate);
        match self.refilled {
            None => {
                self.tokens = rate;
                self.refilled = Some(now);
            }
            Some(at) => {
                let elapsed = now.saturating_duration_since(at);
                let add = u64::try_from(elapsed.as_nanos() * u128::from(rate) / 1_000_000_000)
                    .unwrap_or(u64::MAX);
                if add > 0 {
                    self.tokens = self.tokens.saturating_add(add).min(rate);
                    self.refilled = Some(now);
                }
            }
        }
    }
}

/// The writer's end of a capture session: frames from every lcore's [`Tap`].
#[derive(Debug)]
pub struct Sink {
    rx: Receiver<Frame>,
    /// Where each lcore's buffers go back to, by lcore.
    free: Vec<(u32, SyncSender<Vec<u8>>)>,
    counters: Arc<TapCounters>,
}

impl Sink {
    /// The next frame, waiting at most `timeout`; `Err(Disconnected)` once every tap is
    /// gone.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Frame, RecvTimeoutError> {
        self.rx.recv_timeout(timeout)
    }

    /// Gives a written frame's buffer back to its lcore.
    pub fn recycle(&self, frame: Frame) {
        if let Some((_, tx)) = self.free.iter().find(|(l, _)| *l == frame.lcore) {
            let _ = tx.try_send(frame.data);
        }
    }

    /// What the taps did so far (shared: it can be read while another thread writes).
    pub fn counters(&self) -> Arc<TapCounters> {
        Arc::clone(&self.counters)
    }
}

/// The wall clock, nanoseconds since the Unix epoch (0 before it).
pub fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A session for `lcores`: one [`Tap`] per lcore (in order) and the [`Sink`]. Allocates
/// [`BUFFERS_PER_LCORE`] buffers of `spec.snaplen` bytes per lcore here, off the lcores.
pub fn session(lcores: &[u32], spec: Spec) -> (Vec<Tap>, Sink) {
    let depth = BUFFERS_PER_LCORE * lcores.len().max(1);
    let (out, rx) = sync_channel(depth);
    let budget = Arc::new(AtomicU64::new(spec.max_frames));
    let counters = Arc::new(TapCounters::default());
    let mut taps = Vec::with_capacity(lcores.len());
    let mut free = Vec::with_capacity(lcores.len());
    for &lcore in lcores {
        let (ftx, frx) = sync_channel(BUFFERS_PER_LCORE);
        for _ in 0..BUFFERS_PER_LCORE {
            let _ = ftx.try_send(Vec::with_capacity(spec.snaplen as usize));
        }
        taps.push(Tap {
            lcore,
            spec,
            tokens: 0,
            refilled: None,
            budget: Arc::clone(&budget),
            free: frx,
            out: out.clone(),
            counters: Arc::clone(&counters),
        });
        free.push((lcore, ftx));
    }
    (taps, Sink { rx, free, counters })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rate: u32, max_frames: u64) -> Spec {
        Spec { filter: Filter::default(), snaplen: 100, rate, max_frames }
    }

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    fn offer(tap: &mut Tap, now: Instant, bytes: &[u8]) {
        tap.offer(Origin { port: 0, queue: 0, direction: Direction::Rx }, now, 7, bytes.len(), std::iter::once(bytes));
    }

    #[test]
    fn frames_are_copied_up_to_snaplen_across_segments() {
        let (mut taps, sink) = session(&[3], Spec { snaplen: 5, ..spec(10, 10) });
        let segs: [&[u8]; 2] = [&[1, 2, 3], &[4, 5, 6, 7]];
        taps[0].offer(Origin { port: 1, queue: 2, direction: Direction::Tx }, at(0), 42, 7, segs.into_iter());
        let f = sink.recv_timeout(Duration::from_millis(10)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((f.lcore, f.port, f.queue, f.direction, f.unix_nanos, f.original_len), (3, 1, 2, Direction::Tx, 42, 7));
        assert_eq!(f.data, vec![1, 2, 3, 4, 5]);
        assert_eq!(sink.counters().captured.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn the_filter_selects_port_and_queue() {
        let f = Filter { port: Some(1), queue: None };
        assert!(f.matches(1, 0) && f.matches(1, 5) && !f.matches(0, 0));
        let f = Filter { port: None, queue: Some(2) };
        assert!(f.matches(0, 2) && !f.matches(0, 1));
        let (mut taps, sink) = session(&[0], Spec { filter: Filter { port: Some(1), queue: Some(0) }, ..spec(10, 10) });
        offer(&mut taps[0], at(0), b"other port");
        assert!(sink.recv_timeout(Duration::from_millis(1)).is_err());
        assert_eq!(sink.counters().captured.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn the_rate_is_bounded_per_second() {
        let (mut taps, sink) = session(&[0], spec(3, 100));
        for _ in 0..5 {
            offer(&mut taps[0], at(0), b"x");
        }
        assert_eq!(sink.counters().captured.load(Ordering::Relaxed), 3);
        assert_eq!(sink.counters().over_rate.load(Ordering::Relaxed), 2);
        // A third of a second later: one more token.
        offer(&mut taps[0], at(334), b"x");
        offer(&mut taps[0], at(334), b"x");
        assert_eq!(sink.counters().captured.load(Ordering::Relaxed), 4);
    }

    #[test]
    fn the_frame_budget_is_shared_by_every_lcore() {
        let (mut taps, sink) = session(&[0, 1], spec(100, 3));
        for i in 0..4 {
            offer(&mut taps[i % 2], at(0), b"x");
        }
        assert_eq!(sink.counters().captured.load(Ordering::Relaxed), 3);
        assert_eq!(sink.counters().over_limit.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_writer_behind_costs_frames_not_waits_and_buffers_come_back() {
        let (mut taps, sink) = session(&[0], spec(10_000, 10_000));
        for _ in 0..BUFFERS_PER_LCORE + 10 {
            offer(&mut taps[0], at(0), b"x");
        }
        assert_eq!(sink.counters().captured.load(Ordering::Relaxed), BUFFERS_PER_LCORE as u64);
        assert_eq!(sink.counters().no_buffer.load(Ordering::Relaxed), 10);
        let f = sink.recv_timeout(Duration::from_millis(10)).unwrap_or_else(|e| panic!("{e}"));
        sink.recycle(f);
        offer(&mut taps[0], at(0), b"y");
        assert_eq!(sink.counters().captured.load(Ordering::Relaxed), BUFFERS_PER_LCORE as u64 + 1);
    }

    #[test]
    fn the_sink_sees_the_end_of_the_session() {
        let (taps, sink) = session(&[0], spec(1, 1));
        drop(taps);
        assert_eq!(sink.recv_timeout(Duration::from_millis(10)).err(), Some(RecvTimeoutError::Disconnected));
    }
}
