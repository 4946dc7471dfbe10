//! Measurement, not a pass/fail test (both `#[ignore]`): goodput of a lossy download on a
//! sub-millisecond path, strait as the sender against the Linux kernel as the sender on the
//! same kind of path, with the same loss (issue 13).
//!
//! Loss is applied by nftables in the client's namespace to TCP in both directions
//! (`numgen random mod 1000 < N`), as in the side-by-side benchmark.
//!
//! * `strait_lossy_download_goodput`: nginx behind strait, curl in the client namespace on
//!   strait's `net_tap` port; prints MB/s per run and strait's TCP counters.
//! * `kernel_lossy_download_goodput`: nginx in one namespace, curl in another, one veth
//!   between them; the kernel's congestion control is set in the server's namespace
//!   (`KERNEL_CC`, default `cubic`: a namespace otherwise inherits the host's default,
//!   which is `bbr` on the development machines, so "HAProxy" in the benchmark sends with
//!   BBR). Prints MB/s per run and the sender's `nstat` counters.
//!
//! Environment: `LOSS_PERMILLE` (default 50), `LOSS_BYTES` (default 30 MB), `LOSS_RUNS`
//! (default 3), `KERNEL_CC` (kernel test only), `LOSS_CLIENT_SYSCTL` (sysctls for the client's
//! namespace, e.g. `net.ipv4.tcp_comp_sack_nr=0`), `LOSS_TCP_EXTRA` (strait test only: TOML
//! appended to its configuration, `\n` for newlines, e.g. `[tcp]\nmin_rto_ms = 20`),
//! `LOSS_PCAP` (strait test only: capture the client side of the first run to this file),
//! `LOSS_IMPAIR` (strait test only: strait's impairment layer as in proxy_bulk instead of nftables).
//!
//! ```text
//! CARGO_TARGET_DIR=... cargo test --profile ci -p strait --test loss_goodput -- --ignored --nocapture --test-threads 1
//! ```

mod common;

use std::time::Instant;

use common::backend::{config, nstat, nstat_delta, Net, Nginx, Options, Setup};
use common::{require_root, unique, Netns};

const METRICS: &str = "127.0.0.1:9100";

/// proxy_bulk's lossy client-side port.
const IMPAIRED_PORT: &str = "
[port.impair]
seed = 7
rx_drop = 0.05
tx_drop = 0.05
reorder = 0.01
";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `LOSS_CLIENT_SYSCTL` (comma-separated `key=value`): sysctls for the client's namespace,
/// e.g. `net.ipv4.tcp_comp_sack_nr=0` to turn off the receiver's SACK compression.
fn client_sysctls(ns: &Netns) {
    let Ok(v) = std::env::var("LOSS_CLIENT_SYSCTL") else { return };
    for kv in v.split(',').filter(|kv| !kv.is_empty()) {
        let o = ns.exec("sysctl", &["-w", kv]);
        assert!(o.status.success(), "sysctl -w {kv}: {}", String::from_utf8_lossy(&o.stderr));
        eprintln!("client: {}", String::from_utf8_lossy(&o.stdout).trim());
    }
}

