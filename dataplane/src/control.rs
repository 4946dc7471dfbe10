//! Commands from the control plane to an lcore: drain, reload, server admin state, state
//! queries for the admin API, packet capture.
//!
//! Each lcore has one bounded queue ([`channel`]: `std::sync::mpsc::sync_channel`, whose
//! `try_recv` takes no lock). The control plane sends with `try_send` (a full queue is an
//! error for the operator, never a wait); the lcore takes at most [`COMMANDS_PER_POLL`]
//! commands per loop iteration in [`poll`] and never blocks: answers go back on a reply
//! channel the command carries, with `try_send`. Drain progress is published through
//! atomics ([`LcoreStatus`]).
//!
//! Sans-IO like the rest of the core: the caller hands in `now`.

use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

use crate::app::proxy::{OpsSpec, PreparedReload, ProxySpec};
use crate::app::Apps;
use crate::tcp::{Engine, Payload};
use crate::time::{Duration, Instant};

/// Commands one lcore's queue holds at most.
pub const QUEUE_DEPTH: usize = 16;
/// Commands an lcore takes per loop iteration at most.
pub const COMMANDS_PER_POLL: usize = 4;
/// Connections listed per lcore at most by [`Command::Show`] (the admin API's debug view).
pub const MAX_CONNECTIONS_SHOWN: usize = 1000;

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
    /// `enabled` or `drain`.
    pub fn name(self) -> &'static str {
        match self {
            AdminState::Enabled => "enabled",
            AdminState::Drain => "drain",
            AdminState::Maint => "maint",
        }
    }
}

/// What an lcore is asked to do.
#[derive(Debug)]
pub enum Command {
    /// Stop accepting (close every proxy listener), let established sessions finish for
    /// `timeout`, then reset the rest. Progress: [`LcoreStatus`].
    Drain {
        /// How long sessions may take.
        timeout: Duration,
    },
    /// First half of a reload: check a new proxy configuration and get it ready
    /// ([`crate::app::proxy::Proxy::prepare_reload`]); nothing changes for traffic. The
    /// reply is `Err(reason)` when the lcore refused it. The control plane then sends
    /// [`Command::CommitReload`] to every lcore if all prepared, else
    /// [`Command::AbortReload`]: a reload applies everywhere or nowhere.
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
        /// Drain or enable.
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
    /// Start (`Some`) or stop (`None`) capturing this lcore's frames ([`crate::capture`]).
    Capture(Option<crate::capture::Tap>),
    /// Test-only: the lcore sleeps this long in one iteration (a stuck loop for watchdog
    /// tests; reachable only through `strait run --debug-stall-lcore-after`).
    DebugStall {
        /// How long.
        duration: std::time::Duration,
    },
}

/// Sessions an operator resets ([`Command::Kill`]).
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

/// What one lcore reports for [`Command::Show`].
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

/// Drain progress of one lcore, read by the control plane.
#[derive(Debug, Default)]
pub struct LcoreStatus {
    /// A drain was started.
    pub draining: AtomicBool,
    /// Draining and no proxy session is left.
    pub drained: AtomicBool,
    /// Sessions reset because the drain deadline passed.
    pub drain_resets: AtomicU64,
}

/// The control plane's end of one lcore's queue.
#[derive(Debug, Clone)]
pub struct Handle {
    lcore: u32,
    tx: SyncSender<Command>,
    status: Arc<LcoreStatus>,
}

/// Why a command did not reach an lcore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Its queue is full (the lcore is slow or stuck).
    #[error("lcore {0}: command queue full")]
    Full(u32),
    /// The lcore loop has ended.
    #[error("lcore {0}: not running")]
    Gone(u32),
}

impl Handle {
    /// The lcore.
    pub fn lcore(&self) -> u32 {
        self.lcore
    }

    /// Queues `cmd` without waiting.
    pub fn send(&self, cmd: Command) -> Result<(), SendError> {
        self.tx.try_send(cmd).map_err(|e| match e {
            TrySendError::Full(_) => SendError::Full(self.lcore),
            TrySendError::Disconnected(_) => SendError::Gone(self.lcore),
        })
    }

    /// Drain progress.
    pub fn status(&self) -> &LcoreStatus {
        &self.status
    }
}

/// The lcore's end of its queue, with the drain it is running.
#[derive(Debug)]
pub struct Inbox {
    lcore: u32,
    rx: Receiver<Command>,
    status: Arc<LcoreStatus>,
    drain_deadline: Option<Instant>,
    drain_reset_done: bool,
    /// The capture session this lcore feeds, if any.
    capture: Option<crate::capture::Tap>,
    /// A reload prepared and waiting for commit or abort.
    prepared: Option<PreparedReload>,
}

impl Inbox {
    /// The capture session this lcore feeds (`None`: capture off).
    pub fn capture_mut(&mut self) -> Option<&mut crate::capture::Tap> {
        self.capture.as_mut()
    }
}

