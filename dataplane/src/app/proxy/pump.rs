//! Moving bytes between the two connections of a session: each direction holds at most
//! one read the other side has not accepted (back-pressure), forwards the FIN after the
//! data (half-close), and a write failure resets the session.

use crate::tcp::{ConnId, Engine, Payload, StackError, WriteError, WriteFlags};
use crate::time::Instant;

use super::{Proxy, Side, READ_CHUNK};

/// One direction of a session.
pub(super) struct Pipe<P> {
    /// Read from the source but not yet accepted by the destination.
    pub(super) pending: P,
    /// The source sent FIN.
    pub(super) eof: bool,
    /// We sent FIN to the destination (`shutdown_write`).
    pub(super) shut: bool,
}

impl<P: Payload> Pipe<P> {
    pub(super) fn new() -> Self {
        Pipe { pending: P::empty(), eof: false, shut: false }
    }
}

impl<P: Payload> Proxy<P> {
    /// Moves data both ways until each direction blocks; propagates FINs; closes both
    /// connections once both directions are finished.
    pub(super) fn pump(&mut self, engine: &mut Engine<P>, sid: u64, now: Instant) {
        let Proxy { sessions, stats, .. } = self;
        let Some(s) = sessions.get_mut(&sid) else { return };
        if !s.established || s.finished {
            // Client bytes wait in the engine until the backend is connected.
            return;
        }
        let Some(bid) = s.backend else { return };
        let li = s.listener;
        let server = s.server;
        let mut failed = false;
        for dir in [Side::Client, Side::Backend] {
            let (src, dst, dst_open, pipe) = match dir {
                Side::Client => (s.client, bid, s.backend_open, &mut s.up),
                Side::Backend => (bid, s.client, s.client_open, &mut s.down),
            };
            if !dst_open {
                continue;
            }
            match move_data(engine, src, dst, pipe, now) {
                Ok(m) => {
                    if m.bytes > 0 {
                        s.last_activity = now;
                        s.log.moved(dir == Side::Client, m.bytes);
                    }
                    if let Some(ls) = stats.listeners.get_mut(li) {
                        ls.write_stalls += m.stalls;
                        match dir {
                            Side::Client => ls.bytes_in += m.bytes,
                            Side::Backend => ls.bytes_out += m.bytes,
                        }
                    }
                    if let Some(st) = server.and_then(|i| stats.servers.get_mut(i)) {
                        match dir {
                            Side::Client => st.bytes_in += m.bytes,
                            Side::Backend => st.bytes_out += m.bytes,
                        }
                    }
                }
                Err(()) => failed = true,
            }
        }
        if failed {
            if let Some(ls) = stats.listeners.get_mut(li) {
                ls.resets += 1;
            }
            self.abort_session(engine, sid, now);
            return;
        }
        if s.up.shut && s.down.shut {
            // Both directions finished: hand both connections back (FINs already queued;
            // `close` only releases them and bounds FIN-WAIT-2).
            s.finished = true;
            if s.client_open {
                let _ = engine.close(s.client, now);
            }
            if s.backend_open {
                let _ = engine.close(bid, now);
            }
        }
    }
}

/// What one direction moved in one pass.
struct Moved {
    bytes: u64,
    stalls: u64,
}

/// Moves data from `src` to `dst` until `dst` refuses more or `src` has nothing; once the
/// source sent FIN and everything was written, shuts `dst`'s write side. `Err` when `dst`
/// can no longer be written (reset under us).
///
/// The source is read even after its `Closed` event: a normally closed connection keeps
/// its unread data until it is read (see [`Engine::close`]).
fn move_data<P: Payload>(engine: &mut Engine<P>, src: ConnId, dst: ConnId, pipe: &mut Pipe<P>, now: Instant) -> Result<Moved, ()> {
    let mut m = Moved { bytes: 0, stalls: 0 };
    if pipe.shut {
        return Ok(m);
    }
    loop {
        if !pipe.pending.is_empty() {
            let len = pipe.pending.len();
            match engine.write(dst, pipe.pending.clone(), WriteFlags::NONE, now) {
                Ok(n) => {
                    m.bytes += n as u64;
                    pipe.pending = pipe.pending.slice(n..len);
                    if !pipe.pending.is_empty() {
                        // Back-pressure: keep the remainder, read no more until Writable.
                        m.stalls += 1;
                        return Ok(m);
                    }
                }
                Err(StackError::Write(WriteError::NoSpace)) => {
                    m.stalls += 1;
                    return Ok(m);
                }
                Err(_) => return Err(()),
            }
        }
        match engine.read(src, READ_CHUNK, now) {
            Ok(Some(data)) if !data.is_empty() => pipe.pending = data,
            // Drained for now, or the handle is gone (its `Closed` comes or came).
            _ => break,
        }
    }
    if pipe.eof {
        // RFC 9293 §3.10.4: the source's FIN, forwarded after all its data.
        pipe.shut = true;
        if engine.shutdown_write(dst, now).is_err() {
            return Err(());
        }
    }
    Ok(m)
}
