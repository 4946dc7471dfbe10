//! Changing a running proxy: configuration reload, server admin state and weight, health
//! polling (the admin commands of `admin.rs` call these on the lcore).
//!
//! **Reload** applies a new [`ProxySpec`] to new connections without touching established
//! sessions (their TCP state lives in this engine, so nothing needs to be handed over):
//!
//! * Listeners are matched by name. A kept listener with the same address keeps its
//!   engine listener and counters and takes the new limits, timeouts and pool; one whose
//!   address changed is re-opened on the new address; a removed one stops accepting, and
//!   stays (closed) while sessions it accepted remain.
//! * Pools are matched by name: a kept pool's balancer takes the new server list and
//!   weights ([`crate::lb::Balancer::set_backends`]: active counts follow the addresses);
//!   a new pool or a changed algorithm gets a new balancer.
//! * Servers are matched by (pool, address) and keep their counters, health and admin
//!   state. A removed server receives no new session; its sessions continue (drain) and
//!   it stays listed, after every configured server, until a later reload finds it idle.
//!
//! Everything that can fail (new listen addresses, balancers) is tried before anything
//! changes: a refused reload leaves the proxy as it was.
//!
//! The counters shared with the other lcores ([`super::ProxyShared`]) follow the same
//! names: a kept listener, server (pool, address) or pool finds its counter again, so the
//! global session and connection counts stay right across a reload, whichever lcore
//! applies it first; a session holds its units until it ends, also when a reload removed
//! its listener or server.

use std::collections::HashMap;
use std::net::SocketAddr;

use super::admin::AdminState;
use crate::lb::{Backend, Balancer};
use crate::tcp::{Engine, ListenerId, Payload};
use crate::time::{Duration, Instant};

use super::health::{BackendHealth, OpsSpec, PoolHealth, Polled, ServerHealth};
use super::shared::PoolShared;
use super::verdict;
use super::{ListenerState, ListenerStats, PoolState, Proxy, ProxyError, ProxySpec, ServerStats};

/// How often passive ejection and the health checks are looked at.
const HEALTH_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// Operating state of one server.
#[derive(Debug)]
pub(super) struct ServerOps {
    pub(super) admin: AdminState,
    pub(super) health: ServerHealth,
}

/// The proxy's operating state, as [`OpsSpec`] (health checks, access log) and the
/// operator's commands set it: per-server admin state and health, per-pool health
/// settings, the access log switch, a prepared reload. Servers are indexed like the flat
/// server list.
#[derive(Debug, Default)]
pub(super) struct OpsState {
    pub(super) servers: Vec<ServerOps>,
    /// Configured servers (the flat list beyond this holds removed, draining ones).
    pub(super) configured: Option<usize>,
    /// A reload prepared on this lcore, waiting for commit or abort (`admin.rs`).
    pub(super) prepared: Option<PreparedReload>,
    spec: OpsSpec,
    next_poll: Instant,
    /// Log one line per closed session.
    pub(super) access_log: bool,
}

impl OpsState {
    /// Whether the server (flat index) may receive new sessions at `now`.
    pub(super) fn available(&self, flat: usize, now: Instant) -> bool {
        if self.configured.is_some_and(|c| flat >= c) {
            // Removed by a reload: draining.
            return false;
        }
        self.servers.get(flat).is_none_or(|s| s.admin == AdminState::Enabled && s.health.up(now))
    }

    /// Health of every server (flat order): the process's verdict and counters.
    pub(super) fn health(&self) -> Vec<BackendHealth> {
        self.servers.iter().map(|s| s.health.snapshot()).collect()
    }
}

/// Why a reload was refused.
pub type ReloadError = ProxyError;

/// A reload checked on one lcore and ready to apply ([`Proxy::prepare_reload`]): the new
/// specs, the pools' balancers and the listener ids (kept or newly opened).
#[derive(Debug)]
pub struct PreparedReload {
    spec: ProxySpec,
    ops: OpsSpec,
    balancers: Vec<Balancer>,
    keep_lid: Vec<Option<ListenerId>>,
    /// Listeners opened for new addresses (closed again by an abort).
    opened: Vec<ListenerId>,
}

