//! Scripted loss recovery and congestion control: initial and restart windows (RFC 6928,
//! RFC 5681 §4.1), RTO backoff and Karn's rule (RFC 6298), spurious-RTO undo (RFC 3522),
//! F-RTO (RFC 5682), SACK recovery (RFC 2018, RFC 6675), D-SACK (RFC 2883), NewReno
//! (RFC 5681 §3.2, RFC 6582), PRR (RFC 6937) and RACK-TLP (RFC 8985).
//!
//! Every script opens with a 20 ms handshake (SRTT 20 ms, RTO at its 200 ms floor) and
//! writes at t = 30 ms; with timestamps the MSS in use is 1448 bytes. Segment `k` of a
//! write starting at sequence 1 is `1 + 1448k .. 1 + 1448(k+1)`.

mod tcp_script;

use dataplane::tcp::congestion::Algorithm;
use dataplane::tcp::connection::CaState;
use dataplane::tcp::{ConnId, ConnInfo, TcpConfig};
use dataplane::time::{Duration, Instant};
use tcp_script::{script_config, Script};

const MSS: u32 = 1448;

/// Start of segment `k`.
fn seg(k: u32) -> u32 {
    1 + MSS * k
}

/// A passive open with a 20 ms handshake. `opts` are the peer's SYN options.
fn open_with(cfg: TcpConfig, opts: &str) -> (Script, ConnId) {
    let mut s = Script::new(cfg);
    let l = s.listen();
    s.inject(0, &format!("S 0:0(0) win 65535 <{opts}>"));
    s.expect("S. 0:0(0) ack 1");
    let ts = if opts.contains("TS") { " <TS val 120 ecr 0>" } else { "" };
    s.inject(20, &format!(". 1 ack 1 win 512{ts}"));
    s.expect_nothing();
    let id = s.engine.accept(l).unwrap_or_else(|| panic!("nothing to accept"));
    s.pump();
    (s, id)
}

/// The usual Linux-like peer: MSS 1460, SACK, timestamps, window scaling.
fn open(cfg: TcpConfig) -> (Script, ConnId) {
    open_with(cfg, "mss 1460,sackOK,TS val 100 ecr 0,wscale 7")
}

fn info(s: &Script, id: ConnId) -> ConnInfo {
    s.engine.info(id).unwrap_or_else(|e| panic!("{e}"))
}

/// At `t`, the peer acknowledges up to `ack`, echoing `ecr`, with SACK blocks `sack`
/// (`"a:b c:d"`, relative).
fn ack(s: &mut Script, t: u64, ack: u32, ecr: u64, sack: &str) {
    let sack = if sack.is_empty() { String::new() } else { format!(",sack {sack}") };
    s.inject(t, &format!(". 1 ack {ack} win 512 <TS val {} ecr {ecr}{sack}>", t + 100));
}

/// The next segment is data segment `k` (PSH when `psh`).
fn expect_seg(s: &mut Script, k: u32, psh: bool) {
    let f = if psh { "P." } else { "." };
    s.expect(&format!("{f} {}:{}({MSS}) ack 1", seg(k), seg(k + 1)));
}

/// Writes `segments` full segments at the current time.
fn write_segments(s: &mut Script, id: ConnId, segments: u32) {
    let n = (segments * MSS) as usize;
    assert_eq!(s.write(id, &vec![7u8; n]), n);
}

/// Consumes and counts what was sent.
fn sent_count(s: &mut Script) -> usize {
    let n = s.out.len();
    s.out.clear();
    n
}

#[test]
fn initial_window_10() {
    let (mut s, id) = open(script_config());
    s.advance_to(30);
    write_segments(&mut s, id, 20);
    // RFC 6928: ten segments, then the window is full.
    for k in 0..10 {
        expect_seg(&mut s, k, false);
    }
    s.expect_nothing();
    assert_eq!(info(&s, id).packets_in_flight, 10);
    // One acknowledged: slow start adds one segment, so two more go.
    ack(&mut s, 50, seg(1), 30, "");
    expect_seg(&mut s, 10, false);
    expect_seg(&mut s, 11, false);
    s.expect_nothing();

    // A peer announcing MSS 536: the initial window is ten of its segments.
    let (mut s, id) = open_with(script_config(), "mss 536,wscale 7");
    s.advance_to(30);
    assert_eq!(s.write(id, &[1u8; 20 * 536]), 20 * 536);
    assert_eq!(sent_count(&mut s), 10);
    assert_eq!(info(&s, id).cwnd, 10 * 536);
}

#[test]
fn idle_restart() {
    let (mut s, id) = open(script_config());
    s.advance_to(30);
    write_segments(&mut s, id, 10);
    assert_eq!(sent_count(&mut s), 10);
    ack(&mut s, 50, seg(10), 30, "");
    // Slow start (HyStart++: at most 8 segments per ACK): 10 + 8 = 18 segments.
    let grown = info(&s, id).cwnd;
    assert_eq!(grown / MSS, 18);
    // 30 ms after the last send is not idle: the grown window is used.
    s.advance_to(60);
    write_segments(&mut s, id, 18);
    assert_eq!(sent_count(&mut s), 18);
    ack(&mut s, 80, seg(28), 60, "");
    assert!(info(&s, id).cwnd > grown);
    // Idle for longer than the RTO (RFC 5681 §4.1): restart from the initial window.
    s.advance_to(1000);
    write_segments(&mut s, id, 20);
    assert_eq!(sent_count(&mut s), 10);
    assert_eq!(info(&s, id).cwnd, 10 * MSS);
}

