//! Goodput grid of the deterministic simulator: NewReno and CUBIC (with SACK, RACK-TLP and
//! PRR) over links with 0, 1, 5 and 10 % loss, each with 1 % reordering, 1 % duplication,
//! 20 ms one-way delay and a 100 Mbit/s bottleneck.
//!
//! ```text
//! cargo run --release -p dataplane --no-default-features --example sim_grid -- [MiB] [seeds]
//! ```
//!
//! Each cell moves `MiB` (default 8) each way, for each of `seeds` seeds (default 3), and
//! prints the mean goodput of one direction (bytes delivered / virtual time), with the
//! client's retransmissions by cause. A run is a pure function of its seed: any cell
//! replays exactly.

use dataplane::tcp::congestion::Algorithm;
use dataplane::tcp::sim_link::LinkParams;
use dataplane::tcp::simulator::{run, SimParams};
use dataplane::time::Duration;

fn arg(n: usize, default: u64) -> u64 {
    std::env::args().nth(n).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let mib = arg(1, 8).max(1);
    let seeds = arg(2, 3).max(1);
    let bytes = mib << 20;
    println!("{mib} MiB each way, {seeds} seeds per cell; 1% reorder, 1% dup, 20 ms delay, 100 Mbit/s");
    println!(
        "{:<8} {:>6} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "algo", "loss", "goodput", "fast", "rto", "probes", "timeouts", "undo"
    );
    for algo in [Algorithm::NewReno, Algorithm::Cubic] {
        for loss in [0.0, 0.01, 0.05, 0.10] {
            let mut mbps = 0.0;
            let (mut fast, mut rto, mut probes, mut timeouts, mut undo) = (0u64, 0u64, 0u64, 0u64, 0u64);
            let mut failed = None;
            for seed in 1..=seeds {
                let link = LinkParams {
                    loss,
                    reorder: 0.01,
                    duplicate: 0.01,
                    delay: Duration::from_millis(20),
                    jitter: Duration::from_millis(1),
                    rate_bps: Some(100_000_000),
                };
                let mut p = SimParams::new(seed, bytes, link);
                p.tcp.congestion = algo;
                p.tcp.tlp = true;
                p.tcp.rcvbuf = 4 << 20;
                p.tcp.sndbuf = 4 << 20;
                match run(&p) {
                    Ok(r) => {
                        let secs = r.elapsed.as_secs_f64().max(1e-9);
                        mbps += r.a_to_b.bytes as f64 * 8.0 / secs / 1e6;
                        let c = &r.counters_a;
                        fast += c.fast_retrans;
                        rto += c.rto_retrans;
                        probes += c.loss_probes;
                        timeouts += c.timeouts;
                        undo += c.loss_undo + c.dsack_undo;
                    }
                    Err(e) => failed = Some(e.to_string()),
                }
            }
            let n = seeds as f64;
            match failed {
                Some(e) => println!("{:<8} {:>5.0}% FAILED: {e}", algo.name(), loss * 100.0),
                None => println!(
                    "{:<8} {:>5.0}% {:>7.2} Mb/s {:>9} {:>9} {:>9} {:>9} {:>9}",
                    algo.name(),
                    loss * 100.0,
                    mbps / n,
                    fast / seeds,
                    rto / seeds,
                    probes / seeds,
                    timeouts / seeds,
                    undo / seeds
                ),
            }
        }
    }
}
