//! Scripted teardown: FIN in every state, RST in every state, TIME-WAIT (answers, expiry,
//! RFC 1337, reuse) and the FIN-WAIT-2 timeout.

mod tcp_script;

use dataplane::tcp::{CloseReason, ConnId, Event, StackEvent, State, TcpConfig};
use tcp_script::{script_config, Script};

fn closed(s: &mut Script, id: ConnId, reason: CloseReason) -> bool {
    s.saw_event(StackEvent::Conn(id, Event::Closed { reason }))
}

fn close(s: &mut Script, id: ConnId) {
    let now = s.now;
    assert!(s.engine.close(id, now).is_ok());
    s.pump();
}

/// Plain connection (no timestamps) so that scripts stay short.
fn plain() -> (Script, ConnId) {
    let cfg = TcpConfig { timestamps: false, sack: false, window_scaling: false, ..script_config() };
    let mut s = Script::new(cfg);
    let l = s.listen();
    s.inject(0, "S 0:0(0) win 65535 <mss 1460>");
    s.expect("S. 0 ack 1 <mss 1460>");
    s.inject(10, ". 1 ack 1 win 65535");
    let id = s.engine.accept(l).unwrap_or_else(|| panic!("accept"));
    s.pump();
    (s, id)
}

fn fin_in_established_then_last_ack() {
    let (mut s, id) = plain();
    s.inject(20, "F. 1 ack 1 win 65535");
    s.expect(". 1 ack 2");
    assert_eq!(s.state(id), Some(State::CloseWait));
    assert!(s.saw_event(StackEvent::Conn(id, Event::PeerClosed)));
    // FIN retransmitted in CLOSE-WAIT: duplicate ACK.
    s.inject(30, "F. 1 ack 1 win 65535");
    s.expect(". 1 ack 2");
    close(&mut s, id);
    s.expect("F. 1 ack 2");
    assert_eq!(s.state(id), Some(State::LastAck));
    // FIN retransmitted in LAST-ACK: duplicate ACK.
    s.inject(40, "F. 1 ack 1 win 65535");
    s.expect(". 2 ack 2");
    s.inject(50, ". 2 ack 2 win 65535");
    s.expect_nothing();
    assert!(closed(&mut s, id, CloseReason::Normal));
    assert_eq!(s.engine.connection_count(), 0);
    assert_eq!(s.engine.time_wait_count(), 0, "the passive closer skips TIME-WAIT");
}

fn fin_in_fin_wait_1_goes_to_closing_then_time_wait() {
    let (mut s, id) = plain();
    s.advance_to(20);
    close(&mut s, id);
    s.expect("F. 1 ack 1");
    assert_eq!(s.state(id), Some(State::FinWait1));
    s.inject(30, "F. 1 ack 1 win 65535");
    s.expect(". 2 ack 2");
    assert_eq!(s.state(id), Some(State::Closing));
    s.inject(40, ". 2 ack 2 win 65535");
    s.expect_nothing();
    assert!(closed(&mut s, id, CloseReason::Normal));
    assert_eq!(s.engine.time_wait_count(), 1);
}

fn fin_acking_our_fin_in_fin_wait_1_goes_straight_to_time_wait() {
    let (mut s, id) = plain();
    s.advance_to(20);
    close(&mut s, id);
    s.expect("F. 1 ack 1");
    s.inject(30, "F. 1 ack 2 win 65535");
    s.expect(". 2 ack 2");
    assert!(closed(&mut s, id, CloseReason::Normal));
    assert_eq!(s.engine.time_wait_count(), 1);
}

