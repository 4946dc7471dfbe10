//! Throughput benchmark of the sans-IO TCP engine against smoltcp, both driven in memory on
//! one core (`cargo bench -p dataplane --no-default-features --bench bulk`).
//!
//! Two stacks of each kind talk over an in-memory wire: every segment is emitted as an IPv4
//! packet (header, TCP header and options, payload copied in, both checksums computed in
//! software) and parsed and checksum-verified on the other side, so the per-segment cost
//! compares like with like. There is no loss and virtual time advances `STEP_NS` per round,
//! so no retransmission timer ever fires. One thread runs both ends: the figures are the
//! throughput of one core doing the sender's and the receiver's work, timed in thread CPU
//! time (`CLOCK_THREAD_CPUTIME_ID`) so that other load on the machine does not skew them.
//!
//! Scenarios (the same for both stacks where the stack can do it):
//!
//! * `bulk/1mss`: 64 MiB one way in 1-MSS segments (TSO off; smoltcp on a 1500-byte MTU).
//! * `bulk/tso-nic`: TSO on, 64 KiB super-segments handed over whole. Software GSO cost is
//!   EXCLUDED: this is a TSO NIC on the sender and LRO/GRO on the receiver. smoltcp has no
//!   TSO; its counterpart runs on a device whose MTU carries the same 44 x 1460-byte segments.
//! * `bulk/tso-gso`: TSO on, each super-segment cut by [`dataplane::offload::gso_segment`]
//!   into 1-MSS frames (software GSO cost INCLUDED); the receiver sees 1-MSS frames. Its
//!   smoltcp counterpart is `bulk/1mss` (the same frames on the wire).
//! * `rr/1k`: request/response, 1 KiB request, 1 KiB response per transaction, no-delay.
//!
//! A summary table (Gbit/s, segments/s, ratio ours / smoltcp) is printed at the end.
//! Environment: `STRAIT_BENCH_MB` (bulk size in MiB, default 64), `STRAIT_BENCH_TXNS`
//! (transactions of one profile run, default 20000), `STRAIT_BENCH_CONNS` (connections
//! `strait-rr` takes its transactions on in turn, default 1: with thousands, the engines'
//! state no longer fits the cache, as on a busy proxy; run it under
//! `valgrind --tool=callgrind --cache-sim=yes` to count the misses per transaction) and
//! `STRAIT_BENCH_PROFILE=<scenario>`,
//! which runs one scenario once without criterion, for `valgrind --tool=callgrind` (see
//! `docs/benchmarks/engine.md`).

use std::cell::RefCell;
use std::rc::Rc;
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use nix::time::{clock_gettime, ClockId};

use criterion::{Criterion, SamplingMode, Throughput};
use dataplane::offload::gso_segment;
use dataplane::tcp::{ConnId, Engine, Event, HeapPayload, Payload, StackError, StackEvent, TcpConfig, WriteError, WriteFlags};
use dataplane::time::{Duration, Instant};
use dataplane::wire::{ipv4, tcp as wire_tcp};

const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 443;
/// Virtual time per round of the driver loop.
const STEP_NS: u64 = 10_000;
/// A transfer that needs more rounds than this is stuck.
const MAX_ROUNDS: u64 = 10_000_000;
/// Send and receive buffer of every connection, both stacks.
const BUF: usize = 1 << 20;
/// The application's source data: a pattern this long, written as zero-copy slices.
const SRC_LEN: usize = 1 << 20;
/// Largest single write of the bulk sender.
const WRITE_CHUNK: usize = 64 * 1024;
/// Default largest single read of our receiver (`STRAIT_BENCH_READ_MAX` overrides): what a
/// proxy forwarding into a 64 KiB super-segment would take at once.
const READ_MAX: usize = 64 * 1024;
/// Request and response size of the request/response scenario.
const RR_SIZE: usize = 1024;
/// Ethernet MTU (smoltcp 1-MSS runs: MSS 1460, as ours).
const MTU: usize = 1500;
/// smoltcp's "super-segment" MTU: 44 x 1460 bytes of payload, what our `size_goal` makes
/// of `gso_max_size` 65536 (send-path §1).
const SUPER_MTU: usize = 44 * 1460 + 40;

