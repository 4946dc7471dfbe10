//! One TCP connection as a deterministic state machine (quinn-proto style).
//!
//! Inputs: [`Connection::handle_segment`] (a parsed header plus its payload),
//! [`Connection::handle_timeout`], and the application calls ([`Connection::write`],
//! [`Connection::read`], [`Connection::shutdown_write`], [`Connection::close`],
//! [`Connection::abort`]). Outputs: [`Connection::poll_transmit`] (segments to put on the
//! wire), [`Connection::poll_event`] and [`Connection::next_deadline`]. Time is always handed
//! in; nothing here reads a clock or does I/O.
//!
//! Files: [`state`] (RFC 9293 states), `input` (segment arrival: `tcp_rcv_state_process`),
//! `send` (send queue, `tcp_sendmsg`, `tcp_ack`, retransmission), `xmit` (`tcp_write_xmit`
//! and its gates), `user` (the application's calls: `tcp_sendmsg`, `tcp_recvmsg`,
//! `tcp_shutdown`, `tcp_close`), `pmtu` (RFC 1191 path MTU, RFC 4821 probing), `recv` (receive queue,
//! reassembly, window selection), `selective_acks` (the SACK blocks we report, most
//! recent first), `delack` (when received data is ACKed: quick-ACK,
//! ping-pong and the adaptive timeout), `output` (header and option construction), [`timers`].

mod ack;
mod delack;
mod input;
mod loss;
mod output;
mod pmtu;
mod probe;
mod recv;
#[cfg(test)]
mod rmem_tests;
mod rto;
mod selective_acks;
mod send;
pub mod state;
pub mod timers;
mod user;
mod xmit;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

pub use self::loss::CaState;
pub use self::pmtu::PmtuError;
use self::pmtu::PathMtu;
use self::recv::RecvState;
use self::send::SendState;
pub use self::state::State;
use self::timers::{RttEstimator, Timers};
use super::config::{KeepaliveConfig, TcpConfig};
use super::congestion::{initial_window, Algorithm, Congestion};
use super::payload::Payload;
use super::seq::SeqNum;
use super::shared::Shared;
use crate::time::{Duration, Instant};
use crate::wire::tcp::{SackBlocks, TcpRepr};

/// A segment to transmit: the header to emit and the payload (a reference into the send
/// queue, so the original stays queued for retransmission).
///
/// With segmentation offload (`TcpConfig::tso`) one `Segment` may be a super-segment of
/// several MSS: `mss` is then the segmentation size the port adapter hands to hardware TSO
/// (`tso_segsz`) or to software GSO ([`crate::offload::gso_segment`]), which cut it into
/// `ceil(payload / mss)` frames (send-path §4).
#[derive(Debug, Clone)]
pub struct Segment<P> {
    /// TCP header fields and options; the checksum is filled when the segment is emitted.
    pub repr: TcpRepr,
    /// Segment text.
    pub payload: P,
    /// Segmentation size; 0 when the segment goes out as one frame.
    pub mss: u16,
}

impl<P: Payload> Segment<P> {
    /// A segment that goes out as a single frame.
    pub fn single(repr: TcpRepr, payload: P) -> Self {
        Segment { repr, payload, mss: 0 }
    }

    /// Frames this segment becomes on the wire (`tso_segs`).
    pub fn frame_count(&self) -> usize {
        match self.mss {
            0 => 1,
            m => self.payload.len().div_ceil(usize::from(m)).max(1),
        }
    }
}

/// Why a connection reached CLOSED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Both directions closed with FINs (or the application closed before the handshake).
    Normal,
    /// The peer reset the connection (RFC 9293 §3.5.3).
    Reset,
    /// The peer refused the active open (RST in SYN-SENT).
    Refused,
    /// Retransmissions, the connect deadline, keepalive or FIN-WAIT-2 ran out.
    Timeout,
    /// The application aborted, or closed with unread data (RFC 2525 §2.17).
    Aborted,
}

/// What the application learns from [`Connection::poll_event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// The handshake completed (ESTABLISHED).
    Connected,
    /// New in-order data can be read.
    Readable,
    /// Send-buffer space was freed after a write was refused or cut short.
    Writable,
    /// The peer sent FIN: no more data will arrive (reads drain what is queued).
    PeerClosed,
    /// The connection is finished; always the last event, emitted exactly once.
    Closed {
        /// Why it ended.
        reason: CloseReason,
    },
}

