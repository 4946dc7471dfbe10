//! Scripted tests of the send path (send-path §1–§3 and path MTU), one per rule, named
//! after it. The peer is the script; the engine is the passive side unless a test says
//! otherwise. After the usual handshake the peer's window is 65536 bytes (512 << 7), the
//! engine sends 1448-byte segments (MSS 1460 less 12 bytes of timestamps, RFC 6691) and
//! its initial window is 10 segments.

mod tcp_script;

use std::net::SocketAddr;

use dataplane::tcp::{
    ConnId, Event, HeapPayload, Payload, PmtuError, StackError, StackEvent, TcpConfig, WriteError, WriteFlags,
};
use tcp_script::{path_mtu, script_config, Script, LOCAL_V4, LPORT, REMOTE_V4, RPORT};

/// An established connection at t=20 ms.
fn open(cfg: TcpConfig) -> (Script, ConnId) {
    let mut s = Script::new(cfg);
    let id = s.passive_open();
    s.advance_to(20);
    (s, id)
}

fn data(n: usize) -> HeapPayload {
    HeapPayload::from_vec((0..n).map(|i| i as u8).collect())
}

/// Writes `n` bytes with `flags`; returns what was accepted.
fn write(s: &mut Script, id: ConnId, n: usize, flags: WriteFlags) -> usize {
    let r = s.engine.write(id, data(n), flags, s.now);
    s.pump();
    r.unwrap_or_else(|e| panic!("write of {n} bytes: {e}"))
}

fn write_payload(s: &mut Script, id: ConnId, p: HeapPayload, flags: WriteFlags) -> usize {
    let r = s.engine.write(id, p, flags, s.now);
    s.pump();
    r.unwrap_or_else(|e| panic!("write: {e}"))
}

fn info(s: &Script, id: ConnId) -> dataplane::tcp::ConnInfo {
    s.engine.info(id).unwrap_or_else(|e| panic!("{e}"))
}

/// Expects `count` consecutive full segments of `mss` from `start`, PSH on none.
fn expect_run(s: &mut Script, start: u32, count: u32, mss: u32) {
    for i in 0..count {
        let a = start + i * mss;
        s.expect(&format!(". {a}:{}({mss}) ack 1", a + mss));
    }
}

fn size_goal_filling() {
    // Without offload the goal is one MSS: a held sub-MSS tail is filled up to it first.
    let (mut s, id) = open(script_config());
    assert_eq!(write(&mut s, id, 100, WriteFlags::MORE), 100);
    s.expect_nothing();
    assert_eq!(write(&mut s, id, 2000, WriteFlags::NONE), 2000);
    s.expect(". 1:1449(1448) ack 1");
    s.expect("P. 1449:2101(652) ack 1");
    s.expect_nothing();

    // With TSO the goal is the largest whole multiple of the MSS under half the peer's
    // largest window (32768): 22 * 1448 = 31856; segments leave as super-segments.
    let cfg = TcpConfig { tso: true, initial_cwnd_segments: 100, ..script_config() };
    let (mut s, id) = open(cfg);
    assert_eq!(write(&mut s, id, 40000, WriteFlags::NONE), 40000);
    let a = s.expect(". 1:31857(31856) ack 1");
    assert_eq!(a.mss, 1448);
    assert_eq!(a.frame_count(), 22);
    let b = s.expect("P. 31857:40001(8144) ack 1");
    assert_eq!(b.mss, 1448);
    assert_eq!(b.frame_count(), 6);
    s.expect_nothing();
    assert_eq!(s.engine.counters().out_segs, 1 + 28, "OutSegs counts frames (SYN-ACK + 28)");
}

