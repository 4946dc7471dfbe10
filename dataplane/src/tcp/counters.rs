//! TCP counters named after Linux `/proc/net/snmp` (`Tcp:`) and `/proc/net/netstat`
//! (`TcpExt:`), so operators can read them the way they read `netstat -s`.

macro_rules! counters {
    ($( $(#[$doc:meta])* $field:ident => $name:literal, )*) => {
        /// Engine-wide TCP counters (monotonic, except the `curr_estab` gauge).
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[$doc])* pub $field: u64, )*
        }

        impl Counters {
            /// `(Linux name, value)` for every counter, in a stable order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
                [$( ($name, self.$field), )*].into_iter()
            }
        }
    };
}

counters! {
    /// Transitions CLOSED -> SYN-SENT (connect attempts).
    active_opens => "ActiveOpens",
    /// Transitions LISTEN -> SYN-RECEIVED that completed the handshake.
    passive_opens => "PassiveOpens",
    /// SYN-SENT / SYN-RECEIVED -> CLOSED.
    attempt_fails => "AttemptFails",
    /// ESTABLISHED / CLOSE-WAIT -> CLOSED by a reset.
    estab_resets => "EstabResets",
    /// Connections currently in ESTABLISHED or CLOSE-WAIT (gauge).
    curr_estab => "CurrEstab",
    /// Segments received (including erroneous ones).
    in_segs => "InSegs",
    /// Segments sent, excluding retransmissions.
    out_segs => "OutSegs",
    /// Segments retransmitted.
    retrans_segs => "RetransSegs",
    /// Segments received in error (bad header, bad options, bad flag combinations).
    in_errs => "InErrs",
    /// Segments with a bad checksum.
    in_csum_errors => "InCsumErrors",
    /// Resets sent.
    out_rsts => "OutRsts",
    /// SYN cookies sent.
    syncookies_sent => "SyncookiesSent",
    /// Valid SYN cookies received.
    syncookies_recv => "SyncookiesRecv",
    /// Invalid SYN cookies received.
    syncookies_failed => "SyncookiesFailed",
    /// SYNs or third ACKs dropped because the accept queue was full.
    listen_overflows => "ListenOverflows",
    /// SYNs dropped at a listener for any reason.
    listen_drops => "ListenDrops",
    /// Challenge ACKs sent (RFC 5961).
    challenge_acks => "TCPChallengeACK",
    /// Challenge ACKs suppressed by the rate limit.
    challenge_acks_limited => "TCPChallengeACKLimited",
    /// Segments dropped by PAWS in a synchronized state (RFC 7323 §5).
    paws_estab_rejected => "PAWSEstabRejected",
    /// Segments dropped because their sequence numbers were outside the window.
    seq_out_of_window => "TCPOutOfWindow",
    /// Segments queued out of order.
    ofo_queue => "TCPOFOQueue",
    /// Out-of-order segments dropped for lack of queue space.
    ofo_drop => "TCPOFODrop",
    /// Out-of-order segments merged with or covered by queued ones.
    ofo_merge => "TCPOFOMerge",
    /// Times a connection's out-of-order queue was pruned from its highest sequence to
    /// free buffers (`tcp_prune_ofo_queue`): over its buffer budget, or engine-wide
    /// buffers nearly gone.
    ofo_pruned => "OfoPruned",
    /// In-order segments dropped for lack of buffers while unread data was queued before
    /// them (`tcp_data_queue`, `TCPRcvQDrop`).
    rcvq_drop => "TCPRcvQDrop",
    /// Received segments copied into the spare room of a neighbour's buffer when
    /// buffers were over budget (`tcp_collapse`, `tcp_collapse_ofo_queue`).
    rcv_collapsed => "TCPRcvCollapsed",
    /// Out-of-order segments copied into the spare room of the queued segment they
    /// continue on arrival (`tcp_ooo_try_coalesce`, `skb_try_coalesce`).
    rcv_coalesce => "TCPRcvCoalesce",
    /// Delayed ACKs sent by the delayed-ACK timer.
    delayed_acks => "DelayedACKs",
    /// Resets received in synchronized states that ended a connection.
    in_rsts => "TCPAbortOnReset",
    /// Segments retransmitted in fast recovery (SACK / duplicate ACKs / RACK; RFC 5681
    /// §3.2, RFC 6675, RFC 8985).
    fast_retrans => "TCPFastRetrans",
    /// Segments retransmitted after a retransmission timeout (RFC 6298 §5.4).
    rto_retrans => "TCPSlowStartRetrans",
    /// Tail loss probes sent (RFC 8985 §7).
    loss_probes => "TCPLossProbes",
    /// Tail losses repaired by a loss probe (RFC 8985 §7.4).
    loss_probe_recovery => "TCPLossProbeRecovery",
    /// ACK-stall probes: the first unacknowledged segment sent again after `2*SRTT` + 2 ms
    /// without an ACK where RFC 8985 §7 sends no tail loss probe (fast recovery, after a
    /// timeout, or with a probe already out). Strait's, not Linux's (`probe`).
    stall_probes => "TCPStallProbes",
    /// Fast-recovery episodes with SACK (RFC 6675).
    sack_recovery => "TCPSackRecovery",
    /// Fast-recovery episodes without SACK (RFC 6582 NewReno).
    reno_recovery => "TCPRenoRecovery",
    /// NewReno partial acknowledgements (RFC 6582 §3.2 step 4).
    reno_partial_acks => "TCPRenoPartialAck",
    /// Retransmission timeouts found spurious by timestamps (RFC 3522 Eifel).
    spurious_rtos => "TCPSpuriousRTOs",
    /// Window reductions undone after a spurious timeout.
    loss_undo => "TCPLossUndo",
    /// Fast recoveries undone at their end: timestamps showed the originals arrived
    /// (RFC 3522 applied to fast retransmit).
    full_undo => "TCPFullUndo",
    /// Window reductions undone because D-SACKs showed every retransmission was needless
    /// (RFC 3708).
    dsack_undo => "TCPDSACKUndo",
    /// D-SACK blocks received (RFC 2883).
    dsack_recv => "TCPDSACKRecv",
    /// SACK blocks rejected as invalid.
    sack_discard => "TCPSACKDiscard",
    /// The receiver discarded data it had SACKed (RFC 2018 §8).
    sack_reneging => "TCPSACKReneging",
    /// Reordering detected (RFC 8985 §6.2 step 3).
    sack_reorder => "TCPSACKReorder",
    /// SYNs and SYN-ACKs sent again: after a timeout, or answering a retransmitted SYN
    /// (Linux `tcp_retransmit_skb` and `tcp_rtx_synack`). Under a burst of connections
    /// this says how many handshakes waited a second or more for a lost or refused SYN.
    syn_retrans => "TCPSynRetrans",
    /// Retransmission timeouts (all of them; Linux counts those in the open state here
    /// and the others under the three `...Failures` counters below).
    timeouts => "TCPTimeouts",
    /// Retransmission timeouts during SACK fast recovery, or with SACKed data
    /// outstanding (the episode failed; Linux `tcp_retransmit_timer`).
    sack_failures => "TCPSackFailures",
    /// Retransmission timeouts during NewReno fast recovery or after duplicate ACKs.
    reno_failures => "TCPRenoFailures",
    /// Retransmission timeouts repeated while already recovering from one.
    loss_failures => "TCPLossFailures",
    /// Retransmissions found lost in their turn (RACK, RFC 8985 §6.2: a retransmission
    /// older than the most recently delivered segment) and sent again.
    lost_retransmit => "TCPLostRetransmit",
    /// Loss probes that retransmitted the last segment (no new data could go; RFC 8985
    /// §7.3); the other probes carry new data.
    loss_probe_retrans => "TCPLossProbeRetrans",
    /// Connections aborted after too many retransmissions or keepalive probes.
    abort_on_timeout => "TCPAbortOnTimeout",
    /// Connections aborted by `close()` with unread data (RFC 2525 §2.17).
    abort_on_close => "TCPAbortOnClose",
    /// Orphaned connections reset because there were too many orphans or buffers ran low
    /// (Linux `tcp_out_of_resources`).
    abort_on_memory => "TCPAbortOnMemory",
    /// Bare ACKs to a listener that sent no SYN cookie in the last two minutes, answered
    /// with a reset instead of being checked as cookies (Linux
    /// `tcp_synq_no_recent_overflow`).
    syncookies_not_recent => "TCPSynCookiesNotRecent",
    /// Duplicate ACKs not sent for out-of-window segments without data (rate limit).
    ack_skipped_seq => "TCPACKSkippedSeq",
    /// Duplicate ACKs not sent for PAWS-rejected segments without data (rate limit).
    ack_skipped_paws => "TCPACKSkippedPAWS",
    /// Connections the application has closed that are still sending or closing (gauge;
    /// Linux `/proc/net/sockstat` "orphan").
    orphans => "TCPOrphans",
    /// Zero-window probes sent.
    window_probes => "TCPWinProbe",
    /// Keepalive probes sent.
    keepalive_probes => "TCPKeepAlive",
    /// Segments ignored or dropped whose ACK acknowledged data not yet sent.
    ack_too_new => "TCPACKTooNew",
    /// Segments whose ACK was older than the largest window (RFC 5961 §5.2).
    ack_too_old => "TCPACKTooOld",
    /// Segments for which no connection or listener exists.
    no_port => "TCPNoPort",
    /// TIME-WAIT entries dropped because the table was full.
    time_wait_overflow => "TCPTimeWaitOverflow",
    /// TIME-WAIT entries reused for new connections (RFC 6191 / tcp_tw_reuse).
    time_wait_recycled => "TCPTimeWaitRecycled",
    /// Writes refused because the send buffer was full.
    sndbuf_full => "TCPSndBufFull",
    /// ICMP "fragmentation needed" quoting a segment of no connection (Linux `tcp_v4_err`
    /// counts `ICMP_MIB_INERRORS` when no socket matches the quote).
    icmp_in_errors => "IcmpInErrors",
    /// ICMP errors quoting a sequence number outside the send window (RFC 5927 §4.1).
    out_of_window_icmps => "OutOfWindowIcmps",
    /// ICMP "fragmentation needed" messages with a next-hop MTU below 68.
    icmp_bad_mtu => "TCPICMPBadMTU",
    /// Path-MTU reductions applied from ICMP (RFC 1191).
    pmtu_reductions => "TCPPMTUReductions",
    /// PLPMTUD probes sent (RFC 4821).
    mtu_probes => "TCPMTUPProbes",
    /// PLPMTUD probes acknowledged.
    mtu_probe_successes => "TCPMTUPSuccess",
    /// PLPMTUD probes lost.
    mtu_probe_failures => "TCPMTUPFail",
    /// Path MTU lowered because repeated timeouts suggested an ICMP black hole (Linux
    /// `tcp_mtu_probing`; Linux counts nothing there, the name is Strait's).
    mtu_black_holes => "TCPMTUPBlackHole",
    /// Times the engine entered memory pressure (buffers low; `tcp_enter_memory_pressure`).
    memory_pressures => "TCPMemoryPressures",
    /// SYNs refused with a RST because the pool was at its reserve (the name is Strait's).
    memory_pressure_refused => "TCPMemoryPressureRefused",
    /// Writes refused under memory pressure because the connection held its fair share
    /// of send buffers (Linux counts nothing there; the name is Strait's).
    memory_pressure_write_limited => "TCPMemoryPressureWriteLimited",
    /// Writes refused and received segments dropped because the connections together
    /// held the hard limit of buffers (Linux `tcp_mem[2]`, where it counts nothing; the
    /// name is Strait's).
    memory_limited => "TCPMemoryLimited",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iter_names_every_counter_with_linux_names() {
        let c = Counters { in_segs: 3, challenge_acks: 2, ..Counters::default() };
        let v: Vec<_> = c.iter().collect();
        assert!(v.contains(&("InSegs", 3)));
        assert!(v.contains(&("TCPChallengeACK", 2)));
        assert!(v.contains(&("CurrEstab", 0)));
        let mut names: Vec<_> = v.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), v.len(), "names are unique");
    }
}
