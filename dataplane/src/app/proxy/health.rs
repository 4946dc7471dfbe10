//! Health of the proxy's servers, judged from the data plane itself:
//!
//! * **Active checks** (per pool, optional): every `interval` each server of the pool gets
//!   a TCP connect from the lcore's own engine (from the server's source address), which
//!   succeeds once the handshake completes within `timeout` — and, when configured, once
//!   `send` was written and the reply starts with `expect`. `fall` consecutive failures
//!   take an up server down, `rise` consecutive successes bring it back (HAProxy's
//!   semantics). Servers start up. The check connection is then closed (FIN).
//! * **Passive ejection** (per pool, optional): `passive_failures` consecutive failed
//!   connection attempts of real sessions (refused, timed out) eject the server for
//!   `recovery`; a successful connect resets the streak.
//!
//! A server that is down, ejected or drained by the operator receives no new sessions
//! ([`super::reload::Ops::available`]); its established sessions continue.
//!
//! Passive ejection reads the server's counters ([`super::ServerStats`]) between polls
//! instead of hooking the session code: the streak is approximate within one poll (a
//! failure and a success in the same poll count as a success).

use std::net::SocketAddrV4;

use crate::control::HealthState;
use crate::tcp::{ConnId, Engine, Payload, State, WriteFlags};
use crate::time::{Duration, Instant};

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

/// Health counters of one server, published with the proxy's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackendHealth {
    /// The pool's name.
    pub pool: String,
    /// The server.
    pub addr: Option<SocketAddrV4>,
    /// Receives new sessions as far as health goes (checks pass, not ejected).
    pub up: bool,
    /// Active checks that passed.
    pub checks_passed: u64,
    /// Active checks that failed.
    pub checks_failed: u64,
    /// Times the checks took it down.
    pub went_down: u64,
    /// Times passive ejection took it out.
    pub ejections: u64,
    /// Its weight now (configured, or set by `server weight` until the next reload).
    pub weight: u32,
    /// The operator's state (`server drain|maint|enable`).
    pub admin: crate::control::AdminState,
}

/// One check in flight.
#[derive(Debug)]
struct Inflight {
    conn: ConnId,
    deadline: Instant,
    sent: bool,
    got: Vec<u8>,
}

/// The health of one server on one lcore.
#[derive(Debug)]
pub(super) struct ServerHealth {
    /// The checks' verdict.
    check_up: bool,
    successes: u32,
    failures: u32,
    next_check: Option<Instant>,
    inflight: Option<Inflight>,
    ejected_until: Option<Instant>,
    streak: u32,
    seen_failed: u64,
    seen_connected: u64,
    pub(super) counters: BackendHealth,
}

impl ServerHealth {
    pub(super) fn new(pool: &str, addr: SocketAddrV4) -> Self {
        ServerHealth {
            check_up: true,
            successes: 0,
            failures: 0,
            next_check: None,
            inflight: None,
            ejected_until: None,
            streak: 0,
            seen_failed: 0,
            seen_connected: 0,
            counters: BackendHealth { pool: pool.to_string(), addr: Some(addr), up: true, ..BackendHealth::default() },
        }
    }

    /// Whether health lets the server take new sessions at `now`.
    pub(super) fn up(&self, now: Instant) -> bool {
        self.check_up && self.ejected_until.is_none_or(|t| now >= t)
    }

    pub(super) fn state(&self, now: Instant) -> HealthState {
        if self.up(now) {
            HealthState::Up
        } else {
            HealthState::Down
        }
    }

    /// Forgets the checks' verdict (the pool's checks were switched off).
    pub(super) fn reset_checks<P: Payload>(&mut self, engine: &mut Engine<P>, now: Instant) {
        if let Some(f) = self.inflight.take() {
            let _ = engine.abort(f.conn, now);
        }
        self.check_up = true;
        self.successes = 0;
        self.failures = 0;
        self.next_check = None;
    }

    /// Aborts a check in flight (the server left the configuration).
    pub(super) fn stop<P: Payload>(&mut self, engine: &mut Engine<P>, now: Instant) {
        if let Some(f) = self.inflight.take() {
            let _ = engine.abort(f.conn, now);
        }
    }

    /// Passive ejection from the server's session counters; returns whether it changed.
    pub(super) fn passive(
        &mut self,
        spec: &PoolHealth,
        stats: &ServerStats,
        server: &ServerSpec,
        now: Instant,
    ) -> bool {
        let failed = stats.connect_refused + stats.connect_timeout + stats.connect_other;
        let (new_failed, new_ok) =
            (failed.saturating_sub(self.seen_failed), stats.connected.saturating_sub(self.seen_connected));
        self.seen_failed = failed;
        self.seen_connected = stats.connected;
        if self.ejected_until.is_some_and(|t| now >= t) {
            self.ejected_until = None;
            self.streak = 0;
            tracing::info!(pool = %self.counters.pool, server = %server.addr, "server back from passive ejection");
        }
        if spec.passive_failures == 0 {
            return false;
        }
        if new_ok > 0 {
            self.streak = 0;
            return false;
        }
        self.streak = self.streak.saturating_add(u32::try_from(new_failed).unwrap_or(u32::MAX));
        if self.streak >= spec.passive_failures && self.ejected_until.is_none() {
            self.ejected_until = Some(now + spec.passive_recovery);
            self.counters.ejections += 1;
            self.streak = 0;
            tracing::warn!(
                pool = %self.counters.pool,
                server = %server.addr,
                failures = spec.passive_failures,
                recovery_ms = spec.passive_recovery.as_millis() as u64,
                "server ejected after consecutive failed connects"
            );
            return true;
        }
        false
    }

    /// Runs the active check: starts one when due, advances the one in flight. Returns
    /// whether anything happened.
    pub(super) fn poll_check<P: Payload>(
        &mut self,
        engine: &mut Engine<P>,
        spec: &CheckSpec,
        server: &ServerSpec,
        now: Instant,
        make: &mut dyn FnMut(&[u8]) -> Option<P>,
    ) -> bool {
        if let Some(f) = self.inflight.as_mut() {
            let Some(ok) = progress(engine, spec, f, now, make) else { return false };
            let conn = f.conn;
            self.inflight = None;
            if ok {
                let _ = engine.close(conn, now);
            } else {
                let _ = engine.abort(conn, now);
            }
            self.verdict(ok, spec, server);
            return true;
        }
        let due = *self.next_check.get_or_insert(now);
        if now < due {
            return false;
        }
        self.next_check = Some(now + spec.interval);
        match engine.connect(server.local_ip, server.addr, now) {
            Ok(conn) => {
                self.inflight = Some(Inflight { conn, deadline: now + spec.timeout, sent: false, got: Vec::new() })
            }
            // No source port: counted as a failed check.
            Err(_) => self.verdict(false, spec, server),
        }
        true
    }

    fn verdict(&mut self, ok: bool, spec: &CheckSpec, server: &ServerSpec) {
        if ok {
            self.counters.checks_passed += 1;
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            if !self.check_up && self.successes >= spec.rise {
                self.check_up = true;
                tracing::info!(pool = %self.counters.pool, server = %server.addr, rise = spec.rise, "server up: checks pass");
            }
        } else {
            self.counters.checks_failed += 1;
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            if self.check_up && self.failures >= spec.fall {
                self.check_up = false;
                self.counters.went_down += 1;
                tracing::warn!(pool = %self.counters.pool, server = %server.addr, fall = spec.fall, "server down: checks fail");
            }
        }
    }
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