#[test]
fn rto_backoff_and_reset() {
    let (mut s, id) = open(script_config());
    s.advance_to(30);
    s.write(id, &[1u8; 100]);
    s.expect("P. 1:101(100) ack 1");
    // RTO = SRTT + max(4 RTTVAR, min RTO) = 20 + 200 ms (Linux `__tcp_set_rto`), doubled
    // by each timeout (RFC 6298 §5.5): 220, 440, 880 ms.
    s.expect_at(250, "P. 1:101(100) ack 1");
    s.expect_at(690, "P. 1:101(100) ack 1");
    s.expect_at(1570, "P. 1:101(100) ack 1");
    assert_eq!(info(&s, id).rto, Duration::from_millis(1760));
    assert_eq!(s.engine.counters().timeouts, 3);
    // New data acknowledged (a 20 ms sample: SRTT 20, RTTVAR 7.5): the backoff is gone.
    ack(&mut s, 1590, 101, 1570, "");
    assert_eq!(info(&s, id).rto, Duration::from_millis(220));
    s.advance_to(1600);
    s.write(id, &[2u8; 100]);
    s.expect("P. 101:201(100) ack 1");
    s.expect_at(1820, "P. 101:201(100) ack 1");

    // Bounds are configurable: min 300 ms (RTO 20 + 300), max 1 s.
    let cfg = TcpConfig { min_rto: Duration::from_millis(300), max_rto: Duration::from_secs(1), ..script_config() };
    let (mut s, id) = open(cfg);
    s.advance_to(30);
    s.write(id, &[1u8; 100]);
    s.expect("P. 1:101(100) ack 1");
    s.expect_at(350, "P. 1:101(100) ack 1");
    s.expect_at(990, "P. 1:101(100) ack 1");
    s.expect_at(1990, "P. 1:101(100) ack 1");
    s.expect_at(2990, "P. 1:101(100) ack 1");
    assert_eq!(info(&s, id).rto, Duration::from_secs(1));
}

#[test]
fn karn_ignores_retransmitted_samples() {
    // No timestamps: RTT samples come from timing one segment (RFC 6298 §3).
    let (mut s, id) = open_with(script_config(), "mss 1460,sackOK,wscale 7");
    assert_eq!(info(&s, id).srtt, Some(Duration::from_millis(20)));
    s.advance_to(30);
    s.write(id, &[1u8; 100]);
    s.expect("P. 1:101(100) ack 1");
    s.expect_at(250, "P. 1:101(100) ack 1");
    // The ACK cannot tell which transmission it answers: no sample (Karn's rule).
    s.inject(600, ". 1 ack 101 win 512");
    assert_eq!(info(&s, id).srtt, Some(Duration::from_millis(20)));
    // An unambiguous ACK 50 ms after the send is sampled: 7/8 * 20 + 1/8 * 50.
    s.advance_to(700);
    s.write(id, &[2u8; 100]);
    s.expect("P. 101:201(100) ack 1");
    s.inject(750, ". 1 ack 201 win 512");
    assert_eq!(info(&s, id).srtt, Some(Duration::from_micros(23_750)));
}

#[test]
fn spurious_rto_undo() {
    let spurious = |ecr: u64| {
        let (mut s, id) = open(script_config());
        s.advance_to(30);
        write_segments(&mut s, id, 5);
        assert_eq!(sent_count(&mut s), 5);
        s.expect_at(250, ". 1:1449(1448) ack 1 <TS val 250 ecr 120>");
        assert_eq!(info(&s, id).cwnd, MSS);
        assert_eq!(info(&s, id).ca_state, CaState::Loss);
        ack(&mut s, 260, seg(5), ecr, "");
        (s, id)
    };
    // The ACK echoes the original transmission's timestamp (30 < 250): the originals
    // were only delayed (RFC 3522). The window before the timeout comes back.
    let (mut s, id) = spurious(30);
    let c = s.engine.counters();
    assert_eq!((c.spurious_rtos, c.loss_undo, c.rto_retrans), (1, 1, 1));
    let i = info(&s, id);
    assert_eq!((i.ssthresh, i.ca_state), (u32::MAX, CaState::Open));
    // Restored (and, being cwnd-limited, grown by slow start on this ACK).
    assert!(i.cwnd >= 10 * 1460, "{i:?}");
    // ... so a full initial window goes out at once.
    write_segments(&mut s, id, 10);
    assert_eq!(sent_count(&mut s), 10);

    // Echoing the retransmission (250): a real loss; no undo.
    let (s, id) = spurious(250);
    assert_eq!(s.engine.counters().spurious_rtos, 0);
    let i = info(&s, id);
    assert!(i.cwnd < 10 * 1460 && i.ssthresh < u32::MAX, "reduction kept: {i:?}");
}