fn coalescing() {
    let cfg = TcpConfig { max_chain_segments: 3, nodelay: true, ..script_config() };
    let (mut s, id) = open(cfg);
    let buf = data(300);
    write_payload(&mut s, id, buf.slice(0..100), WriteFlags::MORE);
    // Contiguous with the tail's last chunk: coalesced, still one chunk.
    write_payload(&mut s, id, buf.slice(100..200), WriteFlags::MORE);
    // Separate buffers: new chunks, up to the limit of 3.
    write_payload(&mut s, id, HeapPayload::from_slice(&[1; 10]), WriteFlags::MORE);
    write_payload(&mut s, id, HeapPayload::from_slice(&[2; 10]), WriteFlags::MORE);
    s.expect_nothing();
    // A fourth chunk would exceed the limit: the segment is marked PSH, a new one starts
    // (and the PSH-marked segment is no longer the tail, so cork does not hold it).
    write_payload(&mut s, id, HeapPayload::from_slice(&[3; 10]), WriteFlags::MORE);
    let seg = s.expect("P. 1:221(220) ack 1");
    assert_eq!(seg.payload.chunk_count(), 3);
    assert_eq!(&seg.payload.to_vec()[..200], &buf.to_vec()[..200]);
    s.expect_nothing();
    write_payload(&mut s, id, HeapPayload::from_slice(&[4; 10]), WriteFlags::NONE);
    let seg = s.expect("P. 221:241(20) ack 1");
    assert_eq!(seg.payload.chunk_count(), 2);
}

fn psh_at_end_of_write() {
    let (mut s, id) = open(script_config());
    write(&mut s, id, 3000, WriteFlags::NONE);
    s.expect(". 1:1449(1448) ack 1");
    s.expect(". 1449:2897(1448) ack 1");
    s.expect("P. 2897:3001(104) ack 1");
    s.inject(30, ". 1 ack 3001 win 512");
    // A write ending on an MSS boundary: PSH on its last full segment.
    write(&mut s, id, 2896, WriteFlags::NONE);
    s.expect(". 3001:4449(1448) ack 1");
    s.expect("P. 4449:5897(1448) ack 1");
    s.expect_nothing();
}

fn forced_push() {
    // MSG_MORE withholds PSH, but once more than half the largest window the peer offered
    // (65536 / 2) was written since the last PSH, a segment is marked PSH and pushed.
    let cfg = TcpConfig { initial_cwnd_segments: 100, ..script_config() };
    let (mut s, id) = open(cfg);
    write(&mut s, id, 40000, WriteFlags::MORE);
    for i in 0..27u32 {
        let a = 1 + i * 1448;
        // 23 * 1448 = 33304 > 32768: the 23rd segment carries PSH.
        let p = if i == 22 { "P." } else { "." };
        s.expect(&format!("{p} {a}:{}(1448) ack 1", a + 1448));
    }
    // The sub-MSS tail of a MSG_MORE write is held.
    s.expect_nothing();
    assert_eq!(info(&s, id).snd_nxt.0.wrapping_sub(s.our_isn.unwrap_or(0)), 1 + 27 * 1448);
}

fn push_one() {
    let cfg = TcpConfig { tso: true, ..script_config() };
    let (mut s, id) = open(cfg);
    write(&mut s, id, 14480, WriteFlags::NONE);
    let a = s.expect("P. 1:14481(14480) ack 1");
    assert_eq!(a.frame_count(), 10);
    // One segment acknowledged: cwnd 11, 9 in flight, quota 2, old head: TSO deferral
    // would wait for a bigger burst...
    s.inject(100, ". 1 ack 1449 win 512 <TS val 200 ecr 20>");
    s.expect_nothing();
    // ...but a write that fills a whole size_goal segment (22 * 1448) at the head of the
    // unsent queue pushes it at once (`tcp_push_one`), cut to the cwnd quota.
    write(&mut s, id, 31856, WriteFlags::NONE);
    let b = s.expect(". 14481:17377(2896) ack 1");
    assert_eq!(b.mss, 1448);
    s.expect_nothing();
}

fn nagle_hold_and_release() {
    let (mut s, id) = open(script_config());
    write(&mut s, id, 100, WriteFlags::NONE);
    s.expect("P. 1:101(100) ack 1");
    // A second small write waits for the ACK of the first (Nagle).
    write(&mut s, id, 50, WriteFlags::NONE);
    s.expect_nothing();
    s.inject(30, ". 1 ack 101 win 512");
    s.expect("P. 101:151(50) ack 1");
}

fn nagle_minshall_small_unacked() {
    let (mut s, id) = open(script_config());
    write(&mut s, id, 100, WriteFlags::NONE);
    s.expect("P. 1:101(100) ack 1");
    // A full segment goes; the small tail waits because the earlier small segment is
    // unacknowledged (`snd_sml` = 101).
    write(&mut s, id, 1498, WriteFlags::NONE);
    s.expect(". 101:1549(1448) ack 1");
    s.expect_nothing();
    // Acknowledging the small segment releases it, though the full one is in flight.
    s.inject(30, ". 1 ack 101 win 512");
    s.expect("P. 1549:1599(50) ack 1");
}

