//! The bounded TIME-WAIT table (Linux `inet_timewait_sock`): a few words per connection that
//! closed actively, kept for 2*MSL (RFC 9293 §3.6.1) so that late segments are answered and
//! old duplicates cannot enter a new incarnation, with RFC 6191 / `tcp_tw_reuse` style reuse.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use super::seq::SeqNum;
use super::tuple_hash::TupleHashBuilder;
use crate::time::{Duration, Instant};

/// A connection's 4-tuple from our point of view. Its `Hash` is in
/// [`super::tuple_hash`], with the keyed hasher of the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FourTuple {
    /// Our address and port (IPv4 or IPv6; both ends are of one family, and an IPv6
    /// address carries no flow label or scope here).
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
}

/// What TIME-WAIT remembers (Linux `tcp_timewait_sock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitEntry {
    /// Our next sequence number.
    pub snd_nxt: SeqNum,
    /// The peer's next sequence number (past its FIN).
    pub rcv_nxt: SeqNum,
    /// Last peer timestamp, when timestamps were in use.
    pub ts_recent: Option<u32>,
    /// When `ts_recent` was recorded.
    pub ts_recent_stamp: Instant,
    /// When the entry expires.
    pub expires: Instant,
}

/// What to do with a segment that hit a TIME-WAIT entry (`tcp_timewait_state_process`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeWaitAction {
    /// Drop silently.
    Drop,
    /// Answer with an ACK of the final state.
    Ack,
    /// A new SYN may reuse the 4-tuple (RFC 6191): the entry was removed; open a new
    /// connection with an ISN above the old sequence space.
    Reuse {
        /// ISN to use (Linux: `tw_snd_nxt + 65535 + 2`).
        isn: SeqNum,
    },
}

/// The table: a map plus an expiry queue holding one item per entry, as Linux keeps one
/// timer per `inet_timewait_sock` (`inet_twsk_reschedule` moves it). Entries expire in
/// insertion order; one that a retransmitted FIN restarted is queued again, once, when
/// its old item comes up, so a peer repeating its FIN cannot grow the queue (it used to
/// add an item per FIN). Such an entry may so outlive its 2*MSL by as long as the
/// entries queued ahead of it take, at most another 2*MSL: TIME-WAIT held longer is
/// safe. Items of removed entries are recognised by a generation and skipped.
#[derive(Debug)]
pub struct TimeWaitTable {
    map: HashMap<FourTuple, (TimeWaitEntry, u64), TupleHashBuilder>,
    expiry: VecDeque<(Instant, FourTuple, u64)>,
    capacity: usize,
    generation: u64,
}

impl TimeWaitTable {
    /// An empty table holding at most `capacity` entries, hashed by `hash` (keyed from the
    /// engine's secret).
    pub fn new(capacity: usize, hash: TupleHashBuilder) -> Self {
        TimeWaitTable { map: HashMap::with_hasher(hash), expiry: VecDeque::new(), capacity, generation: 0 }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Adds an entry; returns false (and keeps nothing) when the table is full: Linux
    /// `tcp_max_tw_buckets` (`[tcp] max_time_wait`), counted `TCPTimeWaitOverflow` by the
    /// caller; the connection then closes without TIME-WAIT, as Linux's does.
    pub fn insert(&mut self, tuple: FourTuple, entry: TimeWaitEntry) -> bool {
        if let Some((e, _)) = self.map.get_mut(&tuple) {
            // Its queue item stays; it is requeued at the new expiry when it comes up.
            *e = entry;
            return true;
        }
        if self.map.len() >= self.capacity {
            return false;
        }
        self.generation = self.generation.wrapping_add(1);
        self.map.insert(tuple, (entry, self.generation));
        self.expiry.push_back((entry.expires, tuple, self.generation));
        self.compact();
        true
    }

    /// Drops the queue items of removed entries once they outnumber the live ones, so the
    /// queue stays within twice the table's size.
    fn compact(&mut self) {
        if self.expiry.len() > 2 * self.capacity.max(self.map.len()).max(1) {
            let map = &self.map;
            self.expiry.retain(|(_, t, g)| map.get(t).is_some_and(|(_, live)| live == g));
        }
    }

    /// Items in the expiry queue (one per entry, plus items of removed entries not yet
    /// skipped).
    pub fn queued(&self) -> usize {
        self.expiry.len()
    }

    /// The entry for `tuple`.
    pub fn get(&self, tuple: &FourTuple) -> Option<&TimeWaitEntry> {
        self.map.get(tuple).map(|(e, _)| e)
    }

    /// Removes the entry for `tuple`.
    pub fn remove(&mut self, tuple: &FourTuple) -> Option<TimeWaitEntry> {
        self.map.remove(tuple).map(|(e, _)| e)
    }

    /// Drops expired entries.
    pub fn expire(&mut self, now: Instant) {
        while let Some(&(at, tuple, generation)) = self.expiry.front() {
            if at > now {
                break;
            }
            self.expiry.pop_front();
            match self.map.get(&tuple) {
                Some(&(e, g)) if g == generation => {
                    if e.expires <= now {
                        self.map.remove(&tuple);
                    } else {
                        // Restarted by a retransmitted FIN: its one item moves.
                        self.expiry.push_back((e.expires, tuple, generation));
                    }
                }
                // The entry was removed (and maybe replaced): a stale item.
                _ => {}
            }
        }
    }

    /// The earliest expiry.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.expiry.front().map(|&(t, _, _)| t)
    }