fn pattern_byte(offset: u64) -> u8 {
    let i = offset % SRC_LEN as u64;
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

fn pattern() -> Vec<u8> {
    (0..SRC_LEN as u64).map(pattern_byte).collect()
}

/// Checks received bytes against the pattern at stream offset `at`.
fn verify(at: u64, data: &[u8]) -> Result<(), String> {
    for (i, &b) in data.iter().enumerate() {
        let off = at + i as u64;
        if b != pattern_byte(off) {
            return Err(format!("stream corrupt at offset {off}"));
        }
    }
    Ok(())
}

/// Measures the CPU time of this thread (`CLOCK_THREAD_CPUTIME_ID`), so that other load on
/// the machine does not inflate the figures; wall time where that clock is unavailable.
struct Stopwatch {
    cpu: Option<StdDuration>,
    wall: StdInstant,
}

fn thread_cpu_time() -> Option<StdDuration> {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok()?;
    Some(StdDuration::from(t))
}

impl Stopwatch {
    fn start() -> Self {
        Stopwatch { cpu: thread_cpu_time(), wall: StdInstant::now() }
    }

    fn elapsed(&self) -> StdDuration {
        match (self.cpu, thread_cpu_time()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => self.wall.elapsed(),
        }
    }
}

/// What one measured run did.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    elapsed: StdDuration,
    /// Payload bytes (bulk) or transactions (request/response).
    units: u64,
    /// Segments sender -> receiver (client -> server).
    segs_ab: u64,
    /// Segments receiver -> sender.
    segs_ba: u64,
}

impl Sample {
    fn segs(&self) -> u64 {
        self.segs_ab + self.segs_ba
    }
}

#[path = "bulk/payloads.rs"]
mod payloads;
use payloads::*;

#[path = "bulk/strait.rs"]
mod strait;
use strait::*;

#[path = "bulk/smol.rs"]
mod smol;
use smol::{measured_rr_smoltcp, run_bulk_smoltcp, SmolPair};

// ===================================================================================
// Scenarios, criterion, summary
// ===================================================================================

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    Strait1Mss,
    Strait1MssHeap,
    StraitTsoNic,
    StraitTsoGso,
    StraitRr,
    Smoltcp1Mss,
    Smoltcp64k,
    SmoltcpRr,
}

impl Scenario {
    const ALL: [Scenario; 8] = [
        Scenario::Strait1Mss,
        Scenario::Strait1MssHeap,
        Scenario::StraitTsoNic,
        Scenario::StraitTsoGso,
        Scenario::StraitRr,
        Scenario::Smoltcp1Mss,
        Scenario::Smoltcp64k,
        Scenario::SmoltcpRr,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Strait1Mss => "strait-1mss",
            Scenario::Strait1MssHeap => "strait-1mss-heap",
            Scenario::StraitTsoNic => "strait-tso-nic",
            Scenario::StraitTsoGso => "strait-tso-gso",
            Scenario::StraitRr => "strait-rr",
            Scenario::Smoltcp1Mss => "smoltcp-1mss",
            Scenario::Smoltcp64k => "smoltcp-64k",
            Scenario::SmoltcpRr => "smoltcp-rr",
        }
    }

    fn is_rr(self) -> bool {
        matches!(self, Scenario::StraitRr | Scenario::SmoltcpRr)
    }

    /// One bulk transfer.
    fn run_bulk(self, d: &Data, total: u64, check: bool) -> Result<Sample, String> {
        match self {
            Scenario::Strait1Mss => run_bulk_strait(false, TxMode::Whole, &d.src, total, check),
            Scenario::Strait1MssHeap => run_bulk_strait(false, TxMode::Whole, &d.src_heap, total, check),
            Scenario::StraitTsoNic => run_bulk_strait(true, TxMode::Whole, &d.src, total, check),
            Scenario::StraitTsoGso => run_bulk_strait(true, TxMode::SoftGso, &d.src, total, check),
            Scenario::Smoltcp1Mss => run_bulk_smoltcp(MTU, &d.src_vec, total, check),
            Scenario::Smoltcp64k => run_bulk_smoltcp(SUPER_MTU, &d.src_vec, total, check),
            Scenario::StraitRr | Scenario::SmoltcpRr => Err("not a bulk scenario".into()),
        }
    }
}

/// A request/response pair, kept across criterion's calls.
enum RrPair {
    Strait(Box<OurPair<WirePayload>>),
    Smoltcp(Box<SmolPair>),
}

impl RrPair {
    fn new(s: Scenario) -> Result<Self, String> {
        match s {
            Scenario::StraitRr => {
                let conns = usize::try_from(env_u64("STRAIT_BENCH_CONNS", 1)).unwrap_or(1);
                Ok(RrPair::Strait(Box::new(OurPair::with_conns(our_config(false, true), TxMode::Whole, conns)?)))
            }
            _ => Ok(RrPair::Smoltcp(Box::new(SmolPair::new(MTU, true)?))),
        }
    }

