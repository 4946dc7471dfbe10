//! The proxy's side of the lcore command queue: its commands (reload in two phases, server
//! admin state and weight, kills, the admin API's view) and their views, run on the lcore
//! by [`Controlled::execute`]. The queue itself ([`crate::command`]) is generic and knows
//! nothing of the proxy; the lcore gives it the proxy as its application.

use std::net::SocketAddr;
use std::sync::mpsc::SyncSender;

use crate::command::{Controlled, LcoreContext};
use crate::tcp::{Engine, Payload};
use crate::time::{Duration, Instant};

use super::{OpsSpec, Proxy, ProxySpec, Side};

/// Sessions one [`ProxyCommand::Show`] lists at most per lcore (a page of the admin API's
/// `show connections`; each session has one or two connections).
pub const MAX_SESSIONS_PER_PAGE: usize = 1000;

/// Which sessions [`ProxyCommand::Show`] lists: at most `limit` (clamped to 1..=
/// [`MAX_SESSIONS_PER_PAGE`]) in session id order, starting after `after`, so that a long
/// list is read page by page ([`LcoreView::more`] says whether it goes on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnPage {
    /// List only sessions with a greater id (`None`: from the first).
    pub after: Option<u64>,
    /// Sessions listed at most.
    pub limit: usize,
}

impl ConnPage {
    /// The first page of the largest size.
    pub const FIRST: ConnPage = ConnPage { after: None, limit: MAX_SESSIONS_PER_PAGE };

    /// `limit` as the lcore applies it.
    pub fn clamped_limit(&self) -> usize {
        self.limit.clamp(1, MAX_SESSIONS_PER_PAGE)
    }
}

/// The session ids on `page` of `ids` (any order): the smallest `page.clamped_limit()`
/// greater than `page.after`, sorted; `true` when more such ids exist beyond them.
/// Linear in the sessions (a selection, not a sort of all of them).
pub(super) fn page_ids(ids: impl Iterator<Item = u64>, page: ConnPage) -> (Vec<u64>, bool) {
    let limit = page.clamped_limit();
    let mut ids: Vec<u64> = ids.filter(|&id| page.after.is_none_or(|a| id > a)).collect();
    let more = ids.len() > limit;
    if more {
        ids.select_nth_unstable(limit);
        ids.truncate(limit);
    }
    ids.sort_unstable();
    (ids, more)
}

/// The control plane's end of an lcore queue that serves the proxy.
pub type ProxyHandle = crate::command::Handle<ProxyCommand>;

/// What the proxy of an lcore is asked to do.
#[derive(Debug)]
pub enum ProxyCommand {
    /// First half of a reload: check a new proxy configuration and get it ready
    /// ([`Proxy::prepare_reload`]); nothing changes for traffic. The reply is
    /// `Err(reason)` when the lcore refused it (also while it drains). The control plane
    /// then sends [`ProxyCommand::CommitReload`] to every lcore if all prepared, else
    /// [`ProxyCommand::AbortReload`]: a reload applies everywhere or nowhere.
    PrepareReload {
        /// Listeners and pools.
        spec: ProxySpec,
        /// Health checks and access log.
        ops: OpsSpec,
        /// Where the result goes.
        reply: SyncSender<Result<(), String>>,
    },
    /// Apply the prepared reload to new connections (established sessions keep flowing; a
    /// removed server's sessions drain).
    CommitReload,
    /// Drop the prepared reload (another lcore refused it or did not answer in time).
    AbortReload,
    /// Health checks and access log for the configuration started with (no reply).
    Configure(OpsSpec),
    /// Set a server's admin state. `Err` names what was not found.
    SetServer {
        /// The pool's name.
        pool: String,
        /// The server.
        addr: SocketAddr,
        /// Drain, maint or enable.
        state: AdminState,
        /// Where the result goes.
        reply: SyncSender<Result<(), String>>,
    },
    /// Set a server's weight until the next reload (0: no new sessions). `Err` names what
    /// was not found.
    SetWeight {
        /// The pool's name.
        pool: String,
        /// The server.
        addr: SocketAddr,
        /// The new weight.
        weight: u32,
        /// Where the result goes.
        reply: SyncSender<Result<(), String>>,
    },
    /// Reset sessions now (the access log says `killed`); the reply is how many.
    Kill {
        /// Which.
        target: KillTarget,
        /// Where the count goes.
        reply: SyncSender<usize>,
    },
    /// Report listeners, servers and (when `connections`) a page of sessions.
    Show {
        /// Include per-connection detail of these sessions.
        connections: Option<ConnPage>,
        /// Where the view goes.
        reply: SyncSender<LcoreView>,
    },
}

/// An operator's wish for one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AdminState {
    /// Receives new sessions (when healthy).
    #[default]
    Enabled,
    /// Receives no new sessions; its established sessions continue.
    Drain,
    /// Maintenance: as `Drain`, and its health checks pause (HAProxy `MAINT`).
    Maint,
}

