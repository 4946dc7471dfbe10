//! [`MbufPayload`] against the real DPDK: receive views, slicing, appending, reference
//! counts, transmit chaining with indirect mbufs, checksums over a gather list, and the
//! copy counter (zero on every zero-copy operation).
//!
//! DPDK allows one EAL per process, so one `#[test]` runs every step in order. Needs root
//! (EAL): without it the test prints a skip line, unless `REQUIRE_ROOT_TESTS=1`.
#![cfg(feature = "dpdk")]

use dataplane::dpdk::{copy_stats, Eal, Mbuf, MbufPayload, Mempool, PayloadError};
use dataplane::tcp::Payload;
use dataplane::wire::checksum;

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0")))
        .unwrap_or(false)
}

fn frame(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn mbuf_payload() {
    if !is_root() {
        if std::env::var("REQUIRE_ROOT_TESTS").as_deref() == Ok("1") {
            panic!("mbuf_payload needs root and REQUIRE_ROOT_TESTS=1 is set");
        }
        println!("SKIP mbuf_payload: needs root (EAL)");
        return;
    }
    let args: Vec<String> = [
        "strait-test",
        "--no-huge",
        "-m",
        "128",
        "--no-pci",
        "--no-shconf",
        "--log-level",
        "lib.eal:error",
        "--file-prefix",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("strait-payload-{}", std::process::id())])
    .collect();
    let eal = Eal::init(&args).expect("EAL init");
    let pool = Mempool::new("payload-test", 1023, 0, Mempool::DEFAULT_DATA_ROOM, -1).expect("mempool");
    let start_in_use = pool.in_use();
    let copies_before = copy_stats();

    rx_view_and_slices(&pool);
    append_coalesces_and_chains(&pool);
    transmit_chain_shares_buffers(&pool);
    checksum_over_odd_chunks(&pool);
    assert_eq!(copy_stats(), copies_before, "zero-copy operations copied payload");

    scattered_frames_are_copied_and_counted(&pool);
    bad_ranges_are_errors(&pool);
    copy_append_fills_spare_room(&pool);

    assert_eq!(pool.in_use(), start_in_use, "every mbuf went back to the pool");
    drop(pool);
    drop(eal);
}

fn rx_view_and_slices(pool: &Mempool) {
    let bytes = frame(1514, 1);
    let m = Mbuf::from_slice(pool, &bytes).expect("mbuf");
    // A TCP segment at offset 34, 1480 bytes: the view is the frame itself.
    let p = MbufPayload::from_rx(m, 34, 1480, pool).expect("payload");
    assert_eq!(p.len(), 1480);
    assert_eq!(p.chunk_count(), 1);
    assert_eq!(p.chunks().next(), Some(&bytes[34..1514]));
    assert_eq!(pool.in_use(), 1, "no mbuf was allocated for the view");

    let mut q = p.clone();
    let tail = q.split_off(1000);
    assert_eq!(q.chunks().next(), Some(&bytes[34..1034]));
    assert_eq!(tail.chunks().next(), Some(&bytes[1034..1514]));
    let mut r = p.slice(100..200);
    let head = r.split_to(40);
    assert_eq!(head.chunks().next(), Some(&bytes[134..174]));
    assert_eq!(r.chunks().next(), Some(&bytes[174..234]));
    assert!(p.slice(2000..3000).is_empty(), "out-of-range slices clamp to empty");
    // The TCP header off in place (`rte_pktmbuf_adj` on the view): the same bytes as a
    // slice, the same buffer charged, and past the end nothing is left.
    let mut a = p.clone();
    a.advance(20);
    assert_eq!(a.chunks().next(), Some(&bytes[54..1514]));
    assert_eq!(a.truesize(), p.truesize(), "the whole mbuf is still charged");
    let mut gone = p.clone();
    gone.advance(5000);
    assert!(gone.is_empty());
    assert_eq!(pool.in_use(), 1, "slices share the one mbuf");
    drop((p, q, tail, r, head, a, gone));
    assert_eq!(pool.in_use(), 0, "the last view freed the frame");
}

fn append_coalesces_and_chains(pool: &Mempool) {
    let a = frame(1000, 2);
    let b = frame(777, 3);
    let pa = MbufPayload::from_mbuf(Mbuf::from_slice(pool, &a).expect("mbuf"));
    let pb = MbufPayload::from_mbuf(Mbuf::from_slice(pool, &b).expect("mbuf"));
    let mut joined = pa.slice(0..400);
    joined.append(pa.slice(400..1000));
    assert_eq!(joined.chunk_count(), 1, "adjacent views of one mbuf coalesce");
    joined.append(pb.clone());
    joined.append(MbufPayload::empty());
    assert_eq!(joined.chunk_count(), 2);
    assert_eq!(joined.len(), 1777);
    let whole: Vec<u8> = joined.chunks().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(&whole[..1000], &a[..]);
    assert_eq!(&whole[1000..], &b[..]);
    let mid = joined.slice(900..1100);
    assert_eq!(mid.chunk_count(), 2);
    let m: Vec<u8> = mid.chunks().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(&m[..100], &a[900..]);
    assert_eq!(&m[100..], &b[..100]);
}