    /// `tcp_timewait_state_process`: classifies a segment for `tuple`.
    /// `tsval` is the segment's timestamp, `msl2` the TIME-WAIT duration to restart with.
    #[allow(clippy::too_many_arguments)]
    pub fn process(
        &mut self,
        tuple: &FourTuple,
        syn: bool,
        ack: bool,
        rst: bool,
        fin: bool,
        seq: SeqNum,
        data_len: u32,
        tsval: Option<u32>,
        now: Instant,
        msl2: Duration,
    ) -> TimeWaitAction {
        let Some((entry, _)) = self.map.get_mut(tuple) else { return TimeWaitAction::Drop };
        // RFC 1337: ignore RST in TIME-WAIT (no assassination).
        if rst {
            return TimeWaitAction::Drop;
        }
        // RFC 7323 §5: PAWS applies in TIME-WAIT too.
        let paws_old = match (entry.ts_recent, tsval) {
            (Some(recent), Some(v)) => (v.wrapping_sub(recent) as i32) < 0,
            _ => false,
        };
        if syn && !ack {
            // RFC 6191: a new SYN is acceptable when its timestamp is newer, or without
            // timestamps when its sequence number is above the old connection's.
            let newer = match (entry.ts_recent, tsval) {
                (Some(recent), Some(v)) => (v.wrapping_sub(recent) as i32) > 0,
                _ => seq.gt(entry.rcv_nxt),
            };
            if newer {
                let isn = entry.snd_nxt.wrapping_add(65535 + 2);
                self.map.remove(tuple);
                return TimeWaitAction::Reuse { isn };
            }
            return TimeWaitAction::Ack;
        }
        if paws_old {
            return TimeWaitAction::Ack;
        }
        if fin && seq.wrapping_add(data_len).wrapping_add(1) == entry.rcv_nxt {
            // A retransmitted FIN: ACK again and restart 2*MSL (RFC 9293 §3.10.7.4). The
            // entry's queue item is moved when it comes up (see the type's docs).
            entry.expires = now + msl2;
            if let Some(v) = tsval {
                entry.ts_recent = Some(v);
                entry.ts_recent_stamp = now;
            }
            return TimeWaitAction::Ack;
        }
        if seq != entry.rcv_nxt || data_len > 0 || syn {
            return TimeWaitAction::Ack;
        }
        TimeWaitAction::Drop
    }

