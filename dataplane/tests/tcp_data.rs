//! Scripted data transfer: both directions, delayed ACKs, out-of-order delivery with SACK,
//! retransmission (RTO and fast retransmit), zero window and persist probes, keepalive.

mod tcp_script;

use dataplane::tcp::config::KeepaliveConfig;
use dataplane::tcp::{CloseReason, Event, StackEvent, State, TcpConfig};
use dataplane::time::Duration;
use tcp_script::{script_config, Script};

fn bytes(from: u32, len: usize) -> Vec<u8> {
    (0..len).map(|i| (from as usize + i) as u8).collect()
}

fn data_both_ways_with_delayed_acks() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.inject(20, "P. 1:101(100) ack 1 win 512 <TS val 120 ecr 0>");
    s.expect_nothing();
    assert!(s.saw_event(StackEvent::Conn(id, Event::Readable)));
    // Unread, the ACK waits for the delayed-ACK timer (40 ms).
    s.expect_at(60, ". 1:1(0) ack 101 win 65435 <TS val 60 ecr 120>");
    assert_eq!(s.engine.counters().delayed_acks, 1);
    assert_eq!(s.read_all(id), bytes(1, 100));
    s.expect_nothing();
    s.advance_to(70);
    assert_eq!(s.write(id, b"hello"), 5);
    s.expect("P. 1:6(5) ack 101 <TS val 70 ecr 120>");
    s.inject(80, ". 101 ack 6 win 512 <TS val 130 ecr 70>");
    s.expect_nothing();
    assert_eq!(s.engine.info(id).ok().and_then(|i| i.srtt), Some(Duration::from_millis(10)));
    // Two full-sized segments are acknowledged at once (RFC 5681 §4.2).
    s.inject(90, ". 101:1561(1460) ack 6 win 512 <TS val 140 ecr 70>");
    s.expect_nothing();
    s.inject(91, "P. 1561:3021(1460) ack 6 win 512 <TS val 141 ecr 70>");
    s.expect(". 6:6(0) ack 3021 <TS val 91 ecr 140>");
    assert_eq!(s.read_all(id), bytes(101, 2920));
    // "hello" answered within the ACK timeout of the data before it: the exchange is
    // interactive (`tcp_event_data_sent`), so a short segment read is not ACKed at once
    // but held for a reply, within the RTT-bounded delay (`tcp_send_delayed_ack`)...
    s.inject(100, "P. 3021:3121(100) ack 6 win 512 <TS val 150 ecr 91>");
    assert_eq!(s.read_all(id), bytes(3021, 100));
    s.expect_nothing();
    s.expect_at(140, ". 6:6(0) ack 3121 <TS val 140 ecr 150>");
    assert_eq!(s.engine.counters().delayed_acks, 2);
    // ...and the timer firing with no reply ends the interactive mode: the next short
    // segment is ACKed as soon as it is read (`tcp_delack_timer_handler`,
    // `__tcp_cleanup_rbuf`), as a Linux server ACKs a request it answers late.
    s.inject(150, "P. 3121:3221(100) ack 6 win 512 <TS val 160 ecr 140>");
    s.expect_nothing();
    assert_eq!(s.read_all(id), bytes(3121, 100));
    s.expect(". 6:6(0) ack 3221 <TS val 150 ecr 160>");
}

fn out_of_order_segments_are_reassembled_and_sacked() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.inject(20, "P. 101:201(100) ack 1 win 512 <TS val 120 ecr 0>");
    s.expect(". 1:1(0) ack 1 <TS val 20 ecr 110,sack 101:201>");
    s.inject(21, "P. 301:401(100) ack 1 win 512 <TS val 121 ecr 0>");
    s.expect(". 1:1(0) ack 1 <TS val 21 ecr 110,sack 301:401 101:201>");
    // A duplicate of queued data: still a duplicate ACK, nothing queued twice.
    s.inject(22, "P. 301:401(100) ack 1 win 512 <TS val 122 ecr 0>");
    s.expect(". 1:1(0) ack 1 <TS val 22 ecr 110,sack 301:401 101:201>");
    assert!(s.read_all(id).is_empty());
    s.inject(23, "P. 1:101(100) ack 1 win 512 <TS val 123 ecr 0>");
    s.expect(". 1:1(0) ack 201 <TS val 23 ecr 123,sack 301:401>");
    s.inject(24, "P. 201:301(100) ack 1 win 512 <TS val 124 ecr 0>");
    s.expect(". 1:1(0) ack 401 <TS val 24 ecr 124>");
    assert_eq!(s.read_all(id), bytes(1, 400));
    assert_eq!(s.engine.counters().ofo_queue, 2);
    assert!(s.engine.counters().ofo_merge >= 1);
}