#[test]
fn sack_recovery_with_holes() {
    let (mut s, id) = open(script_config());
    s.advance_to(30);
    write_segments(&mut s, id, 10);
    assert_eq!(sent_count(&mut s), 10);
    // Segments 1 and 4 are lost. Two SACKed above the first hole is under DupThresh.
    ack(&mut s, 50, seg(1), 30, &format!("{}:{}", seg(2), seg(4)));
    s.expect_nothing();
    // Seven SACKed: both holes are lost (RFC 8985 with no reordering seen: zero window;
    // RFC 6675 `IsLost` agrees) and are retransmitted in order.
    ack(&mut s, 51, seg(1), 30, &format!("{}:{} {}:{}", seg(2), seg(4), seg(5), seg(10)));
    s.expect(&format!(". {}:{}({MSS}) ack 1", seg(1), seg(2)));
    s.expect(&format!(". {}:{}({MSS}) ack 1", seg(4), seg(5)));
    s.expect_nothing();
    let i = info(&s, id);
    assert_eq!((i.ca_state, i.sacked_out, i.lost_out, i.retrans_out), (CaState::Recovery, 7, 2, 2));
    // CUBIC: ssthresh = 0.7 * 11 segments' worth of window.
    assert_eq!(i.ssthresh, 11_233);
    // The first hole repaired; the second still out.
    ack(&mut s, 71, seg(4), 51, &format!("{}:{}", seg(5), seg(10)));
    s.expect_nothing();
    assert_eq!(info(&s, id).ca_state, CaState::Recovery);
    ack(&mut s, 72, seg(10), 51, "");
    let i = info(&s, id);
    assert_eq!((i.ca_state, i.sacked_out, i.lost_out, i.retrans_out), (CaState::Open, 0, 0, 0));
    assert!(i.cwnd >= i.ssthresh);
    let c = s.engine.counters();
    assert_eq!((c.sack_recovery, c.fast_retrans, c.timeouts, c.retrans_segs), (1, 2, 0, 2));
    // A block beyond SND.NXT is rejected and counted.
    ack(&mut s, 80, seg(10), 51, "50000:60000");
    assert_eq!(s.engine.counters().sack_discard, 1);
}

#[test]
fn dsack() {
    let (mut s, id) = open(script_config());
    s.advance_to(30);
    write_segments(&mut s, id, 10);
    assert_eq!(sent_count(&mut s), 10);
    // Segment 0 is late; three SACKed above it: retransmitted.
    ack(&mut s, 50, 1, 30, &format!("{}:{}", seg(1), seg(4)));
    expect_seg(&mut s, 0, false);
    assert_eq!(info(&s, id).ca_state, CaState::Recovery);
    // The original arrives, then the retransmission, which the receiver reports as a
    // duplicate: a D-SACK below the cumulative ACK (RFC 2883 §4.1).
    ack(&mut s, 51, seg(4), 30, "");
    ack(&mut s, 52, seg(4), 50, &format!("1:{}", seg(1)));
    let c = s.engine.counters();
    assert_eq!((c.dsack_recv, c.dsack_undo), (1, 1));
    // Every retransmission was needless: the reduction is undone (RFC 3708).
    let i = info(&s, id);
    assert_eq!(i.ca_state, CaState::Open);
    assert!(i.cwnd >= 10 * 1460, "window restored: {i:?}");
    assert_eq!(i.ssthresh, u32::MAX);
}

/// No SACK, NewReno: ten segments out, segment 1 lost, 15 written in all. Returns after
/// the third duplicate ACK.
fn reno_into_recovery() -> (Script, ConnId) {
    let cfg = TcpConfig { congestion: Algorithm::NewReno, ..script_config() };
    let (mut s, id) = open_with(cfg, "mss 1460,TS val 100 ecr 0,wscale 7");
    assert!(!info(&s, id).sack);
    s.advance_to(30);
    write_segments(&mut s, id, 15);
    assert_eq!(sent_count(&mut s), 10);
    // Segment 0 acknowledged: slow start opens the window by one, two more go.
    ack(&mut s, 50, seg(1), 30, "");
    expect_seg(&mut s, 10, false);
    expect_seg(&mut s, 11, false);
    // Duplicate ACKs 1 and 2: limited transmit (RFC 3042) sends one new segment each.
    ack(&mut s, 51, seg(1), 30, "");
    expect_seg(&mut s, 12, false);
    ack(&mut s, 52, seg(1), 30, "");
    expect_seg(&mut s, 13, false);
    s.expect_nothing();
    // The third: fast retransmit of the segment at SND.UNA (RFC 5681 §3.2).
    ack(&mut s, 53, seg(1), 30, "");
    expect_seg(&mut s, 1, false);
    s.expect_nothing();
    (s, id)
}

#[test]
fn fast_retransmit_three_dupacks_no_sack() {
    let (s, id) = reno_into_recovery();
    let c = s.engine.counters();
    assert_eq!((c.reno_recovery, c.fast_retrans, c.sack_recovery), (1, 1, 0));
    let i = info(&s, id);
    assert_eq!(i.ca_state, CaState::Recovery);
    // RFC 5681 equation (4): half the flight of 13 segments less the two sent by limited
    // transmit (§3.2 step 2: they "MUST NOT be included"): half of cwnd, which is the
    // initial 10 x 1460 bytes plus the 1448 that slow start added.
    assert_eq!(i.ssthresh, (10 * 1460 + MSS) / 2);
}

