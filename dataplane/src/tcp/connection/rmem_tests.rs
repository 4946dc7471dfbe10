//! Buffer (truesize) accounting of the receive and send queues: a peer sending tiny
//! segments cannot make a connection pin more buffers than its budget (Linux
//! `sk_rmem_alloc` against `sk_rcvbuf`, `tcp_prune_queue`, `tcp_collapse`,
//! `tcp_prune_ofo_queue`), and when buffers run out engine-wide only text that does not
//! advance RCV.NXT is dropped.

use super::recv::{rmem_budget, RcvLimits, RecvState};
use super::send::SendState;
use super::WriteFlags;
use crate::tcp::counters::Counters;
use crate::tcp::payload::{HeapPayload, Payload};
use crate::tcp::seq::SeqNum;
use crate::time::Instant;

/// The buffer of one mbuf (2048 B of data room plus 128 B of headroom).
const MBUF: usize = 2176;

/// One received byte in its own mbuf-sized buffer.
fn byte(b: u8) -> HeapPayload {
    HeapPayload::in_buffer(&[b], MBUF)
}

fn lim(rcvbuf: u32, shed: bool) -> RcvLimits {
    RcvLimits { max_ofo: 768, rcvbuf, budget_rcvbuf: rcvbuf, shed, share: usize::MAX }
}

/// A receiver expecting sequence 1000 with a window of `rcvbuf`.
fn receiver(rcvbuf: u32) -> RecvState<HeapPayload> {
    let mut r = RecvState::new(1460, Instant::ZERO);
    r.init(SeqNum(999));
    r.adv_from_window(rcvbuf);
    r
}

/// 800 one-byte segments above a hole, every other byte (nothing to coalesce): before
/// buffers were charged, all 768 the segment bound allows were held, 768 mbufs for 768
/// bytes. Now the connection holds what its budget (twice a 64 KiB rcvbuf) allows, and
/// says so in `OfoPruned`/`TCPOFODrop`; the data below the newest segments is kept.
#[test]
fn sparse_tiny_segments_above_a_hole_are_bounded_by_the_buffer_budget() {
    let rcvbuf = 65_536;
    let mut c = Counters::default();
    let mut r = receiver(rcvbuf);
    // 60 000 bytes delivered and read first: the window may reopen by as much.
    let o = r.queue(SeqNum(1000), HeapPayload::from_vec(vec![0; 60_000]), false, lim(rcvbuf, false), &mut c);
    assert_eq!(o.in_order, 60_000);
    let _ = r.read(60_000);
    let base = 61_000u32;
    for i in 0..800u32 {
        r.queue(SeqNum(base + 1 + 2 * i), byte(7), false, lim(rcvbuf, false), &mut c);
        assert!(r.rmem <= rmem_budget(rcvbuf), "segment {i}: {} buffer bytes", r.rmem);
    }
    let held = r.ofo.len();
    assert_eq!(held, rmem_budget(rcvbuf) / MBUF, "buffers held: {held}");
    assert!(held < 100, "{held} buffers for {held} bytes");
    assert_eq!(c.ofo_drop, 800 - held as u64, "segments that did not fit are dropped");
    // Data is kept from the lowest sequence up: the next hole-filler delivers it.
    assert_eq!(r.ofo.first().map(|e| e.seq), Some(SeqNum(base + 1)));
    // The window does not reopen past what is left of the one advertised (5 536 bytes):
    // the budget, not the 65 536 - 60 payload bytes, decides (tcp_space).
    assert_eq!(r.select_window(rcvbuf, 0, 1460), 5_536, "window reopened");
    let o = r.queue(SeqNum(base), byte(1), false, lim(rcvbuf, false), &mut c);
    assert_eq!(o.in_order, 2, "the hole and the byte above it");
}

