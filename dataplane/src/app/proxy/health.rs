//! Health of the proxy's servers, judged from the data plane itself:
//!
//! * **Active checks** (per pool, optional): every `interval` each server of the pool gets
//!   a TCP connect from one lcore's engine, the server's checker (`verdict.rs`: one
//!   lcore per server, so a server sees one check per interval however many lcores run),
//!   from the server's source address; it succeeds once the handshake completes within
//!   `timeout` — and, when configured, once `send` was written and the reply starts with
//!   `expect`. `fall` consecutive failures take an up server down, `rise` consecutive
//!   successes bring it back (HAProxy's semantics). Servers start up. The check
//!   connection is then closed (FIN). The verdict is shared: every lcore stops and
//!   resumes sending new sessions to the server at the same check.
//! * **Passive ejection** (per pool, optional): `passive_failures` consecutive failed
//!   connection attempts of real sessions on one lcore (refused, timed out) eject the
//!   server from that lcore for `recovery`; a successful connect resets the streak. It
//!   stays local (each lcore sees its own sessions fail), and is reported globally: the
//!   verdict counts the lcores ejecting the server now and the ejections so far.
//!
//! A server that is down, ejected (here) or drained by the operator receives no new
//! sessions ([`super::reload::OpsState::available`]); its established sessions continue.
//!
//! Passive ejection reads the server's counters ([`super::ServerStats`]) between polls
//! instead of hooking the session code: the streak is approximate within one poll (a
//! failure and a success in the same poll count as a success).

use std::net::SocketAddr;
use std::sync::Arc;

use crate::tcp::{ConnId, Engine, Payload, State, WriteFlags};
use crate::time::{Duration, Instant};

use super::admin::HealthState;
use super::shared::{Held, ProxyShared};
use super::verdict::{Transition, Verdict};
use super::{ServerSpec, ServerStats};

/// Active check settings of one pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Time between the starts of two checks of one server.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive successes that bring a down server up.
    pub rise: u32,
    /// Consecutive failures that take an up server down.
    pub fall: u32,
    /// Written once connected (empty: none).
    pub send: Vec<u8>,
    /// The reply must start with this (empty: connecting is enough).
    pub expect: Vec<u8>,
}

/// Health settings of one pool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PoolHealth {
    /// Active checks, if any.
    pub check: Option<CheckSpec>,
    /// Consecutive failed connects that eject a server (0: never).
    pub passive_failures: u32,
    /// How long an ejected server stays out.
    pub passive_recovery: Duration,
}

/// What the control plane sets besides listeners and pools (health and access log).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpsSpec {
    /// Per pool, in [`super::ProxySpec::pools`] order (missing: no checks).
    pub pools: Vec<PoolHealth>,
    /// Log one line per closed session (target `strait::access`).
    pub access_log: bool,
}

/// Health of one server for the whole process ([`super::ProxyShared::health`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendHealth {
    /// The pool's name.
    pub pool: String,
    /// The server.
    pub addr: Option<SocketAddr>,
    /// The active checks' verdict (always up without checks); passive ejection is
    /// separate ([`BackendHealth::ejected_lcores`]).
    pub up: bool,
    /// Active checks that passed.
    pub checks_passed: u64,
    /// Active checks that failed.
    pub checks_failed: u64,
    /// Times the checks took it down.
    pub went_down: u64,
    /// Times passive ejection took it out (on some lcore).
    pub ejections: u64,
    /// Lcores whose passive ejection holds it out now.
    pub ejected_lcores: u64,
    /// Its weight now (configured, or set by `server weight` until the next reload).
    pub weight: u32,
    /// The operator's state (`server drain|maint|enable`).
    pub admin: super::admin::AdminState,
}

/// One check in flight.
#[derive(Debug)]
struct Inflight {
    conn: ConnId,
    deadline: Instant,
    sent: bool,
    got: Vec<u8>,
}