fn nagle_minshall_small_acked() {
    let (mut s, id) = open(script_config());
    write(&mut s, id, 100, WriteFlags::NONE);
    s.expect("P. 1:101(100) ack 1");
    s.inject(30, ". 1 ack 101 win 512");
    write(&mut s, id, 1448, WriteFlags::NONE);
    s.expect("P. 101:1549(1448) ack 1");
    // Unacknowledged data is in flight, but no small segment: Minshall's Nagle sends
    // (classic Nagle would wait).
    write(&mut s, id, 50, WriteFlags::NONE);
    s.expect("P. 1549:1599(50) ack 1");
}

fn cork_and_uncork() {
    let (mut s, id) = open(script_config());
    assert!(s.engine.set_cork(id, true, s.now).is_ok());
    write(&mut s, id, 100, WriteFlags::NONE);
    write(&mut s, id, 100, WriteFlags::NONE);
    s.expect_nothing();
    // Full segments still go; the sub-MSS tail stays corked.
    write(&mut s, id, 1400, WriteFlags::NONE);
    s.expect(". 1:1449(1448) ack 1");
    s.expect_nothing();
    s.advance_to(25);
    s.expect_nothing();
    assert!(s.engine.set_cork(id, false, s.now).is_ok());
    s.pump();
    s.expect("P. 1449:1601(152) ack 1");
}

fn msg_more() {
    let (mut s, id) = open(script_config());
    write(&mut s, id, 100, WriteFlags::MORE);
    write(&mut s, id, 100, WriteFlags::MORE);
    s.expect_nothing();
    // The write without MSG_MORE ends the message: one segment, PSH.
    write(&mut s, id, 50, WriteFlags::NONE);
    s.expect("P. 1:251(250) ack 1");
    s.expect_nothing();
}

fn no_delay() {
    let cfg = TcpConfig { nodelay: true, ..script_config() };
    let (mut s, id) = open(cfg);
    write(&mut s, id, 100, WriteFlags::NONE);
    s.expect("P. 1:101(100) ack 1");
    write(&mut s, id, 50, WriteFlags::NONE);
    s.expect("P. 101:151(50) ack 1");

    // Turned on later, it pushes what Nagle held.
    let (mut s, id) = open(script_config());
    write(&mut s, id, 100, WriteFlags::NONE);
    s.expect("P. 1:101(100) ack 1");
    write(&mut s, id, 50, WriteFlags::NONE);
    s.expect_nothing();
    assert!(s.engine.set_nodelay(id, true, s.now).is_ok());
    s.pump();
    s.expect("P. 101:151(50) ack 1");
}

fn cwnd_gate() {
    let (mut s, id) = open(script_config());
    write(&mut s, id, 30000, WriteFlags::NONE);
    expect_run(&mut s, 1, 10, 1448);
    s.expect_nothing();
    assert_eq!(info(&s, id).packets_in_flight, 10);
    // Two segments acknowledged: slow start grows cwnd to 12, 8 are in flight: 4 more go.
    s.inject(30, ". 1 ack 2897 win 512");
    expect_run(&mut s, 14481, 4, 1448);
    s.expect_nothing();
    assert_eq!(info(&s, id).packets_in_flight, 12);
}

fn fin_exempt_from_cwnd() {
    let (mut s, id) = open(script_config());
    write(&mut s, id, 14480, WriteFlags::NONE);
    expect_run(&mut s, 1, 9, 1448);
    s.expect("P. 13033:14481(1448) ack 1");
    assert_eq!(info(&s, id).packets_in_flight, 10);
    // The window is full, yet the lone FIN goes.
    assert!(s.engine.shutdown_write(id, s.now).is_ok());
    s.pump();
    s.expect("F. 14481:14481(0) ack 1");
    assert_eq!(info(&s, id).packets_in_flight, 11);
    // Data is not exempt.
    let (mut s, id) = open(script_config());
    write(&mut s, id, 14480 + 100, WriteFlags::NONE);
    expect_run(&mut s, 1, 10, 1448);
    assert!(s.engine.shutdown_write(id, s.now).is_ok());
    s.pump();
    s.expect_nothing();
}

