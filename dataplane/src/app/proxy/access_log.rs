//! The access log: one line per proxy session as it ends, or per connection refused at
//! accept (target `strait::access`, when `[log] access` is on), with why it ended
//! ([`EndReason`]), who ended it, bytes each way and durations.

use std::net::SocketAddr;

use crate::tcp::Payload;
use crate::time::{Duration, Instant};

use super::Proxy;

/// Why a session ended, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Both sides closed normally.
    Closed,
    /// A reset or error on either side.
    Reset,
    /// No server could be connected.
    ConnectFailed,
    /// The idle timeout.
    Idle,
    /// Reset when the drain deadline passed (shutdown).
    DrainDeadline,
    /// Refused at accept: the listener had `max_connections` sessions.
    RefusedMaxConnections,
    /// Refused at accept: no server of the pool was available.
    NoServer,
    /// Reset by the operator (`strait ctl server kill` / `session kill`).
    Killed,
    /// Every server was at its `max_connections` and the queue was full.
    QueueFull,
    /// Waited `queue_timeout` for a server with room.
    QueueTimeout,
}

impl EndReason {
    /// The word logged.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Closed => "closed",
            EndReason::Reset => "reset",
            EndReason::ConnectFailed => "connect_failed",
            EndReason::Idle => "idle_timeout",
            EndReason::DrainDeadline => "drain_deadline",
            EndReason::RefusedMaxConnections => "refused_max_connections",
            EndReason::NoServer => "no_server",
            EndReason::Killed => "killed",
            EndReason::QueueFull => "queue_full",
            EndReason::QueueTimeout => "queue_timeout",
        }
    }
}

/// One access-log record (HAProxy's `tcplog` carries the same facts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord<'a> {
    /// The listener's name.
    pub listener: &'a str,
    /// The client.
    pub client: SocketAddr,
    /// The server, when one was connected.
    pub server: Option<SocketAddr>,
    /// Who ended the session first: "client" or "server" (its FIN or RST came first),
    /// "proxy" (a timeout, the drain deadline, a refusal, no server left to try).
    pub ended_by: &'static str,
    /// Where it was when it ended: "connect" (no backend connection yet) or "data".
    pub phase: &'static str,
    /// Time to establish the backend connection (the last attempt), once connected.
    pub connect: Option<Duration>,
    /// Connection attempts beyond the first.
    pub retries: u32,
    /// Bytes from the client to the server.
    pub bytes_in: u64,
    /// Bytes from the server to the client.
    pub bytes_out: u64,
    /// Accept to end.
    pub duration: Duration,
    /// Why it ended.
    pub reason: EndReason,
}

/// What the access log needs of a session besides its addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SessionLog {
    bytes_in: u64,
    bytes_out: u64,
    end: Option<EndReason>,
    /// The side whose FIN or RST came first.
    first_close: Option<&'static str>,
}

impl SessionLog {
    /// The client (`client`) or the server sent FIN or RST; the first one is kept.
    pub(super) fn peer_closed(&mut self, client: bool) {
        self.first_close.get_or_insert(if client { "client" } else { "server" });
    }

    /// `n` bytes moved, from the client (`from_client`) or from the server.
    pub(super) fn moved(&mut self, from_client: bool, n: u64) {
        if from_client {
            self.bytes_in += n;
        } else {
            self.bytes_out += n;
        }
    }
}

impl<P: Payload> Proxy<P> {
    /// Records why a session ends (the first reason given stays).
    pub(super) fn note_end(&mut self, sid: u64, reason: EndReason) {
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.log.end.get_or_insert(reason);
        }
    }

    /// The access-log line of a session about to go (when `[log] access` is on).
    pub(super) fn log_session_end(&self, sid: u64, now: Instant) {
        if !self.ops.access_log {
            return;
        }
        let Some(s) = self.sessions.get(&sid) else { return };
        let reason = s.log.end.unwrap_or(if s.up.shut && s.down.shut { EndReason::Closed } else { EndReason::Reset });
        let by_proxy = matches!(
            reason,
            EndReason::Idle
                | EndReason::DrainDeadline
                | EndReason::ConnectFailed
                | EndReason::NoServer
                | EndReason::QueueFull
                | EndReason::QueueTimeout
                | EndReason::Killed
        );
        log_access(&AccessRecord {
            listener: self.listeners.get(s.listener).map(|l| l.spec.name.as_str()).unwrap_or("-"),
            client: s.client_addr,
            server: s.server.and_then(|i| self.servers.get(i)).map(|srv| srv.addr),
            ended_by: if by_proxy { "proxy" } else { s.log.first_close.unwrap_or("proxy") },
            phase: if s.established { "data" } else { "connect" },
            connect: s.backend_connected_at.map(|t| t.saturating_duration_since(s.attempt_started)),
            retries: u32::try_from(s.tried.len().saturating_sub(1)).unwrap_or(u32::MAX),
            bytes_in: s.log.bytes_in,
            bytes_out: s.log.bytes_out,
            duration: now.saturating_duration_since(s.started),
            reason,
        });
    }
}

/// The access-log line of a connection refused at accept (`reason`): no session existed.
pub(super) fn log_refusal(access_log: bool, listener: &str, client: SocketAddr, reason: EndReason) {
    if !access_log {
        return;
    }
    log_access(&AccessRecord {
        listener,
        client,
        server: None,
        ended_by: "proxy",
        phase: "connect",
        connect: None,
        retries: 0,
        bytes_in: 0,
        bytes_out: 0,
        duration: Duration::ZERO,
        reason,
    });
}

/// Emits `r` as one `tracing` event on target `strait::access` (the subscriber's format,
/// text or JSON, applies).
pub fn log_access(r: &AccessRecord<'_>) {
    let server = r.server.map(|s| s.to_string()).unwrap_or_else(|| "-".to_string());
    let connect_ms = r.connect.map(|d| format!("{:.3}", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "-".to_string());
    tracing::info!(
        target: "strait::access",
        listener = r.listener,
        client = %r.client,
        server = %server,
        ended_by = r.ended_by,
        phase = r.phase,
        connect_ms = %connect_ms,
        retries = r.retries,
        bytes_in = r.bytes_in,
        bytes_out = r.bytes_out,
        duration_ms = r.duration.as_millis() as u64,
        reason = r.reason.name(),
        "session closed"
    );
}
