//! What the application calls on a connection (Linux `net/ipv4/tcp.c`): queue data to
//! send (`tcp_sendmsg`) and how much room there is (`tcp_poll`), read what arrived
//! (`tcp_recvmsg`), the socket options Strait exposes (`TCP_CORK`, `TCP_NODELAY`,
//! `SO_KEEPALIVE`), and the ways to end it: a half close (`tcp_shutdown`), a close
//! (`tcp_close`) and an abort (`tcp_disconnect`, RFC 9293 §3.10.5 ABORT).

use super::{CloseReason, Connection, RstSpec, State, WriteError, WriteFlags, SHED_MIN_WMEM};
use crate::tcp::config::KeepaliveConfig;
use crate::tcp::payload::Payload;
use crate::tcp::shared::Shared;
use crate::time::Instant;

impl<P: Payload> Connection<P> {
    /// Queues `data` for sending (`tcp_sendmsg`, send-path §1). Returns how many bytes were
    /// accepted (possibly fewer than offered when the send buffer fills; the rest must be
    /// offered again after [`Event::Writable`](super::Event::Writable)). Data written while connecting is held (up
    /// to `max_pending_connect_bytes`) and sent once established.
    pub fn write(&mut self, shared: &mut Shared, data: P, flags: WriteFlags) -> Result<usize, WriteError> {
        let limit = match self.state {
            State::SynSent | State::SynReceived if !self.snd.fin_queued => {
                self.cfg.max_pending_connect_bytes.min(self.sndbuf())
            }
            s if s.can_send() && !self.snd.fin_queued => self.sndbuf(),
            _ => return Err(WriteError::Closed),
        };
        if self.over_pressure_share(shared) {
            // Memory pressure: like `__sk_mem_raise_allocated` between `tcp_mem[1]` and
            // `tcp_mem[2]`, a connection queues more only while it holds less than its fair
            // share, so peers that never read (a zero window) cannot take the pool through
            // what an application writes for them; the writer waits for `Writable`.
            shared.counters.sndbuf_full += 1;
            shared.counters.memory_pressure_write_limited += 1;
            self.snd.writable_wanted = true;
            return Err(WriteError::NoSpace);
        }
        if self.over_shed_minimum(shared) {
            // Buffers nearly gone engine-wide: like `sk_wmem_schedule` over `tcp_mem[2]`,
            // a write is refused beyond the minimum every connection keeps
            // (`tcp_wmem[0]`), so an application relaying what it reads stops reading and
            // its peer's text is shed instead of the pool's last mbufs being queued.
            shared.counters.sndbuf_full += 1;
            if shared.over_hard_limit() {
                shared.counters.memory_limited += 1;
            }
            self.snd.writable_wanted = true;
            return Err(WriteError::NoSpace);
        }
        let size_goal = self.size_goal();
        let max_chain = self.cfg.max_chain_segments.max(1);
        let max_window = self.snd.max_window;
        let limit = self.pressure_limit(shared, limit);
        let accepted = self.snd.enqueue(data, flags, limit, size_goal, max_chain, max_window);
        if accepted == 0 {
            shared.counters.sndbuf_full += 1;
            return Err(WriteError::NoSpace);
        }
        Ok(accepted)
    }

    /// Under memory pressure, whether the connection holds its fair share of send buffers
    /// ([`Shared::pressure_share`]) or more: its writes wait.
    fn over_pressure_share(&self, shared: &Shared) -> bool {
        shared.memory_pressure && self.snd.queued_truesize >= shared.pressure_share.max(SHED_MIN_WMEM)
    }

    /// Buffers are nearly gone ([`Shared::shedding`]) and the connection holds the
    /// minimum every connection keeps queued for sending, or more: its writes wait.
    fn over_shed_minimum(&self, shared: &Shared) -> bool {
        self.snd.queued_truesize >= SHED_MIN_WMEM && shared.shedding()
    }

    /// Under memory pressure, `limit` (a send buffer in payload bytes) cut so that the
    /// queue grows by at most what is left of the fair share, counted at two buffer bytes
    /// per payload byte (a full segment in a 2 KiB mbuf costs 1.5): one write of 64 KiB
    /// by each of hundreds of connections would otherwise overshoot the pool at once.
    fn pressure_limit(&self, shared: &Shared, limit: u32) -> u32 {
        if !shared.memory_pressure {
            return limit;
        }
        let left = shared.pressure_share.max(SHED_MIN_WMEM).saturating_sub(self.snd.queued_truesize) / 2;
        limit.min(self.snd.queued_bytes.saturating_add(u32::try_from(left).unwrap_or(u32::MAX)))
    }

    /// Bytes that [`write`](Self::write) would accept now. None means the application is
    /// told with [`Event::Writable`](super::Event::Writable) once there is room again (Linux `tcp_poll` setting
    /// `SOCK_NOSPACE`), so an application may read only what it can pass on.
    pub fn send_space(&mut self, shared: &Shared) -> usize {
        let limit = if self.state.is_synchronized() {
            self.sndbuf()
        } else {
            self.cfg.max_pending_connect_bytes.min(self.sndbuf())
        };
        let limit = self.pressure_limit(shared, limit);
        let space = if !self.snd.wmem_free(limit) || self.over_pressure_share(shared) || self.over_shed_minimum(shared) {
            0
        } else {
            usize::try_from(limit.saturating_sub(self.snd.queued_bytes)).unwrap_or(0)
        };
        if space == 0 {
            self.snd.writable_wanted = true;
        }
        space
    }

