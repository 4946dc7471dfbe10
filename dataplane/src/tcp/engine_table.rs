//! The engine's connection table (part of [`super::Engine`]): slots with generations,
//! lookup by handle, insertion (embryonic, established, active), what follows every
//! operation on a connection (memory recharge, timer refiling, events, reaping), and
//! reaping itself.

use super::*;

impl<P: Payload> Engine<P> {

    pub(super) fn entry(&self, id: ConnId) -> Option<&Entry<P>> {
        let s = self.slots.get(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.entry.as_ref()
    }

    /// The entry and the shared counters, borrowed together.
    pub(super) fn split(&mut self, id: ConnId) -> Option<(&mut Entry<P>, &mut Shared)> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        Some((s.entry.as_mut()?, &mut self.shared))
    }

    pub(super) fn entry_mut(&mut self, id: ConnId) -> Option<&mut Entry<P>> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.entry.as_mut()
    }

    pub(crate) fn insert(&mut self, conn: Connection<P>, tuple: FourTuple, listener: Option<ListenerId>, accepted: bool) -> ConnId {
        let entry = Entry { conn, tuple, listener, accepted, scheduled: None, timer: None, dirty: false, released: false, charged: 0 };
        let id = match self.free.pop() {
            Some(index) => {
                let generation = match self.slots.get_mut(index as usize) {
                    Some(slot) => {
                        slot.generation = slot.generation.wrapping_add(1);
                        slot.entry = Some(entry);
                        slot.generation
                    }
                    None => 0,
                };
                ConnId { index, generation }
            }
            None => {
                let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot { generation: 0, entry: Some(entry) });
                ConnId { index, generation: 0 }
            }
        };
        self.table.insert(tuple, id);
        id
    }

    /// Brings [`Shared::allocated`] up to date with what the connection's queues pin now
    /// (Linux charges `sk_forward_alloc` to `tcp_memory_allocated` as queues grow and
    /// shrink: `sk_mem_schedule`, `sk_mem_reclaim`). Called after every operation on the
    /// connection, so the sum is exact between operations at the cost of one subtraction.
    #[inline(always)]
    pub(super) fn recharge(shared: &mut Shared, e: &mut Entry<P>) {
        let now = e.conn.buffer_bytes();
        if now != e.charged {
            shared.allocated = shared.allocated.saturating_sub(e.charged).saturating_add(now);
            e.charged = now;
        }
    }

    /// Files the connection's next deadline in the wheel when it came earlier than the
    /// filed one (most operations move it later or leave it: nothing to do then). Inlined
    /// into its two callers: as a call it spent a sixth of its instructions saving and
    /// restoring registers.
    #[inline(always)]
    pub(super) fn refile(wheel: &mut TimerWheel<ConnId>, e: &mut Entry<P>, id: ConnId) {
        // Linux `timer_reduce`: the filed time only moves earlier. Most operations move a
        // connection's deadline later (an ACK re-arms the RTO, data moves the probe or the
        // delayed ACK: half of the refiles of a request/response exchange) or clear it; the
        // entry then stays where it is and fires early, `handle_timeout` finds nothing due
        // and the refile after it files the deadline of that moment. One early expiry per
        // interval instead of an unlink and a relink per operation.
        let Some(t) = e.conn.next_deadline() else { return };
        if e.scheduled.is_some_and(|filed| t >= filed) {
            return;
        }
        e.scheduled = Some(t);
        e.timer = match e.timer {
            Some(h) if wheel.reschedule(h, t) => Some(h),
            _ => Some(wheel.insert(t, id)),
        };
    }

    /// After any input to a connection: route its events, reap it when it is finished or
    /// move it to TIME-WAIT, mark it for transmission and refile its timer. One slot
    /// lookup; the engine's other fields are borrowed beside it.
    pub(crate) fn after_op(&mut self, id: ConnId, now: Instant) {
        self.after_op_with(id, now, true);
    }

    /// `after_op` for a read or write: `Connection::read` and `Connection::write` arm no
    /// timer (as Linux's `tcp_recvmsg` and `tcp_sendmsg` leave the retransmission timer to
    /// transmission, `tcp_event_new_data_sent`), and every operation that can ends with a
    /// refile (`after_op`, `poll_transmit`), so the filed deadline is still the
    /// connection's: no refile. Events, reaping, the transmit mark and the memory recharge
    /// are as for any operation.
    pub(super) fn after_data_op(&mut self, id: ConnId, now: Instant) {
        self.after_op_with(id, now, false);
    }

    #[inline(always)]
    pub(super) fn after_op_with(&mut self, id: ConnId, now: Instant, timers: bool) {
        let Engine { slots, events, listeners, dirty, wheel, shared, .. } = self;
        let Some(s) = slots.get_mut(id.index as usize) else { return };
        if s.generation != id.generation {
            return;
        }
        let Some(e) = s.entry.as_mut() else { return };
        Self::recharge(shared, e);
        while let Some(ev) = e.conn.poll_event() {
            if e.accepted {
                events.push_back(StackEvent::Conn(id, ev));
            } else if ev == Event::Connected {
                // Handshake of a passive connection done: SYN queue -> accept queue.
                if let Some(l) = e.listener.and_then(|l| listeners.get_mut(l.0 as usize)).and_then(Option::as_mut) {
                    l.syn_queue = l.syn_queue.saturating_sub(1);
                    l.accept_queue.push_back(id);
                }
                if let Some(l) = e.listener {
                    events.push_back(StackEvent::Acceptable(l));
                }
            }
        }
        // A normally closed connection stays until its data is read (or it is released).
        let reapable = matches!(e.conn.state(), State::Closed | State::TimeWait)
            && (e.released
                || !e.accepted
                || e.conn.readable_bytes() == 0
                || e.conn.close_reason() != Some(crate::tcp::connection::CloseReason::Normal));
        if reapable {
            self.reap(id, now);
            return;
        }
        if !e.dirty {
            e.dirty = true;
            dirty.push(id);
        }
        if timers {
            Self::refile(wheel, e, id);
        } else {
            debug_assert!(
                e.conn.next_deadline().is_none_or(|t| e.scheduled.is_some_and(|filed| filed <= t)),
                "a read or write brought a timer forward"
            );
        }
    }

    /// Removes a finished connection; TIME-WAIT moves to the compact table.
    pub(super) fn reap(&mut self, id: ConnId, now: Instant) {
        let Some(slot) = self.slots.get_mut(id.index as usize) else { return };
        if slot.generation != id.generation {
            return;
        }
        let Some(mut e) = slot.entry.take() else { return };
        self.shared.allocated = self.shared.allocated.saturating_sub(e.charged);
        self.free.push(id.index);
        self.table.remove(&e.tuple);
        if let Some(h) = e.timer.take() {
            self.wheel.cancel(h);
        }
        // Last words (RST, final ACK).
        let (src, dst) = (e.tuple.local.ip(), e.tuple.remote.ip());
        let outbox = &mut self.outbox;
        e.conn.poll_transmit(&mut self.shared, now, &mut |seg| outbox.push_back((src, dst, seg)));
        if let Some(l) = e.listener.and_then(|l| self.listeners.get_mut(l.0 as usize)).and_then(Option::as_mut) {
            if !l.accept_queue.contains(&id) {
                l.syn_queue = l.syn_queue.saturating_sub(1);
            }
            l.accept_queue.retain(|&c| c != id);
        }
        if e.conn.state() == State::TimeWait {
            let tw = e.conn.time_wait_info();
            let entry = TimeWaitEntry {
                snd_nxt: tw.snd_nxt,
                rcv_nxt: tw.rcv_nxt,
                ts_recent: tw.ts_recent,
                ts_recent_stamp: tw.ts_recent_stamp,
                expires: tw.expires.unwrap_or(now + self.cfg.msl * 2),
            };
            if !self.time_wait.insert(e.tuple, entry) {
                self.shared.counters.time_wait_overflow += 1;
            }
        }
    }

    /// Registers a passive connection in the table and its listener's SYN queue.
    pub(crate) fn insert_embryonic(&mut self, conn: Connection<P>, tuple: FourTuple, lid: ListenerId, now: Instant) -> ConnId {
        let id = self.insert(conn, tuple, Some(lid), false);
        if let Some(l) = self.listeners.get_mut(lid.0 as usize).and_then(Option::as_mut) {
            l.syn_queue += 1;
        }
        self.after_op(id, now);
        id
    }

    /// Registers a connection established by a SYN cookie directly in the accept queue.
    pub(crate) fn insert_established(&mut self, conn: Connection<P>, tuple: FourTuple, lid: ListenerId, now: Instant) -> ConnId {
        let id = self.insert(conn, tuple, Some(lid), false);
        if let Some(l) = self.listeners.get_mut(lid.0 as usize).and_then(Option::as_mut) {
            // `after_op` moves it from the SYN queue to the accept queue on `Connected`.
            l.syn_queue += 1;
        }
        self.after_op(id, now);
        id
    }

    /// Feeds a segment to a connection (used by the listener for data on a cookie ACK).
    pub(crate) fn deliver(&mut self, id: ConnId, repr: &TcpRepr, payload: P, now: Instant) {
        if let Some((e, shared)) = self.split(id) {
            e.conn.handle_segment(shared, repr, payload, now);
        }
        self.after_op(id, now);
    }
}