/// Four holes opened by one burst of segments: each ACK owed goes out with the SACK
/// blocks of its own arrival, so the first run still reaches the sender although an
/// option carries three blocks (Linux ACKs each segment, and sends an ACK it held back
/// before a change pushes a block out, `tcp_sack_compress_send_ack`).
fn sack_blocks_of_one_round_all_reach_the_sender() {
    let mut s = Script::new(script_config());
    let _id = s.passive_open();
    s.inject_round(
        20,
        &[
            "P. 101:201(100) ack 1 win 512 <TS val 120 ecr 0>",
            "P. 301:401(100) ack 1 win 512 <TS val 120 ecr 0>",
            "P. 501:601(100) ack 1 win 512 <TS val 120 ecr 0>",
            "P. 701:801(100) ack 1 win 512 <TS val 120 ecr 0>",
        ],
    );
    s.expect(". 1:1(0) ack 1 <TS val 20 ecr 110,sack 301:401 101:201>");
    s.expect(". 1:1(0) ack 1 <TS val 20 ecr 110,sack 501:601 301:401 101:201>");
    s.expect(". 1:1(0) ack 1 <TS val 20 ecr 110,sack 701:801 501:601 301:401>");
    s.expect(". 1:1(0) ack 1 <TS val 20 ecr 110,sack 701:801 501:601 301:401>");
    s.expect_nothing();
    // The hole in front filled and two more runs: the first ACK tells of the runs before
    // the newest, the fourth run (301:401) drops out of the list only after it went out.
    s.inject_round(
        21,
        &[
            "P. 1:101(100) ack 1 win 512 <TS val 121 ecr 0>",
            "P. 901:1001(100) ack 1 win 512 <TS val 121 ecr 0>",
            "P. 1101:1201(100) ack 1 win 512 <TS val 121 ecr 0>",
        ],
    );
    s.expect(". 1:1(0) ack 201 <TS val 21 ecr 121,sack 701:801 501:601 301:401>");
    s.expect(". 1:1(0) ack 201 <TS val 21 ecr 121,sack 901:1001 701:801 501:601>");
    s.expect(". 1:1(0) ack 201 <TS val 21 ecr 121,sack 1101:1201 901:1001 701:801>");
    s.expect_nothing();

    // A block RCV.NXT reached later in the same round is left out of the earlier ACK:
    // below its acknowledgment number it would read as a D-SACK (RFC 2883 §4).
    let mut s = Script::new(script_config());
    let _id = s.passive_open();
    s.inject_round(
        20,
        &[
            "P. 101:201(100) ack 1 win 512 <TS val 120 ecr 0>",
            "P. 301:401(100) ack 1 win 512 <TS val 120 ecr 0>",
            "P. 501:601(100) ack 1 win 512 <TS val 120 ecr 0>",
            "P. 1:101(100) ack 1 win 512 <TS val 120 ecr 0>",
        ],
    );
    s.expect(". 1:1(0) ack 201 <TS val 20 ecr 120,sack 301:401>");
    for _ in 0..3 {
        s.expect(". 1:1(0) ack 201 <TS val 20 ecr 120,sack 501:601 301:401>");
    }
    s.expect_nothing();
}

