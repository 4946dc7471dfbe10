//! End to end over `net_af_xdp` ports (DPDK's AF_XDP PMD in copy mode on veths): strait in
//! its own namespace with two AF_XDP ports, one on a veth into a client namespace (kernel
//! clients: the echo client, wrk, curl), one on a veth into a backend namespace (nginx).
//! Strait runs the echo service on the client side and a proxy listener to nginx.
//!
//! * one lcore: two 100 MB echoes in a row (data both ways, SHA-256 checked; the second
//!   one wedged the TX ring before the mbuf pool was packed for the UMEM), 1000
//!   concurrent connections echoed and released, wrk through the proxy, and a 2 GB
//!   download through the proxy with its SHA-256 checked while its progress is watched (a
//!   transfer that stops for 10 s is a wedge and fails the test);
//! * two lcores on veths with two queues each (one AF_XDP socket per lcore; the kernel
//!   picks the queue, so lcores hand frames of flows they do not own to the owner): the
//!   same echo, 1000 connections, wrk, and a 1 GB download;
//! * one lcore polling four queues per port (more room for frames that arrive while the
//!   lcore waits for its CPU): 1000 connections and wrk, every queue of both ports used.
//!
//! After each, strait stops cleanly with no connection left and every mbuf back in the
//! pool. The kernel-side veths transmit with checksum offload off: a veth hands AF_XDP
//! frames with only the pseudo-header sum otherwise (CHECKSUM_PARTIAL, see docs/af_xdp.md).

mod common;

use std::process::Child;
use std::sync::Mutex;
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::backend::Nginx;
use common::{must, ping_until_reply, require_root, unique, Netns, Strait};

/// One test at a time: two strait processes and their peers on a 2-core machine would
/// only slow each other down.
static SERIAL: Mutex<()> = Mutex::new(());
/// A download whose bytes stop moving for this long has wedged.
const STALL: Duration = Duration::from_secs(10);
const ECHO_BYTES: u64 = 100 * 1000 * 1000;
const FRONT: &str = "198.18.20";
const BACK: &str = "198.18.21";

/// Strait between a client and a backend namespace over AF_XDP ports. Field order is drop
/// order: processes before namespaces.
struct XdpSetup {
    strait: Strait,
    _nginx: Nginx,
    client: Netns,
    _backend: Netns,
    _strait_ns: Netns,
}

fn toml(lcores: usize, queues: usize, front_if: &str, back_if: &str) -> String {
    let list: Vec<String> = (0..lcores).map(|i| i.to_string()).collect();
    format!(
        r#"
[log]
format = "json"
level = "info"

[metrics]
listen = "127.0.0.1:9100"

[dpdk]
lcores = [{lcores_list}]
memory_mode = "no-huge"
memory_mb = 512
mbufs = 32767
mbuf_cache = 256

[[port]]
name = "front"
device = "net_af_xdp0,iface={front_if},queue_count={queues}"
ipv4 = "{FRONT}.2/24"

[[port]]
name = "back"
device = "net_af_xdp1,iface={back_if},queue_count={queues}"
ipv4 = "{BACK}.2/24"

[[app]]
kind = "echo"
listen = "{FRONT}.2:7"

[[listener]]
name = "web"
listen = "{FRONT}.2:80"
pool = "web"

[[pool]]
name = "web"
servers = [{{ addr = "{BACK}.1:8080" }}]
"#,
        lcores_list = list.join(", "),
    )
}

/// A veth pair with `queues` queues each way: `ours` in `strait_ns`, `peer` in `ns` with
/// `addr`, checksum and segmentation offloads off on the kernel side.
fn veth(strait_ns: &Netns, ours: &str, ns: &Netns, peer: &str, addr: &str, queues: usize) {
    let q = queues.to_string();
    strait_ns.ip(&[
        "link", "add", ours, "numtxqueues", &q, "numrxqueues", &q, "type", "veth", "peer", "name", peer, "numtxqueues", &q,
        "numrxqueues", &q, "netns", &ns.name,
    ]);
    let o = ns.exec("ethtool", &["-K", peer, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]);
    assert!(o.status.success(), "ethtool: {}", String::from_utf8_lossy(&o.stderr));
    strait_ns.ip(&["link", "set", ours, "up"]);
    ns.ip(&["addr", "add", addr, "dev", peer]);
    ns.ip(&["link", "set", peer, "up"]);
}

