//! Draining the proxy on shutdown: stop accepting, then reset what is left once the
//! deadline passes ([`crate::command`] keeps the deadline and calls these through
//! [`crate::command::Controlled`], `admin.rs`).
//!
//! Closing a listener takes it out of the engine: a SYN to its address is then answered
//! with a reset (RFC 9293 §3.10.7.1: no listener, a segment without RST gets one), so
//! clients learn at once instead of timing out. Handshakes completed but not yet accepted
//! are aborted by the engine. Established sessions are untouched and finish normally;
//! [`Proxy::reset_all`] aborts both connections of every remaining session (the peers get
//! an RST, RFC 9293 §3.10.5).
//!
//! Also here: sessions an operator kills ([`Proxy::kill`], the same abort). Each ends
//! with its access-log line (`access_log.rs`).

use crate::tcp::{Engine, Payload};
use crate::time::Instant;

use super::access_log::EndReason;
use super::admin::KillTarget;
use super::Proxy;

impl<P: Payload> Proxy<P> {
    /// Stops every listener of the proxy; returns how many were open.
    pub fn close_listeners(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        let open: Vec<_> = self.by_listener_id.drain().collect();
        for (lid, i) in &open {
            let _ = engine.unlisten(*lid, now);
            if let Some(l) = self.listeners.get(*i) {
                tracing::info!(listener = %l.spec.name, listen = %l.spec.listen, "listener closed");
            }
        }
        open.len()
    }

    /// Whether any proxy listener still accepts.
    pub fn accepting(&self) -> bool {
        !self.by_listener_id.is_empty()
    }

    /// Aborts every session (both connections); returns how many there were.
    pub fn reset_all(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        let ids: Vec<u64> = self.sessions.iter().filter(|(_, s)| !s.finished).map(|(&id, _)| id).collect();
        self.reset_sessions(engine, &ids, EndReason::DrainDeadline, now)
    }

    /// Resets what an operator names: every session of a server, or one session. Returns
    /// how many were reset (0: none matched).
    pub fn kill(&mut self, engine: &mut Engine<P>, target: &KillTarget, now: Instant) -> usize {
        let ids: Vec<u64> = match target {
            KillTarget::Session(sid) => {
                self.sessions.get(sid).filter(|s| !s.finished).map(|_| *sid).into_iter().collect()
            }
            KillTarget::Server { pool, addr } => {
                let Some(flat) = self.server_index(pool, *addr) else { return 0 };
                self.sessions.iter().filter(|(_, s)| !s.finished && s.server == Some(flat)).map(|(&id, _)| id).collect()
            }
        };
        self.reset_sessions(engine, &ids, EndReason::Killed, now)
    }

    fn reset_sessions(&mut self, engine: &mut Engine<P>, ids: &[u64], reason: EndReason, now: Instant) -> usize {
        for &sid in ids {
            self.note_end(sid, reason);
            if let Some(l) = self.sessions.get(&sid).and_then(|s| self.stats.listeners.get_mut(s.listener)) {
                l.resets += 1;
            }
            self.abort_session(engine, sid, now);
        }
        ids.len()
    }
}
