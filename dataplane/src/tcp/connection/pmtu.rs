//! Path MTU: ICMP "fragmentation needed" (RFC 1191, validated as RFC 5927 §4.1 says) and
//! packetization-layer probing (RFC 4821 / RFC 8899 style, Linux `tcp_mtu_probe`).
//!
//! MTUs here are IP packet sizes; the MSS they allow is `mtu - 40` over IPv4 and `mtu - 60`
//! over IPv6 (IP and TCP headers without options; the options every segment carries come
//! off in `effective_mss`). IPv6 routers never fragment: their ICMPv6 "packet too big"
//! (RFC 8201, Linux `tcp_v6_err`) comes here as IPv4's "fragmentation needed" does.

use super::{Connection, Segment, State};
use crate::tcp::config::{MtuProbing, TcpConfig};
use crate::tcp::payload::Payload;
use crate::tcp::seq::SeqNum;
use crate::tcp::shared::Shared;
use crate::time::Instant;

/// IPv4 and TCP headers without options.
const HEADERS: u32 = 40;
/// IPv6 and TCP headers without options.
const HEADERS_V6: u32 = 60;
/// IPv6's minimum link MTU (RFC 8200 §5): a "packet too big" reporting less is taken as
/// this (RFC 8201 §4; Linux `__ip6_rt_update_pmtu` raises it to `IPV6_MIN_MTU`).
pub(super) const IPV6_MIN_MTU: u32 = 1280;
/// The smallest MTU RFC 791 lets a link have; ICMP messages below it are bogus.
const MIN_LINK_MTU: u16 = 68;
/// The smallest path MTU an ICMP message can push us to (Linux `ip_rt_min_pmtu`), so that
/// forged messages cannot make us send tiny segments (RFC 5927 §7.1).
pub(super) const MIN_PMTU: u32 = 552;
/// The smallest MSS we send with (Linux `tcp_min_snd_mss`).
pub(super) const MIN_SND_MSS: u32 = 48;
/// Stop searching when the range is this narrow (Linux `tcp_probe_threshold`).
const PROBE_THRESHOLD: u32 = 8;
/// Segments of reordering tolerance a probe needs behind it (Linux `tp->reordering` = 3,
/// plus one): enough data follows the probe to detect its loss by duplicate ACKs.
const PROBE_TAIL_SEGMENTS: u32 = 4;
/// Probing needs a window of at least this many segments (Linux: `snd_cwnd < 11`).
const PROBE_MIN_CWND: u32 = 11;
/// RFC 1191 §7 plateau table, for routers that report no next-hop MTU.
const PLATEAUS: [u32; 9] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296];

/// Why an ICMP "fragmentation needed" was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PmtuError {
    /// No connection matches the quoted 4-tuple.
    #[error("no connection for the quoted segment")]
    UnknownConnection,
    /// The quoted sequence number is not in `[SND.UNA, SND.NXT]` (RFC 5927 §4.1): stale or
    /// forged.
    #[error("quoted sequence number outside the send window")]
    OutOfWindow,
    /// The reported MTU is below the RFC 791 minimum of 68.
    #[error("bogus next-hop MTU")]
    BadMtu,
    /// The MTU is not smaller than the one in use (RFC 1191 §6.3: never raise it from ICMP).
    #[error("MTU not smaller than the current path MTU")]
    NotSmaller,
}

/// An outstanding PLPMTUD probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct MtuProbe {
    pub start: SeqNum,
    pub end: SeqNum,
    /// The MTU the probe tests.
    pub mtu: u32,
}

/// Per-connection path-MTU state (Linux `icsk_mtup`).
#[derive(Debug, Clone)]
pub(super) struct PathMtu {
    /// The MTU segments are sized for now.
    pub mtu: u32,
    /// The interface MTU (our MSS + 40): the top of the search.
    pub max_mtu: u32,
    /// PLPMTUD on.
    pub probing: bool,
    /// Largest MTU known to work, smallest known not to (+1).
    pub search_low: u32,
    pub search_high: u32,
    pub probe: Option<MtuProbe>,
    /// When the search last settled (for re-probing after `mtu_probe_interval`).
    pub settled_at: Instant,
    /// IP and TCP headers without options: 40 over IPv4, 60 over IPv6.
    pub headers: u32,
    /// The floor of ICMP-reported MTUs: [`MIN_PMTU`] over IPv4, [`IPV6_MIN_MTU`] over IPv6.
    pub min_pmtu: u32,
}