/// 800 contiguous one-byte segments above a hole: once the queue holds half its budget
/// (31 buffers), the rest are copied into the last one's buffer as they arrive
/// (`tcp_ooo_try_coalesce`): 31 buffers, not 800 (or 768), and all the data.
#[test]
fn contiguous_tiny_segments_above_a_hole_share_one_buffer() {
    let rcvbuf = 65_536;
    let mut c = Counters::default();
    let mut r = receiver(rcvbuf);
    for i in 0..800u32 {
        r.queue(SeqNum(1001 + i), byte((i % 251) as u8), false, lim(rcvbuf, false), &mut c);
    }
    assert_eq!((r.ofo.len(), r.rmem, r.ofo_bytes), (31, 31 * MBUF, 800));
    assert_eq!(c.rcv_coalesce, 769);
    assert_eq!(c.ofo_drop, 0);
    let o = r.queue(SeqNum(1000), byte(0), false, lim(rcvbuf, false), &mut c);
    assert_eq!(o.in_order, 801);
    let data = r.read(10_000).map(|d| d.to_vec()).unwrap_or_default();
    let want: Vec<u8> = std::iter::once(0).chain((0..800u32).map(|i| (i % 251) as u8)).collect();
    assert_eq!(data, want);
}

/// In-order tiny segments the application does not read: over the budget they are
/// collapsed into compact buffers (`tcp_collapse`) instead of pinning one each.
#[test]
fn unread_tiny_in_order_segments_are_collapsed() {
    let rcvbuf = 16_384;
    let mut c = Counters::default();
    let mut r = receiver(rcvbuf);
    for i in 0..200u32 {
        let o = r.queue(SeqNum(1000 + i), byte(i as u8), false, lim(rcvbuf, false), &mut c);
        assert_eq!(o.in_order, 1, "in-order text is always taken");
    }
    assert!(r.rmem <= rmem_budget(rcvbuf), "{} buffer bytes", r.rmem);
    assert!(r.ready.len() < 20, "{} buffers for 200 bytes", r.ready.len());
    assert!(c.rcv_collapsed > 150, "collapsed {}", c.rcv_collapsed);
    let data = r.read(1000).map(|d| d.to_vec()).unwrap_or_default();
    assert_eq!(data, (0..200u32).map(|i| i as u8).collect::<Vec<_>>());
    assert_eq!(r.rmem, 0);
}

/// Engine-wide shedding (the pool below its reserve): before, every data segment was
/// dropped before the engine, including the one filling the hole, so no connection
/// made progress. Now out-of-order text is dropped and the connection's out-of-order
/// queue pruned, in-order text behind unread text is dropped (`TCPRcvQDrop`), and
/// hole-filling text and in-order text of a reader that keeps up are taken.
#[test]
fn shedding_spares_text_that_advances_rcv_nxt() {
    let rcvbuf = 1 << 20;
    let mut c = Counters::default();
    let mut r = receiver(rcvbuf);
    for i in 0..10u32 {
        r.queue(SeqNum(1100 + 2 * i), byte(1), false, lim(rcvbuf, false), &mut c);
    }
    assert_eq!(r.ofo.len(), 10);
    // Hole-filling text under shedding: taken, and what it joins up is delivered.
    let o = r.queue(SeqNum(1000), HeapPayload::in_buffer(&[2; 100], MBUF), false, lim(rcvbuf, true), &mut c);
    assert_eq!(o.in_order, 101, "hole filled and the segment above delivered");
    assert!(!o.dropped);
    // Out-of-order text under shedding: dropped, and the queue above the hole pruned.
    let o = r.queue(SeqNum(1200), byte(3), false, lim(rcvbuf, true), &mut c);
    assert!(o.dropped);
    assert!(r.ofo.is_empty(), "pruned");
    assert_eq!((c.ofo_drop, c.ofo_pruned), (1, 1));
    assert_eq!(r.rmem, r.ready.iter().map(Payload::truesize).sum::<usize>());
    // In-order text behind unread text under shedding: dropped, ACKed at once.
    let o = r.queue(SeqNum(1101), byte(4), false, lim(rcvbuf, true), &mut c);
    assert!(o.dropped && o.nomem);
    assert_eq!(c.rcvq_drop, 1);
    // Once the reader has caught up, in-order text is taken again.
    assert_eq!(r.read(1000).map(|d| d.len()), Some(101));
    let o = r.queue(SeqNum(1101), byte(4), false, lim(rcvbuf, true), &mut c);
    assert_eq!(o.in_order, 1);
}