/// Flags of one [`Connection::write`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteFlags {
    /// More data follows at once (`MSG_MORE`): hold sub-MSS segments and do not set PSH.
    pub more: bool,
}

impl WriteFlags {
    /// An ordinary write: PSH at its end, Nagle applies unless no-delay.
    pub const NONE: WriteFlags = WriteFlags { more: false };
    /// `MSG_MORE`.
    pub const MORE: WriteFlags = WriteFlags { more: true };
}

/// Buffer bytes a connection may keep queueing for sending while buffers are nearly gone
/// engine-wide (Linux `tcp_wmem[0]`, the send memory every socket is granted under
/// pressure).
pub(crate) const SHED_MIN_WMEM: usize = 4096;

/// Why a write accepted nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The send buffer (or the pre-connect hold) is full; wait for [`Event::Writable`].
    #[error("send buffer full")]
    NoSpace,
    /// Our side was shut down or the connection failed (kernel `EPIPE`).
    #[error("connection closed for writing")]
    Closed,
}

/// A snapshot of a connection's state for metrics and debugging (`ss -ti`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Current state.
    pub state: State,
    /// Smoothed RTT, once measured.
    pub srtt: Option<Duration>,
    /// RTT variation.
    pub rttvar: Duration,
    /// Current RTO including backoff.
    pub rto: Duration,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow-start threshold in bytes.
    pub ssthresh: u32,
    /// Sending MSS as negotiated (the peer's MSS option bounded by ours).
    pub snd_mss: u32,
    /// Payload bytes per segment now (`mss_now`): `snd_mss` bounded by the path MTU, less
    /// the TCP options every segment carries (RFC 6691), bounded to half the peer's window.
    pub mss_now: u32,
    /// Path MTU in use (RFC 1191 / RFC 4821).
    pub path_mtu: u32,
    /// Segments in flight by the kernel's count (`tcp_packets_in_flight`).
    pub packets_in_flight: u32,
    /// Oldest unacknowledged sequence number.
    pub snd_una: SeqNum,
    /// Next new sequence number to send.
    pub snd_nxt: SeqNum,
    /// Peer's window in bytes (scaled).
    pub snd_wnd: u32,
    /// Next sequence number expected.
    pub rcv_nxt: SeqNum,
    /// Window currently advertised in bytes.
    pub rcv_wnd: u32,
    /// Send-window and receive-window scale shifts (RFC 7323).
    pub wscale: (u8, u8),
    /// Timestamps and SACK negotiated.
    pub timestamps: bool,
    /// SACK-permitted negotiated.
    pub sack: bool,
    /// Bytes queued for sending or awaiting acknowledgement (`sk_wmem_queued`).
    pub send_queued: u32,
    /// Bytes received in order and not yet read.
    pub recv_queued: usize,
    /// Bytes held out of order.
    pub ofo_queued: usize,
    /// Payload bytes acknowledged by the peer.
    pub bytes_acked: u64,
    /// Payload bytes received in order.
    pub bytes_received: u64,
    /// Segments sent (including retransmissions).
    pub segs_out: u64,
    /// Segments received.
    pub segs_in: u64,
    /// Segments retransmitted.
    pub retrans: u64,
    /// Retransmission timeouts that fired.
    pub timeouts: u64,
    /// Segments retransmitted in fast recovery (SACK, duplicate ACKs, RACK).
    pub fast_retrans: u64,
    /// Segments retransmitted after a timeout.
    pub rto_retrans: u64,
    /// Tail loss probes sent.
    pub loss_probes: u64,
    /// Window reductions undone as spurious (Eifel, F-RTO, D-SACK).
    pub undos: u64,
    /// Fast-recovery episodes entered.
    pub recoveries: u64,
    /// Smallest RTT measured.
    pub min_rtt: Option<Duration>,
    /// Congestion-control algorithm.
    pub congestion: Algorithm,
    /// Recovery state (Linux `ca_state`).
    pub ca_state: CaState,
    /// Frames SACKed (or duplicate ACKs counted, without SACK) and not yet acknowledged.
    pub sacked_out: u32,
    /// Frames marked lost and not yet acknowledged.
    pub lost_out: u32,
    /// Frames retransmitted and not yet acknowledged.
    pub retrans_out: u32,
    /// Reordering was detected on this connection (RFC 8985 `RACK.reordering_seen`).
    pub reordering_seen: bool,
}

