//! Load balancing over a pool of backends (sans-IO: no clock, no sockets, no DPDK).
//!
//! A [`Balancer`] picks the backend for each new client connection with one of three
//! [`Algorithm`]s:
//!
//! * [`Algorithm::RoundRobin`]: nginx's smooth weighted round robin (`rr.rs`): weights 5:3:2
//!   interleave within every cycle of 10 picks instead of coming in bursts.
//! * [`Algorithm::LeastConnections`]: the backend with the least `active / weight`, ties broken
//!   by smooth weighted round robin (`least_conn.rs`); the caller reports connection starts and
//!   ends with [`Balancer::on_connect`] / [`Balancer::on_disconnect`].
//! * [`Algorithm::Maglev`]: consistent hashing of the client's IP address (`maglev.rs`), so a
//!   client's connections all reach the same backend and pool changes move few clients.
//!
//! Health is the caller's: every pick takes an `is_up(idx)` predicate and never returns a
//! backend for which it is false. Backends with weight 0 are drained: never picked.
//! A balancer is plain single-threaded state; each lcore owns its own.
//!
//! **Across lcores** ([`Balancer::pick_shared`]): the lcores' balancers of one pool share a
//! [`SharedPool`], the global active count of every backend and one round-robin ticket
//! counter. Least connections then compares the global counts; round robin takes position
//! `ticket mod len` of one cycle of the smooth weighted round robin that every lcore builds
//! identically (`rr::schedule`), so the process runs one round robin instead of one per
//! lcore (two lcores with weights 1:1 no longer both start on the first backend). A ticket
//! whose backend is not eligible (down, or tried) falls back to the lcore's own smooth
//! round robin among the eligible ones, as does a pool whose cycle would be longer than
//! `rr::MAX_SCHEDULE` (65 536) entries.

mod hash;
mod least_conn;
mod maglev;
mod rr;

use std::collections::HashMap;
use std::net::SocketAddr;

use thiserror::Error;

use maglev::Maglev;
use rr::SmoothWrr;

/// The most backends a pool may have (Maglev table entries are `u16` indices).
pub const MAX_BACKENDS: usize = 65_536;

/// What the balancers of one pool on every lcore share ([`Balancer::pick_shared`]).
pub trait SharedPool {
    /// Takes the next round-robin ticket: each value is handed out once, over all lcores.
    fn next_ticket(&self) -> u64;
    /// Active connections to backend `idx` (pool index) from every lcore.
    fn active(&self, idx: usize) -> u64;
}

/// One backend server of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Its index in the pool (must equal its position in the slice given to the balancer).
    pub id: usize,
    /// Where to connect. Also its identity for Maglev: unique within a pool.
    pub addr: SocketAddr,
    /// Relative share of new connections; 0 drains the backend.
    pub weight: u32,
}

/// How a [`Balancer`] chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Smooth weighted round robin.
    RoundRobin,
    /// Weighted least active connections.
    LeastConnections,
    /// Maglev consistent hashing of the client IP address.
    Maglev,
}

impl Algorithm {
    /// Every algorithm, in declaration order.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::RoundRobin,
        Algorithm::LeastConnections,
        Algorithm::Maglev,
    ];

    /// The configuration name: `round_robin`, `least_connections` or `maglev`.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::RoundRobin => "round_robin",
            Algorithm::LeastConnections => "least_connections",
            Algorithm::Maglev => "maglev",
        }
    }

    /// The algorithm with configuration name `name`, if any.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Why a pool was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LbError {
    /// No backends at all.
    #[error("backend pool is empty")]
    EmptyPool,
    /// Every backend has weight 0.
    #[error("backend pool has zero total weight")]
    ZeroTotalWeight,
    /// More than [`MAX_BACKENDS`] backends.
    #[error("backend pool has {0} servers, at most {MAX_BACKENDS} are supported")]
    TooManyBackends(usize),
    /// `backends[position].id != position`.
    #[error("backend at position {position} has id {id}; ids must be pool indices")]
    IdMismatch {
        /// Position in the slice.
        position: usize,
        /// The id it carries.
        id: usize,
    },
    /// Two backends share an address (Maglev needs distinct identities).
    #[error("backend {0} appears twice in the pool")]
    DuplicateBackend(SocketAddr),
}

