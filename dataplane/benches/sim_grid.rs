//! Goodput grid of the deterministic simulator: Strait's TCP engine and smoltcp 0.12 over
//! the same seeded [`SimLink`]s, through loss, reordering and duplication
//! (`cargo bench -p dataplane --no-default-features --bench sim_grid`).
//!
//! Every cell moves 100 MiB one way (client to server; the server only acknowledges) over a
//! pair of links with 20 ms ONE-WAY delay each (40 ms RTT) and a 100 Mbit/s serialisation
//! rate (an unbounded FIFO queue, so loss comes only from the impairment), for each of
//! several seeds. Each received byte is checked against the pseudo-random stream that was
//! written; a corrupt or short stream fails the benchmark. Time is virtual: goodput is
//! bytes / virtual time from the first SYN to the last byte delivered, so the figures do
//! not depend on the machine, and a run replays exactly from its seed.
//!
//! Both stacks get 1 MiB send and receive buffers and their defaults otherwise: ours CUBIC
//! with HyStart++, SACK, RACK, PRR, timestamps and window scaling (its `TcpConfig`
//! defaults); smoltcp Reno (the algorithm its dependency features enable), window scaling,
//! no SACK-based recovery (it has none), no timestamps (see `benches/bulk.rs`: with them
//! its full-sized segments exceed the MTU). Ours also runs with NewReno, for the same
//! algorithm as smoltcp's. A run that has not delivered everything within the virtual-time
//! limit is reported as not finished, with the goodput of what it delivered.
//!
//! Environment: `SIM_GRID_MB` (MiB per transfer, default 100), `SIM_GRID_SEEDS` (seeds per
//! cell, default 3), `SIM_GRID_THREADS` (worker threads, default 2).

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::Instant as WallInstant;

use dataplane::tcp::congestion::Algorithm;
use dataplane::tcp::sim_link::{LinkParams, SimLink, SimRng};
use dataplane::tcp::simulator::{run, SimParams};
use dataplane::time::{Duration, Instant};
use smoltcp::iface::{Config as SmolConfig, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp as smol_tcp;
use smoltcp::time::Instant as SmolInstant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};

const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const PORT: u16 = 443;
/// Send and receive buffers, both stacks.
const BUF: usize = 1 << 20;
/// One-way propagation delay of each link.
const DELAY_MS: u64 = 20;
/// Serialisation rate of each link.
const RATE_BPS: u64 = 100_000_000;
/// A transfer still running after this much virtual time is reported as not finished.
const TIME_LIMIT_S: u64 = 3600;

/// One row of the grid.
#[derive(Debug, Clone, Copy)]
struct Cell {
    name: &'static str,
    loss: f64,
    reorder: f64,
    duplicate: f64,
}

const CELLS: [Cell; 7] = [
    Cell { name: "clean", loss: 0.0, reorder: 0.0, duplicate: 0.0 },
    Cell { name: "loss 1%", loss: 0.01, reorder: 0.0, duplicate: 0.0 },
    Cell { name: "loss 5%", loss: 0.05, reorder: 0.0, duplicate: 0.0 },
    Cell { name: "loss 10%", loss: 0.10, reorder: 0.0, duplicate: 0.0 },
    Cell { name: "reorder 1%", loss: 0.0, reorder: 0.01, duplicate: 0.0 },
    Cell { name: "dup 1%", loss: 0.0, reorder: 0.0, duplicate: 0.01 },
    Cell { name: "1% each", loss: 0.01, reorder: 0.01, duplicate: 0.01 },
];

impl Cell {
    fn link(self) -> LinkParams {
        LinkParams {
            loss: self.loss,
            reorder: self.reorder,
            duplicate: self.duplicate,
            delay: Duration::from_millis(DELAY_MS),
            jitter: Duration::ZERO,
            rate_bps: Some(RATE_BPS),
        }
    }
}

/// The stacks compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stack {
    StraitCubic,
    StraitNewReno,
    Smoltcp,
}

const STACKS: [Stack; 3] = [Stack::StraitCubic, Stack::StraitNewReno, Stack::Smoltcp];

