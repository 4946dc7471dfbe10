//! Per-server connection limits and the pool's queue (HAProxy's server `maxconn`,
//! `maxqueue` and `timeout queue`).
//!
//! A server with `max_connections` takes at most that many connections from all lcores
//! together: its slot is reserved with a compare-and-swap on its shared count
//! ([`super::shared`]) before the connection is opened, so it never sees one more. A server
//! at its limit is not eligible for a pick. When every available server is full, the
//! session waits: it takes a unit of the pool's shared queue length (at most `max_queue`
//! over all lcores; one more is reset and counted `refused_queue_full`) and goes to the back
//! of its lcore's queue of the pool. Every pass of the lcore tries the head of each
//! non-empty queue again as soon as some server has room; a session still waiting after
//! `queue_timeout` is reset and counted (`refused_queue_timeout`). Client bytes that arrive
//! meanwhile wait in the engine, as they do while a backend connects.
//!
//! Each lcore serves its own queue in order; across lcores the order is not global (a
//! place that frees goes to whichever lcore looks first), which HAProxy's single queue per
//! process does not need to say. Nor do waiting sessions strictly come first: queues are
//! served once per pass, after the pass's events, so a place freed during a pass can go
//! to a session accepted in the same pass (HAProxy hands a freed place to its queue
//! first). Sessions that waited are counted (`queued`).

use std::collections::VecDeque;

use crate::lb::SharedPool;
use crate::tcp::{Engine, Payload};
use crate::time::{Duration, Instant};

use super::access_log::EndReason;
use super::shared::{Held, PoolShared};
use super::{PoolSpec, Proxy};

/// What became of an attempt to give a session a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// A backend connection is being opened.
    Started,
    /// Every available server is full: the session waits.
    Queued,
    /// Every server is full and so is the queue.
    QueueFull,
    /// No server left (none available, attempts used up, no source port).
    Failed,
}

/// The limits of one pool's servers and the sessions of this lcore waiting for one.
#[derive(Debug)]
pub(super) struct PoolQueue {
    /// `max_connections` of each server, in pool order.
    limits: Vec<Option<u32>>,
    /// Queue length at most, over all lcores.
    max: u32,
    timeout: Duration,
    /// Sessions waiting, oldest first (some may have left already: skipped).
    pub(super) waiting: VecDeque<u64>,
}

impl PoolQueue {
    /// The limits of `pool`, nobody waiting.
    pub(super) fn new(pool: &PoolSpec) -> Self {
        PoolQueue {
            limits: pool.servers.iter().map(|s| s.max_connections).collect(),
            max: pool.max_queue,
            timeout: pool.queue_timeout,
            waiting: VecDeque::new(),
        }
    }

    /// Whether server `idx` (pool order) is below its `max_connections`.
    pub(super) fn has_room(&self, shared: &PoolShared, idx: usize) -> bool {
        match self.limits.get(idx).copied().flatten() {
            Some(max) => shared.active(idx) < u64::from(max),
            None => true,
        }
    }

    /// Reserves a connection slot on server `idx`: `None` when another lcore took the last
    /// one since the pick.
    pub(super) fn reserve(&self, shared: &PoolShared, idx: usize) -> Option<Held> {
        match self.limits.get(idx).copied().flatten() {
            Some(max) => shared.try_hold(idx, u64::from(max)),
            None => shared.hold(idx),
        }
    }

    /// Whether a session that found no server should wait: some server is available
    /// (`up`) but full.
    pub(super) fn should_wait(&self, shared: &PoolShared, up: impl Fn(usize) -> bool) -> bool {
        (0..self.limits.len()).any(|i| up(i) && !self.has_room(shared, i))
    }
}