/// A reset to send that does not change our state: `(seq, ack)`; `ack` `None` means a bare
/// RST (RFC 9293 §3.10.7.3), `Some` an RST+ACK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RstSpec {
    pub seq: SeqNum,
    pub ack: Option<SeqNum>,
}

/// Control segments owed to the peer, produced by the next [`Connection::poll_transmit`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    /// Send (or retransmit) our SYN / SYN-ACK.
    pub syn: bool,
    /// ACK the current state now.
    pub ack: bool,
    /// Extra duplicate / challenge ACKs (each goes out as its own segment, capped).
    pub extra_acks: u32,
    /// ACKs owed for earlier segments of this round, each with the SACK blocks of its
    /// moment, sent first (Linux sends them before the change, `tcp_sack_compress_send_ack`;
    /// here the ACKs of a round go out together). At most [`MAX_EXTRA_ACKS`].
    pub sack_snapshots: Vec<SackBlocks>,
    /// The SACK blocks of the ACK being emitted, when it is one of `sack_snapshots`.
    pub sack_now: Option<SackBlocks>,
    /// A zero-window probe is due.
    pub window_probe: bool,
    /// A keepalive probe is due.
    pub keepalive_probe: bool,
    /// A tail loss probe is due (RFC 8985 §7.3).
    pub tlp: bool,
    /// Resets to send.
    pub rsts: Vec<RstSpec>,
}

/// The most extra ACK copies owed at once.
const MAX_EXTRA_ACKS: u32 = 8;
/// The most queued resets per connection.
const MAX_PENDING_RSTS: usize = 4;

/// Per-connection counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Stats {
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub segs_in: u64,
    pub segs_out: u64,
    pub retrans: u64,
    pub timeouts: u64,
    pub fast_retrans: u64,
    pub rto_retrans: u64,
    pub loss_probes: u64,
    pub undos: u64,
    pub recoveries: u64,
}

/// A TCP connection over payload type `P`.
#[derive(Debug)]
pub struct Connection<P: Payload> {
    local: SocketAddr,
    remote: SocketAddr,
    state: State,
    /// The engine's settings, shared by all its connections (one copy per engine keeps
    /// each connection's state small: issue 19).
    cfg: Arc<TcpConfig>,
    /// TCP keepalive for this connection (the engine's setting until the application
    /// changes it, `set_keepalive`).
    keepalive: Option<KeepaliveConfig>,
    /// Created by a listener (passive open).
    passive: bool,
    /// `close()` was called: the application is gone (FIN-WAIT-2 timeout applies).
    orphaned: bool,
    /// When the last duplicate ACK answering an out-of-window or PAWS-rejected segment
    /// without data went out (Linux `last_oow_ack_time`).
    last_oow_ack: Option<Instant>,
    /// Sending MSS after negotiation (RFC 9293 §3.7.1).
    snd_mss: u32,
    /// Shift applied to windows the peer sends (RFC 7323 §2.3).
    snd_wscale: u8,
    /// Shift applied to windows we send.
    rcv_wscale: u8,
    /// Window scaling was offered by us and, once synchronized, agreed.
    wscale_ok: bool,
    sack_ok: bool,
    ts_ok: bool,
    snd: SendState<P>,
    rcv: RecvState<P>,
    pmtu: PathMtu,
    rtt: RttEstimator,
    timers: Timers,
    cc: Congestion,
    events: VecDeque<Event>,
    pending: Pending,
    stats: Stats,
    /// SYN / SYN-ACK transmissions so far.
    syn_sends: u32,
    /// When the first SYN / SYN-ACK was sent (RTT sample for the handshake, Karn applies).
    syn_sent_at: Option<Instant>,
    /// Unanswered keepalive probes.
    keepalive_sent: u32,
    /// Why the connection closed, once it has.
    close_reason: Option<CloseReason>,
}