#[test]
fn newreno_partial_ack() {
    let (mut s, id) = reno_into_recovery();
    // The retransmission and segment 2 arrive: a partial ACK; segment 3 is the next hole
    // and is retransmitted at once (RFC 6582 §3.2 step 4).
    ack(&mut s, 73, seg(3), 53, "");
    expect_seg(&mut s, 3, false);
    s.expect_nothing();
    assert_eq!(s.engine.counters().reno_partial_acks, 1);
    assert_eq!(info(&s, id).ca_state, CaState::Recovery);
    // The full ACK (everything sent when recovery began) ends it (step 3): the window
    // deflates to ssthresh and new data flows again.
    ack(&mut s, 93, seg(14), 73, "");
    let i = info(&s, id);
    assert_eq!(i.ca_state, CaState::Open);
    assert!(i.cwnd >= i.ssthresh && i.cwnd <= i.ssthresh + MSS, "{i:?}");
    expect_seg(&mut s, 14, true);
    assert_eq!(s.engine.counters().fast_retrans, 2);
}

#[test]
fn prr_send_quota() {
    let (mut s, id) = open(script_config());
    s.advance_to(30);
    write_segments(&mut s, id, 30);
    assert_eq!(sent_count(&mut s), 10);
    // Segment 0 lost. The first two SACKs let one new segment out each (RFC 3042 through
    // the pipe: SACKed segments have left the network).
    ack(&mut s, 50, 1, 30, &format!("{}:{}", seg(1), seg(2)));
    expect_seg(&mut s, 10, false);
    ack(&mut s, 51, 1, 30, &format!("{}:{}", seg(1), seg(3)));
    expect_seg(&mut s, 11, false);
    // The third: recovery. RecoverFS = 12 in flight, ssthresh = 7 segments (CUBIC
    // β = 0.7 of 10); pipe 8 > ssthresh: sndcnt = ceil(1 * 7 / 12) - 0 = 1: the
    // retransmission only.
    ack(&mut s, 52, 1, 30, &format!("{}:{}", seg(1), seg(4)));
    expect_seg(&mut s, 0, false);
    s.expect_nothing();
    // Then, per SACKed segment, while pipe > ssthresh the proportional part:
    // ceil(prr_delivered * 7 / 12) - prr_out = 1, then 0 (pipe 8 -> 8 -> 7); once pipe
    // has come down to ssthresh, PRR-SSRB keeps it there: nothing at pipe 7, then one
    // segment per segment delivered.
    let mut pattern = Vec::new();
    let mut pipes = Vec::new();
    for (i, t) in (53..58).enumerate() {
        ack(&mut s, t, 1, 30, &format!("{}:{}", seg(1), seg(5 + i as u32)));
        pattern.push(sent_count(&mut s));
        pipes.push(info(&s, id).packets_in_flight);
    }
    assert_eq!(pattern, vec![1, 0, 0, 1, 1]);
    assert_eq!(pipes, vec![9, 8, 7, 7, 7]);
    assert_eq!(info(&s, id).ssthresh / MSS, 7);
    assert_eq!(info(&s, id).ca_state, CaState::Recovery);
}

#[test]
fn rack_reordering_window() {
    let sent = || {
        let (mut s, id) = open(script_config());
        s.advance_to(30);
        write_segments(&mut s, id, 4);
        assert_eq!(sent_count(&mut s), 4);
        // Segment 1 SACKed: segment 0 was sent before it and is outstanding. RACK waits
        // RACK.rtt (20 ms) + reo_wnd (min_RTT / 4 = 5 ms) from its transmission.
        ack(&mut s, 50, 1, 30, &format!("{}:{}", seg(1), seg(2)));
        s.expect_nothing();
        (s, id)
    };
    // Reordering: segment 0 arrives within the window; nothing is retransmitted.
    let (mut s, id) = sent();
    ack(&mut s, 52, seg(2), 30, "");
    s.advance_to(100);
    s.expect_nothing();
    assert!(info(&s, id).reordering_seen);
    assert_eq!(s.engine.counters().sack_reorder, 1);
    assert_eq!(s.engine.counters().retrans_segs, 0);

    // Loss: the reordering timer marks it lost at 30 + 20 + 5 = 55 ms.
    let (mut s, id) = sent();
    s.advance_to(54);
    s.expect_nothing();
    s.expect_at(55, &format!(". 1:{}({MSS}) ack 1", seg(1)));
    assert_eq!(info(&s, id).ca_state, CaState::Recovery);
    assert_eq!(s.engine.counters().fast_retrans, 1);
    assert_eq!(s.engine.counters().timeouts, 0);
    assert_eq!(s.now, Instant::from_millis(55));
}