impl PathMtu {
    /// Linux `tcp_mtup_init`: the search runs from `base_mss` to the interface MTU; with
    /// `mtu_probing = 2` it is on from the start and segments begin at `base_mss`, with
    /// `1` it waits for a black hole ([`Connection::mtu_black_hole`]).
    /// `ipv6`: the connection's family (its headers are 20 bytes longer and its MTU
    /// floor is 1280; Linux `tcp_v6_connect` / `tcp_v6_syn_recv_sock` set `icsk_ext_hdr_len`
    /// and the MSS from `tcp_v6_mss`).
    pub fn new(cfg: &TcpConfig, ipv6: bool, now: Instant) -> Self {
        let (headers, min_pmtu) = if ipv6 { (HEADERS_V6, IPV6_MIN_MTU) } else { (HEADERS, MIN_PMTU) };
        let max_mtu = u32::from(cfg.effective_mss_for(ipv6)) + headers;
        let base = (u32::from(cfg.base_mss).max(MIN_SND_MSS) + headers).min(max_mtu);
        let probing = cfg.mtu_probing == MtuProbing::Always;
        let mtu = if probing { base } else { max_mtu };
        PathMtu { mtu, max_mtu, probing, search_low: base, search_high: max_mtu, probe: None, settled_at: now, headers, min_pmtu }
    }

    /// The MSS the current MTU allows (no options).
    pub fn mss(&self) -> u32 {
        self.mtu.saturating_sub(self.headers)
    }
}

/// What gate 2 of the transmit loop decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ProbeOutcome {
    /// A probe went out.
    Sent,
    /// Wait: a probe is due but the window must drain first; send nothing now.
    Wait,
    /// No probe now; carry on with normal transmission.
    NotNow,
}

impl<P: Payload> Connection<P> {
    /// ICMP "fragmentation needed and DF set" for a segment of this connection (RFC 1191;
    /// Linux `tcp_v4_err` + `tcp_v4_mtu_reduced`). `seq` is the sequence number quoted in
    /// the ICMP payload and must lie in `[SND.UNA, SND.NXT]` (RFC 5927 §4.1); a
    /// `next_hop_mtu` of 0 (pre-RFC 1191 routers) takes the next plateau below the current
    /// MTU (RFC 1191 §7). The MSS shrinks and everything in flight is retransmitted at the
    /// new size at once, without a congestion response (`tcp_simple_retransmit`).
    pub fn handle_icmp_frag_needed(&mut self, shared: &mut Shared, seq: SeqNum, next_hop_mtu: u16) -> Result<u32, PmtuError> {
        if matches!(self.state, State::Closed | State::TimeWait) {
            return Err(PmtuError::UnknownConnection);
        }
        if seq.lt(self.snd.una) || seq.gt(self.snd.nxt) {
            shared.counters.out_of_window_icmps += 1;
            return Err(PmtuError::OutOfWindow);
        }
        let reported = match next_hop_mtu {
            0 => PLATEAUS.iter().copied().find(|&p| p < self.pmtu.mtu).unwrap_or(self.pmtu.min_pmtu),
            m if m < MIN_LINK_MTU => {
                shared.counters.icmp_bad_mtu += 1;
                return Err(PmtuError::BadMtu);
            }
            m => u32::from(m),
        };
        self.reduce_mtu(shared, reported)
    }

    /// ICMPv6 "packet too big" for a segment of this connection (RFC 8201; Linux
    /// `tcp_v6_err` + `tcp_v6_mtu_reduced`): `seq` is checked as for IPv4 (RFC 5927 §4.1);
    /// an MTU below IPv6's minimum of 1280 is taken as 1280 (RFC 8201 §4: a node must not
    /// reduce its estimate below it; `__ip6_rt_update_pmtu`). Returns the new path MTU.
    pub fn handle_icmpv6_packet_too_big(&mut self, shared: &mut Shared, seq: SeqNum, mtu: u32) -> Result<u32, PmtuError> {
        if matches!(self.state, State::Closed | State::TimeWait) {
            return Err(PmtuError::UnknownConnection);
        }
        if seq.lt(self.snd.una) || seq.gt(self.snd.nxt) {
            shared.counters.out_of_window_icmps += 1;
            return Err(PmtuError::OutOfWindow);
        }
        self.reduce_mtu(shared, mtu)
    }

