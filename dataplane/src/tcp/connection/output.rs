//! Segment construction: [`Connection::poll_transmit`] and the header and options written
//! per transmission (send-path §3 step 8: timestamps and SACK blocks are per segment).

use super::{Connection, RstSpec, Segment, State};
use crate::tcp::payload::Payload;
use crate::tcp::seq::SeqNum;
use crate::tcp::shared::Shared;
use crate::time::Instant;
use crate::wire::tcp::{Flags, SackBlocks, TcpOptions, TcpRepr};

impl<P: Payload> Connection<P> {
    /// Produces every segment that is due: resets, SYN / SYN-ACK, retransmissions, new data
    /// through the send gates, probes and ACKs. Call after each batch of inputs.
    pub fn poll_transmit(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        // Resets are rare: the list is only taken (and its buffer dropped) when it holds one.
        if !self.pending.rsts.is_empty() {
            for rst in core::mem::take(&mut self.pending.rsts) {
                self.emit_rst(shared, rst, out);
            }
        }
        match self.state {
            State::Closed => {}
            State::SynSent | State::SynReceived => {
                if self.pending.syn {
                    self.send_syn(shared, now, out);
                }
                if self.state == State::SynReceived && (self.pending.ack || self.pending.extra_acks > 0) {
                    self.send_acks(shared, now, out);
                }
            }
            State::TimeWait => self.send_acks(shared, now, out),
            _ => {
                if self.pending.window_probe {
                    self.pending.window_probe = false;
                    self.send_window_probe(shared, now, out);
                }
                self.send_sack_snapshots(shared, now, out);
                self.write_xmit(shared, now, out);
                if self.pending.keepalive_probe {
                    self.pending.keepalive_probe = false;
                    shared.counters.keepalive_probes += 1;
                    let seq = self.snd.una.wrapping_sub(1);
                    self.emit(shared, now, out, seq, Flags::ACK, P::empty(), false);
                }
                self.send_acks(shared, now, out);
            }
        }
    }

    /// The ACKs owed with the SACK blocks of an earlier moment
    /// ([`Pending::sack_snapshots`](super::Pending)), oldest first, before anything that
    /// carries the current blocks.
    #[inline]
    fn send_sack_snapshots(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        // Checked where it is called (twice per transmit pass, nearly always with nothing
        // owed); the work itself stays out of line.
        if !self.pending.sack_snapshots.is_empty() {
            self.send_owed_sack_snapshots(shared, now, out);
        }
    }

    #[inline(never)]
    fn send_owed_sack_snapshots(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        let owed = self.pending.ack;
        let mut snapshots = core::mem::take(&mut self.pending.sack_snapshots);
        for &blocks in &snapshots {
            self.pending.sack_now = Some(blocks);
            self.pending.ack = true;
            let seq = self.snd.nxt;
            self.emit(shared, now, out, seq, Flags::ACK, P::empty(), false);
        }
        // The list keeps its room for the next round.
        snapshots.clear();
        self.pending.sack_snapshots = snapshots;
        self.pending.sack_now = None;
        self.pending.ack = owed;
    }

    /// A pure ACK if one is owed, plus any extra duplicate / challenge ACKs (after those
    /// owed with the blocks of an earlier moment, for a round that ended in another state,
    /// TIME-WAIT after a FIN, say).
    fn send_acks(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        self.send_sack_snapshots(shared, now, out);
        if self.pending.ack {
            let seq = self.snd.nxt;
            self.emit(shared, now, out, seq, Flags::ACK, P::empty(), false);
        }
        while self.pending.extra_acks > 0 {
            self.pending.extra_acks -= 1;
            let seq = self.snd.nxt;
            self.emit(shared, now, out, seq, Flags::ACK, P::empty(), false);
        }
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED), with our options (send-path §5).
    fn send_syn(&mut self, shared: &mut Shared, now: Instant, out: &mut impl FnMut(Segment<P>)) {
        self.pending.syn = false;
        let flags = if self.state == State::SynSent { Flags::SYN } else { Flags::SYN | Flags::ACK };
        let retransmit = self.syn_sends > 0;
        self.syn_sends += 1;
        if self.syn_sent_at.is_none() {
            self.syn_sent_at = Some(now);
        }
        let iss = self.snd.iss;
        self.emit(shared, now, out, iss, flags, P::empty(), retransmit);
        self.snd.nxt = iss.wrapping_add(1);
        // A SYN-ACK repeated for a retransmitted SYN leaves the timer alone (`tcp_check_req`).
        if self.timers.rtx.is_none() {
            self.timers.rtx = Some(self.rtt.rto_deadline(now));
        }
    }