/// Counters of a [`Balancer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LbStats {
    /// Picks that returned a backend.
    pub picks: u64,
    /// Picks that found no backend up (and returned `None`).
    pub no_backend: u64,
    /// Maglev picks whose own slot belonged to a down backend.
    pub maglev_fallbacks: u64,
    /// `on_connect` / `on_disconnect` calls naming an index outside the pool.
    pub unknown_backend: u64,
    /// `on_disconnect` calls for a backend with no active connection.
    pub unbalanced_disconnects: u64,
}

/// Chooses backends for new connections. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Balancer {
    algorithm: Algorithm,
    backends: Vec<Backend>,
    weights: Vec<u32>,
    active: Vec<u64>,
    wrr: SmoothWrr,
    maglev: Option<Maglev>,
    /// One cycle of the weighted round robin (round robin only; see [`Balancer::pick_shared`]).
    schedule: Option<Vec<u32>>,
    stats: LbStats,
}

fn validate(backends: &[Backend]) -> Result<(), LbError> {
    if backends.is_empty() {
        return Err(LbError::EmptyPool);
    }
    if backends.len() > MAX_BACKENDS {
        return Err(LbError::TooManyBackends(backends.len()));
    }
    if let Some((position, b)) = backends.iter().enumerate().find(|(i, b)| b.id != *i) {
        return Err(LbError::IdMismatch { position, id: b.id });
    }
    let mut addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    addrs.sort_unstable();
    if let Some(w) = addrs.windows(2).find(|w| w[0] == w[1]) {
        return Err(LbError::DuplicateBackend(w[0]));
    }
    if backends.iter().all(|b| b.weight == 0) {
        return Err(LbError::ZeroTotalWeight);
    }
    Ok(())
}

impl Balancer {
    /// A balancer over `backends`. Errors on an empty pool, more than [`MAX_BACKENDS`]
    /// servers, ids that are not pool indices, duplicate addresses, or zero total weight.
    pub fn new(algorithm: Algorithm, backends: &[Backend]) -> Result<Balancer, LbError> {
        validate(backends)?;
        Ok(Balancer {
            algorithm,
            backends: backends.to_vec(),
            weights: backends.iter().map(|b| b.weight).collect(),
            active: vec![0; backends.len()],
            wrr: SmoothWrr::new(backends.len()),
            maglev: (algorithm == Algorithm::Maglev).then(|| Maglev::build(backends)),
            schedule: Self::schedule_for(algorithm, backends),
            stats: LbStats::default(),
        })
    }

    /// Replaces the pool (same validation as [`Balancer::new`]; on error nothing changes).
    /// Active-connection counts follow the backend's address, so a backend kept across the
    /// change keeps its count under its new index: the caller must report later
    /// disconnects with the new indices. The Maglev table is rebuilt; it depends only on
    /// the pool's contents, so every appliance given the same pool builds the same table.
    pub fn set_backends(&mut self, backends: &[Backend]) -> Result<(), LbError> {
        validate(backends)?;
        let old: HashMap<SocketAddr, u64> = self
            .backends
            .iter()
            .map(|b| b.addr)
            .zip(self.active.iter().copied())
            .collect();
        let active = backends
            .iter()
            .map(|b| old.get(&b.addr).copied().unwrap_or(0))
            .collect();
        self.active = active;
        self.backends = backends.to_vec();
        self.weights = backends.iter().map(|b| b.weight).collect();
        self.wrr = SmoothWrr::new(backends.len());
        self.maglev = (self.algorithm == Algorithm::Maglev).then(|| Maglev::build(backends));
        self.schedule = Self::schedule_for(self.algorithm, backends);
        Ok(())
    }

