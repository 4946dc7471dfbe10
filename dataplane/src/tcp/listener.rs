//! Listeners (`inet_csk` request handling): a bounded SYN queue of half-open connections, a
//! bounded accept queue, and SYN cookies (RFC 4987 §3.6) once the SYN queue is full.

use std::collections::VecDeque;
use std::net::SocketAddr;

use super::connection::{CookieOptions, Connection, Segment};
use super::engine::{ConnId, Engine, ListenerId};
use super::payload::Payload;
use super::seq::SeqNum;
use super::time_wait::FourTuple;
use crate::time::Instant;
use crate::wire::tcp::{Flags, TcpOptions, TcpRepr};

/// One listening socket.
#[derive(Debug)]
pub(crate) struct Listener {
    pub addr: SocketAddr,
    /// Half-open connections (SYN-RECEIVED) owned by this listener.
    pub syn_queue: usize,
    /// Established connections waiting for `accept`.
    pub accept_queue: VecDeque<ConnId>,
    /// When this listener last answered a SYN with a cookie (Linux `tcp_synq_overflow`).
    pub last_overflow: Option<Instant>,
}

/// How long after the last cookie was sent a cookie ACK is still taken (Linux
/// `TCP_SYNCOOKIE_VALID`, 2 minutes): past it the SYN queue had room, so no legitimate
/// peer holds a cookie, and a blind forgery (one in 2^29 per ACK) gets nowhere.
pub const SYNCOOKIE_VALID: crate::time::Duration = crate::time::Duration::from_secs(120);

impl Listener {
    pub fn new(addr: SocketAddr) -> Self {
        Listener { addr, syn_queue: 0, accept_queue: VecDeque::new(), last_overflow: None }
    }

    pub fn accept_queue_full(&self, backlog: usize) -> bool {
        self.accept_queue.len() >= backlog
    }
}

impl<P: Payload> Engine<P> {
    /// A segment for a listening address with no connection (`tcp_v4_conn_request`,
    /// `cookie_v4_check`). `isn` overrides the ISN when a TIME-WAIT entry was recycled.
    pub(crate) fn listener_input(
        &mut self,
        lid: ListenerId,
        tuple: FourTuple,
        repr: &TcpRepr,
        payload: P,
        now: Instant,
        isn: Option<SeqNum>,
    ) {
        let f = repr.flags;
        if f.contains(Flags::RST) {
            return;
        }
        let syn = f.contains(Flags::SYN);
        let ack = f.contains(Flags::ACK);
        if ack && !syn {
            self.cookie_ack(lid, tuple, repr, payload, now);
            return;
        }
        if !syn || ack {
            // SYN-ACK or a segment without SYN/ACK to a listener: RFC 9293 §3.10.7.2.
            if ack {
                self.reply_rst(&tuple, repr, payload.len());
            }
            return;
        }
        if self.shared.rx_shed {
            // The pool is at its reserve: refuse rather than take on a connection we cannot
            // feed (RFC 9293 §3.10.7.2 allows a RST for a refused SYN). Linux accepts even
            // then and lets the socket starve; a client refused at once can go to another
            // proxy behind the same address. Under mere pressure, or with the connections at
            // their memory limit, SYNs are accepted as Linux does: the limit bounds what a
            // new connection may hold, so attackers holding buffers do not lock clients out.
            self.shared.counters.memory_pressure_refused += 1;
            self.reply_rst(&tuple, repr, payload.len());
            return;
        }
        let (syn_full, accept_full) = match self.listeners.get(lid.0 as usize).and_then(Option::as_ref) {
            Some(l) => (l.syn_queue >= self.cfg.syn_backlog, l.accept_queue_full(self.cfg.accept_backlog)),
            None => return,
        };
        if accept_full {
            self.shared.counters.listen_overflows += 1;
            self.shared.counters.listen_drops += 1;
            return;
        }
        if syn_full {
            if self.cfg.syncookies {
                if let Some(Some(l)) = self.listeners.get_mut(lid.0 as usize) {
                    l.last_overflow = Some(now);
                }
                self.send_cookie_synack(&tuple, repr, now);
            } else {
                self.shared.counters.listen_drops += 1;
            }
            return;
        }
        let iss = isn.unwrap_or_else(|| self.isn.isn(tuple.local, tuple.remote, now));
        let conn = Connection::accept_syn(&mut self.shared, tuple.local, tuple.remote, iss, repr, &self.cfg, now);
        self.insert_embryonic(conn, tuple, lid, now);
    }

