//! What the proxies of all lcores share: per-listener session counts, per-server
//! connection counts and per-pool round-robin tickets, so that `max_connections` is one
//! limit for the whole process, least-connections compares global counts and weighted
//! round robin spreads one sequence over every lcore (issue 15).
//!
//! **Atomics, not per-lcore counters summed.** Each count is one `AtomicU64` that every
//! lcore updates in place (a relaxed read-modify-write, tens of nanoseconds, no lock, no
//! allocation). Admission is a compare-and-swap loop that never lets the count pass the
//! limit, so the limit is exact: no lcore ever sees a session it could not have admitted,
//! and no refusal happens because of another lcore's transient over-count (as a
//! `fetch_add` then `fetch_sub` on refusal would allow). Per-lcore counters summed every
//! few milliseconds would avoid the shared cache line but let N lcores each admit up to
//! the limit in the window between sums, which is exactly the bug this replaces. The cost
//! is one contended cache line per listener and per server, touched once per session start
//! and end (and least-connections reads one line per server per pick), not per packet.
//!
//! **Staleness.** A count is exact at every instant for admission. Least connections
//! reads the servers' counts, then takes a slot on the one it chose: two lcores picking in
//! the same few nanoseconds may both choose the same least-loaded server, so the spread
//! can be off by at most one connection per lcore picking concurrently, corrected by the
//! next picks. Round-robin tickets are taken atomically: each ticket goes to exactly one
//! pick.
//!
//! **Identity across reloads.** Counters are kept in a registry by stable names: a
//! listener by its name, a server by (pool name, address), a pool's tickets by its name,
//! the same keys by which a reload keeps a listener or server ([`super::reload`]). Every
//! lcore that looks a name up gets the same counter, before and after a reload, so a
//! session that started under the old configuration is still counted, and uncounted once,
//! under the new one. Sessions hold their slot as a [`Held`], which gives it back when it
//! is dropped: the count goes down exactly once on every path that ends a session (normal
//! close, reset, error, idle timeout, drain, the proxy being dropped). The registry's lock
//! is taken only when a configuration is started or reloaded; entries nobody holds any
//! more are pruned then.
//!
//! The registry also holds every server's health [`Verdict`] (`verdict.rs`: one checker
//! per server, its verdict read by every lcore) under the same keys, and numbers the
//! proxies that join it ([`ProxyShared::join`]), which decides who checks what.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::health::BackendHealth;
use super::verdict::Verdict;

/// One shared count (sessions of a listener, connections to a server, tickets of a pool).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// The count now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one more if fewer than `max` are counted; `None` (nothing changed) otherwise.
    pub(crate) fn try_hold(self: &Arc<Self>, max: u64) -> Option<Held> {
        self.0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| (n < max).then_some(n + 1))
            .ok()
            .map(|_| Held(Arc::clone(self)))
    }

    /// Counts one more, without a limit.
    pub(crate) fn hold(self: &Arc<Self>) -> Held {
        self.0.fetch_add(1, Ordering::Relaxed);
        Held(Arc::clone(self))
    }

    /// Takes the next ticket (the count before this call).
    pub(crate) fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// One unit of a [`Counter`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Held(Arc<Counter>);