impl Stack {
    fn name(self) -> &'static str {
        match self {
            Stack::StraitCubic => "strait cubic",
            Stack::StraitNewReno => "strait newreno",
            Stack::Smoltcp => "smoltcp reno",
        }
    }
}

/// The outcome of one transfer.
#[derive(Debug, Clone, Copy, Default)]
struct Outcome {
    /// Bytes delivered in order and verified.
    bytes: u64,
    /// Virtual time until the last byte was delivered (or the limit).
    secs: f64,
    finished: bool,
    /// Data segments sent again (ours: `RetransSegs`; smoltcp: counted on the wire).
    retrans: u64,
    /// Data segments sent in all, retransmissions included.
    data_segs: u64,
    /// Retransmission timeouts (ours only).
    timeouts: Option<u64>,
    /// Fast retransmissions (ours only).
    fast: Option<u64>,
    /// Spurious reductions undone (ours only: Eifel / F-RTO, D-SACK, full undo).
    undone: Option<u64>,
}

impl Outcome {
    fn mbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / self.secs.max(1e-9) / 1e6
    }
}

fn run_strait(cell: Cell, seed: u64, bytes: u64, algo: Algorithm) -> Result<Outcome, String> {
    let mut p = SimParams::new(seed, bytes, cell.link());
    p.bytes_back = 0;
    p.tcp.congestion = algo;
    p.tcp.rcvbuf = BUF as u32;
    p.tcp.sndbuf = BUF as u32;
    p.time_limit = Duration::from_secs(TIME_LIMIT_S);
    let r = run(&p).map_err(|e| e.to_string())?;
    if r.a_to_b.bytes != bytes || r.a_to_b.hash != r.a_to_b.expected_hash {
        return Err(format!("seed {seed}: stream not intact ({} of {bytes} bytes)", r.a_to_b.bytes));
    }
    let c = &r.counters_a;
    Ok(Outcome {
        bytes: r.a_to_b.bytes,
        secs: r.a_to_b.completed.as_secs_f64(),
        finished: true,
        retrans: c.retrans_segs,
        data_segs: c.out_segs + c.retrans_segs,
        timeouts: Some(c.timeouts),
        fast: Some(c.fast_retrans),
        undone: Some(c.loss_undo + c.dsack_undo + c.full_undo),
    })
}

// ===================================================================================
// smoltcp over the same SimLink
// ===================================================================================

/// A device whose received packets come from one `SimLink` and whose transmitted packets
/// are collected for the other.
struct LinkDevice {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
}

struct LinkRx(Vec<u8>);

struct LinkTx<'a>(&'a mut VecDeque<Vec<u8>>);

impl RxToken for LinkRx {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.0)
    }
}

impl TxToken for LinkTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for LinkDevice {
    type RxToken<'a> = LinkRx;
    type TxToken<'a> = LinkTx<'a>;

    fn receive(&mut self, _timestamp: SmolInstant) -> Option<(LinkRx, LinkTx<'_>)> {
        let buf = self.rx.pop_front()?;
        Some((LinkRx(buf), LinkTx(&mut self.tx)))
    }

    fn transmit(&mut self, _timestamp: SmolInstant) -> Option<LinkTx<'_>> {
        Some(LinkTx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = 1500;
        caps
    }
}

/// Counts data segments and retransmissions of one direction on the wire: a segment whose
/// payload starts below the highest sequence number sent so far is a retransmission.
#[derive(Default)]
struct WireCount {
    high: Option<u32>,
    data: u64,
    retrans: u64,
}

impl WireCount {
    fn see(&mut self, ip: &[u8]) {
        let ihl = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
        let total = ip.get(2..4).map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        let Some(tcp) = ip.get(ihl..total.min(ip.len())) else { return };
        let Some(seq) = tcp.get(4..8).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else { return };
        let doff = usize::from(tcp.get(12).map_or(0, |b| b >> 4)) * 4;
        let len = tcp.len().saturating_sub(doff);
        if len == 0 {
            return;
        }
        self.data += 1;
        let end = seq.wrapping_add(len as u32);
        match self.high {
            Some(h) if (seq.wrapping_sub(h) as i32) < 0 => {
                self.retrans += 1;
                if (end.wrapping_sub(h) as i32) > 0 {
                    self.high = Some(end);
                }
            }
            _ => self.high = Some(end),
        }
    }
}

