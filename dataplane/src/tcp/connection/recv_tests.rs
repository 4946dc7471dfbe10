//! Unit tests of the receive side (`recv.rs`): reassembly, the bounded out-of-order
//! queue, window selection, RFC 9293 acceptability and PAWS.

use super::*;
use crate::tcp::payload::HeapPayload;

fn p(n: usize, fill: u8) -> HeapPayload {
    HeapPayload::from_vec(vec![fill; n])
}

fn lim(max_ofo: usize) -> RcvLimits {
    RcvLimits { max_ofo, rcvbuf: 1 << 20, budget_rcvbuf: 1 << 20, shed: false, share: usize::MAX }
}

fn rs() -> RecvState<HeapPayload> {
    let mut r = RecvState::new(1000, Instant::ZERO);
    r.init(SeqNum(999));
    r.adv_from_window(10_000);
    r
}

#[test]
fn reassembles_out_of_order_and_duplicate_segments() {
    let mut c = Counters::default();
    let mut r = rs();
    let o = r.queue(SeqNum(1200), p(100, 3), false, lim(8), &mut c);
    assert!(o.out_of_order);
    let o = r.queue(SeqNum(1100), p(150, 2), false, lim(8), &mut c);
    assert!(o.out_of_order, "overlaps the queued segment and is trimmed");
    assert_eq!(r.ofo_bytes, 200);
    assert_eq!(r.sack_blocks(4).as_slice(), &[(SeqNum(1100), SeqNum(1300))]);
    let o = r.queue(SeqNum(1000), p(100, 1), false, lim(8), &mut c);
    assert_eq!(o.in_order, 300);
    assert!(o.filled_hole);
    assert_eq!(r.nxt, SeqNum(1300));
    let v = r.read(1000).map(|d| d.to_vec()).unwrap_or_default();
    assert_eq!(&v[..100], &[1u8; 100][..]);
    assert_eq!(&v[100..200], &[2u8; 100][..]);
    assert_eq!(&v[200..], &[3u8; 100][..]);
    let o = r.queue(SeqNum(1000), p(100, 1), false, lim(8), &mut c);
    assert!(o.duplicate);
    assert_eq!(c.ofo_queue, 2);
}

#[test]
fn ofo_queue_is_bounded_and_fin_waits_for_the_hole() {
    let mut c = Counters::default();
    let mut r = rs();
    for i in 0..4u32 {
        r.queue(SeqNum(1100 + i * 200), p(100, 0), false, lim(3), &mut c);
    }
    assert_eq!(r.ofo.len(), 3);
    assert_eq!(c.ofo_drop, 1);
    let o = r.queue(SeqNum(2000), p(0, 0), true, lim(3), &mut c);
    assert!(!o.fin);
    assert_eq!(r.ofo_fin, Some(SeqNum(2000)));
    // Most recent block first in SACK.
    r.queue(SeqNum(1300), p(50, 0), false, lim(3), &mut c);
    assert_eq!(r.sack_blocks(3).as_slice()[0], (SeqNum(1300), SeqNum(1400)));
}

#[test]
fn window_never_shrinks_and_avoids_silly_updates() {
    let mut r: RecvState<HeapPayload> = RecvState::new(1000, Instant::ZERO);
    r.init(SeqNum(0));
    let rcvbuf = 8000;
    assert_eq!(r.select_window(rcvbuf, 0, 1000), 8000);
    let mut c = Counters::default();
    r.queue(SeqNum(1), p(7500, 0), false, lim(8), &mut c);
    assert_eq!(r.select_window(rcvbuf, 0, 1000), 500, "remaining window kept");
    r.read(100);
    assert_eq!(r.select_window(rcvbuf, 0, 1000), 500, "100 bytes freed is below the SWS threshold");
    assert!(!r.window_update_due(rcvbuf, 1000));
    r.read(2000);
    assert!(r.window_update_due(rcvbuf, 1000));
    assert_eq!(r.select_window(rcvbuf, 0, 1000), 2600);
    // Scaled windows round up to whole units.
    let mut s: RecvState<HeapPayload> = RecvState::new(1000, Instant::ZERO);
    s.init(SeqNum(0));
    assert_eq!(s.select_window(1000, 7, 1000), 8);
    assert_eq!(s.current_window(), 1024);
}