/// RFC 8985 §6.2 step 2: a retransmission's delivery updates `RACK.xmit_ts` unless it was
/// acknowledged faster than the minimum RTT (then the original probably arrived). The
/// minimum must be the path's: here the handshake took 20 ms but the data path's RTT is
/// 10 ms, and the retransmission's 12 ms RTT is genuine. Were it ignored, segment 4 (sent
/// after the originals, before the retransmission, and lost) would never be judged by
/// RACK, and only the RTO would repair it (the simulator's lost-tail RTOs at 5 % loss).
#[test]
fn rack_judges_by_delivered_retransmission_faster_than_handshake_rtt() {
    let (mut s, id) = open(script_config());
    s.advance_to(30);
    write_segments(&mut s, id, 4);
    assert_eq!(sent_count(&mut s), 4);
    s.advance_to(35);
    write_segments(&mut s, id, 1);
    assert_eq!(sent_count(&mut s), 1);
    // Segment 0 lost, 1-3 SACKed 10 ms after they were sent: RACK marks 0 lost at once.
    ack(&mut s, 40, 1, 30, &format!("{}:{}", seg(1), seg(4)));
    s.expect(&format!(". 1:{}({MSS}) ack 1", seg(1)));
    s.expect_nothing();
    assert_eq!(info(&s, id).ca_state, CaState::Recovery);
    // The retransmission is acknowledged 12 ms later (its timestamp echoed); segment 4,
    // sent at 35 ms, is still missing: RACK (RTT 12 ms from the retransmission) finds it
    // lost at 35 + 12 = 47 ms, so it goes out now, not at the RTO.
    ack(&mut s, 52, seg(4), 40, "");
    s.expect(&format!("P. {}:{}({MSS}) ack 1", seg(4), seg(5)));
    ack(&mut s, 64, seg(5), 52, "");
    s.advance_to(1000);
    s.expect_nothing();
    let c = s.engine.counters();
    assert_eq!((c.timeouts, c.fast_retrans, c.lost_retransmit), (0, 2, 0));
    assert_eq!(info(&s, id).ca_state, CaState::Open);
}

#[test]
fn tlp_probe_after_tail_loss() {
    let cfg = TcpConfig { tlp: true, ..script_config() };
    let (mut s, id) = open(cfg);
    s.advance_to(30);
    write_segments(&mut s, id, 5);
    assert_eq!(sent_count(&mut s), 5);
    // The last two segments are lost: no SACK can ever trigger recovery.
    ack(&mut s, 50, seg(3), 30, "");
    s.expect_nothing();
    // PTO = 2 * SRTT + 2 ms = 42 ms after the ACK (RFC 8985 §7.2; Linux
    // `tcp_schedule_loss_probe` adds `TCP_TIMEOUT_MIN` with more than one segment out), long
    // before the RTO (250): the last segment is sent again as the probe.
    s.advance_to(91);
    s.expect_nothing();
    s.expect_at(92, &format!("P. {}:{}({MSS}) ack 1", seg(4), seg(5)));
    assert_eq!(s.engine.counters().loss_probes, 1);
    // Its SACK makes RACK find segment 3 lost: fast recovery, no timeout.
    ack(&mut s, 112, seg(3), 92, &format!("{}:{}", seg(4), seg(5)));
    expect_seg(&mut s, 3, false);
    s.expect_nothing();
    ack(&mut s, 130, seg(5), 110, "");
    s.advance_to(1000);
    s.expect_nothing();
    let c = s.engine.counters();
    assert_eq!((c.timeouts, c.fast_retrans, c.sack_recovery), (0, 1, 1));
    assert_eq!(info(&s, id).ca_state, CaState::Open);
}

/// RFC 8985 §7.4.2 as Linux `tcp_process_tlp_ack` does it: only a D-SACK of the probe
/// itself shows that the original arrived too. Here the probe repaired a lost last segment,
/// and the ACK that moves past it happens to carry a D-SACK of other data (segment 3, which
/// the network duplicated): the repair still gets its congestion response.
#[test]
fn tlp_repair_counts_despite_a_dsack_of_other_data() {
    let cfg = TcpConfig { tlp: true, ..script_config() };
    let (mut s, id) = open(cfg);
    s.advance_to(30);
    write_segments(&mut s, id, 5);
    assert_eq!(sent_count(&mut s), 5);
    // Segment 4 is lost, and so is the ACK of segment 3.
    ack(&mut s, 50, seg(3), 30, "");
    s.expect_nothing();
    // PTO (2 * SRTT + 2 ms) later the probe resends segment 4; its ACK covers everything.
    s.expect_at(92, &format!("P. {}:{}({MSS}) ack 1", seg(4), seg(5)));
    ack(&mut s, 110, seg(5), 92, "");
    let before = info(&s, id).cwnd;
    // New data; the ACK beyond the probe also D-SACKs segment 3.
    s.advance_to(115);
    write_segments(&mut s, id, 1);
    expect_seg(&mut s, 5, true);
    ack(&mut s, 135, seg(6), 115, &format!("{}:{}", seg(3), seg(4)));
    let c = s.engine.counters();
    assert_eq!((c.loss_probes, c.dsack_recv, c.loss_probe_recovery), (1, 1, 1));
    assert!(info(&s, id).cwnd < before, "the repaired tail loss reduces the window: {:?}", info(&s, id));
}