/// The send queue charges buffers too: 1-byte writes, each its own mbuf, stop being
/// accepted once they pin twice the send buffer, long before the byte limit.
#[test]
fn send_queue_charges_buffers_not_bytes() {
    let sndbuf = 16_384u32;
    let mut s: SendState<HeapPayload> = SendState::new(SeqNum(0), true, Instant::ZERO);
    let mut accepted = 0;
    for i in 0..1000u32 {
        accepted += s.enqueue(byte(i as u8), WriteFlags::NONE, sndbuf, 1448, 1, 65_535);
    }
    // Like `sk_stream_memory_free`, the check is before each write: one may cross it.
    assert_eq!(accepted, rmem_budget(sndbuf).div_ceil(MBUF), "writes accepted");
    assert!(!s.wmem_free(sndbuf));
    assert_eq!(s.queued_truesize, accepted * MBUF);
    s.remove_acked(SeqNum(1 + u32::try_from(accepted).unwrap_or(0)));
    assert_eq!(s.queued_truesize, 0);
    assert!(s.wmem_free(sndbuf));
}

/// The budget starts at `tcp_rmem[1]` (128 KiB of buffers) and grows with the bytes
/// delivered in order, up to twice the configured buffer: a peer that never fills its
/// hole pins 60 mbufs even behind a 1 MiB window.
#[test]
fn the_budget_grows_with_what_was_delivered() {
    use super::recv::{budget_base, RMEM_INITIAL};
    let rcvbuf = 1 << 20;
    assert_eq!(budget_base(rcvbuf, 0), RMEM_INITIAL);
    assert_eq!(budget_base(rcvbuf, 100_000), 200_000);
    assert_eq!(budget_base(rcvbuf, 10_000_000), rcvbuf);
    let mut c = Counters::default();
    let mut r = receiver(rcvbuf);
    let lim = RcvLimits { max_ofo: 768, rcvbuf, budget_rcvbuf: budget_base(rcvbuf, 0), shed: false, share: usize::MAX };
    for i in 0..800u32 {
        r.queue(SeqNum(1001 + 2 * i), byte(7), false, lim, &mut c);
    }
    assert_eq!(r.ofo.len(), rmem_budget(RMEM_INITIAL) / MBUF, "60 buffers, not 768");
}

/// Under memory pressure the receive queues hold at most the connection's fair share
/// (`RcvLimits::share`, Linux `__sk_mem_raise_allocated`): text in a window advertised
/// before the pressure is dropped behind unread text beyond it (`TCPRcvQDrop`), and
/// still taken when the application has read everything (a reader that keeps up).
#[test]
fn pressure_share_bounds_the_receive_queue() {
    let rcvbuf = 1 << 20;
    let share = 8 * MBUF;
    let pressed = RcvLimits { share, ..lim(rcvbuf, false) };
    let mut c = Counters::default();
    let mut r = receiver(rcvbuf);
    let mut seq = 1000u32;
    for _ in 0..20 {
        let seg = HeapPayload::in_buffer(&[1; 1460], MBUF);
        let o = r.queue(SeqNum(seq), seg, false, pressed, &mut c);
        if o.dropped {
            break;
        }
        seq += 1460;
    }
    assert!(r.rmem <= share, "held {} buffer bytes, share {share}", r.rmem);
    assert_eq!(c.rcvq_drop, 1, "the first segment beyond the share is dropped and counted");
    // The reader catches up: the next in-order segment is taken although it is over.
    let unread = r.ready_bytes;
    let _ = r.read(unread);
    let o = r.queue(SeqNum(seq), HeapPayload::in_buffer(&[1; 1460], MBUF), false, pressed, &mut c);
    assert_eq!(o.in_order, 1460, "a reader that keeps up keeps going");
    // Without pressure the same queue takes the whole window.
    let mut c = Counters::default();
    let mut r = receiver(rcvbuf);
    for i in 0..20u32 {
        let o = r.queue(SeqNum(1000 + 1460 * i), HeapPayload::in_buffer(&[1; 1460], MBUF), false, lim(rcvbuf, false), &mut c);
        assert_eq!(o.in_order, 1460);
    }
    assert_eq!(c.rcvq_drop, 0);
}