#[test]
fn acceptability_follows_rfc9293_table() {
    let mut r: RecvState<HeapPayload> = RecvState::new(1000, Instant::ZERO);
    r.init(SeqNum(99));
    assert!(r.acceptable(SeqNum(100), 0));
    assert!(!r.acceptable(SeqNum(101), 0), "zero window: only RCV.NXT");
    assert!(!r.acceptable(SeqNum(100), 10), "zero window: no text");
    r.adv_from_window(100);
    assert!(r.acceptable(SeqNum(150), 0));
    assert!(!r.acceptable(SeqNum(200), 0));
    assert!(r.acceptable(SeqNum(90), 20), "overlaps the left edge");
    assert!(r.acceptable(SeqNum(199), 50), "starts inside");
    assert!(!r.acceptable(SeqNum(50), 40), "entirely old");
}

#[test]
fn paws_rejects_older_timestamps_only() {
    let mut r: RecvState<HeapPayload> = RecvState::new(1000, Instant::ZERO);
    assert!(!r.paws_reject(5, Instant::ZERO), "no TS.Recent yet");
    r.set_ts_recent(1000, Instant::ZERO);
    assert!(r.paws_reject(998, Instant::from_millis(10)));
    assert!(!r.paws_reject(999, Instant::from_millis(10)), "one tick behind passes (TCP_PAWS_WINDOW)");
    assert!(!r.paws_reject(1000, Instant::from_millis(10)));
    assert!(!r.paws_reject(1000u32.wrapping_add(0x7fff_0000), Instant::from_millis(10)));
    assert!(r.paws_reject(1000u32.wrapping_sub(0x7fff_0000), Instant::from_millis(10)));
    let days25 = Instant::from_millis(25 * 24 * 3600 * 1000);
    assert!(!r.paws_reject(998, days25), "TS.Recent older than 24 days is invalid");
}

/// RFC 2018 §4 as Linux keeps `selective_acks`: the blocks go most recently changed first,
/// so with more runs than an option carries every run reaches the sender while it is new;
/// a run RCV.NXT reaches leaves the list, and a copy of held data renews its block.
#[test]
fn sack_blocks_follow_recency_not_sequence() {
    let mut c = Counters::default();
    let mut r = rs();
    for k in 0..4u32 {
        r.queue(SeqNum(1100 + k * 200), p(100, 0), false, lim(16), &mut c);
        assert_eq!(r.sack_blocks(3).as_slice()[0], (SeqNum(1100 + k * 200), SeqNum(1200 + k * 200)), "run {k} first");
    }
    let b = |r: &RecvState<HeapPayload>| r.sack_blocks(3).as_slice().iter().map(|&(l, h)| (l.0, h.0)).collect::<Vec<_>>();
    assert_eq!(b(&r), [(1700, 1800), (1500, 1600), (1300, 1400)], "the lowest run is the oldest report");
    r.queue(SeqNum(1200), p(50, 0), false, lim(16), &mut c);
    assert_eq!(b(&r), [(1100, 1250), (1700, 1800), (1500, 1600)]);
    r.queue(SeqNum(1300), p(100, 0), false, lim(16), &mut c);
    assert_eq!(b(&r), [(1300, 1400), (1100, 1250), (1700, 1800)], "a copy of held data renews its block");
    let o = r.queue(SeqNum(1000), p(100, 0), false, lim(16), &mut c);
    assert_eq!((o.in_order, r.nxt), (250, SeqNum(1250)));
    assert_eq!(b(&r), [(1300, 1400), (1700, 1800), (1500, 1600)], "RCV.NXT reached one block");
    r.queue(SeqNum(1250), p(50, 0), false, lim(16), &mut c);
    assert_eq!(b(&r), [(1700, 1800), (1500, 1600)]);
}