fn receive_window_gate_and_persist_timer() {
    let (mut s, id) = open(script_config());
    // The peer shrinks its window to 1024 bytes: the first MSS does not fit.
    s.inject(20, ". 1 ack 1 win 8");
    s.advance_to(30);
    write(&mut s, id, 3000, WriteFlags::NONE);
    s.expect_nothing();
    // Nothing in flight and data blocked: the persist timer runs (RTO: SRTT 10 + min RTO
    // 200 ms) and its probe sends what the window takes.
    s.expect_at(240, "P. 1:1025(1024) ack 1");
    s.expect_nothing();
    assert_eq!(s.engine.counters().window_probes, 1);
    // The probe cut the queued segment (`tcp_write_wakeup` fragments at the window); its
    // small rest counts for Minshall, so the small tail waits for its ACK.
    s.inject(250, ". 1 ack 1025 win 512");
    s.expect(". 1025:1449(424) ack 1");
    s.expect(". 1449:2897(1448) ack 1");
    s.expect_nothing();
    s.inject(260, ". 1 ack 1449 win 512");
    s.expect("P. 2897:3001(104) ack 1");
}

fn tso_deferral() {
    let cfg = TcpConfig { tso: true, ..script_config() };
    let (mut s, id) = open(cfg);
    // Nothing in flight: no reason to wait, the write goes at once.
    write(&mut s, id, 14480, WriteFlags::NONE);
    s.expect("P. 1:14481(14480) ack 1");
    s.inject(100, ". 1 ack 1449 win 512 <TS val 200 ecr 20>");
    // cwnd 11, 9 in flight: 2 segments of quota is under a third of the window, and the
    // oldest segment in flight is older than half an RTT: wait for ACKs to allow more.
    write(&mut s, id, 4000, WriteFlags::NONE);
    s.expect_nothing();
    // The next ACK opens the window (cwnd 13, 6 in flight): the whole write goes as one
    // super-segment.
    s.inject(110, ". 1 ack 5793 win 512 <TS val 210 ecr 20>");
    let seg = s.expect("P. 14481:18481(4000) ack 1");
    assert_eq!(seg.mss, 1448);
    assert_eq!(seg.frame_count(), 3);
}

fn split_point() {
    let cfg = TcpConfig { tso: true, initial_cwnd_segments: 100, ..script_config() };
    let (mut s, id) = open(cfg);
    write(&mut s, id, 100, WriteFlags::NONE);
    s.expect("P. 1:101(100) ack 1");
    // 10000 bytes: cut in whole MSS (6 * 1448); the partial last MSS is held by Nagle
    // since a small segment is unacknowledged (`tcp_mss_split_point`).
    write(&mut s, id, 10000, WriteFlags::NONE);
    let seg = s.expect(". 101:8789(8688) ack 1");
    assert_eq!(seg.frame_count(), 6);
    s.expect_nothing();
    s.inject(30, ". 1 ack 101 win 512");
    s.expect("P. 8789:10101(1312) ack 1");
    // The cwnd quota cuts too: see `push_one` (2 of 22 segments).
}

fn sndbuf_limit_and_writable_event() {
    let cfg = TcpConfig { sndbuf: 4000, ..script_config() };
    let (mut s, id) = open(cfg);
    assert_eq!(s.engine.send_space(id), Ok(4000));
    // A partial write is pushed at once (TCP_NAGLE_PUSH) and reports what it took.
    assert_eq!(write(&mut s, id, 5000, WriteFlags::NONE), 4000);
    s.expect(". 1:1449(1448) ack 1");
    s.expect(". 1449:2897(1448) ack 1");
    s.expect("P. 2897:4001(1104) ack 1");
    let r = s.engine.write(id, data(10), WriteFlags::NONE, s.now);
    assert_eq!(r, Err(StackError::Write(WriteError::NoSpace)));
    assert_eq!(s.engine.counters().sndbuf_full, 1);
    assert!(!s.saw_event(StackEvent::Conn(id, Event::Writable)));
    // Data stays charged until acknowledged; the ACK frees space and wakes the writer.
    s.inject(30, ". 1 ack 2897 win 512");
    assert!(s.saw_event(StackEvent::Conn(id, Event::Writable)));
    assert_eq!(s.engine.send_space(id), Ok(2896));
    assert_eq!(write(&mut s, id, 10, WriteFlags::NONE), 10);

    // Auto-tuned: room for twice the congestion window, within the bounds.
    let cfg = TcpConfig { sndbuf: 4000, sndbuf_max: Some(1 << 20), ..script_config() };
    let (mut s, id) = open(cfg);
    assert_eq!(s.engine.send_space(id), Ok(2 * 14600));
}