    /// Whether an active open from our side may take over `tuple` now (Linux
    /// `tcp_twsk_unique` with `tcp_tw_reuse`): only with timestamps, one second after the
    /// last peer timestamp, so PAWS protects the new connection. Removes the entry and
    /// returns the ISN to use.
    pub fn reuse_for_connect(&mut self, tuple: &FourTuple, now: Instant) -> Option<SeqNum> {
        let (e, _) = self.map.get(tuple)?;
        if e.ts_recent.is_some() && now.saturating_duration_since(e.ts_recent_stamp) >= Duration::from_secs(1) {
            let isn = e.snd_nxt.wrapping_add(65535 + 2);
            self.map.remove(tuple);
            return Some(isn);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, SocketAddrV4};

    fn tuple() -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 1), 5000).into(),
            remote: SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 2), 80).into(),
        }
    }

    fn entry(ts: Option<u32>) -> TimeWaitEntry {
        TimeWaitEntry {
            snd_nxt: SeqNum(100),
            rcv_nxt: SeqNum(500),
            ts_recent: ts,
            ts_recent_stamp: Instant::ZERO,
            expires: Instant::from_millis(60_000),
        }
    }

    #[test]
    fn bounded_and_expires() {
        let mut t = TimeWaitTable::new(1, TupleHashBuilder::new(&[7; 16]));
        assert!(t.insert(tuple(), entry(None)));
        let mut other = tuple();
        other.local.set_port(5001);
        assert!(!t.insert(other, entry(None)), "full");
        t.expire(Instant::from_millis(59_999));
        assert_eq!(t.len(), 1);
        t.expire(Instant::from_millis(60_000));
        assert!(t.is_empty());
    }

    #[test]
    fn answers_fin_retransmission_and_ignores_rst() {
        let mut t = TimeWaitTable::new(4, TupleHashBuilder::new(&[7; 16]));
        t.insert(tuple(), entry(None));
        let msl2 = Duration::from_secs(60);
        let now = Instant::from_millis(1000);
        assert_eq!(t.process(&tuple(), false, true, true, false, SeqNum(500), 0, None, now, msl2), TimeWaitAction::Drop);
        assert_eq!(t.process(&tuple(), false, true, false, true, SeqNum(499), 0, None, now, msl2), TimeWaitAction::Ack);
        assert_eq!(t.get(&tuple()).map(|e| e.expires), Some(now + msl2), "restarted");
        assert_eq!(t.process(&tuple(), false, true, false, false, SeqNum(500), 0, None, now, msl2), TimeWaitAction::Drop);
        assert_eq!(t.process(&tuple(), false, true, false, false, SeqNum(400), 10, None, now, msl2), TimeWaitAction::Ack);
        // Old queue item at 60 s no longer expires the restarted entry.
        t.expire(Instant::from_millis(60_000));
        assert_eq!(t.len(), 1);
    }

    /// A peer retransmitting its FIN 10 000 times: the expiry queue used to gain an item
    /// per FIN (10 001 here); now the entry keeps its one item, moved when it comes up,
    /// and the entry still expires 2*MSL after the last FIN.
    #[test]
    fn retransmitted_fins_keep_one_queue_item_per_entry() {
        let mut t = TimeWaitTable::new(4, TupleHashBuilder::new(&[7; 16]));
        t.insert(tuple(), entry(None));
        let msl2 = Duration::from_secs(60);
        let mut now = Instant::ZERO;
        for i in 0..10_000u64 {
            now = Instant::from_millis(1000 + i);
            assert_eq!(
                t.process(&tuple(), false, true, false, true, SeqNum(499), 0, None, now, msl2),
                TimeWaitAction::Ack
            );
            t.expire(now);
        }
        assert_eq!(t.queued(), 1);
        t.expire(Instant::from_millis(60_000));
        assert_eq!((t.len(), t.queued()), (1, 1), "requeued at the restarted expiry");
        t.expire(now + msl2 - Duration::from_millis(1));
        assert_eq!(t.len(), 1);
        t.expire(now + msl2);
        assert_eq!((t.len(), t.queued()), (0, 0));
    }

    /// Removed and re-added entries leave stale items that are skipped, and the queue is
    /// compacted so it stays within twice the table's size.
    #[test]
    fn stale_items_are_bounded() {
        let mut t = TimeWaitTable::new(2, TupleHashBuilder::new(&[7; 16]));
        for _ in 0..100 {
            assert!(t.insert(tuple(), entry(None)));
            t.remove(&tuple());
        }
        assert!(t.queued() <= 4, "{} items", t.queued());
        assert!(t.insert(tuple(), entry(None)));
        t.expire(Instant::from_millis(60_000));
        assert_eq!((t.len(), t.queued()), (0, 0));
    }

    #[test]
    fn new_syn_reuses_only_when_newer() {
        let mut t = TimeWaitTable::new(4, TupleHashBuilder::new(&[7; 16]));
        let msl2 = Duration::from_secs(60);
        t.insert(tuple(), entry(Some(1000)));
        let now = Instant::from_millis(5);
        assert_eq!(t.process(&tuple(), true, false, false, false, SeqNum(9), 0, Some(999), now, msl2), TimeWaitAction::Ack);
        assert_eq!(
            t.process(&tuple(), true, false, false, false, SeqNum(9), 0, Some(1001), now, msl2),
            TimeWaitAction::Reuse { isn: SeqNum(100 + 65537) }
        );
        assert!(t.is_empty());
        t.insert(tuple(), entry(None));
        assert_eq!(t.process(&tuple(), true, false, false, false, SeqNum(400), 0, None, now, msl2), TimeWaitAction::Ack);
        assert!(matches!(t.process(&tuple(), true, false, false, false, SeqNum(600), 0, None, now, msl2), TimeWaitAction::Reuse { .. }));
    }

    #[test]
    fn connect_reuse_needs_timestamps_and_a_second() {
        let mut t = TimeWaitTable::new(4, TupleHashBuilder::new(&[7; 16]));
        t.insert(tuple(), entry(None));
        assert_eq!(t.reuse_for_connect(&tuple(), Instant::from_millis(5000)), None);
        t.insert(tuple(), entry(Some(7)));
        assert_eq!(t.reuse_for_connect(&tuple(), Instant::from_millis(500)), None);
        assert_eq!(t.reuse_for_connect(&tuple(), Instant::from_millis(1000)), Some(SeqNum(100 + 65537)));
    }
}
