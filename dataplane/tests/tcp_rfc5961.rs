//! Scripted hostile-input cases: RFC 5961 (blind RST, SYN and data injection), ACK
//! validation, PAWS (RFC 7323 §5), malformed headers and options, bad flag combinations, RST
//! storms. Everything is counted; nothing panics.

mod tcp_script;

use dataplane::tcp::seq::SeqNum;
use dataplane::tcp::{CloseReason, Event, InputError, StackEvent, State, TcpConfig};
use dataplane::wire::tcp::{fill_checksum, Flags, TcpOptions, TcpRepr};
use tcp_script::{local, remote, script_config, Script, LPORT, RPORT};

fn in_window_rst_gets_a_challenge_ack() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.inject(20, "R 500");
    s.expect(". 1 ack 1 <TS val 20 ecr 110>");
    assert_eq!(s.state(id), Some(State::Established));
    assert_eq!(s.engine.counters().challenge_acks, 1);
}

fn out_of_window_rst_is_ignored_and_exact_rst_resets() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.inject(20, "R 100000");
    s.expect_nothing();
    assert_eq!(s.state(id), Some(State::Established));
    s.inject(30, "R 1");
    s.expect_nothing();
    assert!(s.saw_event(StackEvent::Conn(id, Event::Closed { reason: CloseReason::Reset })));
}

fn syn_in_established_gets_a_challenge_ack() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.inject(20, "S 1:1(0) win 65535 <mss 1460,TS val 120 ecr 0>");
    s.expect(". 1 ack 1 <TS val 20 ecr 110>");
    s.inject(21, "S 9999:9999(0) win 65535 <mss 1460,TS val 121 ecr 0>");
    s.expect(". 1 ack 1 <TS val 21 ecr 110>");
    assert_eq!(s.state(id), Some(State::Established));
    assert_eq!(s.engine.counters().challenge_acks, 2);
}

fn challenge_acks_are_rate_limited() {
    let cfg = TcpConfig { challenge_ack_limit: 2, ..script_config() };
    let mut s = Script::new(cfg);
    let _id = s.passive_open();
    s.inject(20, "R 500");
    s.inject(20, "R 501");
    s.inject(20, "R 502");
    s.expect(". 1 ack 1 <TS val 20 ecr 110>");
    s.expect(". 1 ack 1 <TS val 20 ecr 110>");
    s.expect_nothing();
    assert_eq!(s.engine.counters().challenge_acks_limited, 1);
    s.inject(1020, "R 503");
    s.expect(". 1 ack 1 <TS val 1020 ecr 110>");
}

fn ack_of_unsent_data_is_acked_and_dropped() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.inject(20, "P. 1:11(10) ack 5000 win 512 <TS val 120 ecr 0>");
    s.expect(". 1 ack 1 <TS val 20 ecr 110>");
    assert_eq!(s.read_all(id), Vec::<u8>::new(), "the text of a too-new ACK is dropped");
    assert_eq!(s.engine.counters().ack_too_new, 1);
}

fn ack_older_than_the_max_window_gets_a_challenge_ack() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.advance_to(20);
    s.write(id, &[1; 100]);
    s.expect("P. 1:101(100) ack 1 <TS val 20 ecr 110>");
    s.inject(30, ". 1 ack 101 win 512 <TS val 130 ecr 20>");
    // SND.UNA - MAX.SND.WND (65536) - 1.
    let too_old = 101u32.wrapping_sub(65537);
    s.inject(40, &format!("P. 1:11(10) ack {too_old} win 512 <TS val 140 ecr 20>"));
    s.expect(". 101 ack 1 <TS val 40 ecr 130>");
    assert_eq!(s.engine.counters().ack_too_old, 1);
    assert_eq!(s.engine.counters().challenge_acks, 1);
    // An old ACK within the window is fine: its text is accepted.
    s.inject(50, "P. 1:11(10) ack 51 win 512 <TS val 150 ecr 20>");
    assert_eq!(s.read_all(id).len(), 10);
}

fn paws_rejects_old_timestamps() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    s.inject(20, "P. 1:11(10) ack 1 win 512 <TS val 50 ecr 0>");
    s.expect(". 1 ack 1 <TS val 20 ecr 110>");
    assert_eq!(s.engine.counters().paws_estab_rejected, 1);
    assert!(s.read_all(id).is_empty());
    // Same segment with a fresh timestamp is accepted.
    s.inject(30, "P. 1:11(10) ack 1 win 512 <TS val 130 ecr 0>");
    assert_eq!(s.read_all(id).len(), 10);
    // RST is exempt from PAWS (RFC 7323 §5.3 R1).
    s.inject(40, "R 11 <TS val 1 ecr 0>");
    assert!(s.saw_event(StackEvent::Conn(id, Event::Closed { reason: CloseReason::Reset })));
}

fn raw(repr: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; repr.header_len() + payload.len()];
    let n = repr.emit(&mut buf);
    buf[n..].copy_from_slice(payload);
    fill_checksum(&mut buf, remote(), local());
    buf
}

fn syn_repr() -> TcpRepr {
    TcpRepr {
        src_port: RPORT,
        dst_port: LPORT,
        seq: SeqNum(0),
        ack: SeqNum(0),
        flags: Flags::SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions { mss: Some(1460), ..TcpOptions::default() },
    }
}