/// The health of one server as one lcore holds it: the process's verdict (shared), the
/// check this lcore runs when it is the server's checker, and this lcore's passive
/// ejection.
#[derive(Debug)]
pub(super) struct ServerHealth {
    pool: String,
    addr: SocketAddr,
    /// The checks' verdict, one for every lcore (`verdict.rs`).
    verdict: Arc<Verdict>,
    next_check: Option<Instant>,
    inflight: Option<Inflight>,
    /// Ejected until then; the unit counts this lcore in the verdict's ejected lcores.
    ejected: Option<(Instant, Held)>,
    streak: u32,
    seen_failed: u64,
    seen_connected: u64,
}

impl ServerHealth {
    pub(super) fn new(pool: &str, addr: SocketAddr, shared: &ProxyShared) -> Self {
        ServerHealth {
            pool: pool.to_string(),
            addr,
            verdict: shared.verdict(pool, addr),
            next_check: None,
            inflight: None,
            ejected: None,
            streak: 0,
            seen_failed: 0,
            seen_connected: 0,
        }
    }

    /// Finds its verdict in `shared` (the proxy joined another registry).
    pub(super) fn rebind(&mut self, shared: &ProxyShared) {
        self.verdict = shared.verdict(&self.pool, self.addr);
        if self.ejected.is_some() {
            // The unit belonged to the old registry's verdict.
            let until = self.ejected.take().map(|(t, _)| t);
            self.ejected = until.map(|t| (t, self.verdict.eject()));
        }
    }

    /// Whether health lets the server take new sessions on this lcore at `now`: the
    /// checks' verdict and no passive ejection here.
    pub(super) fn up(&self, now: Instant) -> bool {
        self.verdict.up() && !self.ejected(now)
    }

    /// Publishes the server's weight and admin state as this lcore has them.
    pub(super) fn publish(&self, weight: u32, admin: super::admin::AdminState) {
        self.verdict.publish(weight, admin);
    }

    /// The server's health for the whole process.
    pub(super) fn snapshot(&self) -> BackendHealth {
        self.verdict.snapshot(&self.pool, self.addr)
    }

    /// Whether this lcore's passive ejection holds the server out at `now`.
    pub(super) fn ejected(&self, now: Instant) -> bool {
        self.ejected.as_ref().is_some_and(|(t, _)| now < *t)
    }

    /// The checks' verdict (the same on every lcore).
    pub(super) fn state(&self) -> HealthState {
        if self.verdict.up() {
            HealthState::Up
        } else {
            HealthState::Down
        }
    }

    /// Forgets the checks' verdict (the pool's checks were switched off).
    pub(super) fn reset_checks<P: Payload>(&mut self, engine: &mut Engine<P>, now: Instant) {
        self.stop(engine, now);
        self.verdict.reset();
        self.next_check = None;
    }

    /// Aborts a check in flight (the server left the configuration, or another lcore
    /// checks it now).
    pub(super) fn stop<P: Payload>(&mut self, engine: &mut Engine<P>, now: Instant) {
        if let Some(f) = self.inflight.take() {
            let _ = engine.abort(f.conn, now);
        }
    }

    /// Passive ejection from the server's session counters on this lcore; returns whether
    /// it changed.
    pub(super) fn passive(&mut self, spec: &PoolHealth, stats: &ServerStats, now: Instant) -> bool {
        let failed = stats.connect_refused + stats.connect_timeout + stats.connect_other;
        let (new_failed, new_ok) =
            (failed.saturating_sub(self.seen_failed), stats.connected.saturating_sub(self.seen_connected));
        self.seen_failed = failed;
        self.seen_connected = stats.connected;
        if self.ejected.as_ref().is_some_and(|(t, _)| now >= *t) {
            // Gives its unit of the ejected lcores back.
            self.ejected = None;
            self.streak = 0;
            tracing::info!(pool = %self.pool, server = %self.addr, "server back from passive ejection");
        }
        if spec.passive_failures == 0 {
            return false;
        }
        if new_ok > 0 {
            self.streak = 0;
            return false;
        }
        self.streak = self.streak.saturating_add(u32::try_from(new_failed).unwrap_or(u32::MAX));
        if self.streak >= spec.passive_failures && self.ejected.is_none() {
            self.ejected = Some((now + spec.passive_recovery, self.verdict.eject()));
            self.streak = 0;
            tracing::warn!(
                pool = %self.pool,
                server = %self.addr,
                failures = spec.passive_failures,
                recovery_ms = spec.passive_recovery.as_millis() as u64,
                ejected_lcores = self.verdict.ejected_lcores(),
                "server ejected after consecutive failed connects on this lcore"
            );
            return true;
        }
        false
    }