/// F-RTO without timestamps (so Eifel cannot judge): ten 1460-byte segments out of 14
/// written, the RTO retransmits the first, and its ACK lets two NEW segments out instead of
/// retransmitting the rest (RFC 5682 §3 step 2b). Returns at that point.
fn frto_after_first_ack() -> (Script, ConnId) {
    const M: u32 = 1460;
    let (mut s, id) = open_with(script_config(), "mss 1460,sackOK,wscale 7");
    assert!(!info(&s, id).timestamps);
    s.advance_to(30);
    assert_eq!(s.write(id, &[5u8; 14 * 1460]), 14 * 1460);
    assert_eq!(sent_count(&mut s), 10);
    s.expect_at(250, &format!(". 1:{}({M}) ack 1", 1 + M));
    assert_eq!(info(&s, id).ca_state, CaState::Loss);
    assert_eq!(info(&s, id).cwnd, M);
    // The ACK of the retransmitted segment (slow start: cwnd 2): segments 10 and 11 go,
    // not the retransmissions of 1 and 2.
    s.inject(260, &format!(". 1 ack {} win 512", 1 + M));
    s.expect(&format!(". {}:{}({M}) ack 1", 1 + 10 * M, 1 + 11 * M));
    s.expect(&format!(". {}:{}({M}) ack 1", 1 + 11 * M, 1 + 12 * M));
    s.expect_nothing();
    (s, id)
}

#[test]
fn frto_spurious_rto_undo_without_timestamps() {
    const M: u32 = 1460;
    let (mut s, id) = frto_after_first_ack();
    // The second ACK acknowledges segments 1-4, which were never retransmitted: their
    // originals arrived, the timeout was spurious (step 3b). The window comes back and the
    // rest of the data follows at once; segments 1-9 were never sent twice.
    s.inject(265, &format!(". 1 ack {} win 512", 1 + 5 * M));
    let c = s.engine.counters();
    assert_eq!((c.spurious_rtos, c.loss_undo, c.timeouts, c.rto_retrans, c.retrans_segs), (1, 1, 1, 1, 1));
    let i = info(&s, id);
    assert_eq!((i.ca_state, i.ssthresh), (CaState::Open, u32::MAX));
    assert!(i.cwnd >= 10 * M, "window restored: {i:?}");
    s.expect(&format!(". {}:{}({M}) ack 1", 1 + 12 * M, 1 + 13 * M));
    s.expect(&format!("P. {}:{}({M}) ack 1", 1 + 13 * M, 1 + 14 * M));
    s.expect_nothing();
    s.inject(300, &format!(". 1 ack {} win 512", 1 + 14 * M));
    s.advance_to(2000);
    s.expect_nothing();
    assert_eq!(s.engine.counters().retrans_segs, 1);
}

#[test]
fn frto_real_loss_falls_back_to_conventional_recovery() {
    const M: u32 = 1460;
    let (mut s, id) = frto_after_first_ack();
    // The receiver SACKs new segment 10 but still misses segment 1: the loss was real
    // (step 3a). Retransmission of what the timeout marked lost resumes.
    s.inject(280, &format!(". 1 ack {} win 512 <sack {}:{}>", 1 + M, 1 + 10 * M, 1 + 11 * M));
    s.expect(&format!(". {}:{}({M}) ack 1", 1 + M, 1 + 2 * M));
    let c = s.engine.counters();
    assert_eq!((c.spurious_rtos, c.loss_undo, c.rto_retrans), (0, 0, 2));
    let i = info(&s, id);
    assert_eq!(i.ca_state, CaState::Loss);
    assert!(i.cwnd <= 2 * M && i.ssthresh < u32::MAX, "reduction kept: {i:?}");

    // With F-RTO off, the same first ACK retransmits segment 1 at once (go-back-N).
    let cfg = TcpConfig { frto: false, ..script_config() };
    let (mut s, id) = open_with(cfg, "mss 1460,sackOK,wscale 7");
    s.advance_to(30);
    assert_eq!(s.write(id, &[5u8; 14 * 1460]), 14 * 1460);
    assert_eq!(sent_count(&mut s), 10);
    s.expect_at(250, &format!(". 1:{}({M}) ack 1", 1 + M));
    s.inject(260, &format!(". 1 ack {} win 512", 1 + M));
    s.expect(&format!(". {}:{}({M}) ack 1", 1 + M, 1 + 2 * M));
}

