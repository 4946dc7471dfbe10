//! Scripted handshakes: passive and active open, SYN retransmission and connect timeout,
//! simultaneous open, SYN cookies on backlog overflow, connection refused.

mod tcp_script;

use dataplane::tcp::{CloseReason, Event, StackEvent, State, TcpConfig};
use tcp_script::{script_config, Script};

fn passive_open_with_options() {
    let mut s = Script::new(script_config());
    let id = s.passive_open();
    assert_eq!(s.state(id), Some(State::Established));
    let info = s.engine.info(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.wscale, (7, 0));
    assert!(info.timestamps && info.sack);
    assert_eq!(info.snd_wnd, 512 << 7, "third ACK's window is scaled");
    assert_eq!(s.engine.counters().passive_opens, 1);
    assert_eq!(s.engine.counters().curr_estab, 1);
    assert!(s.saw_event(StackEvent::Conn(id, Event::Connected)));
}

fn passive_open_without_options() {
    let mut s = Script::new(script_config());
    let l = s.listen();
    s.inject(0, "S 1000:1000(0) win 8192");
    s.expect("S. 0:0(0) ack 1001 win 65535 <mss 1460>");
    s.inject(5, ". 1001 ack 1 win 8192");
    let id = s.engine.accept(l).unwrap_or_else(|| panic!("not accepted"));
    let info = s.engine.info(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.wscale, (0, 0));
    assert!(!info.timestamps && !info.sack);
    assert_eq!(info.snd_mss, 536, "RFC 9293 §3.7.1 default MSS");
}

fn synack_is_retransmitted_and_retransmitted_syn_is_answered() {
    let mut s = Script::new(script_config());
    let _l = s.listen();
    s.inject(0, "S 0:0(0) win 65535 <mss 1460,TS val 100 ecr 0>");
    s.expect("S. 0:0(0) ack 1 <mss 1460,TS val 0 ecr 100>");
    s.expect_at(1000, "S. 0:0(0) ack 1 <mss 1460,TS val 1000 ecr 100>");
    s.inject(1500, "S 0:0(0) win 65535 <mss 1460,TS val 1500 ecr 0>");
    s.expect("S. 0:0(0) ack 1 <mss 1460,TS val 1500 ecr 1500>");
    s.expect_at(3000, "S. 0:0(0) ack 1 <mss 1460,TS val 3000 ecr 1500>");
    // The one after the timeout, the answer to the retransmitted SYN, the one after the
    // next timeout (Linux `TCPSynRetrans`).
    assert_eq!(s.engine.counters().syn_retrans, 3);
}

/// Linux `tcp_synack_retries`, apart from `tcp_syn_retries`: a half-open passive
/// connection (a spoofed SYN's) is dropped after `synack_retries` SYN-ACK
/// retransmissions, the active open keeps its own bound.
fn half_open_connection_is_dropped_after_synack_retries() {
    let cfg = TcpConfig { synack_retries: 2, syn_retries: 6, ..script_config() };
    let mut s = Script::new(cfg);
    let _l = s.listen();
    s.inject(0, "S 0:0(0) win 65535 <mss 1460,TS val 100 ecr 0>");
    s.expect("S. 0:0(0) ack 1 <mss 1460,TS val 0 ecr 100>");
    s.expect_at(1000, "S. 0:0(0) ack 1 <mss 1460,TS val 1000 ecr 100>");
    s.expect_at(3000, "S. 0:0(0) ack 1 <mss 1460,TS val 3000 ecr 100>");
    assert_eq!(s.engine.connection_count(), 1);
    s.advance_to(7000);
    s.expect_nothing();
    assert_eq!(s.engine.connection_count(), 0, "dropped after two retransmissions");
    assert_eq!(s.engine.counters().syn_retrans, 2);
}

fn active_open() {
    let mut s = Script::new(script_config());
    let id = s.connect();
    s.expect("S 0:0(0) win 65535 <mss 1460,sackOK,TS val 0 ecr 0,wscale 0>");
    s.inject(5, "S. 0:0(0) ack 1 win 65535 <mss 1400,sackOK,TS val 500 ecr 0,wscale 7>");
    s.expect(". 1:1(0) ack 1 <TS val 5 ecr 500>");
    assert_eq!(s.state(id), Some(State::Established));
    let info = s.engine.info(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.snd_mss, 1400);
    assert_eq!(info.snd_wnd, 65535, "the SYN-ACK window is not scaled");
    assert_eq!(info.srtt, Some(dataplane::time::Duration::from_millis(5)));
    assert!(s.saw_event(StackEvent::Conn(id, Event::Connected)));
    assert_eq!(s.engine.counters().active_opens, 1);
}

