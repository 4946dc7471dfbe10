//! The deterministic simulator: two engines over lossy, reordering, duplicating, delaying
//! links move a verified byte stream each way and close cleanly.
//!
//! Sizes: 100 MB each way in optimised builds (`cargo test --release --test tcp_sim`); debug
//! builds run smaller streams so that `cargo test` stays quick. `TCP_SIM_FULL=1` runs the
//! optimised-build sizes whatever the build (the test command sets it: its profile keeps
//! debug assertions on), `TCP_SIM_BYTES` overrides the size and `TCP_SIM_SEED` replays one
//! seed. Failures print the seed.

use dataplane::tcp::sim_link::LinkParams;
use dataplane::tcp::simulator::{run, SimParams, SimReport};
use dataplane::time::Duration;

fn stream_bytes(release_default: u64, debug_default: u64) -> u64 {
    if let Some(v) = std::env::var("TCP_SIM_BYTES").ok().and_then(|v| v.parse().ok()) {
        return v;
    }
    let full = std::env::var_os("TCP_SIM_FULL").is_some();
    if cfg!(debug_assertions) && !full { debug_default } else { release_default }
}

fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("TCP_SIM_SEED").ok().and_then(|v| v.parse().ok()) {
        Some(s) => vec![s],
        None => default.to_vec(),
    }
}

fn check(p: &SimParams) -> SimReport {
    let r = match run(p) {
        Ok(r) => r,
        Err(e) => panic!("simulation failed (replay with TCP_SIM_SEED={}): {e}", p.seed),
    };
    assert_eq!(r.a_to_b.bytes, p.bytes, "seed {}: a->b length", p.seed);
    assert_eq!(r.b_to_a.bytes, p.bytes, "seed {}: b->a length", p.seed);
    assert_eq!(r.a_to_b.hash, r.a_to_b.expected_hash, "seed {}: a->b hash", p.seed);
    assert_eq!(r.b_to_a.hash, r.b_to_a.expected_hash, "seed {}: b->a hash", p.seed);
    eprintln!(
        "seed {}: {} bytes each way in {:?} virtual; a: {} segs out, {} retrans, {} timeouts, {} fast retrans; links lost {}/{}",
        p.seed,
        p.bytes,
        r.elapsed,
        r.counters_a.out_segs,
        r.counters_a.retrans_segs,
        r.counters_a.timeouts,
        r.counters_a.fast_retrans,
        r.link_ab.lost,
        r.link_ba.lost
    );
    r
}

fn impaired() -> LinkParams {
    LinkParams {
        loss: 0.01,
        reorder: 0.01,
        duplicate: 0.005,
        delay: Duration::from_millis(5),
        jitter: Duration::from_millis(1),
        rate_bps: Some(1_000_000_000),
    }
}

#[test]
fn clean_link_moves_streams_both_ways() {
    let bytes = stream_bytes(100 << 20, 4 << 20);
    for seed in seeds(&[1]) {
        let mut p = SimParams::new(seed, bytes, LinkParams { delay: Duration::from_millis(1), ..LinkParams::default() });
        p.wire_format = false;
        let r = check(&p);
        assert_eq!(r.counters_a.retrans_segs, 0, "seed {seed}: no loss, no retransmission");
        assert_eq!(r.counters_a.in_csum_errors + r.counters_b.in_csum_errors, 0);
    }
}

#[test]
fn impaired_link_moves_100mb_each_way_intact() {
    let bytes = stream_bytes(100 << 20, 2 << 20);
    for seed in seeds(&[7, 42]) {
        let p = SimParams::new(seed, bytes, impaired());
        let r = check(&p);
        assert!(r.link_ab.lost > 0 && r.link_ab.reordered > 0 && r.link_ab.duplicated > 0, "seed {seed}: impairments happened");
        assert!(r.counters_a.retrans_segs > 0, "seed {seed}: losses were repaired");
        assert_eq!(r.counters_a.in_errs + r.counters_b.in_errs, 0, "seed {seed}: every segment parsed");
    }
}

#[test]
fn heavy_loss_and_small_buffers_still_complete() {
    let bytes = stream_bytes(8 << 20, 256 << 10);
    for seed in seeds(&[3, 11, 99]) {
        let mut p = SimParams::new(
            seed,
            bytes,
            LinkParams {
                loss: 0.08,
                reorder: 0.05,
                duplicate: 0.05,
                delay: Duration::from_millis(20),
                jitter: Duration::from_millis(5),
                rate_bps: Some(50_000_000),
            },
        );
        p.tcp.rcvbuf = 64 * 1024;
        p.tcp.sndbuf = 48 * 1024;
        p.tcp.timestamps = seed % 2 == 1;
        p.tcp.sack = seed % 3 != 0;
        p.write_chunk = 3000;
        check(&p);
    }
}
