//! The ARP neighbour cache of one interface (RFC 826, with the timing advice of RFC 1122
//! §2.3.2): a bounded table mapping IPv4 next hops to MAC addresses. The same table,
//! keyed by IPv6 addresses, is the neighbour cache of IPv6 neighbour discovery (RFC 4861
//! §5.1), filled from solicitations and advertisements.
//!
//! * Entries learnt from ARP are *reachable* for [`NeighborConfig::reachable_time`] (60 s by
//!   default), then expire. An entry used within [`NeighborConfig::refresh_window`] of its
//!   expiry asks for one unicast refresh request (RFC 1122 §2.3.2.1 "unicast poll"), so that
//!   busy neighbours are re-confirmed without a stall.
//! * Resolving an unknown address creates a *pending* entry. The caller sends a broadcast
//!   request at once; [`NeighborCache::poll`] asks for a retry every
//!   [`NeighborConfig::retry_interval`] until [`NeighborConfig::max_requests`] have gone
//!   unanswered (RFC 1122 §2.3.2.1: at most one request per second per destination), then
//!   reports failure. A pending entry holds a small bounded queue of packets, flushed when
//!   the reply arrives (RFC 1122 §2.3.2.2: SHOULD save at least one packet).
//! * Learning follows RFC 826's merge: an ARP packet updates an existing entry for its
//!   sender whoever it targets, and creates one only when it targets us.
//! * The table never grows past [`NeighborConfig::capacity`]: a new entry evicts the
//!   reachable entry closest to expiry that is not pinned; when every entry is pending or
//!   pinned, nothing is created.
//! * Pinned addresses ([`NeighborCache::pin`]: the gateway and the configured backends)
//!   are never evicted, so a flood of spoofed sources on the subnet, each answered and so
//!   resolved, cannot push out the neighbours that carry the traffic (Linux's answer is
//!   `gc_thresh` with NUD_PERMANENT entries for what an operator configures).
//! * Resolutions of unpinned addresses start at most
//!   [`NeighborConfig::resolutions_per_second`] (a token bucket with one second of burst,
//!   like Linux's `arp_ratelimit` on what unsolicited traffic makes us send): the rest are
//!   refused ([`Resolve::RateLimited`]) and the packet is dropped, counted.
//!
//! No clock is read: every method that needs the time takes `now`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt::Debug;
use std::hash::Hash;
use std::net::Ipv4Addr;

use crate::time::{Duration, Instant};
use crate::wire::ethernet::EthernetAddress;

/// What a neighbour table can be keyed by: an IPv4 next hop (ARP, RFC 826) or an IPv6
/// one (neighbour discovery, RFC 4861 §7.3, whose reachability states map onto the same
/// reachable / pending entries). Ordered so that eviction ties break the same way every run.
pub trait NeighborAddr: Copy + Ord + Hash + Debug {}
impl<T: Copy + Ord + Hash + Debug> NeighborAddr for T {}

/// Tunables of the neighbour cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborConfig {
    /// Most entries (reachable and pending) held at once.
    pub capacity: usize,
    /// How long a learnt mapping stays usable.
    pub reachable_time: Duration,
    /// An entry used this close to its expiry triggers one unicast refresh request.
    pub refresh_window: Duration,
    /// Time between requests for a pending entry.
    pub retry_interval: Duration,
    /// Requests sent (the first included) before a resolution fails.
    pub max_requests: u32,
    /// Packets held per pending entry; more are dropped.
    pub queue_len: usize,
    /// New resolutions of unpinned addresses per second at most (burst: one second's).
    pub resolutions_per_second: u32,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            capacity: 1024,
            reachable_time: Duration::from_secs(60),
            refresh_window: Duration::from_secs(5),
            retry_interval: Duration::from_secs(1),
            max_requests: 3,
            queue_len: 8,
            resolutions_per_second: 100,
        }
    }
}