    fn emit_rst(&mut self, shared: &mut Shared, rst: RstSpec, out: &mut impl FnMut(Segment<P>)) {
        let mut flags = Flags::RST;
        if rst.ack.is_some() {
            flags |= Flags::ACK;
        }
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq: rst.seq,
            ack: rst.ack.unwrap_or(SeqNum(0)),
            flags,
            window: 0,
            urgent: 0,
            options: TcpOptions::default(),
        };
        shared.counters.out_rsts += 1;
        shared.counters.out_segs += 1;
        self.stats.segs_out += 1;
        out(Segment::single(repr, P::empty()));
    }

    /// Builds and emits one segment; any segment with ACK satisfies a pending ACK.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit(
        &mut self,
        shared: &mut Shared,
        now: Instant,
        out: &mut impl FnMut(Segment<P>),
        seq: SeqNum,
        flags: Flags,
        payload: P,
        retransmit: bool,
    ) {
        self.emit_segment(shared, now, out, seq, flags, payload, retransmit, 0);
    }

    /// The receive buffer in force: under memory pressure the window stops opening (it
    /// never shrinks: RFC 9293 §3.8.6.2.2), as Linux's `tcp_select_window` clamps to what
    /// memory allows, and the buffer budget shrinks with it (`tcp_adjust_rcv_ssthresh`).
    pub(super) fn rcvbuf_now(&self, shared: &Shared) -> u32 {
        if shared.memory_pressure {
            self.cfg.rcvbuf.min(self.rcv.rcv_mss.saturating_mul(crate::tcp::shared::PRESSURE_RCVBUF_MSS).max(1))
        } else {
            self.cfg.rcvbuf
        }
    }

    /// [`emit`](Self::emit) for a segment that may be a super-segment: `gso_mss` is the
    /// segmentation size (0: one frame). Counters count frames, as Linux counts
    /// `tcp_skb_pcount`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn emit_segment(
        &mut self,
        shared: &mut Shared,
        now: Instant,
        out: &mut impl FnMut(Segment<P>),
        seq: SeqNum,
        flags: Flags,
        payload: P,
        retransmit: bool,
        gso_mss: u16,
    ) {
        let syn = flags.contains(Flags::SYN);
        let has_ack = flags.contains(Flags::ACK);
        let rcvbuf = self.rcvbuf_now(shared);
        let window = if syn {
            self.rcv.syn_window(rcvbuf)
        } else {
            self.rcv.select_window(rcvbuf, self.rcv_wscale, self.rcv.rcv_mss)
        };
        let mut options = TcpOptions::default();
        if syn {
            options.mss = Some(self.our_mss());
            // On a SYN-ACK, options are only echoed when the peer offered them.
            if self.wscale_ok {
                options.window_scale = Some(self.rcv_wscale);
            }
            options.sack_permitted = self.sack_ok;
            if self.ts_ok {
                let ecr = if has_ack { self.rcv.ts_recent } else { 0 };
                options.timestamps = Some((Self::ts_now(now), ecr));
            }
        } else {
            if self.ts_ok {
                options.timestamps = Some((Self::ts_now(now), self.rcv.ts_recent));
            }
            // An ACK owed from an earlier moment carries that moment's blocks, less those
            // RCV.NXT has reached since (below the ACK they would read as D-SACKs).
            let snapshot = self.pending.sack_now.take();
            let dsack = if self.cfg.dsack && snapshot.is_none() { self.rcv.dsack.take() } else { None };
            if self.sack_ok && has_ack && (snapshot.is_some() || !self.rcv.sacks.is_empty() || dsack.is_some()) {
                // RFC 2018 §3: at most 3 blocks fit next to a timestamp option, 4 without;
                // a D-SACK block goes first, once (RFC 2883 §4).
                let max = if self.ts_ok { 3 } else { 4 };
                let mut blocks = SackBlocks::new();
                if let Some((left, right)) = dsack {
                    blocks.push(left, right);
                }
                let from = snapshot.unwrap_or_else(|| self.rcv.sack_blocks(max - blocks.len()));
                for &(left, right) in from.iter().filter(|&&(l, _)| l.gt(self.rcv.nxt)) {
                    if blocks.len() < max {
                        blocks.push(left, right);
                    }
                }
                options.sack_blocks = blocks;
            }
        }
        let repr = TcpRepr {
            src_port: self.local.port(),
            dst_port: self.remote.port(),
            seq,
            ack: if has_ack { self.rcv.nxt } else { SeqNum(0) },
            flags,
            window,
            urgent: 0,
            options,
        };
        if has_ack {
            let owed = self.pending.ack || self.timers.delack.is_some();
            self.rcv.delack.on_ack_sent(owed, self.ack_limits());
            self.pending.ack = false;
            self.timers.delack = None;
        }
        if !payload.is_empty() {
            self.rcv.delack.on_data_sent(now);
        }
        let gso_mss = self.wire_mss(&repr, payload.len(), gso_mss);
        let seg = Segment { repr, payload, mss: gso_mss };
        let frames = u64::try_from(seg.frame_count()).unwrap_or(1);
        if retransmit {
            shared.counters.retrans_segs += frames;
            self.stats.retrans += frames;
        } else {
            shared.counters.out_segs += frames;
        }
        self.stats.segs_out += frames;
        out(seg);
    }
}

impl<P: Payload> Connection<P> {
    /// The segmentation size for a segment of `len` bytes leaving with header `repr`,
    /// given the one it was sized with (`gso_mss`, 0: one frame). Segments are sized for
    /// the options every segment carries (`effective_mss`: timestamps); one that leaves
    /// with more (SACK blocks, RFC 2018 §3) carries that much less payload per frame, or
    /// its frames would exceed the MTU (Linux `tcp_current_mss` takes the same delta off
    /// `mss_now`; RFC 9293 §3.7.1: the MSS counts no options). Such a segment then leaves
    /// as a super-segment of more, smaller frames.
    pub(super) fn wire_mss(&self, repr: &TcpRepr, len: usize, gso_mss: u16) -> u16 {
        // A segment other than a SYN carries at most timestamps and SACK blocks: without
        // blocks its options are the usual ones (no header length to work out).
        if repr.options.sack_blocks.is_empty() && !repr.flags.contains(Flags::SYN) {
            return gso_mss;
        }
        let usual = crate::wire::tcp::HEADER_LEN + if self.ts_ok { 12 } else { 0 };
        let extra = repr.header_len().saturating_sub(usual);
        if extra == 0 || len == 0 || repr.flags.contains(Flags::SYN) {
            return gso_mss;
        }
        let fits = usize::try_from(self.effective_mss()).unwrap_or(usize::MAX).saturating_sub(extra).max(1);
        let fits = u16::try_from(fits).unwrap_or(u16::MAX);
        match gso_mss {
            0 if len > usize::from(fits) => fits,
            0 => 0,
            m => m.min(fits),
        }
    }
}
