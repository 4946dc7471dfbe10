//! Retransmission timeouts at 5 % random loss in the deterministic simulator: SACK and
//! RACK-TLP (RFC 8985) must repair almost every loss without waiting for the RTO.
//!
//! The setting is the end-to-end impairment test's: a sub-millisecond path (200 µs one
//! way, 1 Gbit/s), 5 % loss and 1 % reordering each way, the server echoing what it
//! receives (so its flights are short and tails frequent), tail loss probes on as the
//! proxy runs them. Each RTO there costs the 200 ms minimum, hundreds of RTTs.

use dataplane::tcp::sim_link::LinkParams;
use dataplane::tcp::simulator::{run, SimParams, SimReport};
use dataplane::time::Duration;

fn echo_through_5_percent_loss(seed: u64, bytes: u64) -> SimReport {
    let mut p = SimParams::new(
        seed,
        bytes,
        LinkParams {
            loss: 0.05,
            reorder: 0.01,
            duplicate: 0.0,
            delay: Duration::from_micros(200),
            jitter: Duration::ZERO,
            rate_bps: Some(1_000_000_000),
        },
    );
    p.echo = true;
    p.tcp.tlp = true;
    let r = match run(&p) {
        Ok(r) => r,
        Err(e) => panic!("simulation failed: {e}"),
    };
    assert_eq!((r.a_to_b.bytes, r.b_to_a.bytes), (bytes, bytes), "seed {seed}: lengths");
    assert_eq!(r.a_to_b.hash, r.a_to_b.expected_hash, "seed {seed}: a->b hash");
    assert_eq!(r.b_to_a.hash, r.b_to_a.expected_hash, "seed {seed}: echo hash");
    r
}

/// Twelve fixed seeds, 10 MiB echoed each: 240 MiB sent by the engines through ~12 000
/// lost segments. Measured: 1 RTO in all; 10 before RACK's minimum RTT was taken at full
/// clock precision (lost retransmissions then waited for the RTO).
#[test]
fn echo_at_5_percent_loss_recovers_without_rto_storm() {
    let bytes = 10 << 20;
    let (mut timeouts, mut lost, mut fast) = (0, 0, 0);
    for seed in 1..=12 {
        let r = echo_through_5_percent_loss(seed, bytes);
        let (a, b) = (&r.counters_a, &r.counters_b);
        eprintln!(
            "seed {seed}: {:?} virtual; RTOs {}+{}, fast retrans {}+{}, TLPs {}+{}, spurious RTOs {}+{}, lost retransmissions {}+{}; lost on the links {}+{}",
            r.elapsed,
            a.timeouts,
            b.timeouts,
            a.fast_retrans,
            b.fast_retrans,
            a.loss_probes,
            b.loss_probes,
            a.spurious_rtos,
            b.spurious_rtos,
            a.lost_retransmit,
            b.lost_retransmit,
            r.link_ab.lost,
            r.link_ba.lost
        );
        timeouts += a.timeouts + b.timeouts;
        fast += a.fast_retrans + b.fast_retrans;
        lost += r.link_ab.lost + r.link_ba.lost;
    }
    assert!(lost > 10_000, "the links lost only {lost} segments");
    assert!(fast * 2 > lost, "{fast} fast retransmissions for {lost} losses");
    // At most one RTO per 4 000 lost segments (Linux-like: a few per 100 MB).
    assert!(timeouts * 4000 <= lost, "{timeouts} RTOs for {lost} lost segments");
}