    fn segs(&self) -> (u64, u64) {
        match self {
            RrPair::Strait(p) => (p.segs_ab, p.segs_ba),
            RrPair::Smoltcp(p) => (p.segs_ab, p.segs_ba),
        }
    }

    fn run(&mut self, d: &Data, n: u64, check: bool) -> Result<Sample, String> {
        let (ab, ba) = self.segs();
        let t = Stopwatch::start();
        match self {
            RrPair::Strait(p) => measured_rr_strait(p, &d.req, &d.resp, n, check)?,
            RrPair::Smoltcp(p) => measured_rr_smoltcp(p, &d.src_vec[..RR_SIZE], &d.src_vec[..RR_SIZE], n, check)?,
        }
        let elapsed = t.elapsed();
        let (ab2, ba2) = self.segs();
        Ok(Sample { elapsed, units: n, segs_ab: ab2 - ab, segs_ba: ba2 - ba })
    }
}

/// The applications' data.
struct Data {
    src_vec: Vec<u8>,
    src: WirePayload,
    src_heap: HeapPayload,
    req: WirePayload,
    resp: WirePayload,
}

impl Data {
    fn new() -> Self {
        let src_vec = pattern();
        let src = WirePayload::from_source(&src_vec);
        let src_heap = HeapPayload::from_source(&src_vec);
        let req = src.slice(0..RR_SIZE);
        let resp = src.slice(0..RR_SIZE);
        Data { src_vec, src, src_heap, req, resp }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).filter(|&v| v > 0).unwrap_or(default)
}

fn fail(msg: &str) -> ! {
    eprintln!("bench failed: {msg}");
    std::process::exit(1)
}

/// Every scenario once with every byte verified, so that the figures measure real transfers.
fn correctness_check(d: &Data) -> Result<(), String> {
    for s in Scenario::ALL {
        if s.is_rr() {
            let sample = RrPair::new(s)?.run(d, 100, true)?;
            if sample.segs() < 200 {
                return Err(format!("{}: {} segments for 100 transactions", s.name(), sample.segs()));
            }
        } else {
            s.run_bulk(d, 8 << 20, true).map_err(|e| format!("{}: {e}", s.name()))?;
        }
    }
    Ok(())
}

/// `STRAIT_BENCH_PROFILE=<scenario>`: one run, no criterion (for callgrind).
fn profile(d: &Data, name: &str) -> Result<(), String> {
    let s = Scenario::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| {
        let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
        format!("unknown scenario {name:?}; one of {}", names.join(", "))
    })?;
    let sample = if s.is_rr() {
        RrPair::new(s)?.run(d, env_u64("STRAIT_BENCH_TXNS", 20_000), false)?
    } else {
        s.run_bulk(d, env_u64("STRAIT_BENCH_MB", 64) << 20, false)?
    };
    println!(
        "{}: {} {} in {:.3} s; segments a->b {} b->a {} total {}",
        s.name(),
        sample.units,
        if s.is_rr() { "transactions" } else { "bytes" },
        sample.elapsed.as_secs_f64(),
        sample.segs_ab,
        sample.segs_ba,
        sample.segs()
    );
    Ok(())
}

type Results = RefCell<BTreeMap<Scenario, Vec<Sample>>>;

fn record(results: &Results, s: Scenario, sample: Sample) {
    results.borrow_mut().entry(s).or_default().push(sample);
}

/// Median bulk sample by throughput; request/response samples are summed.
fn summarize(samples: &[Sample], rr: bool) -> Option<Sample> {
    if rr {
        let mut t = Sample::default();
        for s in samples {
            t.elapsed += s.elapsed;
            t.units += s.units;
            t.segs_ab += s.segs_ab;
            t.segs_ba += s.segs_ba;
        }
        return (t.units > 0).then_some(t);
    }
    let mut v: Vec<Sample> = samples.to_vec();
    v.sort_by_key(|s| s.elapsed);
    v.get(v.len() / 2).copied()
}