impl AdminState {
    /// Every state, in the order metrics list them.
    pub const ALL: [AdminState; 3] = [AdminState::Enabled, AdminState::Drain, AdminState::Maint];

    /// `enabled`, `drain` or `maint`.
    pub fn name(self) -> &'static str {
        match self {
            AdminState::Enabled => "enabled",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }
}

/// Sessions an operator resets ([`ProxyCommand::Kill`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KillTarget {
    /// Every session connected or connecting to this server (HAProxy `shutdown sessions
    /// server`).
    Server {
        /// The pool's name.
        pool: String,
        /// The server.
        addr: SocketAddr,
    },
    /// One session of this lcore (the id `show connections` prints).
    Session(u64),
}

/// One listener as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerView {
    /// Name.
    pub name: String,
    /// Address.
    pub listen: SocketAddr,
    /// Its pool's name.
    pub pool: String,
    /// Accepting (false: closed by drain, or removed by a reload with sessions left).
    pub open: bool,
    /// Sessions open.
    pub active: u64,
    /// Sessions started.
    pub total: u64,
}

/// Health of a server as its checks see it (one verdict for every lcore; passive
/// ejection is reported beside it, per lcore: [`ServerView::ejected`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// No checks, or they pass (`rise` in a row after a fall).
    Up,
    /// Failed `fall` checks in a row.
    Down,
}

impl HealthState {
    /// `up` or `down`.
    pub fn name(self) -> &'static str {
        match self {
            HealthState::Up => "up",
            HealthState::Down => "down",
        }
    }
}

/// One server as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerView {
    /// Its pool.
    pub pool: String,
    /// Address.
    pub addr: SocketAddr,
    /// Weight.
    pub weight: u32,
    /// Operator state.
    pub admin: AdminState,
    /// The checks' verdict: one for the process, the same in every lcore's view.
    pub health: HealthState,
    /// This lcore's passive ejection holds it out now.
    pub ejected: bool,
    /// This lcore runs its active checks (one lcore per server).
    pub checking: bool,
    /// Still in the configuration (false: removed by a reload, its sessions draining).
    pub configured: bool,
    /// Sessions connected or connecting to it.
    pub active: u64,
    /// Connection attempts.
    pub attempts: u64,
    /// Attempts that failed.
    pub failed: u64,
}

/// One TCP connection of a proxy session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnView {
    /// The session.
    pub session: u64,
    /// Its listener's name.
    pub listener: String,
    /// `client` or `backend`.
    pub side: &'static str,
    /// Our address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// TCP state (RFC 9293 §3.3.2 names).
    pub state: String,
    /// Congestion window, bytes.
    pub cwnd: u32,
    /// Smoothed RTT, once measured.
    pub srtt: Option<Duration>,
    /// Payload bytes received in order.
    pub bytes_received: u64,
    /// Payload bytes the peer acknowledged.
    pub bytes_acked: u64,
}

/// What one lcore reports for [`ProxyCommand::Show`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LcoreView {
    /// The lcore.
    pub lcore: u32,
    /// Draining (SIGTERM).
    pub draining: bool,
    /// Proxy listeners.
    pub listeners: Vec<ListenerView>,
    /// Servers of every pool.
    pub servers: Vec<ServerView>,
    /// Sessions open.
    pub sessions: u64,
    /// The connections of the sessions of the page asked for ([`ConnPage`]).
    pub connections: Vec<ConnView>,
    /// Sessions after the page's last exist (the list was cut at the page's limit).
    pub more: bool,
}

impl<P: Payload> Controlled<P> for Proxy<P> {
    type Command = ProxyCommand;

    fn execute(&mut self, engine: &mut Engine<P>, cmd: ProxyCommand, cx: &LcoreContext, now: Instant) {
        let lcore = cx.lcore;
        match cmd {
            ProxyCommand::PrepareReload { spec, ops, reply } => {
                if let Some(stale) = self.ops.prepared.take() {
                    self.abort_reload(engine, stale, now);
                }
                let result = if cx.draining {
                    Err("draining: reload refused".to_string())
                } else {
                    match self.prepare_reload(engine, spec, ops, now) {
                        Ok(p) => {
                            self.ops.prepared = Some(p);
                            Ok(())
                        }
                        Err(e) => Err(e.to_string()),
                    }
                };
                if let Err(e) = &result {
                    tracing::warn!(lcore, error = %e, "reload refused by the lcore");
                }
                let _ = reply.try_send(result);
            }
            ProxyCommand::CommitReload => match self.ops.prepared.take() {
                Some(p) => {
                    self.commit_reload(engine, p, now);
                    tracing::info!(lcore, "reload applied");
                }
                None => tracing::warn!(lcore, "reload commit without a prepared reload: ignored"),
            },
            ProxyCommand::AbortReload => {
                if let Some(p) = self.ops.prepared.take() {
                    self.abort_reload(engine, p, now);
                    tracing::info!(lcore, "reload rolled back");
                }
            }
            ProxyCommand::Configure(ops) => self.configure(ops, now),
            ProxyCommand::SetServer { pool, addr, state, reply } => {
                let _ = reply.try_send(self.set_admin_state(&pool, addr, state, now));
            }
            ProxyCommand::SetWeight { pool, addr, weight, reply } => {
                let _ = reply.try_send(self.set_weight(&pool, addr, weight));
            }
            ProxyCommand::Kill { target, reply } => {
                let n = self.kill(engine, &target, now);
                if n > 0 {
                    tracing::warn!(lcore, sessions = n, target = ?target, "sessions killed by the operator");
                }
                let _ = reply.try_send(n);
            }
            ProxyCommand::Show { connections, reply } => {
                let mut view = self.view(engine, connections, now);
                view.lcore = lcore;
                view.draining = cx.draining;
                let _ = reply.try_send(view);
            }
        }
    }