/// Drops `permille`/1000 of TCP packets in and out of `ns` (nothing when 0).
fn nft_loss(ns: &Netns, permille: u64) {
    let _ = ns.exec("nft", &["flush", "ruleset"]);
    if permille == 0 {
        return;
    }
    let n = permille.to_string();
    for args in [
        vec!["add", "table", "inet", "loss"],
        vec!["add", "chain", "inet", "loss", "in", "{ type filter hook input priority 0; }"],
        vec!["add", "chain", "inet", "loss", "out", "{ type filter hook output priority 0; }"],
        vec!["add", "rule", "inet", "loss", "in", "meta", "l4proto", "tcp", "numgen", "random", "mod", "1000", "<", &n, "drop"],
        vec!["add", "rule", "inet", "loss", "out", "meta", "l4proto", "tcp", "numgen", "random", "mod", "1000", "<", &n, "drop"],
    ] {
        let o = ns.exec("nft", &args);
        assert!(o.status.success(), "nft {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

/// Downloads `url` from `ns` with curl; returns (bytes, seconds).
fn curl(ns: &Netns, url: &str) -> (f64, f64) {
    let o = ns.exec("curl", &["-sS", "--fail", "-o", "/dev/null", "-w", "%{size_download} %{time_total}", url]);
    assert!(o.status.success(), "curl {url}: {}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut w = text.split_whitespace().map(|v| v.parse::<f64>().unwrap_or(0.0));
    (w.next().unwrap_or(0.0), w.next().unwrap_or(1.0))
}

/// strait's `strait_tcp_*` counters (summed over labels) from its metrics endpoint.
fn strait_tcp(ns: &Netns) -> Vec<(String, f64)> {
    let out = ns.exec("curl", &["-sS", "--max-time", "2", &format!("http://{METRICS}/metrics")]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut v: Vec<(String, f64)> = Vec::new();
    for l in text.lines().filter(|l| l.starts_with("strait_tcp_")) {
        let Some((k, val)) = l.rsplit_once(' ') else { continue };
        let name = k.split('{').next().unwrap_or(k).to_string();
        let Ok(val) = val.parse::<f64>() else { continue };
        match v.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 += val,
            None => v.push((name, val)),
        }
    }
    v
}

/// Frames strait's client-side port received (`strait_port_rx_packets_total{port="front"}`).
fn front_rx(ns: &Netns) -> f64 {
    let out = ns.exec("curl", &["-sS", "--max-time", "2", &format!("http://{METRICS}/metrics")]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter(|l| l.starts_with("strait_port_rx_packets_total") && l.contains("\"front\""))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[test]
#[ignore = "measurement (issue 13): run with --ignored"]
fn strait_lossy_download_goodput() {
    if !require_root("strait_lossy_download_goodput") {
        return;
    }
    let (permille, bytes, runs) = (env_u64("LOSS_PERMILLE", 50), env_u64("LOSS_BYTES", 30_000_000), env_u64("LOSS_RUNS", 3));
    let net = Net { front: "198.18.86", back: "198.18.87", backend_port: 8080 };
    // LOSS_IMPAIR=1: strait's own impairment layer instead (proxy_bulk's lossy port: 5 % drop
    // each way, 1 % reordering), with no nftables loss.
    let impair = std::env::var_os("LOSS_IMPAIR").is_some();
    let front_port_extra = if impair { IMPAIRED_PORT } else { "" };
    let permille = if impair { 0 } else { permille };
    let opts = Options { front_port_extra, metrics: Some(METRICS), big_bytes: bytes };
    // LOSS_TCP_EXTRA: TOML appended to strait's configuration (e.g. "[tcp]\nmin_rto_ms = 20").
    let extra = std::env::var("LOSS_TCP_EXTRA").unwrap_or_default().replace("\\n", "\n");
    let listen = format!("{}.1:8080", net.back);
    let mut s = Setup::with(
        net,
        &[listen],
        |ns, l| Nginx::start(ns, l, bytes),
        |tap, veth| format!("{}\n{extra}\n", config(&net, tap, veth, &opts)),
        &[],
    );
    s.strait.wait_for_log(&["proxy listening"], std::time::Duration::from_secs(1));
    nft_loss(&s.client, permille);
    client_sysctls(&s.client);
    let url = s.net.url("shm/big.bin");
    let mut rates = Vec::new();
    let before = strait_tcp(&s.client);
    let kbefore = nstat(&s.client);
    let rx_before = front_rx(&s.client);
    // LOSS_PCAP=FILE: the client side of the first run, headers only.
    let pcap = std::env::var("LOSS_PCAP").ok().map(|f| {
        let c = s.client.spawn("dumpcap", &["-q", "-i", &s.tap, "-s", "96", "-f", "tcp", "-P", "-w", &f]);
        std::thread::sleep(std::time::Duration::from_secs(2));
        c
    });
    for run in 0..runs {
        let t = Instant::now();
        let (got, secs) = curl(&s.client, &url);
        assert_eq!(got as u64, bytes, "short download");
        let rate = got / 1e6 / secs;
        eprintln!("strait loss={permille}/1000 run {run}: {rate:.2} MB/s ({:?})", t.elapsed());
        rates.push(rate);
    }
    if let Some(mut c) = pcap {
        std::thread::sleep(std::time::Duration::from_secs(1));
        let _ = common::sh("kill", &["-INT", &c.id().to_string()]);
        let _ = c.wait();
    }
    let after = strait_tcp(&s.client);
    let kafter = nstat(&s.client);
    let rx_after = front_rx(&s.client);
    nft_loss(&s.client, 0);
    let receiver = [
        "TcpInSegs",
        "TcpOutSegs",
        "TcpExtTCPDSACKOldSent",
        "TcpExtTCPDSACKOfoSent",
        "TcpExtTCPOFOQueue",
        "TcpExtDelayedACKs",
        "TcpExtTCPHPHits",
        "TcpExtTCPPureAcks",
    ];
    let mut receiver: Vec<String> = receiver.iter().map(|n| format!("{n}={}", nstat_delta(&kbefore, &kafter, n))).collect();
    // What the client sent against what strait's port received: the loss applied to ACKs.
    receiver.push(format!("strait_front_rx_frames={}", rx_after - rx_before));
    let interesting = [
        "timeouts",
        "spurious_rtos",
        "loss_probes",
        "loss_probe_recovery",
        "retrans",
        "fast_retrans",
        "rto_retrans",
        "lost_retransmit",
        "loss_undo",
        "dsack",
        "recover",
        "frto",
        "stall_probes",
    ];
    let deltas: Vec<String> = after
        .iter()
        .filter(|(k, _)| interesting.iter().any(|i| k.contains(i)))
        .map(|(k, a)| {
            let b = before.iter().find(|(n, _)| n == k).map_or(0.0, |(_, v)| *v);
            format!("{}={}", k.trim_start_matches("strait_tcp_"), a - b)
        })
        .collect();
    eprintln!(
        "RESULT strait loss={permille}/1000 impair={impair} bytes={bytes} runs={runs} median={:.2} MB/s all={rates:.2?}\n  strait tcp: {}\n  client kernel: {}",
        median(rates.clone()),
        deltas.join(" "),
        receiver.join(" ")
    );
}

#[test]
#[ignore = "measurement (issue 13): run with --ignored"]
fn kernel_lossy_download_goodput() {
    if !require_root("kernel_lossy_download_goodput") {
        return;
    }
    let (permille, bytes, runs) = (env_u64("LOSS_PERMILLE", 50), env_u64("LOSS_BYTES", 30_000_000), env_u64("LOSS_RUNS", 3));
    let cc = std::env::var("KERNEL_CC").unwrap_or_else(|_| "cubic".to_string());
    let client = Netns::new("klca");
    let server = Netns::new("klsb");
    let (va, vb) = (unique("kla"), unique("klb"));
    client.ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", &server.name]);
    client.ip(&["addr", "add", "198.18.88.1/24", "dev", &va]);
    server.ip(&["addr", "add", "198.18.88.2/24", "dev", &vb]);
    for (ns, dev) in [(&client, &va), (&server, &vb)] {
        let _ = ns.exec("ethtool", &["-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]);
        ns.ip(&["link", "set", dev, "up"]);
        ns.ip(&["link", "set", "lo", "up"]);
    }
    let set = server.exec("sysctl", &["-w", &format!("net.ipv4.tcp_congestion_control={cc}")]);
    assert!(
        set.status.success(),
        "cannot set {cc} in a namespace (add it to the host's net.ipv4.tcp_allowed_congestion_control): {}",
        String::from_utf8_lossy(&set.stderr)
    );
    let _nginx = Nginx::start(&server, "198.18.88.2:8080", bytes);
    nft_loss(&client, permille);
    client_sysctls(&client);
    let url = "http://198.18.88.2:8080/shm/big.bin";
    let before = nstat(&server);
    let mut rates = Vec::new();
    for run in 0..runs {
        let (got, secs) = curl(&client, url);
        assert_eq!(got as u64, bytes, "short download");
        let rate = got / 1e6 / secs;
        eprintln!("kernel {cc} loss={permille}/1000 run {run}: {rate:.2} MB/s");
        rates.push(rate);
    }
    let after = nstat(&server);
    let names = [
        "TcpRetransSegs",
        "TcpExtTCPTimeouts",
        "TcpExtTCPSpuriousRTOs",
        "TcpExtTCPLossUndo",
        "TcpExtTCPLossProbes",
        "TcpExtTCPLossProbeRecovery",
        "TcpExtTCPLostRetransmit",
        "TcpExtTCPSackRecovery",
        "TcpExtTCPDSACKRecv",
    ];
    let deltas: Vec<String> = names.iter().map(|n| format!("{n}={}", nstat_delta(&before, &after, n))).collect();
    eprintln!(
        "RESULT kernel {cc} loss={permille}/1000 bytes={bytes} runs={runs} median={:.2} MB/s all={rates:.2?}\n  sender nstat: {}",
        median(rates.clone()),
        deltas.join(" ")
    );
}