    /// Answers a SYN statelessly with a cookie as ISN (`cookie_v4_init_sequence`). Window
    /// scale and SACK survive only inside the timestamp, so without timestamps they are not
    /// offered.
    fn send_cookie_synack(&mut self, tuple: &FourTuple, syn: &TcpRepr, now: Instant) {
        let peer_mss = syn.options.mss.unwrap_or(536);
        let (cookie, _mss) = self.cookies.encode(tuple.local, tuple.remote, syn.seq, peer_mss, now);
        let mut options = TcpOptions { mss: Some(self.cfg.effective_mss_for(tuple.local.is_ipv6())), ..TcpOptions::default() };
        if let (Some((peer_tsval, _)), true) = (syn.options.timestamps, self.cfg.timestamps) {
            let peer_wscale = syn.options.window_scale.filter(|_| self.cfg.window_scaling);
            let sack = syn.options.sack_permitted && self.cfg.sack;
            let tsval = (now.as_millis() & 0xffff_ffff) as u32;
            let tsval = self.cookies.encode_ts_options(tsval, peer_wscale, sack);
            options.timestamps = Some((tsval, peer_tsval));
            options.window_scale = peer_wscale.map(|_| self.cfg.rcv_wscale());
            options.sack_permitted = sack;
        }
        let repr = TcpRepr {
            src_port: tuple.local.port(),
            dst_port: tuple.remote.port(),
            seq: cookie,
            ack: syn.seq.wrapping_add(1),
            flags: Flags::SYN | Flags::ACK,
            window: u16::try_from(self.cfg.rcvbuf.min(65535)).unwrap_or(u16::MAX),
            urgent: 0,
            options,
        };
        self.shared.counters.syncookies_sent += 1;
        self.shared.counters.out_segs += 1;
        self.outbox.push_back((tuple.local.ip(), tuple.remote.ip(), Segment { repr, payload: P::empty(), mss: 0 }));
    }

    /// An ACK to a listener: the third packet of a cookie handshake, or junk (RST).
    fn cookie_ack(&mut self, lid: ListenerId, tuple: FourTuple, repr: &TcpRepr, payload: P, now: Instant) {
        if !self.cfg.syncookies {
            self.reply_rst(&tuple, repr, payload.len());
            return;
        }
        // Linux `tcp_synq_no_recent_overflow`: cookies only while this listener sent some
        // lately; any other bare ACK is junk.
        let recent = self
            .listeners
            .get(lid.0 as usize)
            .and_then(Option::as_ref)
            .and_then(|l| l.last_overflow)
            .is_some_and(|t| now.saturating_duration_since(t) < SYNCOOKIE_VALID);
        if !recent {
            self.shared.counters.syncookies_not_recent += 1;
            self.reply_rst(&tuple, repr, payload.len());
            return;
        }
        let peer_isn = repr.seq.wrapping_sub(1);
        let cookie = repr.ack.wrapping_sub(1);
        let Some(info) = self.cookies.validate(tuple.local, tuple.remote, peer_isn, cookie, now) else {
            self.shared.counters.syncookies_failed += 1;
            self.reply_rst(&tuple, repr, payload.len());
            return;
        };
        let accept_full = match self.listeners.get(lid.0 as usize).and_then(Option::as_ref) {
            Some(l) => l.accept_queue_full(self.cfg.accept_backlog),
            None => return,
        };
        if accept_full {
            self.shared.counters.listen_overflows += 1;
            self.shared.counters.listen_drops += 1;
            return;
        }
        self.shared.counters.syncookies_recv += 1;
        let (wscale, sack) = match repr.options.timestamps {
            Some((_, tsecr)) if self.cfg.timestamps => self.cookies.decode_ts_options(tsecr),
            _ => (None, false),
        };
        let opts = CookieOptions { mss: info.mss, wscale, sack };
        let conn = Connection::from_cookie(&mut self.shared, tuple.local, tuple.remote, cookie, peer_isn, opts, repr, &self.cfg, now);
        let id = self.insert_established(conn, tuple, lid, now);
        if !payload.is_empty() || repr.flags.contains(Flags::FIN) {
            self.deliver(id, repr, payload, now);
        }
    }
}