fn transmit_chain_shares_buffers(pool: &Mempool) {
    let a = frame(1448, 4);
    let b = frame(1448, 5);
    let mut p = MbufPayload::from_rx(Mbuf::from_slice(pool, &[&[0u8; 66][..], &a].concat()).expect("mbuf"), 66, 1448, pool)
        .expect("payload");
    p.append(MbufPayload::from_mbuf(Mbuf::from_slice(pool, &b).expect("mbuf")));
    let piece = p.slice(1000..2000);
    let before = pool.in_use();
    let mut head = Mbuf::from_slice(pool, b"HEADERS").expect("header mbuf");
    piece.chain_onto(&mut head, pool).expect("chain");
    assert_eq!(head.nb_segs(), 3, "header + one indirect view per chunk");
    assert_eq!(head.len(), 7 + 1000);
    let wire = head.to_vec();
    assert_eq!(&wire[..7], b"HEADERS");
    assert_eq!(&wire[7..455], &a[1000..]);
    assert_eq!(&wire[455..], &b[..552]);
    assert_eq!(pool.in_use(), before + 3, "views are new headers over the same buffers");
    drop(p);
    drop(piece);
    // The frame in flight keeps the payload buffers alive.
    let wire2 = head.to_vec();
    assert_eq!(wire, wire2);
    drop(head);
    assert_eq!(pool.in_use(), 0, "buffers and views freed with the last reference");
}

fn checksum_over_odd_chunks(pool: &Mempool) {
    let parts = [frame(3, 6), frame(10, 7), frame(1, 8), frame(1001, 9)];
    let mut p = MbufPayload::empty();
    let mut flat = Vec::new();
    for part in &parts {
        p.append(MbufPayload::from_mbuf(Mbuf::from_slice(pool, part).expect("mbuf")));
        flat.extend_from_slice(part);
    }
    let want = checksum::fold(checksum::sum(&flat, 0x1234));
    assert_eq!(checksum::fold(p.checksum_sum(0x1234)), want, "gather-list sum equals the flat sum");
}

fn scattered_frames_are_copied_and_counted(pool: &Mempool) {
    let a = frame(100, 10);
    let b = frame(300, 11);
    let mut m = Mbuf::from_slice(pool, &a).expect("mbuf");
    m.chain(Mbuf::from_slice(pool, &b).expect("mbuf")).expect("chain");
    let before = copy_stats();
    let p = MbufPayload::from_rx(m, 50, 320, pool).expect("payload");
    let after = copy_stats();
    assert_eq!(after.copies, before.copies + 1);
    assert_eq!(after.bytes, before.bytes + 320);
    let got: Vec<u8> = p.chunks().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(&got[..50], &a[50..]);
    assert_eq!(&got[50..], &b[..270]);
    drop(p);
    assert_eq!(pool.in_use(), 0, "the scattered frame was freed after the copy");
}

fn bad_ranges_are_errors(pool: &Mempool) {
    let m = Mbuf::from_slice(pool, &frame(60, 12)).expect("mbuf");
    assert!(matches!(
        MbufPayload::from_rx(m, 40, 30, pool),
        Err(PayloadError::OutOfRange { offset: 40, len: 30, frame_len: 60 })
    ));
    let m = Mbuf::from_slice(pool, &frame(60, 12)).expect("mbuf");
    assert!(MbufPayload::from_rx(m, usize::MAX, 2, pool).is_err(), "overflowing range");
    let m = Mbuf::from_slice(pool, &frame(60, 12)).expect("mbuf");
    assert!(m.clone_range(pool, 50, 11).is_err(), "clone_range outside the data");
    let ok = m.clone_range(pool, 10, 20).expect("clone_range");
    assert_eq!(ok.data(), &frame(60, 12)[10..30]);
}

/// `truesize` is the whole mbuf; `try_copy_append` copies into an exclusively owned
/// mbuf's spare room (over frame padding, then tailroom) and refuses a shared one.
fn copy_append_fills_spare_room(pool: &Mempool) {
    let room = usize::from(pool.data_room());
    // A 60-byte frame (padded) carrying 1 byte of TCP payload at offset 54.
    let mut f = vec![0u8; 60];
    f[54] = b'a';
    let m = Mbuf::from_slice(pool, &f).expect("mbuf");
    let mut p = MbufPayload::from_rx(m, 54, 1, pool).expect("payload");
    assert_eq!(p.truesize(), room, "the whole buffer counts");
    let before = copy_stats();
    for b in [b'b', b'c'] {
        let mut g = vec![0u8; 60];
        g[54] = b;
        let q = MbufPayload::from_rx(Mbuf::from_slice(pool, &g).expect("mbuf"), 54, 1, pool).expect("payload");
        assert!(p.try_copy_append(&q));
    }
    assert_eq!(p.to_vec(), b"abc");
    let big = MbufPayload::from_slice(pool, &[7u8; 100]).expect("payload");
    assert!(p.try_copy_append(&big), "past the padding into the tailroom");
    assert_eq!(p.len(), 103);
    assert_eq!(p.chunk_count(), 1);
    let shared = p.clone();
    assert!(!p.try_copy_append(&big), "a shared mbuf is not written");
    drop(shared);
    assert!(copy_stats().bytes > before.bytes, "copies are counted");
}