fn smol_now(now: Instant) -> SmolInstant {
    SmolInstant::from_micros(i64::try_from(now.as_nanos() / 1000).unwrap_or(i64::MAX))
}

fn from_smol(t: SmolInstant) -> Instant {
    Instant::from_nanos(u64::try_from(t.total_micros()).unwrap_or(0).saturating_mul(1000))
}

fn smol_iface(dev: &mut LinkDevice, ip: Ipv4Addr, seed: u64) -> Result<Interface, String> {
    let mut cfg = SmolConfig::new(HardwareAddress::Ip);
    cfg.random_seed = seed;
    let mut iface = Interface::new(cfg, dev, SmolInstant::ZERO);
    let mut ok = true;
    iface.update_ip_addrs(|a| ok = a.push(IpCidr::new(IpAddress::Ipv4(ip), 24)).is_ok());
    if ok {
        Ok(iface)
    } else {
        Err("smoltcp: no room for an address".into())
    }
}

fn smol_socket() -> smol_tcp::Socket<'static> {
    let mut s = smol_tcp::Socket::new(smol_tcp::SocketBuffer::new(vec![0; BUF]), smol_tcp::SocketBuffer::new(vec![0; BUF]));
    s.set_tsval_generator(None);
    s.set_congestion_control(smol_tcp::CongestionControl::Reno);
    s
}

/// Polls until the interface emits nothing more (smoltcp sends one segment per socket and
/// poll), then puts what it emitted on `link`.
fn smol_poll(iface: &mut Interface, dev: &mut LinkDevice, set: &mut SocketSet<'static>, link: &mut SimLink<Vec<u8>>, count: &mut WireCount, now: Instant) {
    loop {
        let before = dev.tx.len();
        iface.poll(smol_now(now), dev, set);
        if dev.tx.len() == before {
            break;
        }
    }
    for pkt in dev.tx.drain(..) {
        count.see(&pkt);
        link.send(now, pkt);
    }
}