impl XdpSetup {
    fn start(lcores: usize, queues: usize, big_bytes: u64) -> XdpSetup {
        let strait_ns = Netns::new("sxs");
        let client = Netns::new("sxc");
        let backend = Netns::new("sxb");
        let (fa, fb, ba, bb) = (unique("sxf"), unique("sxg"), unique("sxh"), unique("sxi"));
        veth(&strait_ns, &fa, &client, &fb, &format!("{FRONT}.1/24"), queues);
        veth(&strait_ns, &ba, &backend, &bb, &format!("{BACK}.1/24"), queues);
        let nginx = Nginx::start(&backend, &format!("{BACK}.1:8080"), big_bytes);
        let mut strait = Strait::start(&strait_ns, &toml(lcores, queues, &fa, &ba));
        let up = strait.wait_for_log(&["strait ready"], Duration::from_secs(60));
        assert!(up.contains("strait ready"), "strait did not start:\n{}", strait.log_text());
        assert!(ping_until_reply(&client, &format!("{FRONT}.2"), Duration::from_secs(20)), "no ping (client side):\n{}", strait.log_text());
        assert!(ping_until_reply(&backend, &format!("{BACK}.2"), Duration::from_secs(20)), "no ping (backend side):\n{}", strait.log_text());
        XdpSetup { strait, _nginx: nginx, client, _backend: backend, _strait_ns: strait_ns }
    }

    /// 100 MB through the echo service and back, digests compared.
    fn echo(&self) {
        let started = Instant::now();
        let out = self.client.exec("python3", &["-c", common::ECHO_CLIENT, &format!("{FRONT}.2"), "7", &ECHO_BYTES.to_string()]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "echo client failed: {text} {}\n{}", String::from_utf8_lossy(&out.stderr), self.strait.log_text());
        let field = |k: &str| text.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap_or_default().to_string();
        assert_eq!(field("got="), ECHO_BYTES.to_string(), "echo returned a different amount: {text}\n{}", self.strait.log_text());
        assert_eq!(field("sha_sent="), field("sha_got="), "echoed bytes differ: {text}");
        assert!(text.contains("err=[]"), "client saw errors: {text}");
        assert_eq!(self.client.tcp_in_csum_errors(), Some(0), "the kernel peer dropped frames with bad TCP checksums");
        eprintln!("echo 100 MB each way in {:?}", started.elapsed());
    }