impl<P: Payload> Proxy<P> {
    /// Finds every server's health verdict in the current registry (after
    /// [`Proxy::set_shared`]).
    pub(super) fn rebind_health(&mut self) {
        for so in &mut self.ops.servers {
            so.health.rebind(&self.shared);
        }
    }

    /// Makes sure every server has its operating state.
    fn ops_sync(&mut self) {
        let n = self.servers.len();
        let ops = &mut self.ops;
        while ops.servers.len() < n {
            let i = ops.servers.len();
            let (pool, addr) = match self.stats.servers.get(i) {
                Some(st) => (st.pool.clone(), st.addr),
                None => (String::new(), None),
            };
            let addr = addr.or_else(|| self.servers.get(i).map(|s| s.addr));
            let addr = addr.unwrap_or(SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0));
            let health = ServerHealth::new(&pool, addr, &self.shared);
            ops.servers.push(ServerOps { admin: AdminState::Enabled, health });
        }
        ops.servers.truncate(n);
        // Weight and admin state for the metrics (`BackendHealth`): every lcore holds the
        // same, set by the same commands and reloads.
        for (s, o) in self.servers.iter().zip(&ops.servers) {
            o.health.publish(s.weight, o.admin);
        }
    }

    /// Takes health and access-log settings (the configuration started with).
    pub fn configure(&mut self, spec: OpsSpec, _now: Instant) {
        self.ops_sync();
        self.ops.access_log = spec.access_log;
        self.ops.spec = spec;
    }

    /// Whether the server at flat index `flat` may receive new sessions.
    pub fn server_available(&self, flat: usize, now: Instant) -> bool {
        self.ops.available(flat, now)
    }

    /// The flat index of a configured server.
    pub(super) fn server_index(&self, pool: &str, addr: SocketAddr) -> Option<usize> {
        let configured = self.ops.configured.unwrap_or(self.servers.len());
        self.stats.servers.iter().take(configured).position(|s| s.pool == pool && s.addr == Some(addr))
    }

    /// Sets a server's weight until the next reload (HAProxy `set weight`; 0: no new
    /// sessions, as a drained server). `Err` when the pool or server is unknown.
    pub fn set_weight(&mut self, pool: &str, addr: SocketAddr, weight: u32) -> Result<(), String> {
        let flat = self.server_index(pool, addr).ok_or_else(|| format!("no server {addr} in pool {pool:?}"))?;
        let Some(p) = self.pools.iter_mut().find(|p| (p.first..p.first + p.balancer.backends().len()).contains(&flat)) else {
            return Err(format!("no server {addr} in pool {pool:?}"));
        };
        let mut backends = p.balancer.backends().to_vec();
        if let Some(b) = backends.get_mut(flat - p.first) {
            b.weight = weight;
        }
        p.balancer.set_backends(&backends).map_err(|e| e.to_string())?;
        if let Some(s) = self.servers.get_mut(flat) {
            if s.weight != weight {
                tracing::info!(pool, server = %addr, weight, "server weight set");
            }
            s.weight = weight;
        }
        self.ops_sync();
        Ok(())
    }

    /// Sets a server's admin state (`Drain`: no new sessions). `Err` when the pool or
    /// server does not exist.
    pub fn set_admin_state(
        &mut self,
        pool: &str,
        addr: SocketAddr,
        state: AdminState,
        _now: Instant,
    ) -> Result<(), String> {
        self.ops_sync();
        let Some(flat) = self.server_index(pool, addr) else {
            return Err(format!("no server {addr} in pool {pool:?}"));
        };
        if let Some(s) = self.ops.servers.get_mut(flat) {
            if s.admin != state {
                tracing::info!(pool, server = %addr, state = state.name(), "server admin state changed");
            }
            s.admin = state;
        }
        self.ops_sync();
        Ok(())
    }

    /// Health checks and passive ejection, at most every few milliseconds, driven by the
    /// application's poll ([`crate::app::Apps::poll`], with the proxy's timers), not by the
    /// command queue; a check's `send` bytes become a payload through the payload factory.
    /// This lcore runs the checks of the servers it is the checker of (`verdict.rs`) and
    /// the passive ejection of every server. Returns the work done.
    pub fn poll_health(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        if now < self.ops.next_poll {
            return 0;
        }
        self.ops.next_poll = now + HEALTH_POLL_INTERVAL;
        self.ops_sync();
        let factory = &mut self.payload_factory;
        let make = &mut |b: &[u8]| factory.as_mut().and_then(|f| f(b));
        let configured = self.ops.configured.unwrap_or(self.servers.len());
        let members = self.shared.members();
        let mut work = 0;
        for (pi, pool) in self.pools.iter().enumerate() {
            let spec: Option<&PoolHealth> = self.ops.spec.pools.get(pi);
            let n = pool.balancer.backends().len();
            for flat in pool.first..pool.first + n {
                if flat >= configured {
                    break;
                }
                let (Some(server), Some(stats), Some(ops)) =
                    (self.servers.get(flat), self.stats.servers.get_mut(flat), self.ops.servers.get_mut(flat))
                else {
                    continue;
                };
                let Some(spec) = spec else { continue };
                if ops.admin == AdminState::Maint {
                    // Maintenance: no checks until the operator enables it again.
                    continue;
                }
                if ops.health.passive(spec, stats, now) {
                    work += 1;
                }
                let Some(check) = &spec.check else { continue };
                if verdict::checker(&stats.pool, server.addr, members) != self.member {
                    // Another lcore checks it; its verdict is read from the registry.
                    ops.health.not_checker(engine, now);
                    continue;
                }
                match ops.health.poll_check(engine, check, server, now, make) {
                    Polled::Idle => {}
                    Polled::Started => {
                        stats.health_checks += 1;
                        work += 1;
                    }
                    Polled::Ended => work += 1,
                }
            }
        }
        work
    }

    /// Whether this lcore runs the checks of the server at flat index `flat` (its pool has
    /// checks and this lcore is the server's checker).
    pub(super) fn checks_here(&self, flat: usize) -> bool {
        let Some(pi) = self.pools.iter().position(|p| (p.first..p.first + p.balancer.backends().len()).contains(&flat))
        else {
            return false;
        };
        let (Some(st), Some(s)) = (self.stats.servers.get(flat), self.servers.get(flat)) else { return false };
        self.ops.spec.pools.get(pi).is_some_and(|h| h.check.is_some())
            && verdict::checker(&st.pool, s.addr, self.shared.members()) == self.member
    }

    /// Health of every server (flat order): the checks' verdict and counters shared by
    /// every lcore, and passive ejections over all lcores.
    pub fn backend_health(&self) -> Vec<BackendHealth> {
        self.ops.health()
    }

    /// The name of pool `i` (from its servers' counters; empty when unknown).
    pub(super) fn pool_name(&self, i: usize) -> String {
        let Some(p) = self.pools.get(i) else { return String::new() };
        self.stats.servers.get(p.first).map(|s| s.pool.clone()).unwrap_or_default()
    }

    /// Applies `spec` to new connections (see the module documentation). On `Err` nothing
    /// changed. [`Proxy::prepare_reload`] then [`Proxy::commit_reload`].
    pub fn reload(
        &mut self,
        engine: &mut Engine<P>,
        spec: &ProxySpec,
        ops: OpsSpec,
        now: Instant,
    ) -> Result<(), ReloadError> {
        let prepared = self.prepare_reload(engine, spec.clone(), ops, now)?;
        self.commit_reload(engine, prepared, now);
        Ok(())
    }

    /// The first half of a reload: everything that can fail (pools the balancer refuses,
    /// addresses the engine cannot listen on), done without changing what runs. New
    /// listener addresses are already open (not yet accepting into the proxy: a SYN waits
    /// in their backlog). Then [`Proxy::commit_reload`] or [`Proxy::abort_reload`]; the
    /// control plane commits only when every lcore prepared (`admin.rs`).
    pub fn prepare_reload(
        &mut self,
        engine: &mut Engine<P>,
        spec: ProxySpec,
        ops: OpsSpec,
        now: Instant,
    ) -> Result<PreparedReload, ReloadError> {
        let spec = &spec;
        self.ops_sync();
        for l in &spec.listeners {
            if spec.pools.get(l.pool).is_none_or(|p| p.servers.is_empty()) {
                return Err(ProxyError::NoPool(l.name.clone()));
            }
        }
        // ----- everything that can fail, before anything changes -----
        let old_pool_names: Vec<String> = (0..self.pools.len()).map(|i| self.pool_name(i)).collect();
        let mut balancers: Vec<Balancer> = Vec::with_capacity(spec.pools.len());
        for pool in &spec.pools {
            let backends: Vec<Backend> =
                pool.servers.iter().enumerate().map(|(id, s)| Backend { id, addr: s.addr, weight: s.weight }).collect();
            let old = old_pool_names.iter().position(|n| *n == pool.name).and_then(|i| self.pools.get(i));
            let b = match old {
                Some(o) if o.balancer.algorithm() == pool.algorithm => {
                    let mut b = o.balancer.clone();
                    b.set_backends(&backends).map(|()| b)
                }
                _ => Balancer::new(pool.algorithm, &backends),
            };
            balancers.push(b.map_err(|source| ProxyError::Pool { name: pool.name.clone(), source })?);
        }
        // Listeners: which old one each new one continues, and the addresses to open.
        let old_by_name: HashMap<String, usize> =
            self.listeners.iter().enumerate().map(|(i, l)| (l.spec.name.clone(), i)).collect();
        let old_lid: HashMap<usize, ListenerId> = self.by_listener_id.iter().map(|(lid, &i)| (i, *lid)).collect();
        let mut keep_lid: Vec<Option<ListenerId>> = Vec::with_capacity(spec.listeners.len());
        let mut opened: Vec<ListenerId> = Vec::new();
        for l in &spec.listeners {
            let same = old_by_name
                .get(&l.name)
                .filter(|&&i| self.listeners.get(i).is_some_and(|o| o.spec.listen == l.listen))
                .and_then(|i| old_lid.get(i).copied());
            match same {
                Some(lid) => keep_lid.push(Some(lid)),
                None => {
                    // An address another (old) listener still holds is freed below, after
                    // the point of no return: open it then.
                    let held_by_old = self
                        .listeners
                        .iter()
                        .enumerate()
                        .any(|(i, o)| o.spec.listen == l.listen && old_lid.contains_key(&i));
                    if held_by_old {
                        keep_lid.push(None);
                        continue;
                    }
                    match engine.listen(l.listen) {
                        Ok(lid) => {
                            opened.push(lid);
                            keep_lid.push(Some(lid));
                        }
                        Err(source) => {
                            for lid in opened {
                                let _ = engine.unlisten(lid, now);
                            }
                            return Err(ProxyError::Listen { name: l.name.clone(), listen: l.listen, source });
                        }
                    }
                }
            }
        }

        Ok(PreparedReload { spec: spec.clone(), ops, balancers, keep_lid, opened })
    }

    /// Undoes [`Proxy::prepare_reload`]: closes the listeners it opened.
    pub fn abort_reload(&mut self, engine: &mut Engine<P>, prepared: PreparedReload, now: Instant) {
        for lid in prepared.opened {
            let _ = engine.unlisten(lid, now);
        }
    }

    /// The second half of a reload: applies what [`Proxy::prepare_reload`] checked.
    /// Cannot fail.
    pub fn commit_reload(&mut self, engine: &mut Engine<P>, prepared: PreparedReload, now: Instant) {
        let PreparedReload { spec, ops, balancers, mut keep_lid, opened: _ } = prepared;
        let spec = &spec;
        self.ops_sync();
        let old_pool_names: Vec<String> = (0..self.pools.len()).map(|i| self.pool_name(i)).collect();
        let old_by_name: HashMap<String, usize> =
            self.listeners.iter().enumerate().map(|(i, l)| (l.spec.name.clone(), i)).collect();
        let old_lid: HashMap<usize, ListenerId> = self.by_listener_id.iter().map(|(lid, &i)| (i, *lid)).collect();
        // ----- point of no return -----
        // Old listeners not continued by a new one (same name and address) stop accepting.
        for (&i, &lid) in &old_lid {
            let continued = keep_lid.contains(&Some(lid));
            if !continued {
                let _ = engine.unlisten(lid, now);
                if let Some(l) = self.listeners.get(i) {
                    tracing::info!(listener = %l.spec.name, listen = %l.spec.listen, "listener closed by reload");
                }
            }
        }
        for (k, l) in spec.listeners.iter().enumerate() {
            if keep_lid.get(k).is_some_and(Option::is_none) {
                match engine.listen(l.listen) {
                    Ok(lid) => {
                        if let Some(slot) = keep_lid.get_mut(k) {
                            *slot = Some(lid);
                        }
                    }
                    Err(e) => {
                        tracing::error!(listener = %l.name, listen = %l.listen, error = %e, "reload: re-opening a listener failed")
                    }
                }
            }
        }

        // Servers: the new flat list, then removed ones that still have sessions.
        let old_servers = std::mem::take(&mut self.servers);
        let mut old_stats: Vec<Option<ServerStats>> =
            std::mem::take(&mut self.stats.servers).into_iter().map(Some).collect();
        let mut old_ops: Vec<Option<ServerOps>> = std::mem::take(&mut self.ops.servers).into_iter().map(Some).collect();
        let key_of = |st: &Option<ServerStats>, s: &super::ServerSpec| {
            (st.as_ref().map(|x| x.pool.clone()).unwrap_or_default(), s.addr)
        };
        let old_keys: Vec<(String, SocketAddr)> =
            old_servers.iter().enumerate().map(|(i, s)| key_of(old_stats.get(i).unwrap_or(&None), s)).collect();
        let mut remap: Vec<Option<usize>> = vec![None; old_servers.len()];
        let mut pools = Vec::with_capacity(spec.pools.len());
        for (pool, balancer) in spec.pools.iter().zip(balancers) {
            pools.push(PoolState {
                first: self.servers.len(),
                balancer,
                proxy_protocol: pool.proxy_protocol,
                nodelay: pool.nodelay,
                keepalive: pool.keepalive,
                shared: PoolShared::lookup(&self.shared, &pool.name, pool.servers.iter().map(|s| s.addr)),
                queue: super::queue::PoolQueue::new(pool),
            });
            for s in &pool.servers {
                let flat = self.servers.len();
                let old = old_keys.iter().position(|(p, a)| *p == pool.name && *a == s.addr);
                let stats = old.and_then(|o| old_stats.get_mut(o).and_then(Option::take)).unwrap_or_else(|| {
                    ServerStats { pool: pool.name.clone(), addr: Some(s.addr), ..ServerStats::default() }
                });
                let sops = old.and_then(|o| old_ops.get_mut(o).and_then(Option::take)).unwrap_or_else(|| ServerOps {
                    admin: AdminState::Enabled,
                    health: ServerHealth::new(&pool.name, s.addr, &self.shared),
                });
                if let Some(o) = old {
                    if let Some(r) = remap.get_mut(o) {
                        *r = Some(flat);
                    }
                }
                self.servers.push(*s);
                self.stats.servers.push(stats);
                self.ops.servers.push(sops);
            }
        }
        let configured = self.servers.len();
        for (o, s) in old_servers.iter().enumerate() {
            if remap.get(o).is_some_and(Option::is_some) {
                continue;
            }
            let stats = old_stats.get_mut(o).and_then(Option::take);
            let mut sops = old_ops.get_mut(o).and_then(Option::take);
            if let Some(so) = sops.as_mut() {
                so.health.stop(engine, now);
            }
            let busy = stats.as_ref().is_some_and(|st| st.active > 0);
            if !busy {
                continue;
            }
            if let (Some(st), Some(so)) = (stats, sops) {
                tracing::info!(pool = %st.pool, server = %s.addr, sessions = st.active, "server removed by reload: its sessions drain");
                if let Some(r) = remap.get_mut(o) {
                    *r = Some(self.servers.len());
                }
                self.servers.push(*s);
                self.stats.servers.push(st);
                self.ops.servers.push(so);
            }
        }
        self.pools = pools;
        self.ops.configured = Some(configured);

        // Listeners: the new list, then removed ones that still have sessions.
        let old_listeners = std::mem::take(&mut self.listeners);
        let mut old_lstats: Vec<Option<ListenerStats>> =
            std::mem::take(&mut self.stats.listeners).into_iter().map(Some).collect();
        let mut lremap: Vec<Option<usize>> = vec![None; old_listeners.len()];
        self.by_listener_id.clear();
        for (k, l) in spec.listeners.iter().enumerate() {
            let idx = self.listeners.len();
            let old = old_by_name.get(&l.name).copied();
            let mut st = old
                .and_then(|o| old_lstats.get_mut(o).and_then(Option::take))
                .unwrap_or_else(|| ListenerStats { name: l.name.clone(), ..ListenerStats::default() });
            st.pool = spec.pools.get(l.pool).map(|p| p.name.clone()).unwrap_or_default();
            if let Some(o) = old {
                if let Some(r) = lremap.get_mut(o) {
                    *r = Some(idx);
                }
            }
            if let Some(Some(lid)) = keep_lid.get(k) {
                self.by_listener_id.insert(*lid, idx);
            }
            // Same name, same counter: its sessions on every lcore stay counted.
            self.listeners.push(ListenerState { spec: l.clone(), sessions: self.shared.listener(&l.name) });
            self.stats.listeners.push(st);
        }
        for (o, l) in old_listeners.into_iter().enumerate() {
            if lremap.get(o).is_some_and(Option::is_some) {
                continue;
            }
            let Some(st) = old_lstats.get_mut(o).and_then(Option::take) else { continue };
            if st.active == 0 {
                continue;
            }
            // Its sessions keep their timeouts; a pool that is gone cannot be connected to.
            let mut spec_l = l.spec;
            spec_l.pool = old_pool_names
                .get(spec_l.pool)
                .and_then(|n| spec.pools.iter().position(|p| p.name == *n))
                .unwrap_or(usize::MAX);
            if let Some(r) = lremap.get_mut(o) {
                *r = Some(self.listeners.len());
            }
            self.listeners.push(ListenerState { spec: spec_l, sessions: l.sessions });
            self.stats.listeners.push(st);
        }

        // Sessions follow their listener and server to their new indices.
        for s in self.sessions.values_mut() {
            s.listener = lremap.get(s.listener).copied().flatten().unwrap_or(usize::MAX);
            s.server = s.server.and_then(|f| remap.get(f).copied().flatten());
            // Pool-local indices of servers already tried mean nothing in the new pools.
            s.tried.clear();
        }
        // Waiting sessions join their (new) pool's queue; timers follow the new timeouts.
        self.requeue_all();
        self.rearm_all(now);
        self.ops.access_log = ops.access_log;
        // A pool whose checks were switched off forgets their verdicts.
        for (pi, pool) in self.pools.iter().enumerate() {
            let checked = ops.pools.get(pi).is_some_and(|p| p.check.is_some());
            if checked {
                continue;
            }
            for flat in pool.first..pool.first + pool.balancer.backends().len() {
                if let Some(so) = self.ops.servers.get_mut(flat) {
                    so.health.reset_checks(engine, now);
                }
            }
        }
        self.ops.spec = ops;
        // Counters of listeners, servers and pools no lcore uses any more.
        self.shared.prune();
        tracing::info!(
            listeners = spec.listeners.len(),
            pools = spec.pools.len(),
            servers = configured,
            draining_servers = self.servers.len() - configured,
            sessions = self.sessions.len(),
            "proxy configuration reloaded"
        );
    }
}