fn data_written_while_connecting_goes_out_with_the_handshake_ack() {
    let mut s = Script::new(script_config());
    let id = s.connect();
    s.expect("S 0 <mss 1460,sackOK,TS val 0 ecr 0,wscale 0>");
    assert_eq!(s.write(id, b"hello"), 5);
    s.expect_nothing();
    s.inject(5, "S. 0:0(0) ack 1 win 65535 <mss 1460,TS val 500 ecr 0>");
    s.expect("P. 1:6(5) ack 1 <TS val 5 ecr 500>");
    s.expect_nothing();
}

fn syn_retransmission_backs_off_then_times_out() {
    let cfg = TcpConfig { syn_retries: 2, connect_timeout: None, ..script_config() };
    let mut s = Script::new(cfg);
    let id = s.connect();
    s.expect("S 0 <mss 1460,sackOK,TS val 0 ecr 0,wscale 0>");
    s.expect_at(1000, "S 0 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 0>");
    s.expect_at(3000, "S 0 <mss 1460,sackOK,TS val 3000 ecr 0,wscale 0>");
    s.advance_to(7000);
    s.expect_nothing();
    assert!(s.saw_event(StackEvent::Conn(id, Event::Closed { reason: CloseReason::Timeout })));
    assert_eq!(s.engine.counters().attempt_fails, 1);
    assert_eq!(s.engine.counters().syn_retrans, 2, "two SYNs sent again, counted");
    assert_eq!(s.engine.connection_count(), 0);
}

fn connect_deadline() {
    let cfg = TcpConfig { connect_timeout: Some(dataplane::time::Duration::from_millis(2500)), ..script_config() };
    let mut s = Script::new(cfg);
    let id = s.connect();
    s.expect("S 0 <mss 1460,sackOK,TS val 0 ecr 0,wscale 0>");
    s.expect_at(1000, "S 0 <mss 1460,sackOK,TS val 1000 ecr 0,wscale 0>");
    s.advance_to(2500);
    s.expect_nothing();
    assert!(s.saw_event(StackEvent::Conn(id, Event::Closed { reason: CloseReason::Timeout })));
}

fn synsent_ack_must_acknowledge_exactly_our_syn() {
    let mut s = Script::new(script_config());
    let id = s.connect();
    s.expect("S 0 <mss 1460,sackOK,TS val 0 ecr 0,wscale 0>");
    // Wrong ACK: reset with SEQ=SEG.ACK, no state change.
    s.inject(5, "S. 0:0(0) ack 7 win 65535");
    s.expect("R 7:7(0)");
    assert_eq!(s.state(id), Some(State::SynSent));
    // RST without ACK is ignored; RST with the right ACK refuses the connection.
    s.inject(6, "R 0");
    s.expect_nothing();
    assert_eq!(s.state(id), Some(State::SynSent));
    s.inject(7, "R. 0 ack 1");
    s.expect_nothing();
    assert!(s.saw_event(StackEvent::Conn(id, Event::Closed { reason: CloseReason::Refused })));
}

fn simultaneous_open() {
    let mut s = Script::new(script_config());
    let id = s.connect();
    s.expect("S 0 <mss 1460,sackOK,TS val 0 ecr 0,wscale 0>");
    s.inject(5, "S 700:700(0) win 65535 <mss 1460,sackOK,TS val 500 ecr 0,wscale 7>");
    s.expect("S. 0:0(0) ack 701 <mss 1460,sackOK,TS val 5 ecr 500,wscale 0>");
    assert_eq!(s.state(id), Some(State::SynReceived));
    s.inject(8, "S. 700:700(0) ack 1 win 65535 <mss 1460,sackOK,TS val 508 ecr 0,wscale 7>");
    assert_eq!(s.state(id), Some(State::Established));
    assert!(s.saw_event(StackEvent::Conn(id, Event::Connected)));
    s.expect_nothing();
}

fn syn_cookies_on_backlog_overflow() {
    let cfg = TcpConfig { syn_backlog: 1, ..script_config() };
    let mut s = Script::new(cfg);
    let l = s.listen();
    s.inject(0, "S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,wscale 7>");
    s.expect("S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 0 ecr 100,wscale 0>");
    // Second SYN: the SYN queue is full, so a cookie answers.
    s.new_peer(40001, false);
    s.inject(1, "S 5000:5000(0) win 65535 <mss 1460,sackOK,TS val 200 ecr 0,wscale 7>");
    let synack = s.expect("S. 0:0(0) ack 5001 <mss 1460,sackOK,TS val * ecr 200,wscale 0>");
    assert_eq!(s.engine.counters().syncookies_sent, 1);
    assert_eq!(s.engine.connection_count(), 1, "no state kept for the cookie");
    let tsval = synack.repr.options.timestamps.map(|t| t.0).unwrap_or(0);
    s.inject(3, &format!(". 5001 ack 1 win 512 <TS val 203 ecr {tsval}>"));
    s.expect_nothing();
    assert_eq!(s.engine.counters().syncookies_recv, 1);
    let id = s.engine.accept(l).unwrap_or_else(|| panic!("cookie connection not accepted"));
    let info = s.engine.info(id).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.state, State::Established);
    assert_eq!(info.wscale, (7, 0), "window scale recovered from the timestamp");
    assert!(info.sack);
    assert_eq!(info.snd_wnd, 512 << 7);
    // A forged ACK fails validation and is reset.
    s.new_peer(40002, true);
    s.inject(4, ". 9000 ack 123456 win 512");
    s.expect("R 123456:123456(0)");
    assert_eq!(s.engine.counters().syncookies_failed, 1);
}