fn ofo_queue_overflow_is_counted() {
    let cfg = TcpConfig { ofo_max_segments: 2, ..script_config() };
    let mut s = Script::new(cfg);
    let id = s.passive_open();
    let sacks = ["201:301", "401:501 201:301", "401:501 201:301"];
    for (i, sack) in sacks.iter().enumerate() {
        let seq = 201 + i * 200;
        s.inject(20 + i as u64, &format!("P. {seq}:{}(100) ack 1 win 512 <TS val 120 ecr 0>", seq + 100));
        s.expect(&format!(". 1 ack 1 <TS val * ecr 110,sack {sack}>"));
    }
    assert_eq!(s.engine.counters().ofo_drop, 1);
    assert_eq!(s.engine.info(id).map(|i| i.ofo_queued).unwrap_or(0), 200);
}

fn rto_retransmits_with_backoff() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.advance_to(20);
    s.write(id, &[1u8; 100]);
    s.expect("P. 1:101(100) ack 1 <TS val 20 ecr 110>");
    // SRTT 10 ms from the handshake: RTO = SRTT + the 200 ms floor of the variance term
    // (Linux `__tcp_set_rto`), doubled by the first timeout.
    s.expect_at(230, "P. 1:101(100) ack 1 <TS val 230 ecr 110>");
    s.expect_at(650, "P. 1:101(100) ack 1 <TS val 650 ecr 110>");
    s.inject(700, ". 1 ack 101 win 512 <TS val 700 ecr 650>");
    s.advance_to(5000);
    s.expect_nothing();
    assert_eq!(s.engine.counters().retrans_segs, 2);
    assert_eq!(s.engine.counters().timeouts, 2);
}

fn fast_retransmit_after_three_duplicate_acks() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.advance_to(20);
    // 1448 = MSS 1460 less the 12 bytes of timestamps every segment carries (RFC 6691).
    assert_eq!(s.write(id, &[9u8; 7240]), 7240);
    for i in 0..5u32 {
        let a = 1 + i * 1448;
        let p = if i == 4 { "P." } else { "." };
        s.expect(&format!("{p} {a}:{}(1448) ack 1 <TS val 20 ecr 110>", a + 1448));
    }
    s.inject(30, ". 1 ack 1449 win 512 <TS val 130 ecr 20>");
    s.inject(31, ". 1 ack 1449 win 512 <TS val 131 ecr 20,sack 2897:4345>");
    s.inject(32, ". 1 ack 1449 win 512 <TS val 132 ecr 20,sack 2897:5793>");
    s.expect_nothing();
    s.inject(33, ". 1 ack 1449 win 512 <TS val 133 ecr 20,sack 2897:7241>");
    s.expect(". 1449:2897(1448) ack 1 <TS val 33 ecr 133>");
    assert_eq!(s.engine.counters().fast_retrans, 1);
    s.inject(40, ". 1 ack 7241 win 512 <TS val 140 ecr 33>");
    s.expect_nothing();
    let info = s.engine.info(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.snd_una, info.snd_nxt);
    assert_eq!(info.send_queued, 0);
}

fn zero_window_is_probed_until_it_opens() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.inject(20, ". 1 ack 1 win 0 <TS val 120 ecr 0>");
    s.advance_to(30);
    assert_eq!(s.write(id, &[5u8; 100]), 100);
    s.expect_nothing();
    s.expect_at(240, ". 0:0(0) ack 1 <TS val 240 ecr 120>");
    s.inject(241, ". 1 ack 1 win 0 <TS val 131 ecr 240>");
    s.expect_at(661, ". 0:0(0) ack 1 <TS val 661 ecr 131>");
    s.inject(700, ". 1 ack 1 win 512 <TS val 200 ecr 661>");
    s.expect("P. 1:101(100) ack 1 <TS val 700 ecr 200>");
    assert_eq!(s.engine.counters().window_probes, 2);
}