fn fin_in_fin_wait_2_and_time_wait_behaviour() {
    let (mut s, id) = plain();
    s.advance_to(20);
    close(&mut s, id);
    s.expect("F. 1 ack 1");
    s.inject(30, ". 1 ack 2 win 65535");
    s.expect_nothing();
    assert_eq!(s.state(id), Some(State::FinWait2));
    s.inject(40, "F. 1 ack 2 win 65535");
    s.expect(". 2 ack 2");
    assert_eq!(s.engine.time_wait_count(), 1);
    // TIME-WAIT: a retransmitted FIN is ACKed again and restarts 2*MSL.
    s.inject(500, "F. 1 ack 2 win 65535");
    s.expect(". 2 ack 2 win 0");
    // RFC 1337: RST does not end TIME-WAIT.
    s.inject(600, "R 2");
    s.expect_nothing();
    assert_eq!(s.engine.time_wait_count(), 1);
    // An in-sequence bare ACK is dropped silently; anything else gets an ACK.
    s.inject(700, ". 2 ack 2 win 65535");
    s.expect_nothing();
    s.inject(710, "P. 1:11(10) ack 2 win 65535");
    s.expect(". 2 ack 2 win 0");
    // 2*MSL after the last FIN (500 + 1000 ms).
    s.advance_to(1499);
    assert_eq!(s.engine.time_wait_count(), 1);
    s.advance_to(1500);
    assert_eq!(s.engine.time_wait_count(), 0);
}

fn time_wait_allows_a_newer_syn_to_reopen() {
    let (mut s, id) = plain();
    s.advance_to(20);
    close(&mut s, id);
    s.expect("F. 1 ack 1");
    s.inject(30, "F. 1 ack 2 win 65535");
    s.expect(". 2 ack 2");
    assert!(closed(&mut s, id, CloseReason::Normal));
    // A SYN below the old sequence space is an old duplicate: ACK.
    s.inject(40, "S 0:0(0) win 65535 <mss 1460>");
    s.expect(". 2 ack 2 win 0");
    // A SYN above it may start a new incarnation (RFC 6191 without timestamps).
    s.inject(50, "S 100000:100000(0) win 65535 <mss 1460>");
    // ISN = old SND.NXT + 65535 + 2 (Linux `tcp_timewait_state_process`).
    s.expect("S. 65539 ack 100001 <mss 1460>");
    assert_eq!(s.engine.counters().time_wait_recycled, 1);
    assert_eq!(s.engine.time_wait_count(), 0);
}

fn fin_in_syn_received_and_syn_sent() {
    let cfg = TcpConfig { timestamps: false, sack: false, window_scaling: false, ..script_config() };
    let mut s = Script::new(cfg.clone());
    let l = s.listen();
    s.inject(0, "S 0:0(0) win 65535 <mss 1460>");
    s.expect("S. 0 ack 1 <mss 1460>");
    // FIN without ACK in SYN-RECEIVED: dropped (RFC 9293 fifth step: no ACK, drop).
    s.inject(5, "F 1 win 65535");
    s.expect_nothing();
    // FIN with the ACK of our SYN: ESTABLISHED then CLOSE-WAIT.
    s.inject(10, "F. 1 ack 1 win 65535");
    s.expect(". 1 ack 2");
    let id = s.engine.accept(l).unwrap_or_else(|| panic!("accept"));
    s.pump();
    assert_eq!(s.state(id), Some(State::CloseWait));
    assert!(s.saw_event(StackEvent::Conn(id, Event::PeerClosed)));

    let mut a = Script::new(cfg);
    let id = a.connect();
    a.expect("S 0 <mss 1460>");
    a.inject(5, "F. 0 ack 1 win 65535");
    a.expect_nothing();
    assert_eq!(a.state(id), Some(State::SynSent), "FIN without SYN in SYN-SENT is dropped");
}

fn fin_wait_2_timeout_for_orphans() {
    let cfg = TcpConfig {
        timestamps: false,
        sack: false,
        window_scaling: false,
        fin_wait2_timeout: dataplane::time::Duration::from_millis(2000),
        ..script_config()
    };
    let mut s = Script::new(cfg);
    let l = s.listen();
    s.inject(0, "S 0:0(0) win 65535 <mss 1460>");
    s.expect("S. 0 ack 1 <mss 1460>");
    s.inject(10, ". 1 ack 1 win 65535");
    let id = s.engine.accept(l).unwrap_or_else(|| panic!("accept"));
    s.advance_to(20);
    close(&mut s, id);
    s.expect("F. 1 ack 1");
    s.inject(30, ". 1 ack 2 win 65535");
    s.expect_at(2030, "R. 2 ack 1");
    assert!(closed(&mut s, id, CloseReason::Timeout));
}