fn write_while_connecting() {
    let cfg = TcpConfig { max_pending_connect_bytes: 2000, ..script_config() };
    let mut s = Script::new(cfg);
    let id = s.connect();
    s.expect("S 0:0(0) <mss 1460,sackOK,TS val 0 ecr 0,wscale 0>");
    // Held (bounded) while connecting.
    assert_eq!(write(&mut s, id, 3000, WriteFlags::NONE), 2000);
    s.expect_nothing();
    s.inject(10, "S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 500 ecr 0,wscale 7>");
    // Sent once established; the data carries the ACK of the SYN-ACK.
    s.expect(". 1:1449(1448) ack 1");
    s.expect("P. 1449:2001(552) ack 1");
    s.expect_nothing();
}

fn write_after_shutdown() {
    let (mut s, id) = open(script_config());
    assert!(s.engine.shutdown_write(id, s.now).is_ok());
    s.pump();
    s.expect("F. 1:1(0) ack 1");
    let r = s.engine.write(id, data(10), WriteFlags::NONE, s.now);
    assert_eq!(r, Err(StackError::Write(WriteError::Closed)));

    // CLOSE-WAIT still sends; after a reset, writes fail.
    let (mut s, id) = open(script_config());
    s.inject(30, "F. 1:1(0) ack 1 win 512");
    s.expect(". 1:1(0) ack 2");
    assert_eq!(write(&mut s, id, 10, WriteFlags::NONE), 10);
    s.expect("P. 1:11(10) ack 2");
    s.inject(40, "R. 2 ack 11 win 0");
    assert!(s.engine.write(id, data(10), WriteFlags::NONE, s.now).is_err());
}

/// Probing from `base_mss` 1024 (MTU 1064, 1012-byte segments) towards 1500.
fn probing_config() -> TcpConfig {
    TcpConfig { mtu_probing: dataplane::tcp::MtuProbing::Always, initial_cwnd_segments: 20, ..script_config() }
}

fn mtu_probe_success() {
    let (mut s, id) = open(probing_config());
    assert_eq!(info(&s, id).mss_now, 1012);
    write(&mut s, id, 20 * 1012, WriteFlags::NONE);
    // The probe: the middle of [1064, 1500] is 1282, 1230 bytes of payload.
    s.expect(". 1:1231(1230) ack 1");
    s.expect(". 1231:2025(794) ack 1");
    expect_run(&mut s, 2025, 17, 1012);
    s.expect("P. 19229:20241(1012) ack 1");
    s.expect_nothing();
    assert_eq!(s.engine.counters().mtu_probes, 1);
    s.inject(40, ". 1 ack 20241 win 512");
    assert_eq!(s.engine.counters().mtu_probe_successes, 1);
    let i = info(&s, id);
    assert_eq!((i.path_mtu, i.mss_now), (path_mtu(1282), 1230));
    // Segments now use the new MSS, and the next probe tests 1391.
    write(&mut s, id, 10 * 1230, WriteFlags::NONE);
    s.expect(". 20241:21580(1339) ack 1");
    s.expect(". 21580:22701(1121) ack 1");
    s.expect(". 22701:23931(1230) ack 1");
}

fn mtu_probe_failure() {
    let (mut s, id) = open(probing_config());
    write(&mut s, id, 20 * 1012, WriteFlags::NONE);
    s.expect(". 1:1231(1230) ack 1");
    while s.out.pop_front().is_some() {}
    // Nothing is acknowledged: the RTO fires; the lost probe is a failed probe, and the
    // retransmission uses the old MSS (RTO: SRTT 10 + min RTO 200 ms).
    s.expect_at(230, ". 1:1013(1012) ack 1");
    s.expect_nothing();
    assert_eq!(s.engine.counters().mtu_probe_failures, 1);
    let i = info(&s, id);
    assert_eq!((i.path_mtu, i.mss_now), (path_mtu(1064), 1012));
    s.inject(240, ". 1 ack 20241 win 512");
    assert_eq!(info(&s, id).path_mtu, path_mtu(1064));
    assert_eq!(s.engine.counters().mtu_probe_successes, 0);
}