    /// The IPv6 link MTU fell to `mtu` (a router advertised it, RFC 4861 §6.3.4; Linux
    /// `rt6_mtu_change`): an IPv6 connection whose path MTU is larger comes down to it as
    /// for a "packet too big", without a sequence number to check (the news is about the
    /// link, not a segment). Returns whether it came down.
    pub fn link_mtu_reduced(&mut self, shared: &mut Shared, mtu: u32) -> bool {
        if !self.local.is_ipv6() || matches!(self.state, State::Closed | State::TimeWait) {
            return false;
        }
        self.reduce_mtu(shared, mtu).is_ok()
    }

    /// `tcp_v4_mtu_reduced` / `tcp_v6_mtu_reduced`: the path MTU falls to `reported`
    /// (not below the family's floor) if that is smaller.
    fn reduce_mtu(&mut self, shared: &mut Shared, reported: u32) -> Result<u32, PmtuError> {
        let new_mtu = reported.max(self.pmtu.min_pmtu);
        if new_mtu >= self.pmtu.mtu {
            return Err(PmtuError::NotSmaller);
        }
        shared.counters.pmtu_reductions += 1;
        self.pmtu.mtu = new_mtu;
        self.pmtu.search_high = self.pmtu.search_high.min(new_mtu);
        self.pmtu.search_low = self.pmtu.search_low.min(new_mtu);
        self.pmtu.probe = None;
        // `tcp_simple_retransmit`: resend what is in flight at the new size, no cwnd cut.
        if self.state.is_synchronized() && self.snd.outstanding() > 0 {
            self.simple_retransmit();
        }
        Ok(new_mtu)
    }

    /// Repeated timeouts: perhaps an ICMP black hole (RFC 4821 §3, RFC 8899 §4.4; Linux
    /// `tcp_mtu_probing`, called from `tcp_write_timeout` once `tcp_retries1` = 3
    /// retransmissions went unanswered). With `mtu_probing` 1 the first time turns probing
    /// on, which sizes segments for the bottom of the search (`base_mss`); each further
    /// time (and with `mtu_probing` 2 already the first) halves the bottom, not below
    /// `base_mss` / `tcp_mtu_probe_floor` (48), then `tcp_sync_mss` applies it. Off (0):
    /// nothing. Returns whether the MTU came down.
    pub(super) fn mtu_black_hole(&mut self, shared: &mut Shared, now: Instant) -> bool {
        if self.cfg.mtu_probing == MtuProbing::Off {
            return false;
        }
        let p = &mut self.pmtu;
        if !p.probing {
            p.probing = true;
            p.settled_at = now;
        } else {
            let mss = (p.search_low.saturating_sub(p.headers) >> 1).min(u32::from(self.cfg.base_mss)).max(MIN_SND_MSS);
            p.search_low = mss + p.headers;
        }
        // `tcp_sync_mss` with `icsk_mtup.enabled`: segments no larger than the bottom of
        // the search; what was larger is sent again at the new size once the RTO's
        // retransmission goes (`tcp_enter_loss` marked it lost).
        let new_mtu = p.mtu.min(p.search_low);
        p.probe = None;
        if new_mtu >= p.mtu {
            return false;
        }
        p.mtu = new_mtu;
        shared.counters.mtu_black_holes += 1;
        true
    }