fn print_summary(results: &Results, total: u64) {
    let r = results.borrow();
    let get = |s: Scenario| r.get(&s).and_then(|v| summarize(v, s.is_rr()));
    let gbps = |s: &Sample| s.units as f64 * 8.0 / s.elapsed.as_secs_f64() / 1e9;
    let segs = |s: &Sample| s.segs() as f64 / s.elapsed.as_secs_f64();
    println!();
    println!(
        "==== Summary: one core runs both ends (thread CPU time); {} MiB per bulk transfer, median run ====",
        total >> 20
    );
    println!(
        "{:<16} {:>9} {:>11} {:>10} {:>9} | {:<13} {:>9} {:>11} | {:>11}",
        "scenario", "Gbit/s", "Msegs/s", "data segs", "acks", "smoltcp", "Gbit/s", "Msegs/s", "ours/smol"
    );
    let bulk = [
        (Scenario::Strait1Mss, Scenario::Smoltcp1Mss),
        (Scenario::Strait1MssHeap, Scenario::Smoltcp1Mss),
        (Scenario::StraitTsoNic, Scenario::Smoltcp64k),
        (Scenario::StraitTsoGso, Scenario::Smoltcp1Mss),
    ];
    for (ours, smol) in bulk {
        let (Some(o), Some(s)) = (get(ours), get(smol)) else { continue };
        println!(
            "{:<16} {:>9.2} {:>11.3} {:>10} {:>9} | {:<13} {:>9.2} {:>11.3} | {:>10.2}x",
            ours.name(),
            gbps(&o),
            segs(&o) / 1e6,
            o.segs_ab,
            o.segs_ba,
            smol.name(),
            gbps(&s),
            segs(&s) / 1e6,
            gbps(&o) / gbps(&s)
        );
    }
    if let (Some(o), Some(s)) = (get(Scenario::StraitRr), get(Scenario::SmoltcpRr)) {
        let tps = |s: &Sample| s.units as f64 / s.elapsed.as_secs_f64();
        let us = |s: &Sample| s.elapsed.as_secs_f64() * 1e6 / s.units as f64;
        let spt = |s: &Sample| s.segs() as f64 / s.units as f64;
        println!();
        println!(
            "{:<16} {:>9} {:>11} {:>10} {:>9} | {:<13} {:>9} {:>11} | {:>11}",
            "request/resp", "ktxn/s", "us/txn", "segs/txn", "Msegs/s", "smoltcp", "ktxn/s", "us/txn", "ours/smol"
        );
        println!(
            "{:<16} {:>9.1} {:>11.3} {:>10.2} {:>9.3} | {:<13} {:>9.1} {:>11.3} | {:>10.2}x",
            "strait-rr-1k",
            tps(&o) / 1e3,
            us(&o),
            spt(&o),
            segs(&o) / 1e6,
            "smoltcp-rr",
            tps(&s) / 1e3,
            us(&s),
            tps(&o) / tps(&s)
        );
    }
    println!("(tso-nic: 64 KiB super-segments handed over whole, software GSO cost excluded; its smoltcp");
    println!(" counterpart uses a {SUPER_MTU}-byte MTU. tso-gso: software GSO cost included, compared with smoltcp-1mss.)");
}

fn main() {
    let d = Data::new();
    if let Ok(name) = std::env::var("STRAIT_BENCH_PROFILE") {
        if let Err(e) = profile(&d, &name) {
            fail(&e);
        }
        return;
    }
    if let Err(e) = correctness_check(&d) {
        fail(&e);
    }
    println!("correctness check passed: every scenario delivered every byte intact");

    let total = env_u64("STRAIT_BENCH_MB", 64) << 20;
    let results: Results = RefCell::new(BTreeMap::new());
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(StdDuration::from_millis(500))
        .measurement_time(StdDuration::from_secs(2))
        .configure_from_args();

    {
        let mut g = c.benchmark_group(format!("bulk_{}MiB", total >> 20));
        g.sampling_mode(SamplingMode::Flat).throughput(Throughput::Bytes(total));
        for s in Scenario::ALL.into_iter().filter(|s| !s.is_rr()) {
            g.bench_function(s.name(), |b| {
                b.iter_custom(|iters| {
                    let mut elapsed = StdDuration::ZERO;
                    for _ in 0..iters {
                        match s.run_bulk(&d, total, false) {
                            Ok(sample) => {
                                elapsed += sample.elapsed;
                                record(&results, s, sample);
                            }
                            Err(e) => fail(&format!("{}: {e}", s.name())),
                        }
                    }
                    elapsed
                })
            });
        }
        g.finish();
    }
    {
        let mut g = c.benchmark_group("rr_1KiB");
        g.throughput(Throughput::Elements(1));
        for s in [Scenario::StraitRr, Scenario::SmoltcpRr] {
            let mut pair = RrPair::new(s).unwrap_or_else(|e| fail(&e));
            g.bench_function(s.name(), |b| {
                b.iter_custom(|iters| match pair.run(&d, iters, false) {
                    Ok(sample) => {
                        record(&results, s, sample);
                        sample.elapsed
                    }
                    Err(e) => fail(&format!("{}: {e}", s.name())),
                })
            });
        }
        g.finish();
    }
    c.final_summary();
    print_summary(&results, total);
}