/// IPv4 only: ICMP "fragmentation needed" (RFC 1191); IPv6's packet too big is
/// `engine_v6_tests.rs`.
#[test]
fn icmp_frag_needed() {
    let (mut s, id) = open(script_config());
    write(&mut s, id, 3000, WriteFlags::NONE);
    s.expect(". 1:1449(1448) ack 1");
    s.expect(". 1449:2897(1448) ack 1");
    s.expect("P. 2897:3001(104) ack 1");
    let isn = s.our_isn.unwrap_or(0);
    let local = SocketAddr::new(LOCAL_V4.into(), LPORT);
    let remote = SocketAddr::new(REMOTE_V4.into(), RPORT);
    let seq = |rel: u32| dataplane::tcp::seq::SeqNum(isn.wrapping_add(rel));
    let cwnd = info(&s, id).cwnd;
    // RFC 5927 §4.1: the quoted sequence number must be in [SND.UNA, SND.NXT].
    let r = s.engine.handle_icmp_frag_needed(local, remote, seq(5000), 1200, s.now);
    assert_eq!(r, Err(PmtuError::OutOfWindow));
    assert_eq!(s.engine.counters().out_of_window_icmps, 1);
    assert_eq!(s.engine.handle_icmp_frag_needed(local, remote, seq(1), 40, s.now), Err(PmtuError::BadMtu));
    assert_eq!(s.engine.handle_icmp_frag_needed(local, remote, seq(1), 1500, s.now), Err(PmtuError::NotSmaller));
    let other = SocketAddr::new(REMOTE_V4.into(), RPORT + 1);
    assert_eq!(s.engine.handle_icmp_frag_needed(local, other, seq(1), 1200, s.now), Err(PmtuError::UnknownConnection));
    s.pump();
    s.expect_nothing();
    // RFC 1191: the MTU drops to 1200 (MSS 1148); what is in flight is resent at once at
    // the new size, without a congestion response.
    assert_eq!(s.engine.handle_icmp_frag_needed(local, remote, seq(1449), 1200, s.now), Ok(1200));
    s.pump();
    s.expect(". 1:1149(1148) ack 1");
    s.expect(". 1149:2297(1148) ack 1");
    s.expect("P. 2297:3001(704) ack 1");
    s.expect_nothing();
    let i = info(&s, id);
    assert_eq!((i.path_mtu, i.mss_now, i.cwnd), (1200, 1148, cwnd));
    assert_eq!(s.engine.counters().retrans_segs, 3);
    assert_eq!(s.engine.counters().pmtu_reductions, 1);
    // Linux `tcp_v4_err`: a quote of no connection counts `IcmpInErrors`.
    assert_eq!(s.engine.counters().icmp_in_errors, 1);
}

/// Every frame a segment becomes: one per `mss` when it is a super-segment.
fn frame_sizes(seg: &dataplane::tcp::Segment<HeapPayload>) -> Vec<usize> {
    let len = seg.payload.len();
    if seg.mss == 0 {
        return vec![len];
    }
    let m = usize::from(seg.mss);
    (0..len.div_ceil(m)).map(|i| m.min(len - i * m)).collect()
}

/// IPv4 only: ICMP "fragmentation needed" (RFC 1191); IPv6's packet too big is
/// `engine_v6_tests.rs`.
#[test]
fn icmp_frag_needed_shrinks_tso_segments() {
    // With TSO, super-segments are cut at the new MSS: the retransmissions and every later
    // burst (`tso_segs`, `size_goal` from `tcp_current_mss`).
    let cfg = TcpConfig { tso: true, initial_cwnd_segments: 100, ..script_config() };
    let (mut s, id) = open(cfg);
    assert_eq!(write(&mut s, id, 40000, WriteFlags::NONE), 40000);
    let a = s.expect(". 1:31857(31856) ack 1");
    assert_eq!(a.mss, 1448);
    s.expect("P. 31857:40001(8144) ack 1");
    let isn = s.our_isn.unwrap_or(0);
    let (local, remote) = (SocketAddr::new(LOCAL_V4.into(), LPORT), SocketAddr::new(REMOTE_V4.into(), RPORT));
    let seq = dataplane::tcp::seq::SeqNum(isn.wrapping_add(1449));
    assert_eq!(s.engine.handle_icmp_frag_needed(local, remote, seq, 1280, s.now), Ok(1280));
    s.pump();
    let mut resent = 0;
    while let Some((_, seg)) = s.out.pop_front() {
        assert!(frame_sizes(&seg).iter().all(|&f| f <= 1228), "frames over MSS 1228: {:?}", frame_sizes(&seg));
        resent += seg.payload.len();
    }
    assert_eq!(resent, 40000, "all in flight resent at the new size");
    s.inject(40, ". 1 ack 40001 win 512");
    while s.out.pop_front().is_some() {}
    assert_eq!(write(&mut s, id, 40000, WriteFlags::NONE), 40000);
    let mut sent = 0;
    while let Some((_, seg)) = s.out.pop_front() {
        assert!(seg.mss == 0 || seg.mss == 1228, "GSO size {} after the ICMP", seg.mss);
        assert!(frame_sizes(&seg).iter().all(|&f| f <= 1228), "{:?}", frame_sizes(&seg));
        sent += seg.payload.len();
    }
    assert!(sent > 0);
    assert_eq!(info(&s, id).mss_now, 1228);
}