fn malformed_headers_and_options_are_counted() {
    let mut s = Script::new(script_config());
    let _l = s.listen();
    // A well-formed SYN through the raw path works.
    let good = raw(&syn_repr(), &[]);
    assert_eq!(s.inject_raw(0, &good), Ok(()));
    s.expect("S. 0 ack 1 <mss 1460>");
    s.new_peer(40001, false);
    // MSS option with a bad length (kind 2, len 3).
    let mut bad = raw(&syn_repr(), &[]);
    bad[21] = 3;
    fill_checksum(&mut bad, remote(), local());
    assert_eq!(s.inject_raw(1, &bad), Err(InputError::Malformed));
    // Option length running past the header.
    let mut bad = raw(&syn_repr(), &[]);
    bad[21] = 40;
    fill_checksum(&mut bad, remote(), local());
    assert_eq!(s.inject_raw(2, &bad), Err(InputError::Malformed));
    // Data offset below 5 and beyond the buffer; truncated header.
    let mut bad = raw(&syn_repr(), &[]);
    bad[12] = 0x40;
    assert_eq!(s.inject_raw(3, &bad), Err(InputError::Malformed));
    let mut bad = raw(&syn_repr(), &[]);
    bad[12] = 0xf0;
    assert_eq!(s.inject_raw(4, &bad), Err(InputError::Malformed));
    assert_eq!(s.inject_raw(5, &good[..10]), Err(InputError::Malformed));
    // Bad checksum.
    let mut bad = raw(&syn_repr(), &[]);
    bad[4] ^= 0xff;
    assert_eq!(s.inject_raw(6, &bad), Err(InputError::Checksum));
    s.expect_nothing();
    assert_eq!(s.engine.counters().in_csum_errors, 1);
    assert_eq!(s.engine.counters().in_errs, 6);
    assert_eq!(s.engine.counters().in_segs, 7);
}

fn nonsensical_flag_combinations_are_dropped() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    let before = s.engine.counters().in_errs;
    s.new_peer(40001, false);
    s.inject(20, "SF 0 win 65535");
    s.inject(21, "SR 0 win 65535");
    s.expect_nothing();
    assert_eq!(s.engine.connection_count(), 1);
    s.new_peer(tcp_script::RPORT, false);
    s.inject(22, "SF. 1 ack 1 win 65535");
    s.expect_nothing();
    assert_eq!(s.state(id), Some(State::Established));
    assert_eq!(s.engine.counters().in_errs, before + 3);
}

fn rst_storm_is_survived() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    // Pseudo-random sequence numbers, many in the window: bounded challenge ACKs, no reset
    // unless one hits RCV.NXT exactly (it does not here: 1 is skipped).
    let mut x: u32 = 12345;
    for i in 0..5000u32 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let seq = if x == 1 { 2 } else { x % 200_000 };
        let seq = if seq == 1 { 2 } else { seq };
        s.inject(20 + u64::from(i / 1000), &format!("R {seq}"));
    }
    assert_eq!(s.state(id), Some(State::Established));
    let acks = s.out.len() as u64;
    assert_eq!(acks, s.engine.counters().challenge_acks);
    assert!(acks <= 1000, "rate limited: {acks}");
}

/// Linux `tcp_oow_rate_limited` (`tcp_invalid_ratelimit`, 500 ms): out-of-window and
/// PAWS-rejected segments without data get at most one duplicate ACK per interval, so a
/// forger cannot make us reflect ACKs; data and FIN segments always get theirs.
fn duplicate_acks_for_invalid_segments_are_rate_limited() {
    let mut s = Script::new(script_config());
    let _id = s.passive_open();
    // Bare ACKs far outside the receive window.
    s.inject(20, ". 900000 ack 1 win 512 <TS val 120 ecr 0>");
    s.expect(". 1 ack 1 <TS val 20 ecr 110>");
    s.inject(21, ". 900001 ack 1 win 512 <TS val 121 ecr 0>");
    s.inject(22, ". 900002 ack 1 win 512 <TS val 122 ecr 0>");
    s.expect_nothing();
    assert_eq!(s.engine.counters().ack_skipped_seq, 2);
    // Out-of-window data is still answered (not part of an ACK loop).
    s.inject(23, "P. 900003:900013(10) ack 1 win 512 <TS val 123 ecr 0>");
    s.expect(". 1 ack 1 <TS val 23 ecr 110>");
    // PAWS: an old timestamp on a bare ACK, limited by the same clock.
    s.inject(24, ". 1 ack 1 win 512 <TS val 4294966406 ecr 0>");
    s.expect_nothing();
    assert_eq!(s.engine.counters().ack_skipped_paws, 1);
    // After the interval, one more.
    s.inject(600, ". 900004 ack 1 win 512 <TS val 130 ecr 0>");
    s.expect(". 1 ack 1 <TS val 600 ecr 110>");
}

crate::both_families!(
    in_window_rst_gets_a_challenge_ack,
    out_of_window_rst_is_ignored_and_exact_rst_resets,
    syn_in_established_gets_a_challenge_ack,
    challenge_acks_are_rate_limited,
    ack_of_unsent_data_is_acked_and_dropped,
    ack_older_than_the_max_window_gets_a_challenge_ack,
    paws_rejects_old_timestamps,
    malformed_headers_and_options_are_counted,
    nonsensical_flag_combinations_are_dropped,
    rst_storm_is_survived,
    duplicate_acks_for_invalid_segments_are_rate_limited,
);