#[test]
fn retransmits_by_cause_and_connection_info() {
    let (mut s, id) = open(script_config());
    s.advance_to(30);
    write_segments(&mut s, id, 10);
    assert_eq!(sent_count(&mut s), 10);
    // Segment 1 missing: RACK's reordering timer marks it lost at 55 ms (fast
    // retransmit, one recovery episode).
    ack(&mut s, 50, seg(1), 30, &format!("{}:{}", seg(2), seg(3)));
    s.expect_at(55, &format!(". {}:{}({MSS}) ack 1", seg(1), seg(2)));
    // Nothing more arrives: the RTO cuts the recovery short (TCPSackFailures), then backs
    // off once more while recovering from it (TCPLossFailures): at 275 and 715 ms.
    s.advance_to(1000);
    let c = s.engine.counters().clone();
    assert_eq!((c.sack_recovery, c.fast_retrans), (1, 1));
    assert_eq!((c.timeouts, c.sack_failures, c.loss_failures, c.reno_failures), (2, 1, 1, 0));
    assert_eq!(c.rto_retrans, 2, "the head again after each timeout (cwnd 1 segment)");
    assert_eq!(c.retrans_segs, c.fast_retrans + c.rto_retrans);

    // The per-connection snapshot agrees with the engine counters (one connection).
    let i = s.engine.connection_info(id).unwrap_or_else(|| panic!("connection exists"));
    assert_eq!((i.timeouts, i.fast_retrans, i.rto_retrans, i.recoveries, i.undos), (2, 1, 2, 1, 0));
    assert_eq!(i.retrans, c.retrans_segs);
    assert_eq!((i.ca_state, i.cwnd), (CaState::Loss, MSS));
    assert_eq!(i.srtt, Some(Duration::from_millis(20)));
    assert_eq!(i.rto, Duration::from_millis(880), "backed off twice from 220 ms (SRTT 20 + min RTO 200)");
    assert_eq!((i.bytes_acked, i.bytes_received), (u64::from(MSS), 0));
    // The iterator lists it with its addresses.
    let all: Vec<_> = s.engine.connections().collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].id, id);
    assert_eq!(Ok((all[0].local, all[0].remote)), s.engine.addresses(id));
    assert_eq!(all[0].info, i);
    // A stale handle has no snapshot.
    s.engine.abort(id, s.now).unwrap_or_else(|e| panic!("{e}"));
    s.pump();
    assert_eq!(s.engine.connection_info(id), None);
    assert_eq!(s.engine.connections().count(), 0);
}

/// The ACK-stall probe in fast recovery (Strait's deviation from RFC 8985 §7.2, which sends
/// no probe there; `connection/probe.rs`). Segment 1 is lost; the SACKs of 2-4 start
/// recovery and its retransmission goes out, but no ACK follows (lost, or held back by a
/// receiver compressing SACKs). 2 * SRTT + 2 ms after the last ACK the first unacknowledged
/// segment goes out again instead of waiting for the 200 ms RTO, and once more twice as
/// long after if that too goes unanswered; the duplicate's ACK (with a D-SACK) ends the
/// recovery.
#[test]
fn stall_probe_in_fast_recovery_instead_of_rto() {
    let cfg = TcpConfig { tlp: true, ..script_config() };
    let (mut s, id) = open(cfg);
    s.advance_to(30);
    write_segments(&mut s, id, 10);
    assert_eq!(sent_count(&mut s), 10);
    ack(&mut s, 50, seg(1), 30, &format!("{}:{}", seg(2), seg(5)));
    expect_seg(&mut s, 1, false);
    s.expect_nothing();
    assert_eq!(info(&s, id).ca_state, CaState::Recovery);
    s.advance_to(91);
    s.expect_nothing();
    s.expect_at(92, &format!(". {}:{}({MSS}) ack 1", seg(1), seg(2)));
    s.expect_nothing();
    let c = s.engine.counters();
    assert_eq!((c.stall_probes, c.timeouts), (1, 0));
    s.advance_to(175);
    s.expect_nothing();
    s.expect_at(176, &format!(". {}:{}({MSS}) ack 1", seg(1), seg(2)));
    ack(&mut s, 196, seg(10), 50, &format!("{}:{}", seg(1), seg(2)));
    s.advance_to(1000);
    s.expect_nothing();
    let c = s.engine.counters();
    assert_eq!((c.timeouts, c.stall_probes, c.fast_retrans, c.dsack_recv), (0, 2, 1, 1));
    assert_eq!(info(&s, id).ca_state, CaState::Open);
}

/// The ACK-stall probe after an unanswered tail loss probe: with the probe out RFC 8985
/// allows no second one and Linux waits for the RTO. 2 * SRTT + 2 ms after the probe the
/// first unacknowledged segment is marked lost and fast recovery retransmits it; here it
/// had arrived (only the ACKs were lost), and its D-SACK undoes the reduction (RFC 3708).
#[test]
fn stall_probe_after_an_unanswered_tlp() {
    let cfg = TcpConfig { tlp: true, ..script_config() };
    let (mut s, id) = open(cfg);
    s.advance_to(30);
    write_segments(&mut s, id, 5);
    assert_eq!(sent_count(&mut s), 5);
    ack(&mut s, 50, seg(3), 30, "");
    s.expect_nothing();
    let cwnd = info(&s, id).cwnd;
    s.expect_at(92, &format!("P. {}:{}({MSS}) ack 1", seg(4), seg(5)));
    s.advance_to(133);
    s.expect_nothing();
    s.expect_at(134, &format!(". {}:{}({MSS}) ack 1", seg(3), seg(4)));
    s.expect_nothing();
    assert_eq!(info(&s, id).ca_state, CaState::Recovery);
    ack(&mut s, 154, seg(5), 30, &format!("{}:{}", seg(3), seg(4)));
    s.advance_to(1000);
    s.expect_nothing();
    let c = s.engine.counters();
    assert_eq!((c.timeouts, c.loss_probes, c.stall_probes, c.dsack_undo), (0, 1, 1, 1));
    assert_eq!(info(&s, id).ca_state, CaState::Open);
    assert_eq!(info(&s, id).cwnd, cwnd, "the D-SACK undid the reduction");
}