    fn schedule_for(algorithm: Algorithm, backends: &[Backend]) -> Option<Vec<u32>> {
        let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
        (algorithm == Algorithm::RoundRobin).then(|| rr::schedule(&weights)).flatten()
    }

    /// [`Balancer::pick`] with the state every lcore shares (see the [module docs](self)):
    /// least connections on `shared`'s global counts, round robin on its tickets; the
    /// balancer's own counts ([`Balancer::on_connect`]) are not used.
    pub fn pick_shared(
        &mut self,
        client: SocketAddr,
        is_up: impl Fn(usize) -> bool,
        shared: &impl SharedPool,
    ) -> Option<usize> {
        let picked = match self.algorithm {
            Algorithm::RoundRobin => {
                let ticketed = self.schedule.as_ref().and_then(|sched| {
                    let len = u64::try_from(sched.len()).ok().filter(|&l| l > 0)?;
                    let pos = usize::try_from(shared.next_ticket() % len).ok()?;
                    let idx = usize::try_from(*sched.get(pos)?).ok()?;
                    is_up(idx).then_some(idx)
                });
                ticketed.or_else(|| self.wrr.pick(&self.weights, &is_up))
            }
            Algorithm::LeastConnections => {
                least_conn::pick(&self.weights, |i| shared.active(i), &mut self.wrr, is_up)
            }
            Algorithm::Maglev => return self.pick(client, is_up),
        };
        match picked {
            Some(_) => self.stats.picks += 1,
            None => self.stats.no_backend += 1,
        }
        picked
    }

    /// The backend (pool index) for a new connection from `client`, skipping backends for
    /// which `is_up(idx)` is false and drained (weight-0) ones; `None` when none is left.
    /// Only Maglev looks at `client`, and only at its IP address.
    pub fn pick(&mut self, client: SocketAddr, is_up: impl Fn(usize) -> bool) -> Option<usize> {
        let picked = match self.algorithm {
            Algorithm::RoundRobin => self.wrr.pick(&self.weights, is_up),
            Algorithm::LeastConnections => {
                let active = &self.active;
                least_conn::pick(&self.weights, |i| active.get(i).copied().unwrap_or(0), &mut self.wrr, is_up)
            }
            Algorithm::Maglev => {
                let found = self
                    .maglev
                    .as_ref()
                    .and_then(|m| m.lookup(client.ip(), &self.weights, is_up));
                if found.is_some_and(|l| l.fell_back) {
                    self.stats.maglev_fallbacks += 1;
                }
                found.map(|l| l.idx)
            }
        };
        match picked {
            Some(_) => self.stats.picks += 1,
            None => self.stats.no_backend += 1,
        }
        picked
    }

    /// A connection to backend `idx` started.
    pub fn on_connect(&mut self, idx: usize) {
        match self.active.get_mut(idx) {
            Some(a) => *a = a.saturating_add(1),
            None => self.stats.unknown_backend += 1,
        }
    }

    /// A connection to backend `idx` ended.
    pub fn on_disconnect(&mut self, idx: usize) {
        match self.active.get_mut(idx) {
            Some(0) => self.stats.unbalanced_disconnects += 1,
            Some(a) => *a -= 1,
            None => self.stats.unknown_backend += 1,
        }
    }

    /// The algorithm in use.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The pool.
    pub fn backends(&self) -> &[Backend] {
        &self.backends
    }

    /// Active connections on backend `idx` (0 outside the pool).
    pub fn active(&self, idx: usize) -> u64 {
        self.active.get(idx).copied().unwrap_or(0)
    }

    /// The counters.
    pub fn stats(&self) -> &LbStats {
        &self.stats
    }

    /// The Maglev lookup table (entry = pool index), for [`Algorithm::Maglev`] only.
    pub fn maglev_table(&self) -> Option<&[u16]> {
        self.maglev.as_ref().map(Maglev::table)
    }
}

#[cfg(test)]
mod tests;