    /// Runs the active check on the server's checker: starts one when due, advances the
    /// one in flight. Returns whether anything happened and whether a check ended.
    pub(super) fn poll_check<P: Payload>(
        &mut self,
        engine: &mut Engine<P>,
        spec: &CheckSpec,
        server: &ServerSpec,
        now: Instant,
        make: &mut dyn FnMut(&[u8]) -> Option<P>,
    ) -> Polled {
        if let Some(f) = self.inflight.as_mut() {
            let Some(ok) = progress(engine, spec, f, now, make) else { return Polled::Idle };
            let conn = f.conn;
            self.inflight = None;
            if ok {
                let _ = engine.close(conn, now);
            } else {
                let _ = engine.abort(conn, now);
            }
            self.verdict(ok, spec);
            return Polled::Ended;
        }
        let due = *self.next_check.get_or_insert(now);
        if now < due {
            return Polled::Idle;
        }
        self.next_check = Some(now + spec.interval);
        match engine.connect(server.local_ip, server.addr, now) {
            Ok(conn) => {
                self.inflight = Some(Inflight { conn, deadline: now + spec.timeout, sent: false, got: Vec::new() });
                Polled::Started
            }
            // No source port: counted as a failed check.
            Err(_) => {
                self.verdict(false, spec);
                Polled::Ended
            }
        }
    }

    /// Not the checker (any more): no check runs here.
    pub(super) fn not_checker<P: Payload>(&mut self, engine: &mut Engine<P>, now: Instant) {
        self.stop(engine, now);
        self.next_check = None;
    }

    fn verdict(&mut self, ok: bool, spec: &CheckSpec) {
        match self.verdict.record(ok, spec.rise, spec.fall) {
            Transition::Rose => {
                tracing::info!(pool = %self.pool, server = %self.addr, rise = spec.rise, "server up: checks pass")
            }
            Transition::Fell => {
                tracing::warn!(pool = %self.pool, server = %self.addr, fall = spec.fall, "server down: checks fail")
            }
            Transition::None => {}
        }
    }
}

/// What [`ServerHealth::poll_check`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Polled {
    /// Nothing (not due, or still running).
    Idle,
    /// A check started (its connection opened).
    Started,
    /// A check ended with a result.
    Ended,
}

/// Advances one check: `Some(true)` passed, `Some(false)` failed, `None` still running.
fn progress<P: Payload>(
    engine: &mut Engine<P>,
    spec: &CheckSpec,
    f: &mut Inflight,
    now: Instant,
    make: &mut dyn FnMut(&[u8]) -> Option<P>,
) -> Option<bool> {
    let timed_out = now >= f.deadline;
    // Refused or reset: the engine reaped it.
    let Ok(info) = engine.info(f.conn) else { return Some(false) };
    match info.state {
        State::SynSent | State::SynReceived => return timed_out.then_some(false),
        State::Closed => return Some(false),
        _ => {}
    }
    if !spec.send.is_empty() && !f.sent {
        let Some(p) = make(&spec.send) else { return Some(false) };
        match engine.write(f.conn, p, WriteFlags::NONE, now) {
            Ok(n) if n == spec.send.len() => f.sent = true,
            _ => return Some(false),
        }
    }
    if spec.expect.is_empty() {
        return Some(true);
    }
    while f.got.len() < spec.expect.len() {
        match engine.read(f.conn, spec.expect.len() - f.got.len(), now) {
            Ok(Some(d)) if !d.is_empty() => {
                for c in d.chunks() {
                    f.got.extend_from_slice(c);
                }
            }
            Ok(_) => break,
            Err(_) => return Some(false),
        }
    }
    let n = f.got.len().min(spec.expect.len());
    if f.got.get(..n) != spec.expect.get(..n) {
        return Some(false);
    }
    if n == spec.expect.len() {
        return Some(true);
    }
    timed_out.then_some(false)
}