fn run_smoltcp(cell: Cell, seed: u64, bytes: u64) -> Result<Outcome, String> {
    // The same link seeds as the simulator gives our engine for this seed.
    let mut link_ab: SimLink<Vec<u8>> = SimLink::new(cell.link(), seed.wrapping_mul(3).wrapping_add(1)).with_len(Vec::len);
    let mut link_ba: SimLink<Vec<u8>> = SimLink::new(cell.link(), seed.wrapping_mul(5).wrapping_add(2)).with_len(Vec::len);
    let mut dev_a = LinkDevice { rx: VecDeque::new(), tx: VecDeque::new() };
    let mut dev_b = LinkDevice { rx: VecDeque::new(), tx: VecDeque::new() };
    let mut if_a = smol_iface(&mut dev_a, IP_A, seed ^ 0x5eed)?;
    let mut if_b = smol_iface(&mut dev_b, IP_B, !seed)?;
    let mut set_a = SocketSet::new(vec![]);
    let mut set_b = SocketSet::new(vec![]);
    let mut server = smol_socket();
    server.listen(PORT).map_err(|e| format!("smoltcp listen: {e}"))?;
    let hb: SocketHandle = set_b.add(server);
    let mut client = smol_socket();
    client
        .connect(if_a.context(), (IpAddress::Ipv4(IP_B), PORT), 49152)
        .map_err(|e| format!("smoltcp connect: {e}"))?;
    let ha: SocketHandle = set_a.add(client);

    // The stream: SplitMix64 bytes, generated for writing and again for checking.
    let mut tx_rng = SimRng::new(seed ^ 0xa);
    let mut rx_rng = SimRng::new(seed ^ 0xa);
    let mut tx_pending: Vec<u8> = Vec::new();
    let mut rx_word = [0u8; 8];
    let mut rx_used = 8usize;
    let (mut written, mut received) = (0u64, 0u64);
    let (mut count_ab, mut count_ba) = (WireCount::default(), WireCount::default());
    let mut now = Instant::ZERO;
    let limit = Instant::ZERO + Duration::from_secs(TIME_LIMIT_S);
    let mut corrupt: Option<u64> = None;
    loop {
        while let Some(p) = link_ab.poll(now) {
            dev_b.rx.push_back(p);
        }
        while let Some(p) = link_ba.poll(now) {
            dev_a.rx.push_back(p);
        }
        smol_poll(&mut if_b, &mut dev_b, &mut set_b, &mut link_ba, &mut count_ba, now);
        // Server: read and verify.
        {
            let s = set_b.get_mut::<smol_tcp::Socket>(hb);
            while s.can_recv() {
                let r = s.recv(|buf| {
                    for (i, &b) in buf.iter().enumerate() {
                        if rx_used == 8 {
                            rx_word = rx_rng.next_u64().to_le_bytes();
                            rx_used = 0;
                        }
                        let want = rx_word.get(rx_used).copied().unwrap_or(0);
                        rx_used += 1;
                        if b != want && corrupt.is_none() {
                            corrupt = Some(received + i as u64);
                        }
                    }
                    (buf.len(), buf.len())
                });
                match r {
                    Ok(0) => break,
                    Ok(n) => received += n as u64,
                    Err(e) => return Err(format!("smoltcp recv: {e}")),
                }
            }
        }
        if let Some(off) = corrupt {
            return Err(format!("seed {seed}: smoltcp stream corrupt at offset {off}"));
        }
        if received >= bytes {
            break;
        }
        // Client: write what the send buffer takes.
        {
            let s = set_a.get_mut::<smol_tcp::Socket>(ha);
            while written < bytes && s.can_send() {
                if tx_pending.is_empty() {
                    let n = (bytes - written).min(64 * 1024) as usize;
                    tx_pending = (0..n.div_ceil(8)).flat_map(|_| tx_rng.next_u64().to_le_bytes()).take(n).collect();
                }
                match s.send_slice(&tx_pending) {
                    Ok(0) => break,
                    Ok(n) => {
                        written += n as u64;
                        tx_pending.drain(..n);
                    }
                    Err(e) => return Err(format!("smoltcp send: {e}")),
                }
            }
        }
        smol_poll(&mut if_a, &mut dev_a, &mut set_a, &mut link_ab, &mut count_ab, now);
        let next = [
            link_ab.next_delivery(),
            link_ba.next_delivery(),
            if_a.poll_at(smol_now(now), &set_a).map(from_smol),
            if_b.poll_at(smol_now(now), &set_b).map(from_smol),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            return Err(format!("seed {seed}: smoltcp stalled at {} ms with {received} of {bytes} bytes", now.as_millis()));
        };
        // smoltcp's clock has microsecond resolution: always move forward by at least that.
        now = next.max(now + Duration::from_micros(1));
        if now > limit {
            return Ok(Outcome {
                bytes: received,
                secs: TIME_LIMIT_S as f64,
                finished: false,
                retrans: count_ab.retrans,
                data_segs: count_ab.data,
                ..Outcome::default()
            });
        }
    }
    Ok(Outcome {
        bytes: received,
        secs: (now - Instant::ZERO).as_secs_f64(),
        finished: true,
        retrans: count_ab.retrans,
        data_segs: count_ab.data,
        ..Outcome::default()
    })
}

// ===================================================================================
// The grid
// ===================================================================================