impl<P: Payload> Connection<P> {
    fn new_common(local: SocketAddr, remote: SocketAddr, iss: SeqNum, cfg: &Arc<TcpConfig>, now: Instant) -> Self {
        let ipv6 = local.is_ipv6();
        let mss = u32::from(cfg.effective_mss_for(ipv6));
        let rcv_wscale = cfg.rcv_wscale();
        Connection {
            local,
            remote,
            state: State::Closed,
            cfg: Arc::clone(cfg),
            keepalive: cfg.keepalive,
            passive: false,
            orphaned: false,
            last_oow_ack: None,
            snd_mss: mss,
            snd_wscale: 0,
            rcv_wscale,
            wscale_ok: cfg.window_scaling,
            sack_ok: cfg.sack,
            ts_ok: cfg.timestamps,
            snd: SendState::new(iss, cfg.nodelay, now),
            pmtu: PathMtu::new(cfg, ipv6, now),
            rcv: RecvState::new(mss, now),
            rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto),
            timers: Timers::default(),
            cc: cfg.congestion.build(initial_window(cfg.initial_cwnd_segments, mss)),
            events: VecDeque::new(),
            pending: Pending::default(),
            stats: Stats::default(),
            syn_sends: 0,
            syn_sent_at: None,
            keepalive_sent: 0,
            close_reason: None,
        }
    }

    /// Active open (`tcp_v4_connect` / `tcp_connect`, send-path §5): the connection enters
    /// SYN-SENT; the SYN (with MSS, window scale, SACK-permitted and timestamps as
    /// configured) goes out on the next [`poll_transmit`](Self::poll_transmit) and is
    /// retransmitted with exponential backoff until answered, `syn_retries` run out or
    /// `connect_timeout` passes.
    pub fn connect(
        shared: &mut Shared,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        cfg: &Arc<TcpConfig>,
        now: Instant,
    ) -> Self {
        let mut c = Self::new_common(local, remote, iss, cfg, now);
        c.set_state(shared, State::SynSent);
        shared.counters.active_opens += 1;
        c.pending.syn = true;
        c.timers.connect = cfg.connect_timeout.map(|d| now + d);
        c
    }

    /// Passive open from a listener that accepted `syn` (`tcp_conn_request` /
    /// `tcp_create_openreq_child`): the connection enters SYN-RECEIVED and its SYN-ACK goes
    /// out on the next [`poll_transmit`](Self::poll_transmit).
    pub fn accept_syn(
        shared: &mut Shared,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        syn: &TcpRepr,
        cfg: &Arc<TcpConfig>,
        now: Instant,
    ) -> Self {
        let mut c = Self::new_common(local, remote, iss, cfg, now);
        c.passive = true;
        c.set_state(shared, State::SynReceived);
        c.negotiate(syn, now);
        c.rcv.init(syn.seq);
        c.snd.init_window(u32::from(syn.window), syn.seq, SeqNum(0));
        c.pending.syn = true;
        c
    }

    /// A connection established directly from a valid SYN-cookie ACK (RFC 4987 §3.6):
    /// `iss` is the cookie, `irs` the peer's ISN, `mss` and options as decoded from it.
    #[allow(clippy::too_many_arguments)]
    pub fn from_cookie(
        shared: &mut Shared,
        local: SocketAddr,
        remote: SocketAddr,
        iss: SeqNum,
        irs: SeqNum,
        opts: CookieOptions,
        ack: &TcpRepr,
        cfg: &Arc<TcpConfig>,
        now: Instant,
    ) -> Self {
        let mut c = Self::new_common(local, remote, iss, cfg, now);
        c.passive = true;
        c.snd_mss = u32::from(opts.mss).clamp(64, u32::from(c.our_mss()));
        c.rcv.set_mss(c.snd_mss);
        match opts.wscale {
            Some(ws) if cfg.window_scaling => {
                c.snd_wscale = ws.min(14);
                c.wscale_ok = true;
            }
            _ => {
                c.snd_wscale = 0;
                c.rcv_wscale = 0;
                c.wscale_ok = false;
            }
        }
        c.sack_ok = cfg.sack && opts.sack;
        c.ts_ok = cfg.timestamps && ack.options.timestamps.is_some();
        if let Some((tsval, _)) = ack.options.timestamps {
            c.rcv.set_ts_recent(tsval, now);
        }
        c.rcv.init(irs);
        // Our SYN-ACK is considered sent and acknowledged by this ACK.
        c.snd.nxt = c.snd.nxt.wrapping_add(1);
        c.snd.una = c.snd.nxt;
        c.snd.write_seq = c.snd.nxt;
        c.snd.sml = c.snd.nxt;
        c.snd.pushed_seq = c.snd.nxt;
        c.snd.init_window(u32::from(ack.window) << c.snd_wscale, ack.seq, ack.ack);
        // The SYN-ACK carrying the cookie advertised an unscaled window (RFC 7323 §2.2).
        c.rcv.adv_from_window(cfg.rcvbuf.min(65535));
        c.establish(shared, now);
        c
    }

    /// The MSS we announce: the configured one for the connection's family
    /// ([`TcpConfig::effective_mss_for`]).
    pub(crate) fn our_mss(&self) -> u16 {
        self.cfg.effective_mss_for(self.local.is_ipv6())
    }

    /// Local address.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// Remote address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Why the connection closed (set with the [`Event::Closed`] it reported).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// Whether this connection came from a listener.
    pub fn is_passive(&self) -> bool {
        self.passive
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The earliest deadline at which [`handle_timeout`](Self::handle_timeout) must run.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// A snapshot for metrics.
    pub fn info(&self) -> ConnInfo {
        ConnInfo {
            state: self.state,
            srtt: self.rtt.srtt(),
            rttvar: self.rtt.rttvar(),
            rto: self.rtt.rto(),
            cwnd: self.cc.cwnd(),
            ssthresh: self.cc.ssthresh(),
            snd_mss: self.snd_mss,
            mss_now: self.effective_mss(),
            path_mtu: self.pmtu.mtu,
            packets_in_flight: self.in_flight(self.effective_mss()),
            snd_una: self.snd.una,
            snd_nxt: self.snd.nxt,
            snd_wnd: self.snd.wnd,
            rcv_nxt: self.rcv.nxt,
            rcv_wnd: self.rcv.current_window(),
            wscale: (self.snd_wscale, self.rcv_wscale),
            timestamps: self.ts_ok,
            sack: self.sack_ok,
            send_queued: self.snd.queued_bytes,
            recv_queued: self.rcv.ready_bytes,
            ofo_queued: self.rcv.ofo_bytes,
            bytes_acked: self.stats.bytes_acked,
            bytes_received: self.stats.bytes_received,
            segs_out: self.stats.segs_out,
            segs_in: self.stats.segs_in,
            retrans: self.stats.retrans,
            timeouts: self.stats.timeouts,
            fast_retrans: self.stats.fast_retrans,
            rto_retrans: self.stats.rto_retrans,
            loss_probes: self.stats.loss_probes,
            undos: self.stats.undos,
            recoveries: self.stats.recoveries,
            min_rtt: self.rtt.min_rtt(),
            congestion: self.cc.algorithm(),
            ca_state: self.snd.ca,
            sacked_out: self.snd.sacked_out,
            lost_out: self.snd.lost_out,
            retrans_out: self.snd.retrans_out,
            reordering_seen: self.snd.rack.reordering_seen,
        }
    }

    /// State a TIME-WAIT table needs to answer for this connection after it is dropped.
    pub fn time_wait_info(&self) -> TimeWaitInfo {
        TimeWaitInfo {
            snd_nxt: self.snd.nxt,
            rcv_nxt: self.rcv.nxt,
            ts_recent: if self.ts_ok { Some(self.rcv.ts_recent) } else { None },
            ts_recent_stamp: self.rcv.ts_recent_stamp,
            rcv_wscale: self.rcv_wscale,
            expires: self.timers.time_wait,
        }
    }

    // ----- internal helpers shared by the submodules -----

    /// `size_goal` (send-path §1, Linux `tcp_xmit_size_goal`): the MSS, or with
    /// segmentation offload the largest whole multiple of it that fits a `gso_max_size`
    /// IPv4 packet with maximal headers and half the largest window the peer offered.
    fn size_goal(&self) -> u32 {
        let mss = self.effective_mss();
        if !self.cfg.tso {
            return mss;
        }
        // IPv4 total length is a u16; leave room for the IPv4 header and the largest TCP
        // header.
        let mut goal = self.cfg.gso_max_size.min(65535).saturating_sub(20 + 60);
        // `tcp_bound_to_half_wnd`.
        if self.snd.max_window > 536 {
            goal = goal.min(self.snd.max_window / 2);
        }
        (goal / mss * mss).max(mss)
    }

    /// `mss_now` (Linux `tcp_current_mss`): the negotiated MSS bounded by the path MTU, less
    /// the options every segment carries (RFC 6691 §2, RFC 9293 §3.7.1: the MSS option
    /// counts no TCP options), bounded to half the largest window the peer offered so that
    /// small windows still move data (Linux `tcp_bound_to_half_wnd`).
    fn effective_mss(&self) -> u32 {
        let opts = if self.ts_ok { 12 } else { 0 };
        let mss = self.snd_mss.min(self.pmtu.mss()).saturating_sub(opts).max(pmtu::MIN_SND_MSS);
        let half = self.snd.max_window / 2;
        if half >= 64 { mss.min(half) } else { mss }
    }

    /// The send-buffer limit (`sk_sndbuf`): `sndbuf`, auto-tuned up to `sndbuf_max` as the
    /// congestion window grows (Linux `tcp_sndbuf_expand`: room for twice the window, since
    /// data stays charged until acknowledged).
    fn sndbuf(&self) -> u32 {
        match self.cfg.sndbuf_max {
            Some(max) => self.cc.cwnd().saturating_mul(2).clamp(self.cfg.sndbuf, max.max(self.cfg.sndbuf)),
            None => self.cfg.sndbuf,
        }
    }

    fn set_state(&mut self, shared: &mut Shared, new: State) {
        let old = self.state;
        if old == new {
            return;
        }
        match (old.counts_as_established(), new.counts_as_established()) {
            (false, true) => shared.counters.curr_estab += 1,
            (true, false) => shared.counters.curr_estab = shared.counters.curr_estab.saturating_sub(1),
            _ => {}
        }
        if matches!(old, State::SynSent | State::SynReceived) && new == State::Closed {
            shared.counters.attempt_fails += 1;
        }
        // An orphan stops counting when it is gone or only TIME-WAIT remains (Linux
        // destroys the socket then).
        let gone = |s: State| matches!(s, State::Closed | State::TimeWait);
        if self.orphaned && !gone(old) && gone(new) {
            shared.counters.orphans = shared.counters.orphans.saturating_sub(1);
        }
        tracing::trace!(local = %self.local, remote = %self.remote, from = %old, to = %new, "tcp state");
        self.state = new;
    }

    fn push_event(&mut self, ev: Event) {
        if let Event::Closed { reason } = ev {
            if self.close_reason.is_some() {
                return;
            }
            self.close_reason = Some(reason);
        }
        self.events.push_back(ev);
    }

    /// Moves to CLOSED and reports it.
    fn close_now(&mut self, shared: &mut Shared, reason: CloseReason) {
        self.set_state(shared, State::Closed);
        self.timers.clear();
        self.pending.syn = false;
        self.pending.ack = false;
        self.pending.extra_acks = 0;
        self.pending.sack_snapshots.clear();
        self.pending.window_probe = false;
        self.pending.keepalive_probe = false;
        self.pending.tlp = false;
        self.push_event(Event::Closed { reason });
    }

    /// Sends a reset where the peer may hold state and closes (`tcp_write_err` after
    /// `tcp_send_active_reset`).
    fn reset_and_close(&mut self, shared: &mut Shared, reason: CloseReason) {
        let (seq, ack) = (self.snd.nxt, self.rcv.nxt);
        self.queue_rst(RstSpec { seq, ack: Some(ack) });
        self.close_now(shared, reason);
    }

    fn queue_rst(&mut self, rst: RstSpec) {
        if self.pending.rsts.len() < MAX_PENDING_RSTS {
            self.pending.rsts.push(rst);
        }
    }

    /// A segment is about to change the SACK blocks so that an ACK owed from earlier
    /// segments would no longer tell the sender what it should (`before`: the blocks until
    /// now): that ACK goes out with them (Linux `tcp_sack_compress_send_ack`).
    fn flush_owed_ack(&mut self, before: SackBlocks) {
        if !self.pending.ack || self.pending.sack_snapshots.len() >= MAX_EXTRA_ACKS as usize {
            return;
        }
        // Room for all of them at once: a connection allocates this once, on its first
        // round with several new holes, and keeps it.
        self.pending.sack_snapshots.reserve_exact(MAX_EXTRA_ACKS as usize);
        self.pending.sack_snapshots.push(before);
        if self.pending.extra_acks > 0 {
            self.pending.extra_acks -= 1;
        } else {
            self.pending.ack = false;
        }
    }

    /// One more immediate ACK (duplicate or challenge ACK), each sent as its own segment.
    fn owe_ack(&mut self) {
        if self.pending.ack {
            self.pending.extra_acks = (self.pending.extra_acks + 1).min(MAX_EXTRA_ACKS);
        } else {
            self.pending.ack = true;
        }
    }

    /// The handshake is complete (SYN-SENT or SYN-RECEIVED -> ESTABLISHED).
    fn establish(&mut self, shared: &mut Shared, now: Instant) {
        if self.passive {
            shared.counters.passive_opens += 1;
        }
        self.timers.connect = None;
        // RFC 6928 §2: the initial window in segments of the MSS now negotiated (it only
        // shrinks: the window was sized for our own MSS).
        let iw = initial_window(self.cfg.initial_cwnd_segments, self.snd_mss);
        if iw < self.cc.cwnd() {
            self.cc = self.cfg.congestion.build(iw);
        }
        self.set_state(shared, State::Established);
        if self.snd.fin_queued {
            // close() / shutdown_write() in SYN-RECEIVED: the FIN goes out now.
            self.set_state(shared, State::FinWait1);
        }
        self.push_event(Event::Connected);
        self.rearm_keepalive(now);
    }

    fn rearm_keepalive(&mut self, now: Instant) {
        self.timers.keepalive = match self.keepalive {
            Some(ka) if self.state.is_synchronized() && self.state != State::TimeWait => {
                Some(if self.keepalive_sent == 0 { now + ka.idle } else { now + ka.interval })
            }
            _ => None,
        };
    }

    /// Records the options of the peer's SYN / SYN-ACK (RFC 9293 §3.7.1, RFC 7323 §2.2 and
    /// §3.2, RFC 2018 §2).
    fn negotiate(&mut self, syn: &TcpRepr, now: Instant) {
        let peer_mss = u32::from(syn.options.mss.unwrap_or(536)).max(64);
        self.snd_mss = peer_mss.min(u32::from(self.our_mss()));
        self.rcv.set_mss(self.snd_mss);
        match syn.options.window_scale {
            Some(ws) if self.cfg.window_scaling => {
                // RFC 7323 §2.3: a shift above 14 is used as 14.
                self.snd_wscale = ws.min(14);
                self.wscale_ok = true;
            }
            _ => {
                self.snd_wscale = 0;
                self.rcv_wscale = 0;
                self.wscale_ok = false;
            }
        }
        self.sack_ok = self.cfg.sack && syn.options.sack_permitted;
        match syn.options.timestamps {
            Some((tsval, _)) if self.cfg.timestamps => {
                self.ts_ok = true;
                self.rcv.set_ts_recent(tsval, now);
            }
            _ => self.ts_ok = false,
        }
    }

    /// Our timestamp clock: milliseconds of the caller's monotonic time (RFC 7323 §5.4).
    fn ts_now(now: Instant) -> u32 {
        // Truncation is the point: the timestamp clock wraps modulo 2^32.
        (now.as_millis() & 0xffff_ffff) as u32
    }
}

/// Options a SYN cookie carried (RFC 4987 §3.6, encoded with the timestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieOptions {
    /// The peer's MSS as recovered from the cookie.
    pub mss: u16,
    /// The peer's window-scale shift, if it offered one.
    pub wscale: Option<u8>,
    /// Whether the peer offered SACK.
    pub sack: bool,
}

/// What a TIME-WAIT table keeps about a closed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWaitInfo {
    /// Our next sequence number (for ACKs we still send).
    pub snd_nxt: SeqNum,
    /// The peer's next sequence number (after its FIN).
    pub rcv_nxt: SeqNum,
    /// Last timestamp seen from the peer, when negotiated.
    pub ts_recent: Option<u32>,
    /// When `ts_recent` was recorded.
    pub ts_recent_stamp: Instant,
    /// Our window scale (to keep advertising consistently).
    pub rcv_wscale: u8,
    /// When TIME-WAIT ends.
    pub expires: Option<Instant>,
}