#[derive(Debug)]
enum Entry {
    Reachable { mac: EthernetAddress, expires_at: Instant, refresh_sent: bool },
    Pending { requests_sent: u32, next_retry: Instant, queue: VecDeque<Vec<u8>> },
}

impl Entry {
    fn deadline(&self) -> Instant {
        match self {
            Entry::Reachable { expires_at, .. } => *expires_at,
            Entry::Pending { next_retry, .. } => *next_retry,
        }
    }
}

/// What [`NeighborCache::resolve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// The mapping is known. When `refresh` is set the caller should send one unicast ARP
    /// request to `mac` to re-confirm it before it expires.
    Ready {
        /// The neighbour's MAC.
        mac: EthernetAddress,
        /// Send a unicast refresh request now.
        refresh: bool,
    },
    /// Resolution is in progress. When `send_request` is set it has just started and the
    /// caller must broadcast the first request.
    Pending {
        /// Broadcast a request now.
        send_request: bool,
    },
    /// The table is full of pending (or pinned) entries; nothing was started.
    Full,
    /// Too many resolutions started this second; nothing was started.
    RateLimited,
}

/// Something [`NeighborCache::poll`] wants the interface to do or count.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<Addr = Ipv4Addr> {
    /// Broadcast another request for this address.
    Request(Addr),
    /// Resolution of this address failed; its queued packets were dropped.
    Failed {
        /// The address.
        addr: Addr,
        /// How many queued packets were dropped with it.
        dropped: usize,
    },
    /// A reachable entry expired and was removed.
    Expired(Addr),
}

/// Result of [`NeighborCache::learn`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Learned {
    /// An entry was created or updated.
    pub updated: bool,
    /// An entry had to be evicted to make room.
    pub evicted: bool,
    /// Packets that were waiting for this neighbour, oldest first, to be framed and sent.
    pub flushed: Vec<Vec<u8>>,
}

/// The neighbour table.
#[derive(Debug)]
pub struct NeighborCache<Addr = Ipv4Addr> {
    cfg: NeighborConfig,
    entries: HashMap<Addr, Entry>,
    /// No entry has a deadline before this (it may be earlier than the true minimum after
    /// removals; `poll` then rescans and tightens it). `None`: no entries with deadlines.
    deadline: Option<Instant>,
    /// Addresses never evicted (the gateway and configured backends).
    pinned: HashSet<Addr>,
    /// Resolutions that may still start, and when the bucket was last filled.
    tokens: u32,
    refilled: Option<Instant>,
}

impl<Addr: NeighborAddr> NeighborCache<Addr> {
    /// An empty cache. A zero capacity or request count is raised to one.
    pub fn new(mut cfg: NeighborConfig) -> Self {
        cfg.capacity = cfg.capacity.max(1);
        cfg.max_requests = cfg.max_requests.max(1);
        NeighborCache { cfg, entries: HashMap::new(), deadline: None, pinned: HashSet::new(), tokens: 0, refilled: None }
    }

    /// Never evict `addr` to make room (a configured gateway or backend).
    pub fn pin(&mut self, addr: Addr) {
        self.pinned.insert(addr);
    }

    /// Pins exactly `addrs`: addresses pinned before and not in `addrs` may be evicted
    /// again (a reload removed their backend).
    pub fn set_pinned(&mut self, addrs: impl IntoIterator<Item = Addr>) {
        self.pinned.clear();
        self.pinned.extend(addrs);
    }

    /// Whether `addr` is pinned.
    pub fn is_pinned(&self, addr: Addr) -> bool {
        self.pinned.contains(&addr)
    }