/// A finished job: cell index, stack index, seed, outcome.
type JobResult = (usize, usize, u64, Result<Outcome, String>);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Mean, minimum and maximum goodput and mean counts of one (cell, stack).
fn summary(runs: &[Outcome]) -> String {
    let n = runs.len().max(1) as f64;
    let mbps: Vec<f64> = runs.iter().map(Outcome::mbps).collect();
    let mean = mbps.iter().sum::<f64>() / n;
    let min = mbps.iter().copied().fold(f64::INFINITY, f64::min);
    let max = mbps.iter().copied().fold(0.0, f64::max);
    let avg = |f: &dyn Fn(&Outcome) -> u64| runs.iter().map(f).sum::<u64>() as f64 / n;
    let opt = |f: &dyn Fn(&Outcome) -> Option<u64>| match runs.iter().map(f).collect::<Option<Vec<u64>>>() {
        Some(v) => format!("{:.0}", v.iter().sum::<u64>() as f64 / n),
        None => "-".to_string(),
    };
    let unfinished = runs.iter().filter(|r| !r.finished).count();
    let note = if unfinished > 0 { format!(" ({unfinished} not finished in {TIME_LIMIT_S} s)") } else { String::new() };
    let data = avg(&|r| r.data_segs);
    let retrans = avg(&|r| r.retrans);
    format!(
        "| {mean:.2} | {min:.2}–{max:.2} | {retrans:.0} ({:.1} %) | {} | {} | {} |{note}",
        100.0 * retrans / data.max(1.0),
        opt(&|r| r.timeouts),
        opt(&|r| r.fast),
        opt(&|r| r.undone),
    )
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let mb = env_u64("SIM_GRID_MB", 100).max(1);
    let nseeds = env_u64("SIM_GRID_SEEDS", 3).max(1);
    let threads = env_u64("SIM_GRID_THREADS", 2).clamp(1, 64) as usize;
    let bytes = mb << 20;
    let seeds: Vec<u64> = (1..=nseeds).collect();
    println!(
        "sim_grid: {mb} MiB one way per run, seeds {seeds:?}; links: {DELAY_MS} ms one-way delay ({} ms RTT), {} Mbit/s, unbounded FIFO",
        2 * DELAY_MS,
        RATE_BPS / 1_000_000
    );
    let mut jobs: Vec<(usize, usize, u64)> = Vec::new();
    for c in 0..CELLS.len() {
        for s in 0..STACKS.len() {
            for &seed in &seeds {
                jobs.push((c, s, seed));
            }
        }
    }
    // Longest first (lossier cells run longer), so the threads finish together.
    jobs.sort_by(|a, b| CELLS[b.0].loss.total_cmp(&CELLS[a.0].loss));
    let queue = Mutex::new(jobs.into_iter());
    let results: Mutex<Vec<JobResult>> = Mutex::new(Vec::new());
    let wall = WallInstant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let job = queue.lock().ok().and_then(|mut q| q.next());
                let Some((c, s, seed)) = job else { break };
                let (cell, stack) = (CELLS[c], STACKS[s]);
                let t = WallInstant::now();
                let r = match stack {
                    Stack::StraitCubic => run_strait(cell, seed, bytes, Algorithm::Cubic),
                    Stack::StraitNewReno => run_strait(cell, seed, bytes, Algorithm::NewReno),
                    Stack::Smoltcp => run_smoltcp(cell, seed, bytes),
                };
                match &r {
                    Ok(o) => eprintln!(
                        "  {:<10} {:<14} seed {seed}: {:>8.2} Mbit/s, {:>8.1} s virtual, {} retrans, {:.1} s wall{}",
                        cell.name,
                        stack.name(),
                        o.mbps(),
                        o.secs,
                        o.retrans,
                        t.elapsed().as_secs_f64(),
                        if o.finished { "" } else { " NOT FINISHED" }
                    ),
                    Err(e) => eprintln!("  {:<10} {:<14} seed {seed}: FAILED {e}", cell.name, stack.name()),
                }
                if let Ok(mut v) = results.lock() {
                    v.push((c, s, seed, r));
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_default();
    let mut failed = false;
    println!();
    println!("| cell | stack | goodput Mbit/s (mean) | min–max | retransmitted segs (of data segs) | RTOs | fast retrans | undone |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for (c, cell) in CELLS.iter().enumerate() {
        for (s, stack) in STACKS.iter().enumerate() {
            let mut runs = Vec::new();
            for (_, _, seed, r) in results.iter().filter(|(rc, rs, _, _)| *rc == c && *rs == s) {
                match r {
                    Ok(o) => runs.push(*o),
                    Err(e) => {
                        failed = true;
                        println!("| {} | {} | FAILED seed {seed}: {e} |", cell.name, stack.name());
                    }
                }
            }
            if !runs.is_empty() {
                println!("| {} | {} {}", cell.name, stack.name(), summary(&runs));
            }
        }
    }
    println!();
    println!("wall time {:.1} s on {threads} threads", wall.elapsed().as_secs_f64());
    if failed {
        eprintln!("sim_grid: a transfer failed (see above)");
        std::process::exit(1);
    }
}