/// No ACK-stall probe after the tail probe or the RTO of a single segment (a
/// request/response whose receiver is slow or delays its ACK): the RTO follows, as in
/// Linux. Fails without the rule: a stall probe went 2 * SRTT + 2 ms after the tail probe.
#[test]
fn no_stall_probe_after_the_tail_probe_of_a_single_segment() {
    let cfg = TcpConfig { tlp: true, ..script_config() };
    let (mut s, id) = open(cfg);
    s.advance_to(30);
    write_segments(&mut s, id, 1);
    expect_seg(&mut s, 0, true);
    // The tail probe, in place of the first RTO (SRTT 20 + 200 ms).
    s.expect_at(250, &format!("P. {}:{}({MSS}) ack 1", seg(0), seg(1)));
    s.advance_to(400);
    s.expect_nothing();
    let c = s.engine.counters();
    assert_eq!((c.loss_probes, c.stall_probes, c.timeouts), (1, 0, 0));
    // Then the RTO (220 ms after the probe), one retransmission, and no stall probe
    // after it either: the next one is the backed-off RTO.
    s.advance_to(800);
    assert_eq!(sent_count(&mut s), 1);
    let c = s.engine.counters();
    assert_eq!((c.loss_probes, c.stall_probes, c.timeouts), (1, 0, 1));
    assert_eq!(info(&s, id).ca_state, CaState::Loss);
}

/// ACK-stall probes are bounded: each waits twice as long as the one before and goes only
/// if due before the RTO (re-armed by each probe), at most four per stall; the RTO is the
/// backstop, as for a dead path. PTO 42 ms: probes at 92, 176 (+84) and 344 (+168); the
/// next would be at 680, after the RTO at 564 (SRTT 20 + 200 ms after the last probe).
#[test]
fn stall_probes_then_rto_when_nothing_answers() {
    let cfg = TcpConfig { tlp: true, ..script_config() };
    let (mut s, id) = open(cfg);
    s.advance_to(30);
    write_segments(&mut s, id, 10);
    assert_eq!(sent_count(&mut s), 10);
    ack(&mut s, 50, seg(1), 30, &format!("{}:{}", seg(2), seg(5)));
    expect_seg(&mut s, 1, false);
    s.expect_at(92, &format!(". {}:{}({MSS}) ack 1", seg(1), seg(2)));
    s.expect_at(176, &format!(". {}:{}({MSS}) ack 1", seg(1), seg(2)));
    s.expect_at(344, &format!(". {}:{}({MSS}) ack 1", seg(1), seg(2)));
    s.advance_to(563);
    s.expect_nothing();
    s.expect_at(564, &format!(". {}:{}({MSS}) ack 1", seg(1), seg(2)));
    let c = s.engine.counters();
    assert_eq!((c.stall_probes, c.timeouts), (3, 1));
    assert_eq!(info(&s, id).ca_state, CaState::Loss);
}

/// Linux `tcp_schedule_loss_probe` caps the probe timeout at the RTO and the probe then
/// fires in its place: with a single segment out the PTO (2 * SRTT + 200 ms) is later than
/// the RTO (SRTT + 200 ms), so the first timeout is a tail loss probe, without the RTO's
/// window collapse (here the segment's ACK was lost).
#[test]
fn tlp_in_place_of_the_rto_with_one_segment_out() {
    let cfg = TcpConfig { tlp: true, ..script_config() };
    let (mut s, id) = open(cfg);
    s.advance_to(30);
    write_segments(&mut s, id, 1);
    expect_seg(&mut s, 0, true);
    let cwnd = info(&s, id).cwnd;
    s.advance_to(249);
    s.expect_nothing();
    s.expect_at(250, &format!("P. {}:{}({MSS}) ack 1", seg(0), seg(1)));
    let c = s.engine.counters();
    assert_eq!((c.timeouts, c.loss_probes), (0, 1));
    assert_eq!(info(&s, id).ca_state, CaState::Open);
    ack(&mut s, 270, seg(1), 30, &format!("{}:{}", seg(0), seg(1)));
    s.advance_to(2000);
    s.expect_nothing();
    let c = s.engine.counters();
    assert_eq!((c.timeouts, c.loss_probes, c.loss_probe_recovery), (0, 1, 0));
    assert_eq!(info(&s, id).cwnd, cwnd);
}

/// RFC 8985 §7.2 / Linux `tcp_write_xmit` -> `tcp_schedule_loss_probe`: new data restarts
/// the probe timeout. An ACK leaves one segment out (PTO 2 * SRTT + 200 ms, capped at the
/// RTO); four more go out 10 ms later, and the probe follows them after 2 * SRTT + 2 ms,
/// not at the RTO's time.
#[test]
fn new_data_restarts_the_probe_timeout() {
    let cfg = TcpConfig { tlp: true, ..script_config() };
    let (mut s, id) = open(cfg);
    s.advance_to(30);
    write_segments(&mut s, id, 2);
    assert_eq!(sent_count(&mut s), 2);
    ack(&mut s, 50, seg(1), 30, "");
    s.expect_nothing();
    s.advance_to(60);
    write_segments(&mut s, id, 3);
    assert_eq!(sent_count(&mut s), 3);
    s.advance_to(101);
    s.expect_nothing();
    s.expect_at(102, &format!("P. {}:{}({MSS}) ack 1", seg(4), seg(5)));
    let c = s.engine.counters();
    assert_eq!((c.timeouts, c.loss_probes), (0, 1));
}