/// Brings a fresh plain connection into `state` and returns the RST sequence number that
/// exactly matches RCV.NXT there.
fn into_state(state: State) -> (Script, ConnId, u32) {
    let (mut s, id) = plain();
    s.advance_to(20);
    let rcv_nxt = match state {
        State::Established => 1,
        State::FinWait1 => {
            close(&mut s, id);
            s.expect("F. 1 ack 1");
            1
        }
        State::FinWait2 => {
            assert!(s.engine.shutdown_write(id, s.now).is_ok());
            s.pump();
            s.expect("F. 1 ack 1");
            s.inject(30, ". 1 ack 2 win 65535");
            1
        }
        State::CloseWait => {
            s.inject(30, "F. 1 ack 1 win 65535");
            s.expect(". 1 ack 2");
            2
        }
        State::Closing => {
            close(&mut s, id);
            s.expect("F. 1 ack 1");
            s.inject(30, "F. 1 ack 1 win 65535");
            s.expect(". 2 ack 2");
            2
        }
        State::LastAck => {
            s.inject(30, "F. 1 ack 1 win 65535");
            s.expect(". 1 ack 2");
            close(&mut s, id);
            s.expect("F. 1 ack 2");
            2
        }
        other => panic!("not scripted: {other}"),
    };
    assert_eq!(s.state(id), Some(state));
    (s, id, rcv_nxt)
}

fn rst_in_every_synchronized_state() {
    for state in [State::Established, State::FinWait1, State::FinWait2, State::CloseWait, State::Closing, State::LastAck] {
        let (mut s, id, nxt) = into_state(state);
        s.inject(100, &format!("R {nxt}"));
        s.expect_nothing();
        assert_eq!(s.state(id), None, "{state}: gone after RST");
        assert!(closed(&mut s, id, CloseReason::Reset), "{state}: Closed(Reset) reported");
        let want = u64::from(matches!(state, State::Established | State::CloseWait));
        assert_eq!(s.engine.counters().estab_resets, want, "{state}: EstabResets");
        // The 4-tuple is free again: a later segment is answered as CLOSED.
        s.inject(110, &format!(". {nxt} ack 1 win 65535"));
        s.expect("R 1");
    }
}

fn rst_in_syn_received_drops_the_embryo() {
    let (mut s, _) = plain();
    s.new_peer(40001, false);
    s.inject(20, "S 0:0(0) win 65535 <mss 1460>");
    s.expect("S. 0 ack 1 <mss 1460>");
    assert_eq!(s.engine.connection_count(), 2);
    s.inject(30, "R 1");
    s.expect_nothing();
    assert_eq!(s.engine.connection_count(), 1);
    assert_eq!(s.engine.counters().attempt_fails, 1);
}

fn abort_sends_rst() {
    let (mut s, id) = plain();
    s.advance_to(20);
    assert!(s.engine.abort(id, s.now).is_ok());
    s.pump();
    s.expect("R. 1 ack 1");
    assert!(closed(&mut s, id, CloseReason::Aborted));
    assert!(s.engine.info(id).is_err(), "handle is stale after Closed");
}

crate::both_families!(
    fin_in_established_then_last_ack,
    fin_in_fin_wait_1_goes_to_closing_then_time_wait,
    fin_acking_our_fin_in_fin_wait_1_goes_straight_to_time_wait,
    fin_in_fin_wait_2_and_time_wait_behaviour,
    time_wait_allows_a_newer_syn_to_reopen,
    fin_in_syn_received_and_syn_sent,
    fin_wait_2_timeout_for_orphans,
    rst_in_every_synchronized_state,
    rst_in_syn_received_drops_the_embryo,
    abort_sends_rst,
);