/// Linux `tcp_synq_no_recent_overflow`: a listener that sent no cookie in the last two
/// minutes does not check bare ACKs as cookies at all, so a blind forgery cannot open a
/// connection (a cookie check accepts one guess in about 2^29); a late ACK of a cookie sent
/// more than two minutes ago is refused too.
fn bare_acks_are_cookies_only_after_a_recent_overflow() {
    // No SYN-ACK retransmissions of the half-open connection that fills the SYN queue.
    let cfg = TcpConfig { syn_backlog: 1, synack_retries: 0, ..script_config() };
    let mut s = Script::new(cfg);
    let l = s.listen();
    s.new_peer(40002, true);
    s.inject(1, ". 9000 ack 123456 win 512");
    s.expect("R 123456:123456(0)");
    assert_eq!(s.engine.counters().syncookies_not_recent, 1);
    assert_eq!(s.engine.counters().syncookies_failed, 0, "not even checked");
    // An overflow: a cookie goes out; its ACK 121 s later is no longer taken.
    s.new_peer(40000, false);
    s.inject(2, "S 0:0(0) win 65535 <mss 1460,sackOK,TS val 100 ecr 0,wscale 7>");
    s.expect("S. 0:0(0) ack 1 <mss 1460,sackOK,TS val 2 ecr 100,wscale 0>");
    s.new_peer(40001, false);
    s.inject(3, "S 5000:5000(0) win 65535 <mss 1460,sackOK,TS val 200 ecr 0,wscale 7>");
    let synack = s.expect("S. 0:0(0) ack 5001 <mss 1460,sackOK,TS val * ecr 200,wscale 0>");
    let tsval = synack.repr.options.timestamps.map(|t| t.0).unwrap_or(0);
    s.inject(124_000, &format!(". 5001 ack 1 win 512 <TS val 203 ecr {tsval}>"));
    s.expect("R 1:1(0)");
    assert_eq!(s.engine.counters().syncookies_not_recent, 2);
    assert_eq!(s.engine.counters().syncookies_recv, 0);
    assert!(s.engine.accept(l).is_none());
}

fn accept_queue_overflow_drops_syns() {
    let cfg = TcpConfig { accept_backlog: 1, ..script_config() };
    let mut s = Script::new(cfg);
    let _l = s.listen();
    s.inject(0, "S 0:0(0) win 65535");
    s.expect("S. 0 ack 1 <mss 1460>");
    s.inject(1, ". 1 ack 1 win 65535");
    s.new_peer(40001, false);
    s.inject(2, "S 0:0(0) win 65535");
    s.expect_nothing();
    assert_eq!(s.engine.counters().listen_overflows, 1);
    assert_eq!(s.engine.counters().listen_drops, 1);
}

fn closed_port_answers_with_rst() {
    let mut s = Script::new(script_config());
    s.new_peer(40000, true);
    s.inject(0, "S 100:100(0) win 65535");
    s.expect("R. 0 ack 101");
    s.inject(1, ". 100 ack 555 win 65535");
    s.expect("R 555");
    s.inject(2, "R. 100 ack 555");
    s.expect_nothing();
    assert_eq!(s.engine.counters().out_rsts, 2);
    assert_eq!(s.engine.counters().no_port, 3);
}

crate::both_families!(
    passive_open_with_options,
    passive_open_without_options,
    synack_is_retransmitted_and_retransmitted_syn_is_answered,
    half_open_connection_is_dropped_after_synack_retries,
    active_open,
    data_written_while_connecting_goes_out_with_the_handshake_ack,
    syn_retransmission_backs_off_then_times_out,
    connect_deadline,
    synsent_ack_must_acknowledge_exactly_our_syn,
    simultaneous_open,
    syn_cookies_on_backlog_overflow,
    bare_acks_are_cookies_only_after_a_recent_overflow,
    accept_queue_overflow_drops_syns,
    closed_port_answers_with_rst,
);