    /// Gate 2 of the transmit loop (`tcp_mtu_probe`): with PLPMTUD on, no probe out, no
    /// recovery in progress and a window of at least 11 segments, build one segment sized
    /// for the middle of the search range from unsent data — provided enough data follows
    /// it for its loss to be detected by duplicate ACKs — and send it.
    pub(super) fn mtu_probe(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) -> ProbeOutcome {
        let p = &mut self.pmtu;
        if !p.probing || p.probe.is_some() {
            return ProbeOutcome::NotNow;
        }
        // Settled: search again upwards after `mtu_probe_interval` (`tcp_mtu_check_reprobe`).
        if p.search_high.saturating_sub(p.search_low) < PROBE_THRESHOLD {
            if now.saturating_duration_since(p.settled_at) >= self.cfg.mtu_probe_interval {
                p.search_high = p.max_mtu;
                p.search_low = p.mtu;
                p.settled_at = now;
            }
            return ProbeOutcome::NotNow;
        }
        if self.snd.ca != super::CaState::Open || self.snd.dupacks > 0 {
            return ProbeOutcome::NotNow;
        }
        // SACK blocks would make the probe frame larger than the size it probes (and
        // `wire_mss` would cut it): probe once the receive side is in order again.
        if self.sack_ok && (!self.rcv.sacks.is_empty() || self.rcv.dsack.is_some()) {
            return ProbeOutcome::NotNow;
        }
        let mss = self.effective_mss();
        if self.cwnd_segments(mss) < PROBE_MIN_CWND {
            return ProbeOutcome::NotNow;
        }
        let probe_mtu = (self.pmtu.search_high + self.pmtu.search_low) / 2;
        let opts = mss_options(self.ts_ok);
        let probe_size = probe_mtu.saturating_sub(self.pmtu.headers + opts).min(self.snd_mss.saturating_sub(opts));
        if probe_size <= mss {
            return ProbeOutcome::NotNow;
        }
        let size_needed = probe_size.saturating_add(PROBE_TAIL_SEGMENTS.saturating_mul(mss));
        if self.snd.unsent_data() < size_needed || self.snd.wnd < size_needed {
            return ProbeOutcome::NotNow;
        }
        if self.snd.nxt.wrapping_add(size_needed).gt(self.snd.una.wrapping_add(self.snd.wnd)) {
            return ProbeOutcome::Wait;
        }
        let in_flight = self.in_flight(mss);
        if in_flight.saturating_add(2) > self.cwnd_segments(mss) {
            return if in_flight == 0 { ProbeOutcome::NotNow } else { ProbeOutcome::Wait };
        }
        let nxt = self.snd.nxt;
        let Some(idx) = self.snd.split_at_seq(nxt) else { return ProbeOutcome::NotNow };
        if self.snd.merge_unsent(idx, probe_size) != probe_size {
            return ProbeOutcome::NotNow;
        }
        // One frame larger than the MSS: no segmentation, counted as one packet.
        let Some(e) = self.snd.queue.get(idx) else { return ProbeOutcome::NotNow };
        let (payload, psh) = (e.data.clone(), e.psh);
        let end = nxt.wrapping_add(probe_size);
        let mut flags = crate::wire::tcp::Flags::ACK;
        if psh {
            flags |= crate::wire::tcp::Flags::PSH;
        }
        self.emit(shared, now, out, nxt, flags, payload, false);
        if let Some(e) = self.snd.queue.get_mut(idx) {
            e.pcount = 1;
            e.seg_size = probe_size;
            e.sent_at = now;
        }
        self.snd.nxt = end;
        self.snd.packets_out = self.snd.packets_out.saturating_add(1);
        if self.timers.rtx.is_none() {
            self.timers.rtx = Some(self.rtt.rto_deadline(now));
        }
        self.snd.last_send = now;
        self.pmtu.probe = Some(MtuProbe { start: nxt, end, mtu: probe_mtu });
        shared.counters.mtu_probes += 1;
        ProbeOutcome::Sent
    }

    /// The cumulative ACK reached `ack`: a probe it covers succeeded (`tcp_mtup_probe_success`).
    pub(super) fn mtu_probe_acked(&mut self, shared: &mut Shared, ack: SeqNum, now: Instant) {
        let Some(probe) = self.pmtu.probe else { return };
        if ack.ge(probe.end) {
            self.pmtu.probe = None;
            self.pmtu.search_low = probe.mtu;
            self.pmtu.mtu = probe.mtu.max(self.pmtu.mtu);
            shared.counters.mtu_probe_successes += 1;
            self.mtu_search_step_done(now);
        }
    }

    /// Loss was detected while a probe was outstanding at SND.UNA: the probe failed
    /// (`tcp_mtup_probe_failed`); the path keeps the old MTU.
    pub(super) fn mtu_probe_lost(&mut self, shared: &mut Shared, now: Instant) {
        let Some(probe) = self.pmtu.probe else { return };
        if self.snd.una.le(probe.start) || self.snd.una.lt(probe.end) {
            self.pmtu.probe = None;
            self.pmtu.search_high = probe.mtu.saturating_sub(1).max(self.pmtu.search_low);
            shared.counters.mtu_probe_failures += 1;
            self.mtu_search_step_done(now);
        }
    }

    fn mtu_search_step_done(&mut self, now: Instant) {
        if self.pmtu.search_high.saturating_sub(self.pmtu.search_low) < PROBE_THRESHOLD {
            self.pmtu.settled_at = now;
        }
    }
}

/// TCP option bytes every data segment carries (timestamps: 10, padded to 12).
pub(super) fn mss_options(ts: bool) -> u32 {
    if ts { 12 } else { 0 }
}