/// A queue for `lcore`.
pub fn channel(lcore: u32) -> (Handle, Inbox) {
    let (tx, rx) = sync_channel(QUEUE_DEPTH);
    let status = Arc::new(LcoreStatus::default());
    (
        Handle { lcore, tx, status: Arc::clone(&status) },
        Inbox {
            lcore,
            rx,
            status,
            drain_deadline: None,
            drain_reset_done: false,
            capture: None,
            prepared: None,
        },
    )
}

/// Runs the commands waiting for this lcore (at most [`COMMANDS_PER_POLL`]), the drain
/// deadline and the proxy's health checks (`make` builds a payload from bytes, for the
/// checks' `send`); returns how much work was done (0: idle).
pub fn poll<P: Payload>(
    inbox: &mut Inbox,
    engine: &mut Engine<P>,
    apps: &mut Apps<P>,
    now: Instant,
    make: &mut dyn FnMut(&[u8]) -> Option<P>,
) -> usize {
    let mut work = 0;
    for _ in 0..COMMANDS_PER_POLL {
        let Ok(cmd) = inbox.rx.try_recv() else { break };
        work += 1;
        execute(inbox, cmd, engine, apps, now);
    }
    work += apps.proxy_mut().poll_ops(engine, now, make);
    if let Some(deadline) = inbox.drain_deadline {
        let proxy = apps.proxy_mut();
        if !inbox.drain_reset_done && now >= deadline {
            inbox.drain_reset_done = true;
            let n = proxy.reset_all(engine, now);
            inbox.status.drain_resets.fetch_add(n as u64, Ordering::Relaxed);
            if n > 0 {
                tracing::warn!(lcore = inbox.lcore, sessions = n, "drain deadline passed: sessions reset");
                work += n;
            }
        }
        if proxy.session_count() == 0 && !inbox.status.drained.load(Ordering::Relaxed) {
            inbox.status.drained.store(true, Ordering::Relaxed);
            tracing::info!(lcore = inbox.lcore, "drained: no session left");
        }
    }
    work
}

fn execute<P: Payload>(inbox: &mut Inbox, cmd: Command, engine: &mut Engine<P>, apps: &mut Apps<P>, now: Instant) {
    let lcore = inbox.lcore;
    match cmd {
        Command::Drain { timeout } => {
            let closed = apps.proxy_mut().close_listeners(engine, now);
            inbox.drain_deadline = Some(now + timeout);
            inbox.status.draining.store(true, Ordering::Relaxed);
            tracing::info!(
                lcore,
                listeners_closed = closed,
                sessions = apps.proxy().session_count(),
                timeout_ms = timeout.as_millis() as u64,
                "draining: listeners closed"
            );
        }
        Command::PrepareReload { spec, ops, reply } => {
            if let Some(stale) = inbox.prepared.take() {
                apps.proxy_mut().abort_reload(engine, stale, now);
            }
            let result = if inbox.drain_deadline.is_some() {
                Err("draining: reload refused".to_string())
            } else {
                match apps.proxy_mut().prepare_reload(engine, spec, ops, now) {
                    Ok(p) => {
                        inbox.prepared = Some(p);
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
        Command::CommitReload => match inbox.prepared.take() {
            Some(p) => {
                apps.proxy_mut().commit_reload(engine, p, now);
                tracing::info!(lcore, "reload applied");
            }
            None => tracing::warn!(lcore, "reload commit without a prepared reload: ignored"),
        },
        Command::AbortReload => {
            if let Some(p) = inbox.prepared.take() {
                apps.proxy_mut().abort_reload(engine, p, now);
                tracing::info!(lcore, "reload rolled back");
            }
        }
        Command::Configure(ops) => apps.proxy_mut().configure(ops, now),
        Command::SetServer { pool, addr, state, reply } => {
            let result = apps.proxy_mut().set_admin_state(&pool, addr, state, now);
            let _ = reply.try_send(result);
        }
        Command::SetWeight { pool, addr, weight, reply } => {
            let result = apps.proxy_mut().set_weight(&pool, addr, weight);
            let _ = reply.try_send(result);
        }
        Command::Kill { target, reply } => {
            let n = apps.proxy_mut().kill(engine, &target, now);
            if n > 0 {
                tracing::warn!(lcore, sessions = n, target = ?target, "sessions killed by the operator");
            }
            let _ = reply.try_send(n);
        }
        Command::Show { connections, reply } => {
            let mut view = apps.proxy().view(engine, connections, now);
            view.lcore = lcore;
            view.draining = inbox.drain_deadline.is_some();
            let _ = reply.try_send(view);
        }
        Command::Capture(tap) => {
            tracing::info!(lcore, on = tap.is_some(), "packet capture");
            inbox.capture = tap;
        }
        Command::DebugStall { duration } => {
            tracing::warn!(lcore, ms = duration.as_millis() as u64, "debug: stalling this lcore on request");
            std::thread::sleep(duration);
        }
    }
}

#[cfg(test)]
mod tests;
