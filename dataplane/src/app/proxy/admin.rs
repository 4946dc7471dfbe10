//! The proxy's side of the lcore command queue: its commands (reload in two phases, server
//! admin state and weight, kills, the admin API's view) and their views, run on the lcore
//! by [`Controlled::execute`]. The queue itself ([`crate::control`]) is generic and knows
//! nothing of the proxy; the lcore gives it the proxy as its application.

use std::net::SocketAddrV4;
use std::sync::mpsc::SyncSender;

use crate::control::{Controlled, LcoreContext};
use crate::tcp::{Engine, Payload};
use crate::time::{Duration, Instant};

use super::{OpsSpec, Proxy, ProxySpec, Side};

/// Connections listed per lcore at most by [`ProxyCommand::Show`] (the admin API's debug
/// view).
pub const MAX_CONNECTIONS_SHOWN: usize = 1000;

/// The control plane's end of an lcore queue that serves the proxy.
pub type ProxyHandle = crate::control::Handle<ProxyCommand>;

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
        addr: SocketAddrV4,
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
        addr: SocketAddrV4,
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
    /// Report listeners, servers and (when `connections`) sessions.
    Show {
        /// Include per-connection detail.
        connections: bool,
        /// Where the view goes.
        reply: SyncSender<LcoreView>,
    },
}

/// An operator's wish for one server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Receives new sessions (when healthy).
    Enabled,
    /// Receives no new sessions; its established sessions continue.
    Drain,
    /// Maintenance: as `Drain`, and its health checks pause (HAProxy `MAINT`).
    Maint,
}

impl AdminState {
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
        addr: SocketAddrV4,
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
    pub listen: SocketAddrV4,
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
    pub addr: SocketAddrV4,
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
    pub local: SocketAddrV4,
    /// The peer's address.
    pub remote: SocketAddrV4,
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
    /// Connections (at most [`MAX_CONNECTIONS_SHOWN`]), when asked for.
    pub connections: Vec<ConnView>,
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
    /// The admin API's view: listeners, servers and, when `connections`, every session's
    /// connections (at most [`MAX_CONNECTIONS_SHOWN`]).
    pub fn view(&self, engine: &Engine<P>, connections: bool, now: Instant) -> LcoreView {
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
        if connections {
            let mut ids: Vec<u64> = self.sessions.keys().copied().collect();
            ids.sort_unstable();
            'outer: for sid in ids {
                let Some(s) = self.sessions.get(&sid) else { continue };
                let listener = self.listeners.get(s.listener).map(|l| l.spec.name.clone()).unwrap_or_default();
                let sides = [(Side::Client, Some(s.client), s.client_open), (Side::Backend, s.backend, s.backend_open)];
                for (side, id, open) in sides {
                    if conns.len() >= MAX_CONNECTIONS_SHOWN {
                        break 'outer;
                    }
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
        }
    }

}