    fn stop_accepting(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        self.close_listeners(engine, now)
    }

    fn sessions(&self) -> usize {
        self.session_count()
    }

    fn reset_sessions(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        self.reset_all(engine, now)
    }
}

impl<P: Payload> Proxy<P> {
    /// The admin API's view: listeners, servers and, when `page` is given, the connections
    /// of the sessions on that page (session id order; `more` when sessions follow it).
    pub fn view(&self, engine: &Engine<P>, page: Option<ConnPage>, now: Instant) -> LcoreView {
        let open: Vec<usize> = self.by_listener_id.values().copied().collect();
        let listeners = self
            .listeners
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let st = self.stats.listeners.get(i);
                ListenerView {
                    name: l.spec.name.clone(),
                    listen: l.spec.listen,
                    pool: self.pool_name(l.spec.pool),
                    open: open.contains(&i),
                    active: st.map(|s| s.active).unwrap_or(0),
                    total: st.map(|s| s.total).unwrap_or(0),
                }
            })
            .collect();
        let configured = self.ops.configured.unwrap_or(self.servers.len());
        let servers = self
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let st = self.stats.servers.get(i);
                let ops = self.ops.servers.get(i);
                ServerView {
                    pool: st.map(|s| s.pool.clone()).unwrap_or_default(),
                    addr: s.addr,
                    weight: s.weight,
                    admin: ops.map(|o| o.admin).unwrap_or(AdminState::Enabled),
                    health: ops.map(|o| o.health.state()).unwrap_or(HealthState::Up),
                    ejected: ops.is_some_and(|o| o.health.ejected(now)),
                    checking: i < configured && self.checks_here(i),
                    configured: i < configured,
                    active: st.map(|s| s.active).unwrap_or(0),
                    attempts: st.map(|s| s.attempts).unwrap_or(0),
                    failed: st.map(|s| s.connect_refused + s.connect_timeout + s.connect_other).unwrap_or(0),
                }
            })
            .collect();
        let mut conns = Vec::new();
        let mut more = false;
        if let Some(page) = page {
            let (ids, cut) = page_ids(self.sessions.keys().copied(), page);
            more = cut;
            for sid in ids {
                let Some(s) = self.sessions.get(&sid) else { continue };
                let listener = self.listeners.get(s.listener).map(|l| l.spec.name.clone()).unwrap_or_default();
                let sides = [(Side::Client, Some(s.client), s.client_open), (Side::Backend, s.backend, s.backend_open)];
                for (side, id, open) in sides {
                    let (Some(id), true) = (id, open) else { continue };
                    let (Ok(info), Ok((local, remote))) = (engine.info(id), engine.addresses(id)) else { continue };
                    conns.push(ConnView {
                        session: sid,
                        listener: listener.clone(),
                        side: match side {
                            Side::Client => "client",
                            Side::Backend => "backend",
                        },
                        local,
                        remote,
                        state: info.state.to_string(),
                        cwnd: info.cwnd,
                        srtt: info.srtt,
                        bytes_received: info.bytes_received,
                        bytes_acked: info.bytes_acked,
                    });
                }
            }
        }
        LcoreView {
            lcore: 0,
            draining: false,
            listeners,
            servers,
            sessions: self.sessions.len() as u64,
            connections: conns,
            more,
        }
    }

}

#[cfg(test)]
mod page_tests {
    use proptest::prelude::*;

    use super::{page_ids, ConnPage};

    proptest! {
        /// The selection equals sorting every id and taking the page.
        #[test]
        fn a_page_is_the_next_ids_in_order(
            ids in proptest::collection::hash_set(0u64..5000, 0..300),
            after in proptest::option::of(0u64..5000),
            limit in 0usize..400,
        ) {
            let page = ConnPage { after, limit };
            let (got, more) = page_ids(ids.iter().copied(), page);
            let mut all: Vec<u64> = ids.into_iter().filter(|&i| after.is_none_or(|a| i > a)).collect();
            all.sort_unstable();
            let n = all.len().min(limit.max(1));
            prop_assert_eq!(&got[..], &all[..n]);
            prop_assert_eq!(more, all.len() > n);
        }
    }
}