impl Drop for Held {
    fn drop(&mut self) {
        // Every `Held` was counted once: the count is at least 1 here.
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The registry of shared counters; cheap to clone (one `Arc`). Create one per process
/// and give it to every lcore's proxy ([`super::Proxy::set_shared`]) before it starts.
#[derive(Debug, Clone, Default)]
pub struct ProxyShared {
    inner: Arc<Registry>,
}

#[derive(Debug, Default)]
struct Registry {
    listeners: Mutex<HashMap<String, Arc<Counter>>>,
    servers: Mutex<HashMap<(String, SocketAddr), Arc<Counter>>>,
    pools: Mutex<HashMap<String, Arc<Counter>>>,
    /// Sessions waiting for a server with room, per pool (`queue.rs`).
    queues: Mutex<HashMap<String, Arc<Counter>>>,
    /// Health verdict per server (`verdict.rs`).
    verdicts: Mutex<HashMap<(String, SocketAddr), Arc<Verdict>>>,
    /// Proxies that joined ([`ProxyShared::join`]).
    members: AtomicU32,
}

/// The map behind `m`, also when another thread panicked holding it (the maps hold only
/// `Arc`s: never half-updated).
fn lock<K, V>(m: &Mutex<HashMap<K, V>>) -> MutexGuard<'_, HashMap<K, V>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Drops the entries no proxy holds any more (their count is 0: every [`Held`] and every
/// proxy state holds its own `Arc`). Under the map's lock nobody can take a new `Arc` of
/// an entry, so a count of 1 (the registry's) cannot go up meanwhile.
fn prune<K, V>(m: &mut HashMap<K, Arc<V>>) {
    m.retain(|_, c| Arc::strong_count(c) > 1);
}

impl ProxyShared {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The session counter of listener `name`.
    pub(crate) fn listener(&self, name: &str) -> Arc<Counter> {
        let mut m = lock(&self.inner.listeners);
        Arc::clone(m.entry(name.to_string()).or_default())
    }

    /// The connection counter of server `addr` of pool `pool`.
    pub(crate) fn server(&self, pool: &str, addr: SocketAddr) -> Arc<Counter> {
        let mut m = lock(&self.inner.servers);
        Arc::clone(m.entry((pool.to_string(), addr)).or_default())
    }

    /// The round-robin tickets of pool `name`.
    pub(crate) fn pool(&self, name: &str) -> Arc<Counter> {
        let mut m = lock(&self.inner.pools);
        Arc::clone(m.entry(name.to_string()).or_default())
    }

    /// The queue length of pool `name`.
    pub(crate) fn queue(&self, name: &str) -> Arc<Counter> {
        let mut m = lock(&self.inner.queues);
        Arc::clone(m.entry(name.to_string()).or_default())
    }

    /// Joins the registry as the next member (0, 1, ...: the order in which the lcores'
    /// proxies are set up); the member index decides which servers' checks this proxy runs
    /// ([`crate::app::proxy::verdict::checker`]).
    pub(crate) fn join(&self) -> u32 {
        self.inner.members.fetch_add(1, Ordering::Relaxed)
    }

    /// Proxies that joined.
    pub fn members(&self) -> u32 {
        self.inner.members.load(Ordering::Relaxed)
    }

    /// The health verdict of server `addr` of pool `pool`.
    pub(crate) fn verdict(&self, pool: &str, addr: SocketAddr) -> Arc<Verdict> {
        let mut m = lock(&self.inner.verdicts);
        Arc::clone(m.entry((pool.to_string(), addr)).or_default())
    }

    /// Every server's health (the checks' verdict, check counters, passive ejections over
    /// all lcores), sorted by pool and address: one entry per server for the whole
    /// process. Takes the registry's lock (the lcores take it only to start or reload).
    pub fn health(&self) -> Vec<BackendHealth> {
        let m = lock(&self.inner.verdicts);
        let mut out: Vec<BackendHealth> = m.iter().map(|((pool, addr), v)| v.snapshot(pool, *addr)).collect();
        out.sort_by(|a, b| (&a.pool, a.addr).cmp(&(&b.pool, b.addr)));
        out
    }

    /// Sessions waiting in pool `name`'s queue on every lcore (0 for an unknown pool).
    pub fn queue_length(&self, name: &str) -> u64 {
        lock(&self.inner.queues).get(name).map_or(0, |c| c.get())
    }

    /// Forgets counters no lcore holds any more (after a reload removed their listener,
    /// server or pool everywhere and their last session ended).
    pub(crate) fn prune(&self) {
        prune(&mut lock(&self.inner.listeners));
        prune(&mut lock(&self.inner.servers));
        prune(&mut lock(&self.inner.pools));
        prune(&mut lock(&self.inner.queues));
        prune(&mut lock(&self.inner.verdicts));
    }

    /// Sessions of listener `name` on every lcore (0 for an unknown name).
    pub fn listener_sessions(&self, name: &str) -> u64 {
        lock(&self.inner.listeners).get(name).map_or(0, |c| c.get())
    }

    /// Connections (connecting or established) to server `addr` of pool `pool` from every
    /// lcore (0 for an unknown server).
    pub fn server_connections(&self, pool: &str, addr: SocketAddr) -> u64 {
        lock(&self.inner.servers).get(&(pool.to_string(), addr)).map_or(0, |c| c.get())
    }

    /// Entries in the registry (listeners, servers, pools), for tests of pruning.
    pub fn entries(&self) -> (usize, usize, usize) {
        (lock(&self.inner.listeners).len(), lock(&self.inner.servers).len(), lock(&self.inner.pools).len())
    }
}

/// The shared state of one pool as its balancer sees it: the pool's tickets and its
/// servers' counters, in pool order.
#[derive(Debug, Clone)]
pub(crate) struct PoolShared {
    tickets: Arc<Counter>,
    servers: Vec<Arc<Counter>>,
    queued: Arc<Counter>,
}

impl PoolShared {
    /// The counters of pool `name` with servers `addrs` (in pool order).
    pub(crate) fn lookup(shared: &ProxyShared, name: &str, addrs: impl Iterator<Item = SocketAddr>) -> Self {
        PoolShared {
            tickets: shared.pool(name),
            servers: addrs.map(|a| shared.server(name, a)).collect(),
            queued: shared.queue(name),
        }
    }

    /// Counts a connection to the pool's server `idx` (pool order); `None` outside the pool.
    pub(crate) fn hold(&self, idx: usize) -> Option<Held> {
        self.servers.get(idx).map(Counter::hold)
    }

    /// Counts a connection to server `idx` if fewer than `max` are counted (all lcores).
    pub(crate) fn try_hold(&self, idx: usize, max: u64) -> Option<Held> {
        self.servers.get(idx).and_then(|c| c.try_hold(max))
    }

    /// One place in the pool's queue if fewer than `max` sessions wait (all lcores).
    pub(crate) fn queue_place(&self, max: u64) -> Option<Held> {
        self.queued.try_hold(max)
    }
}

impl crate::lb::SharedPool for PoolShared {
    fn next_ticket(&self) -> u64 {
        self.tickets.next()
    }

    fn active(&self, idx: usize) -> u64 {
        self.servers.get(idx).map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_is_exact_and_given_back_once() {
        let c = Arc::new(Counter::default());
        let held: Vec<Held> = (0..10).filter_map(|_| c.try_hold(10)).collect();
        assert_eq!(held.len(), 10);
        assert!(c.try_hold(10).is_none(), "the 11th is refused");
        assert_eq!(c.get(), 10, "a refusal changes nothing");
        drop(held);
        assert_eq!(c.get(), 0);
        assert!(c.try_hold(0).is_none(), "max 0 admits nothing");
    }

    #[test]
    fn threads_never_admit_more_than_the_limit() {
        // Four "lcores" race for 10 slots, holding each for a while and giving it back.
        let c = Arc::new(Counter::default());
        let peak = Arc::new(AtomicU64::new(0));
        let admitted = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (c, peak, admitted) = (Arc::clone(&c), Arc::clone(&peak), Arc::clone(&admitted));
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..20_000u32 {
                        if let Some(h) = c.try_hold(10) {
                            admitted.fetch_add(1, Ordering::Relaxed);
                            peak.fetch_max(c.get(), Ordering::Relaxed);
                            mine.push(h);
                        }
                        if i % 3 == 0 {
                            mine.pop();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        assert!(peak.load(Ordering::Relaxed) <= 10, "peak {}", peak.load(Ordering::Relaxed));
        assert!(admitted.load(Ordering::Relaxed) > 10);
        assert_eq!(c.get(), 0, "every slot given back exactly once");
    }

    #[test]
    fn the_same_names_give_the_same_counters_and_idle_ones_are_pruned() {
        let shared = ProxyShared::new();
        let a = "198.18.1.1:80".parse().unwrap();
        let l1 = shared.listener("web");
        let h = l1.hold();
        assert_eq!(shared.listener("web").get(), 1, "another lcore sees the same count");
        assert_eq!(shared.listener_sessions("web"), 1);
        let s = shared.server("pool", a);
        let _s2 = s.hold();
        assert_eq!(shared.server_connections("pool", a), 1);
        assert_eq!(shared.server_connections("other", a), 0, "a server is keyed by pool and address");
        drop(l1);
        shared.prune();
        assert_eq!(shared.listener_sessions("web"), 1, "a held session keeps its counter");
        drop(h);
        shared.prune();
        assert_eq!(shared.entries(), (0, 1, 0));
        drop((s, _s2));
        shared.prune();
        assert_eq!(shared.entries(), (0, 0, 0));
    }

    #[test]
    fn tickets_are_taken_once_each() {
        let shared = ProxyShared::new();
        let p = PoolShared::lookup(&shared, "web", [].into_iter());
        let q = PoolShared::lookup(&shared, "web", [].into_iter());
        use crate::lb::SharedPool;
        assert_eq!((p.next_ticket(), q.next_ticket(), p.next_ticket()), (0, 1, 2));
        assert_eq!(p.active(0), 0, "outside the pool");
        assert!(p.hold(0).is_none());
    }
}