    /// `n` concurrent connections, each echoing a different message.
    fn many(&self, n: usize) {
        let out = self.client.exec("python3", &["-c", common::MANY_ECHOES, &format!("{FRONT}.2"), "7", &n.to_string()]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "client failed: {text} {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("ok={n} errors=0")), "not every connection was echoed: {text}\n{}", self.strait.log_text());
    }

    /// wrk through the proxy: no socket error, no non-2xx response.
    fn wrk(&self) {
        let url = format!("http://{FRONT}.2:80/index.html");
        let out = self.client.exec("wrk", &["-t1", "-c20", "-d3s", &url]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        eprintln!("{text}");
        assert!(out.status.success(), "wrk failed: {text}");
        assert!(!text.contains("Socket errors") && !text.contains("Non-2xx"), "wrk saw errors:\n{text}\n{}", self.strait.log_text());
        let requests: u64 = text
            .lines()
            .find(|l| l.contains("requests in"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(requests >= 1000, "only {requests} requests in 3 s:\n{text}");
    }

    /// Downloads `/shm/big.bin` through the proxy, watching that bytes keep arriving;
    /// returns the SHA-256 of what arrived and the rate.
    fn download(&self, expected_bytes: u64) -> String {
        let url = format!("http://{FRONT}.2:80/shm/big.bin");
        let file = std::env::temp_dir().join(format!("{}.bin", unique("strait-xdp-dl-")));
        let path = file.to_string_lossy().into_owned();
        let started = Instant::now();
        let mut child: Child = self.client.spawn("curl", &["-sS", "--max-time", "600", "-o", &path, &url]);
        let mut last = (0u64, Instant::now());
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            sleep(Duration::from_millis(250));
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            if size != last.0 {
                last = (size, Instant::now());
            }
            if last.1.elapsed() >= STALL {
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_file(&file);
                panic!("download WEDGED at {} bytes for {STALL:?}:\n{}", last.0, self.strait.log_text());
            }
        }
        let status = child.wait().expect("curl");
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let elapsed = started.elapsed();
        let sum = must("sha256sum", &[&path]);
        let _ = std::fs::remove_file(&file);
        assert!(status.success(), "curl failed after {size} bytes:\n{}", self.strait.log_text());
        assert_eq!(size, expected_bytes, "download short");
        eprintln!("download {size} bytes in {elapsed:?}: {:.0} MB/s", size as f64 / elapsed.as_secs_f64() / 1e6);
        sum.split_whitespace().next().unwrap_or_default().to_string()
    }

    /// Stops strait and checks the shutdown report: clean exit, no connection left, the
    /// pool back where it started. Returns the log.
    fn stop(&mut self) -> String {
        sleep(Duration::from_millis(500));
        let status = self.strait.terminate(Duration::from_secs(30));
        let log = self.strait.log_text();
        assert!(status.success(), "strait exited with {status}:\n{log}");
        for line in log.lines().filter(|l| l.contains("final") || l.contains("mbuf pool")) {
            eprintln!("{line}");
        }
        let connections: u64 = log
            .lines()
            .filter(|l| l.contains("final tcp counters"))
            .filter_map(|l| field(l, "connections"))
            .sum();
        assert_eq!(connections, 0, "connections left at shutdown:\n{log}");
        let start = log.lines().find(|l| l.contains("mbuf pool usage")).and_then(|l| field(l, "in_use_at_start"));
        let end = log.lines().find(|l| l.contains("mbuf pool usage")).and_then(|l| field(l, "in_use"));
        assert!(start.is_some() && start == end, "mbufs leaked: {start:?} at start, {end:?} at the end:\n{log}");
        assert!(log.contains("\"outside_umem\":0"), "the pool is laid out for the UMEM:\n{log}");
        log
    }
}

/// The JSON number after `"key":` in `line`.
fn field(line: &str, key: &str) -> Option<u64> {
    let rest = line.split(&format!("\"{key}\":")).nth(1)?;
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}



fn nginx_sha(bytes: u64, s: &XdpSetup) -> String {
    let path = s._nginx.big_path();
    let out = must("sha256sum", &[&path.to_string_lossy()]);
    let sum = out.split_whitespace().next().unwrap_or_default().to_string();
    assert!(!sum.is_empty() && bytes > 0);
    sum
}

#[test]
fn one_lcore_echo_connections_proxy_and_2gb_download_over_af_xdp() {
    if !require_root("one_lcore_echo_connections_proxy_and_2gb_download_over_af_xdp") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const BIG: u64 = 2_000_000_000;
    let mut s = XdpSetup::start(1, 1, BIG);
    let up = s.strait.log_text();
    assert!(up.contains("net_af_xdp") && up.contains("\"granted\":\"none\""), "AF_XDP grants no offload:\n{up}");
    s.echo();
    s.echo();
    s.many(1000);
    s.wrk();
    let want = nginx_sha(BIG, &s);
    assert_eq!(s.download(BIG), want, "the 2 GB download differs from the file");
    let log = s.stop();
    assert!(log.contains("app_accepted=1002"), "every echo connection was accepted:\n{log}");
}

#[test]
fn two_lcores_on_two_queue_veths_over_af_xdp() {
    if !require_root("two_lcores_on_two_queue_veths_over_af_xdp") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const BIG: u64 = 1_000_000_000;
    let mut s = XdpSetup::start(2, 2, BIG);
    s.echo();
    s.many(1000);
    s.wrk();
    let want = nginx_sha(BIG, &s);
    assert_eq!(s.download(BIG), want, "the 1 GB download differs from the file");
    let log = s.stop();
    // The kernel spreads flows over both queues, and an lcore hands frames of flows it
    // does not own to the owner: both lcores served, and frames were redirected.
    let lcores: Vec<&str> = log.lines().filter(|l| l.contains("final lcore counters")).collect();
    assert_eq!(lcores.len(), 2, "two lcores reported:\n{log}");
    for l in &lcores {
        assert!(l.contains("rx_frames="), "an lcore received nothing: {l}");
    }
    assert!(log.contains("redirected_frames="), "no frame was steered to its owner:\n{log}");
}

#[test]
fn one_lcore_polls_four_queues_per_af_xdp_port() {
    if !require_root("one_lcore_polls_four_queues_per_af_xdp_port") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = XdpSetup::start(1, 4, 1_000_000);
    s.many(1000);
    s.wrk();
    // Network counters are per port (two), device statistics per queue (eight): a back
    // port's frames are not labelled as the front port's second queue.
    let out = s._strait_ns.exec("curl", &["-sS", "--max-time", "5", "http://127.0.0.1:9100/metrics"]);
    let metrics = String::from_utf8_lossy(&out.stdout).into_owned();
    let net: Vec<&str> = metrics.lines().filter(|l| l.starts_with("strait_net_")).collect();
    assert!(!net.is_empty(), "no network counters:\n{metrics}");
    for l in &net {
        assert!(l.contains("port=\"front\"") || l.contains("port=\"back\""), "a network counter of a queue, not a port: {l}");
    }
    let rx_tcp = |port: &str| {
        net.iter()
            .find(|l| l.starts_with("strait_net_rx_tcp_total") && l.contains(&format!("port=\"{port}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(rx_tcp("front") > 0.0 && rx_tcp("back") > 0.0, "both ports received TCP:\n{}", net.join("\n"));
    for q in ["front.q3", "back.q3"] {
        assert!(metrics.contains(&format!("strait_port_rx_packets_total{{port=\"{q}\"}}")), "no statistics for queue {q}");
    }
    // The loop's busy passes were timed: a count, and every one within the last bucket (1 s).
    let sample = |series: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {series}:\n{metrics}"))
    };
    let passes = sample("strait_lcore_busy_pass_seconds_count{lcore=\"0\"}");
    assert!(passes > 0.0, "no busy pass timed");
    assert_eq!(sample("strait_lcore_busy_pass_seconds_bucket{lcore=\"0\",le=\"+Inf\"}"), passes);
    assert!(sample("strait_lcore_busy_pass_seconds_bucket{lcore=\"0\",le=\"1\"}") > 0.0);
    let log = s.stop();
    // The kernel peers hash their flows over the veths' four queues: the one lcore
    // received on every queue of both ports (each queue an AF_XDP device of its own).
    for port in ["front", "back"] {
        for name in [port.to_string(), format!("{port}.q1"), format!("{port}.q2"), format!("{port}.q3")] {
            let line = log
                .lines()
                .find(|l| l.contains("\"port statistics\"") && l.contains(&format!("\"port\":\"{name}\"")))
                .unwrap_or_else(|| panic!("no statistics for {name}:\n{log}"));
            let received = field(line, "ipackets").unwrap_or(0);
            assert!(received > 0, "queue {name} received nothing: {line}");
        }
    }
}