/// Writes 3000 bytes, then lets the RTO fire `n` times without an ACK; returns the
/// payload sizes of the retransmissions, one per timeout.
fn unanswered_timeouts(s: &mut Script, id: ConnId, n: usize) -> Vec<usize> {
    write(s, id, 3000, WriteFlags::NONE);
    while s.out.pop_front().is_some() {}
    let mut t = s.now.as_millis();
    let mut sizes = Vec::new();
    while sizes.len() < n {
        t += 10;
        s.advance_to(t);
        if let Some((_, seg)) = s.out.pop_front() {
            sizes.push(seg.payload.len());
            while s.out.pop_front().is_some() {}
        }
    }
    sizes
}

fn mtu_black_hole_detection() {
    use dataplane::tcp::MtuProbing;
    // Off (Linux `tcp_mtu_probing` = 0): full-sized retransmissions whatever happens.
    let (mut s, id) = open(TcpConfig { mtu_probing: MtuProbing::Off, ..script_config() });
    assert_eq!(unanswered_timeouts(&mut s, id, 6), vec![1448; 6]);
    assert_eq!(s.engine.counters().mtu_black_holes, 0);

    // 1: at full size until three retransmissions went unanswered (`tcp_retries1`); the
    // 4th timeout suspects a black hole and falls back to `base_mss` (1024: MTU 1064,
    // 1012 bytes with timestamps), then a further one halves it (MSS 512: 500 bytes).
    let (mut s, id) = open(TcpConfig { mtu_probing: MtuProbing::BlackHole, ..script_config() });
    assert_eq!(info(&s, id).mss_now, 1448);
    assert_eq!(unanswered_timeouts(&mut s, id, 5), vec![1448, 1448, 1448, 1012, 500]);
    assert_eq!(s.engine.counters().mtu_black_holes, 2);
    let i = info(&s, id);
    assert_eq!((i.path_mtu, i.mss_now), (path_mtu(552), 500));

    // Answered: the connection goes on at the small size, and probing (now on) may raise it.
    let (mut s, id) = open(TcpConfig { mtu_probing: MtuProbing::BlackHole, ..script_config() });
    assert_eq!(unanswered_timeouts(&mut s, id, 4), vec![1448, 1448, 1448, 1012]);
    let t = s.now.as_millis() + 5;
    s.inject(t, ". 1 ack 1013 win 512");
    let seg = s.expect(". 1013:2025(1012) ack 1");
    assert_eq!(seg.payload.len(), 1012);
    assert_eq!(s.engine.counters().mtu_black_holes, 1);

    // 2: probing from the start (segments of 1012); a black hole halves the bottom at once.
    let (mut s, id) = open(TcpConfig { mtu_probing: MtuProbing::Always, ..script_config() });
    assert_eq!(unanswered_timeouts(&mut s, id, 4), vec![1012, 1012, 1012, 500]);
    assert_eq!(s.engine.counters().mtu_black_holes, 1);
}

crate::both_families!(
    size_goal_filling,
    coalescing,
    psh_at_end_of_write,
    forced_push,
    push_one,
    nagle_hold_and_release,
    nagle_minshall_small_unacked,
    nagle_minshall_small_acked,
    cork_and_uncork,
    msg_more,
    no_delay,
    cwnd_gate,
    fin_exempt_from_cwnd,
    receive_window_gate_and_persist_timer,
    tso_deferral,
    split_point,
    sndbuf_limit_and_writable_event,
    write_while_connecting,
    write_after_shutdown,
    mtu_probe_success,
    mtu_probe_failure,
    mtu_black_hole_detection,
);