fn receiver_advertises_zero_window_then_updates_it() {
    let cfg = TcpConfig { rcvbuf: 3000, ..script_config() };
    let mut s = Script::new(cfg);
    let l = s.listen();
    s.inject(0, "S 0:0(0) win 65535 <mss 1460>");
    s.expect("S. 0 ack 1 win 3000 <mss 1460>");
    s.inject(1, ". 1 ack 1 win 65535");
    let id = s.engine.accept(l).unwrap_or_else(|| panic!("accept"));
    s.inject(2, ". 1:1461(1460) ack 1 win 65535");
    s.inject(3, ". 1461:2921(1460) ack 1 win 65535");
    // 80 bytes left is under the SWS threshold (min(rcvbuf/2, MSS)): advertise zero.
    s.expect(". 1 ack 2921 win 80");
    s.inject(4, ". 2921:3001(80) ack 1 win 65535");
    s.expect_at(44, ". 1 ack 3001 win 0");
    let got = s.read_all(id);
    assert_eq!(got.len(), 3000);
    s.expect(". 1 ack 3001 win 3000");
}

fn keepalive_probes_and_reset() {
    let cfg = TcpConfig {
        keepalive: Some(KeepaliveConfig { idle: Duration::from_millis(1000), interval: Duration::from_millis(100), probes: 2 }),
        ..script_config()
    };
    let mut s = Script::new(cfg);
    let id = s.passive_open();
    s.expect_at(1010, ". 0:0(0) ack 1 <TS val 1010 ecr 110>");
    s.inject(1020, ". 1 ack 1 win 512 <TS val 1020 ecr 1010>");
    s.expect_nothing();
    s.expect_at(2020, ". 0:0(0) ack 1 <TS val 2020 ecr 1020>");
    s.expect_at(2120, ". 0:0(0) ack 1 <TS val 2120 ecr 1020>");
    s.expect_at(2220, "R. 1 ack 1");
    assert_eq!(s.state(id), None);
    assert!(s.saw_event(StackEvent::Conn(id, Event::Closed { reason: CloseReason::Timeout })));
    assert_eq!(s.engine.counters().keepalive_probes, 3);
}

fn writes_after_shutdown_fail_and_close_states_progress() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.advance_to(20);
    assert!(s.engine.shutdown_write(id, s.now).is_ok());
    s.pump();
    s.expect("F. 1 ack 1 <TS val 20 ecr 110>");
    assert_eq!(s.state(id), Some(State::FinWait1));
    let e = s.engine.write(id, dataplane::tcp::HeapPayload::from_slice(b"x"), dataplane::tcp::WriteFlags::NONE, s.now);
    assert!(e.is_err());
    // Half-close: data still flows to us.
    s.inject(30, "P. 1:11(10) ack 2 win 512 <TS val 130 ecr 20>");
    assert_eq!(s.state(id), Some(State::FinWait2));
    assert_eq!(s.read_all(id), bytes(1, 10));
}

/// A peer that closes its window and goes silent (Linux `tcp_probe_timer`): unanswered
/// probes are bounded like retransmissions (`tcp_retries2`, here 3), then a reset.
fn unanswered_zero_window_probes_end_in_a_reset() {
    let mut s = Script::new(TcpConfig { max_retries: 3, ..script_config() });
    let id = s.passive_open();
    s.inject(20, ". 1 ack 1 win 0 <TS val 120 ecr 0>");
    s.advance_to(30);
    assert_eq!(s.write(id, &[5u8; 100]), 100);
    // RTO 210 ms (SRTT 10 + 200), doubled per unanswered probe.
    s.expect_at(240, ". 0:0(0) ack 1 <TS val 240 ecr 120>");
    s.expect_at(660, ". 0:0(0) ack 1 <TS val 660 ecr 120>");
    s.expect_at(1500, ". 0:0(0) ack 1 <TS val 1500 ecr 120>");
    s.expect_at(3180, "R. 1 ack 1");
    assert_eq!(s.state(id), None);
    assert!(s.saw_event(StackEvent::Conn(id, Event::Closed { reason: CloseReason::Timeout })));
    assert_eq!(s.engine.counters().window_probes, 3);
    assert_eq!(s.engine.counters().abort_on_timeout, 1);
}