    /// `TCP_CORK`: while corked, sub-MSS segments are held (send-path §2); uncorking pushes
    /// what is pending at once (`tcp_push_pending_frames` with `TCP_NAGLE_PUSH`).
    pub fn set_cork(&mut self, cork: bool) {
        if self.snd.cork && !cork {
            self.snd.push_pending();
        }
        self.snd.cork = cork;
    }

    /// `TCP_NODELAY`: disables Nagle's algorithm; turning it on pushes what is pending.
    pub fn set_nodelay(&mut self, nodelay: bool) {
        if nodelay && !self.snd.nodelay {
            self.snd.push_pending();
        }
        self.snd.nodelay = nodelay;
    }

    /// `SO_KEEPALIVE` with `TCP_KEEPIDLE`, `TCP_KEEPINTVL` and `TCP_KEEPCNT` for this
    /// connection (Linux `tcp_set_keepalive`, `keepalive_time_when`): `None` turns it off.
    /// The idle time runs from now (or from the next segment received).
    pub fn set_keepalive(&mut self, keepalive: Option<KeepaliveConfig>, now: Instant) {
        self.keepalive = keepalive;
        self.keepalive_sent = 0;
        self.rearm_keepalive(now);
    }

    /// Takes up to `max` bytes of in-order data (zero copy). `None` when nothing is queued.
    /// Reading may open the receive window; a window update then goes out with the next
    /// [`poll_transmit`](Self::poll_transmit) (`tcp_cleanup_rbuf`).
    pub fn read(&mut self, max: usize) -> Option<P> {
        let data = self.rcv.read(max)?;
        if !self.state.can_receive() {
            return Some(data);
        }
        // An owed ACK goes now if a second full segment arrived or the read ended a pushed
        // write (outside ping-pong); a window update if the window grew enough
        // (`__tcp_cleanup_rbuf`).
        let owed = self.timers.delack.is_some();
        if owed
            && (self.rcv.unacked_beyond_one_segment()
                || self.rcv.delack.ack_after_read(data.len(), self.rcv.ready_bytes == 0 && self.rcv.ofo.is_empty()))
        {
            self.pending.ack = true;
        }
        if self.rcv.window_update_due(self.cfg.rcvbuf, self.snd_mss) {
            self.pending.ack = true;
        }
        Some(data)
    }

    /// Buffer bytes (`truesize`) the receive, out-of-order and send queues pin (Linux
    /// `sk_rmem_alloc` + `sk_wmem_queued`).
    pub fn buffer_bytes(&self) -> usize {
        self.rcv.rmem.saturating_add(self.snd.queued_truesize)
    }

    /// Bytes of in-order data ready to read.
    pub fn readable_bytes(&self) -> usize {
        self.rcv.ready_bytes
    }

    /// Whether the peer's FIN has been received (reads return `None` once drained).
    pub fn peer_closed(&self) -> bool {
        self.rcv.fin_received
    }

    /// Half-close: queue a FIN after the queued data (RFC 9293 §3.10.4, `shutdown(SHUT_WR)`).
    /// Receiving continues.
    pub fn shutdown_write(&mut self, shared: &mut Shared) {
        match self.state {
            State::SynSent => self.close_now(shared, CloseReason::Normal),
            State::SynReceived | State::Established | State::CloseWait if !self.snd.fin_queued => {
                self.snd.fin_queued = true;
                match self.state {
                    State::Established => self.set_state(shared, State::FinWait1),
                    State::CloseWait => self.set_state(shared, State::LastAck),
                    // SYN-RECEIVED: the FIN goes out once ESTABLISHED (RFC 9293 §3.10.4).
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Full close (`close()`, RFC 9293 §3.10.4): like [`shutdown_write`](Self::shutdown_write),
    /// but the application is gone: unread data makes it an abort with RST
    /// (RFC 2525 §2.17), and FIN-WAIT-2 is bounded by `fin_wait2_timeout`.
    pub fn close(&mut self, shared: &mut Shared, now: Instant) {
        if self.state == State::Closed || self.state == State::TimeWait {
            return;
        }
        if self.rcv.ready_bytes > 0 || self.rcv.ofo_bytes > 0 {
            shared.counters.abort_on_close += 1;
            self.abort(shared);
            return;
        }
        if !self.orphaned {
            self.orphaned = true;
            shared.counters.orphans += 1;
        }
        self.shutdown_write(shared);
        if self.state == State::FinWait2 {
            self.timers.fin_wait2 = Some(now + self.cfg.fin_wait2_timeout);
        }
    }

    /// Abort (RFC 9293 §3.10.5): send RST where the peer may hold state, drop everything.
    pub fn abort(&mut self, shared: &mut Shared) {
        match self.state {
            State::Closed | State::TimeWait => {}
            State::SynSent => self.close_now(shared, CloseReason::Aborted),
            _ => {
                let seq = self.snd.nxt;
                let ack = self.rcv.nxt;
                self.queue_rst(RstSpec { seq, ack: Some(ack) });
                if self.state.counts_as_established() {
                    shared.counters.estab_resets += 1;
                }
                self.close_now(shared, CloseReason::Aborted);
            }
        }
    }
}