impl<P: Payload> Proxy<P> {
    /// Puts session `sid` at the back of pool `pool_ix`'s queue, if the queue has room.
    pub(super) fn enqueue(&mut self, sid: u64, pool_ix: usize, now: Instant) -> Next {
        let Some(pool) = self.pools.get_mut(pool_ix) else { return Next::Failed };
        let Some(s) = self.sessions.get_mut(&sid) else { return Next::Failed };
        if s.queued.is_some() {
            // Taken from the queue and still no room: the caller puts it back in front.
            return Next::Queued;
        }
        let Some(place) = pool.shared.queue_place(u64::from(pool.queue.max)) else { return Next::QueueFull };
        let deadline = now + pool.queue.timeout;
        s.queued = Some(place);
        s.queue_deadline = Some(deadline);
        pool.queue.waiting.push_back(sid);
        if let Some(ls) = self.stats.listeners.get_mut(s.listener) {
            ls.queued += 1;
        }
        self.arm(sid, deadline, now);
        Next::Queued
    }

    /// Resets a session that got no server (`next` is not `Started`), counted under its
    /// reason: `refused_queue_full`, or `otherwise` (`NoServer`: `refused_no_server`,
    /// `ConnectFailed`: `refused_connect_failed`).
    pub(super) fn refuse_unless_started(
        &mut self,
        engine: &mut Engine<P>,
        sid: u64,
        next: Next,
        otherwise: EndReason,
        now: Instant,
    ) {
        let reason = match next {
            Next::Started | Next::Queued => return,
            Next::QueueFull => EndReason::QueueFull,
            Next::Failed => otherwise,
        };
        if let Some(ls) = self.sessions.get(&sid).and_then(|s| self.stats.listeners.get_mut(s.listener)) {
            match reason {
                EndReason::QueueFull => ls.refused_queue_full += 1,
                EndReason::ConnectFailed => ls.refused_connect_failed += 1,
                _ => ls.refused_no_server += 1,
            }
        }
        self.note_end(sid, reason);
        self.abort_session(engine, sid, now);
    }

    /// Session `sid` waited `queue_timeout` for a server: reset, counted.
    pub(super) fn queue_timed_out(&mut self, engine: &mut Engine<P>, sid: u64, now: Instant) {
        if let Some(ls) = self.sessions.get(&sid).and_then(|s| self.stats.listeners.get_mut(s.listener)) {
            ls.refused_queue_timeout += 1;
        }
        self.note_end(sid, EndReason::QueueTimeout);
        self.abort_session(engine, sid, now);
    }

    /// Gives waiting sessions a server, oldest first, while servers have room. Returns the
    /// sessions taken from the queues. Cheap when nothing waits (one check per pool).
    pub fn serve_queues(&mut self, engine: &mut Engine<P>, now: Instant) -> usize {
        let mut served = 0;
        for pi in 0..self.pools.len() {
            while let Some(pool) = self.pools.get_mut(pi) {
                let Some(&sid) = pool.queue.waiting.front() else { break };
                let waiting = self.sessions.get(&sid).is_some_and(|s| s.queued.is_some() && !s.finished);
                if !waiting {
                    pool.queue.waiting.pop_front();
                    continue;
                }
                let (first, ops) = (pool.first, &self.ops);
                let room = (0..pool.queue.limits.len())
                    .any(|i| ops.available(first + i, now) && pool.queue.has_room(&pool.shared, i));
                if !room {
                    break;
                }
                pool.queue.waiting.pop_front();
                served += 1;
                match self.connect_next(engine, sid, now) {
                    Next::Queued => {
                        // Another lcore took the place first: wait again, in front.
                        if let Some(p) = self.pools.get_mut(pi) {
                            p.queue.waiting.push_front(sid);
                        }
                        break;
                    }
                    next => self.refuse_unless_started(engine, sid, next, EndReason::NoServer, now),
                }
            }
        }
        served
    }

    /// After a reload rebuilt the pools: every waiting session goes back in its listener's
    /// (new) pool's queue, oldest first; one whose pool is gone waits for its timeout.
    pub(super) fn requeue_all(&mut self) {
        let mut sids: Vec<u64> =
            self.sessions.iter().filter(|(_, s)| s.queued.is_some()).map(|(&sid, _)| sid).collect();
        sids.sort_unstable();
        for sid in sids {
            let pool = self.sessions.get(&sid).and_then(|s| self.listeners.get(s.listener)).map(|l| l.spec.pool);
            if let Some(p) = pool.and_then(|i| self.pools.get_mut(i)) {
                p.queue.waiting.push_back(sid);
            }
        }
    }
}