/// RFC 1122 §4.2.2.17: as long as the receiver answers the probes, the sender keeps the
/// connection open, however long the window stays closed (Linux resets `icsk_probes_out`
/// on every acceptable ACK).
fn answered_zero_window_probes_keep_the_connection_open() {
    let mut s = Script::new(TcpConfig { max_retries: 2, ..script_config() });
    let id = s.passive_open();
    s.inject(20, ". 1 ack 1 win 0 <TS val 120 ecr 0>");
    s.advance_to(30);
    assert_eq!(s.write(id, &[5u8; 100]), 100);
    // Each answer re-arms the timer with the doubled interval (`tcp_ack_probe`).
    let mut at = 240;
    let mut interval = 210;
    let mut ecr = 120;
    for i in 0..5u64 {
        s.expect_at(at, &format!(". 0:0(0) ack 1 <TS val {at} ecr {ecr}>"));
        ecr = 130 + i;
        s.inject(at + 1, &format!(". 1 ack 1 win 0 <TS val {ecr} ecr {at}>"));
        interval *= 2;
        at += 1 + interval;
    }
    assert_eq!(s.state(id), Some(State::Established), "five answered probes, a bound of two: still open");
    s.inject(at - 100, ". 1 ack 1 win 512 <TS val 200 ecr 30>");
    s.expect(&format!("P. 1:101(100) ack 1 <TS val {} ecr 200>", at - 100));
}

/// An orphan (closed by the application) gives up after `orphan_retries` unanswered probes
/// (Linux `tcp_orphan_retries`) and stops counting as an orphan.
fn an_orphan_behind_a_closed_window_gives_up_sooner() {
    let mut s = Script::new(TcpConfig { max_retries: 15, orphan_retries: 2, ..script_config() });
    let id = s.passive_open();
    s.inject(20, ". 1 ack 1 win 0 <TS val 120 ecr 0>");
    s.advance_to(30);
    assert_eq!(s.write(id, &[5u8; 100]), 100);
    assert_eq!(s.engine.close(id, s.now), Ok(()));
    s.pump();
    assert_eq!(s.engine.counters().orphans, 1);
    s.expect_at(240, ". 0:0(0) ack 1 <TS val 240 ecr 120>");
    s.expect_at(660, ". 0:0(0) ack 1 <TS val 660 ecr 120>");
    s.expect_at(1500, "R. 1 ack 1");
    assert_eq!(s.state(id), None);
    assert_eq!(s.engine.counters().orphans, 0);
    assert_eq!(s.engine.counters().abort_on_timeout, 1);
}

/// Beyond `max_orphans`, an orphan is reset at its next probe (Linux
/// `tcp_out_of_resources`: `tcp_too_many_orphans`).
fn too_many_orphans_are_reset_at_their_next_probe() {
    let mut s = Script::new(TcpConfig { max_orphans: 0, ..script_config() });
    let id = s.passive_open();
    s.inject(20, ". 1 ack 1 win 0 <TS val 120 ecr 0>");
    s.advance_to(30);
    assert_eq!(s.write(id, &[5u8; 100]), 100);
    assert_eq!(s.engine.close(id, s.now), Ok(()));
    s.pump();
    s.expect_at(240, "R. 1 ack 1");
    assert_eq!(s.state(id), None);
    assert_eq!(s.engine.counters().abort_on_memory, 1);
    assert_eq!(s.engine.counters().orphans, 0);
}

crate::both_families!(
    data_both_ways_with_delayed_acks,
    out_of_order_segments_are_reassembled_and_sacked,
    sack_blocks_of_one_round_all_reach_the_sender,
    ofo_queue_overflow_is_counted,
    rto_retransmits_with_backoff,
    fast_retransmit_after_three_duplicate_acks,
    zero_window_is_probed_until_it_opens,
    receiver_advertises_zero_window_then_updates_it,
    keepalive_probes_and_reset,
    writes_after_shutdown_fail_and_close_states_progress,
    unanswered_zero_window_probes_end_in_a_reset,
    answered_zero_window_probes_keep_the_connection_open,
    an_orphan_behind_a_closed_window_gives_up_sooner,
    too_many_orphans_are_reset_at_their_next_probe,
);