    /// Takes a token for a new resolution of `addr` (pinned ones need none).
    fn may_resolve(&mut self, addr: Addr, now: Instant) -> bool {
        if self.pinned.contains(&addr) {
            return true;
        }
        let rate = self.cfg.resolutions_per_second;
        match self.refilled {
            None => {
                self.tokens = rate;
                self.refilled = Some(now);
            }
            Some(at) => {
                let add = now.saturating_duration_since(at).as_nanos() * u128::from(rate) / 1_000_000_000;
                if add > 0 {
                    self.tokens = self.tokens.saturating_add(u32::try_from(add).unwrap_or(u32::MAX)).min(rate);
                    self.refilled = Some(now);
                }
            }
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// The configuration in force.
    pub fn config(&self) -> &NeighborConfig {
        &self.cfg
    }

    /// Number of entries (reachable and pending).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The MAC of `addr` if a reachable, unexpired mapping exists. Changes nothing.
    pub fn lookup(&self, addr: Addr, now: Instant) -> Option<EthernetAddress> {
        match self.entries.get(&addr) {
            Some(Entry::Reachable { mac, expires_at, .. }) if now < *expires_at => Some(*mac),
            _ => None,
        }
    }

    /// Whether `addr` has a link-layer address (reachable or stale), without a clock: for
    /// preferring routers that are probably reachable (RFC 4861 §6.3.6).
    pub fn has_mapping(&self, addr: Addr) -> bool {
        matches!(self.entries.get(&addr), Some(Entry::Reachable { .. }))
    }

    /// Whether a resolution for `addr` is in progress.
    pub fn is_pending(&self, addr: Addr) -> bool {
        matches!(self.entries.get(&addr), Some(Entry::Pending { .. }))
    }

    /// Number of packets queued for `addr`.
    pub fn queued(&self, addr: Addr) -> usize {
        match self.entries.get(&addr) {
            Some(Entry::Pending { queue, .. }) => queue.len(),
            _ => 0,
        }
    }

    /// Find the MAC for `addr` to send to it, starting resolution if it is unknown or has
    /// expired.
    pub fn resolve(&mut self, addr: Addr, now: Instant) -> Resolve {
        let retry_at = now + self.cfg.retry_interval;
        let refresh_window = self.cfg.refresh_window;
        match self.entries.get_mut(&addr) {
            Some(Entry::Reachable { mac, expires_at, refresh_sent }) if now < *expires_at => {
                let refresh = !*refresh_sent && now + refresh_window >= *expires_at;
                if refresh {
                    *refresh_sent = true;
                }
                return Resolve::Ready { mac: *mac, refresh };
            }
            Some(Entry::Pending { .. }) => return Resolve::Pending { send_request: false },
            Some(_) => {
                // Expired but not yet swept by `poll`: resolve afresh.
                if !self.may_resolve(addr, now) {
                    return Resolve::RateLimited;
                }
                if let Some(entry) = self.entries.get_mut(&addr) {
                    *entry = Entry::Pending { requests_sent: 1, next_retry: retry_at, queue: VecDeque::new() };
                }
                self.note_deadline(retry_at);
                return Resolve::Pending { send_request: true };
            }
            None => {}
        }
        if !self.may_resolve(addr, now) {
            return Resolve::RateLimited;
        }
        if !self.make_room(now) {
            return Resolve::Full;
        }
        self.entries.insert(addr, Entry::Pending { requests_sent: 1, next_retry: retry_at, queue: VecDeque::new() });
        self.note_deadline(retry_at);
        Resolve::Pending { send_request: true }
    }

    /// Queue `packet` until `addr` resolves. Fails (handing the packet back) when `addr` is
    /// not pending or its queue is full.
    pub fn enqueue(&mut self, addr: Addr, packet: Vec<u8>) -> Result<(), Vec<u8>> {
        match self.entries.get_mut(&addr) {
            Some(Entry::Pending { queue, .. }) if queue.len() < self.cfg.queue_len => {
                queue.push_back(packet);
                Ok(())
            }
            _ => Err(packet),
        }
    }

    /// Record that `addr` is at `mac` (RFC 826 merge). An existing entry is updated (and, if
    /// it was pending, its queue handed back); a new one is created only if `create` (the
    /// packet targeted us).
    pub fn learn(&mut self, addr: Addr, mac: EthernetAddress, now: Instant, create: bool) -> Learned {
        let expires_at = now + self.cfg.reachable_time;
        let reachable = Entry::Reachable { mac, expires_at, refresh_sent: false };
        let mut out = Learned::default();
        if let Some(entry) = self.entries.get_mut(&addr) {
            if let Entry::Pending { queue, .. } = entry {
                out.flushed = core::mem::take(queue).into();
            }
            *entry = reachable;
            out.updated = true;
        } else if create {
            let before = self.entries.len();
            if !self.make_room(now) {
                return out;
            }
            out.evicted = self.entries.len() < before && before >= self.cfg.capacity;
            self.entries.insert(addr, reachable);
            out.updated = true;
        } else {
            return out;
        }
        self.note_deadline(expires_at);
        out
    }

    /// Run retries, failures and expiry due at `now`. Cheap when nothing is due.
    pub fn poll(&mut self, now: Instant) -> Vec<Event<Addr>> {
        let mut events = Vec::new();
        match self.deadline {
            Some(d) if now >= d => {}
            _ => return events,
        }
        let retry_at = now + self.cfg.retry_interval;
        let max_requests = self.cfg.max_requests;
        self.entries.retain(|&addr, entry| match entry {
            Entry::Reachable { expires_at, .. } => {
                if now >= *expires_at {
                    events.push(Event::Expired(addr));
                    false
                } else {
                    true
                }
            }
            Entry::Pending { requests_sent, next_retry, queue } => {
                if now < *next_retry {
                    true
                } else if *requests_sent >= max_requests {
                    events.push(Event::Failed { addr, dropped: queue.len() });
                    false
                } else {
                    *requests_sent += 1;
                    *next_retry = retry_at;
                    events.push(Event::Request(addr));
                    true
                }
            }
        });
        self.deadline = self.entries.values().map(Entry::deadline).min();
        events
    }

    /// The earliest time [`NeighborCache::poll`] has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn note_deadline(&mut self, t: Instant) {
        self.deadline = Some(self.deadline.map_or(t, |d| d.min(t)));
    }

    /// Ensure one free slot: sweep expired entries, else evict the reachable entry closest
    /// to expiry. Returns false when every entry is pending.
    fn make_room(&mut self, now: Instant) -> bool {
        if self.entries.len() < self.cfg.capacity {
            return true;
        }
        self.entries.retain(|_, e| !matches!(e, Entry::Reachable { expires_at, .. } if now >= *expires_at));
        if self.entries.len() < self.cfg.capacity {
            return true;
        }
        let pinned = &self.pinned;
        let victim = self
            .entries
            .iter()
            .filter_map(|(a, e)| match e {
                Entry::Reachable { expires_at, .. } if !pinned.contains(a) => Some((*expires_at, *a)),
                _ => None,
            })
            .min();
        match victim {
            Some((_, addr)) => {
                self.entries.remove(&addr);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    const C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 4);
    const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 3]);

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn cache() -> NeighborCache {
        NeighborCache::new(NeighborConfig::default())
    }

    #[test]
    fn resolve_starts_once_then_waits() {
        let mut c = cache();
        assert_eq!(c.resolve(A, t(0)), Resolve::Pending { send_request: true });
        assert_eq!(c.resolve(A, t(10)), Resolve::Pending { send_request: false });
        assert!(c.is_pending(A));
        assert_eq!(c.lookup(A, t(10)), None);
        assert_eq!(c.next_deadline(), Some(t(1000)));
    }

    #[test]
    fn retries_then_fails_after_max_requests() {
        let mut c = cache();
        assert_eq!(c.resolve(A, t(0)), Resolve::Pending { send_request: true });
        c.enqueue(A, vec![1]).expect("pending entry has room");
        c.enqueue(A, vec![2]).expect("pending entry has room");
        assert!(c.poll(t(999)).is_empty(), "nothing due before the retry interval");
        assert_eq!(c.poll(t(1000)), vec![Event::Request(A)]);
        assert_eq!(c.poll(t(2000)), vec![Event::Request(A)]);
        // Three requests sent (t=0, 1, 2 s) with no answer: the third interval ends in failure.
        assert_eq!(c.poll(t(3000)), vec![Event::Failed { addr: A, dropped: 2 }]);
        assert!(c.is_empty());
        assert_eq!(c.next_deadline(), None);
    }

    #[test]
    fn reply_flushes_queue_in_order() {
        let mut c = cache();
        c.resolve(A, t(0));
        c.enqueue(A, vec![1]).expect("room");
        c.enqueue(A, vec![2]).expect("room");
        // A reply need not target us to complete our own pending resolution (merge).
        let l = c.learn(A, MAC_A, t(300), false);
        assert!(l.updated);
        assert_eq!(l.flushed, vec![vec![1], vec![2]]);
        assert_eq!(c.lookup(A, t(300)), Some(MAC_A));
        assert_eq!(c.resolve(A, t(300)), Resolve::Ready { mac: MAC_A, refresh: false });
    }

    #[test]
    fn queue_is_bounded() {
        let mut c = NeighborCache::new(NeighborConfig { queue_len: 2, ..NeighborConfig::default() });
        c.resolve(A, t(0));
        assert!(c.enqueue(A, vec![1]).is_ok());
        assert!(c.enqueue(A, vec![2]).is_ok());
        assert_eq!(c.enqueue(A, vec![3]), Err(vec![3]));
        assert_eq!(c.queued(A), 2);
        // Not pending: nothing is queued.
        assert_eq!(c.enqueue(B, vec![4]), Err(vec![4]));
    }

    #[test]
    fn merge_updates_existing_but_creates_only_when_targeted() {
        let mut c = cache();
        assert!(!c.learn(A, MAC_A, t(0), false).updated);
        assert_eq!(c.lookup(A, t(0)), None);
        assert!(c.learn(A, MAC_A, t(0), true).updated);
        assert!(c.learn(A, MAC_B, t(5), false).updated);
        assert_eq!(c.lookup(A, t(5)), Some(MAC_B));
    }

    #[test]
    fn entries_expire() {
        let mut c = cache();
        c.learn(A, MAC_A, t(0), true);
        assert_eq!(c.next_deadline(), Some(t(60_000)));
        assert_eq!(c.lookup(A, t(59_999)), Some(MAC_A));
        assert_eq!(c.lookup(A, t(60_000)), None);
        assert!(c.poll(t(59_999)).is_empty());
        assert_eq!(c.poll(t(60_000)), vec![Event::Expired(A)]);
        assert!(c.is_empty());
    }

    #[test]
    fn expired_entry_is_resolved_again() {
        let mut c = cache();
        c.learn(A, MAC_A, t(0), true);
        assert_eq!(c.resolve(A, t(61_000)), Resolve::Pending { send_request: true });
        assert!(c.is_pending(A));
    }

    #[test]
    fn refresh_requested_once_near_expiry() {
        let mut c = cache();
        c.learn(A, MAC_A, t(0), true);
        assert_eq!(c.resolve(A, t(54_999)), Resolve::Ready { mac: MAC_A, refresh: false });
        assert_eq!(c.resolve(A, t(55_000)), Resolve::Ready { mac: MAC_A, refresh: true });
        assert_eq!(c.resolve(A, t(55_001)), Resolve::Ready { mac: MAC_A, refresh: false });
        // The answer renews the entry and re-arms the refresh.
        c.learn(A, MAC_A, t(55_100), false);
        assert_eq!(c.lookup(A, t(100_000)), Some(MAC_A));
        assert_eq!(c.resolve(A, t(110_100)), Resolve::Ready { mac: MAC_A, refresh: true });
    }

    #[test]
    fn capacity_evicts_soonest_expiring_reachable_entry() {
        let mut c = NeighborCache::new(NeighborConfig { capacity: 2, ..NeighborConfig::default() });
        c.learn(A, MAC_A, t(0), true);
        c.learn(B, MAC_B, t(10), true);
        let l = c.learn(C, MAC_A, t(20), true);
        assert!(l.updated && l.evicted);
        assert_eq!(c.len(), 2);
        assert_eq!(c.lookup(A, t(20)), None, "A expired soonest and was evicted");
        assert_eq!(c.lookup(B, t(20)), Some(MAC_B));
    }

    #[test]
    fn full_of_pending_refuses_new_entries() {
        let mut c = NeighborCache::new(NeighborConfig { capacity: 2, ..NeighborConfig::default() });
        c.resolve(A, t(0));
        c.resolve(B, t(0));
        assert_eq!(c.resolve(C, t(0)), Resolve::Full);
        assert!(!c.learn(C, MAC_A, t(0), true).updated);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn expired_entries_make_room_first() {
        let mut c = NeighborCache::new(NeighborConfig { capacity: 1, ..NeighborConfig::default() });
        c.learn(A, MAC_A, t(0), true);
        assert_eq!(c.resolve(B, t(61_000)), Resolve::Pending { send_request: true });
        assert_eq!(c.len(), 1);
        assert!(c.is_pending(B));
    }

    #[test]
    fn deadline_tightens_after_removal() {
        let mut c = cache();
        c.resolve(A, t(0));
        c.learn(B, MAC_B, t(0), true);
        c.learn(A, MAC_A, t(500), false);
        // The stale deadline (A's retry at 1 s) triggers one empty scan, then tightens.
        assert_eq!(c.next_deadline(), Some(t(1000)));
        assert!(c.poll(t(1000)).is_empty());
        assert_eq!(c.next_deadline(), Some(t(60_000)));
    }

    #[test]
    fn a_pinned_entry_is_never_evicted() {
        let mut c = NeighborCache::new(NeighborConfig { capacity: 2, ..NeighborConfig::default() });
        c.pin(A);
        assert!(c.is_pinned(A) && !c.is_pinned(B));
        assert!(c.learn(A, MAC_A, t(0), true).updated);
        assert!(c.learn(B, MAC_B, t(10), true).updated);
        // A expires first, but is pinned: B goes.
        let l = c.learn(C, MAC_B, t(20), true);
        assert!(l.updated && l.evicted);
        assert_eq!(c.lookup(A, t(20)), Some(MAC_A));
        assert_eq!(c.lookup(B, t(20)), None);
        // Only pinned and pending entries left: nothing is created.
        c.pin(C);
        assert!(!c.learn(B, MAC_B, t(30), true).updated, "full of pinned entries");
        assert_eq!(c.resolve(B, t(30)), Resolve::Full);
    }

    #[test]
    fn resolutions_are_rate_limited_except_for_pinned_addresses() {
        let mut c = NeighborCache::new(NeighborConfig { resolutions_per_second: 2, ..NeighborConfig::default() });
        let addr = |i: u8| Ipv4Addr::new(10, 0, 1, i);
        assert_eq!(c.resolve(addr(1), t(0)), Resolve::Pending { send_request: true });
        assert_eq!(c.resolve(addr(2), t(0)), Resolve::Pending { send_request: true });
        assert_eq!(c.resolve(addr(3), t(0)), Resolve::RateLimited);
        // A pending one asks for nothing new; a pinned one always starts.
        assert_eq!(c.resolve(addr(1), t(0)), Resolve::Pending { send_request: false });
        c.pin(addr(9));
        assert_eq!(c.resolve(addr(9), t(0)), Resolve::Pending { send_request: true });
        // Half a second later: one more token.
        assert_eq!(c.resolve(addr(3), t(500)), Resolve::Pending { send_request: true });
        assert_eq!(c.resolve(addr(4), t(500)), Resolve::RateLimited);
    }
}
