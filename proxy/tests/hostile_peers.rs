//! End to end: hostile and broken peers cannot pin strait's memory.
//!
//! * **Zero window, then silence.** 40 kernel clients each send 300 KB to the echo service
//!   and a FIN, with a 4 KiB receive buffer they never read: strait's echo answers, closes
//!   (an orphan, its answer queued behind a closed window), and probes the window. Then
//!   the clients go silent (nftables drops everything strait sends them). With
//!   `[tcp] orphan_retries = 3` every orphan is reset after three unanswered probes (Linux
//!   `tcp_probe_timer` with `tcp_orphan_retries`), and the mbufs they pinned return to the
//!   pool. Before the persist timer was bounded they stayed pinned for ever.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{must, ping_until_reply, require_root, unique, Netns, Strait};

const METRICS: &str = "127.0.0.1:9101";
const STRAIT_IP: &str = "198.18.30.2";
const CLIENTS: usize = 40;

fn config(tap: &str) -> String {
    format!(
        r#"
[log]
format = "json"
level = "info"

[dpdk]
lcores = [0]
memory_mode = "no-huge"
memory_mb = 512
mbufs = 32767
mbuf_cache = 256

[tcp]
orphan_retries = 3

[metrics]
listen = "{METRICS}"

[[port]]
name = "p0"
device = "net_tap0,iface={tap}"
ipv4 = "{STRAIT_IP}/24"

[[app]]
kind = "echo"
listen = "{STRAIT_IP}:7"
"#
    )
}

/// Opens `n` connections with a 4 KiB receive buffer, sends 300 KB and a FIN on each,
/// never reads, and sleeps (holding the sockets open) until killed.
const STUBBORN: &str = r#"
import socket, sys, time
addr, n = sys.argv[1], int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect((addr, 7))
    socks.append(s)
data = b"x" * 300000
for s in socks:
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
print("sent", flush=True)
time.sleep(600)
"#;

/// The value of the metric line starting with `name ` (no labels), if present.
fn metric(ns: &Netns, name: &str) -> Option<f64> {
    let out = ns.exec("curl", &["-sS", "--max-time", "2", &format!("http://{METRICS}/metrics")]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

fn in_use(ns: &Netns) -> f64 {
    metric(ns, "strait_mempool_mbufs{state=\"in_use\"}").unwrap_or(-1.0)
}

#[test]
fn silent_peers_behind_a_zero_window_are_reclaimed() {
    if !require_root("silent_peers_behind_a_zero_window_are_reclaimed") {
        return;
    }
    let ns = Netns::new("shp");
    let tap = unique("shp");
    let mut strait = Strait::start(&ns, &config(&tap));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    ns.ip(&["addr", "add", "198.18.30.1/24", "dev", &tap]);
    ns.ip(&["link", "set", &tap, "up"]);
    assert!(ping_until_reply(&ns, STRAIT_IP, Duration::from_secs(20)), "no ping reply:\n{}", strait.log_text());
    sleep(Duration::from_millis(300));
    let before = in_use(&ns);
    assert!(before > 0.0, "metrics endpoint answers");

    let mut client = common::Killed(ns.spawn("python3", &["-c", STUBBORN, STRAIT_IP, &CLIENTS.to_string()]));
    // Every answer is queued behind the clients' closed windows: orphans pin mbufs.
    let started = Instant::now();
    let mut orphans = 0.0;
    while started.elapsed() < Duration::from_secs(30) {
        orphans = metric(&ns, "strait_tcp_orphans").unwrap_or(0.0);
        if orphans as usize == CLIENTS {
            break;
        }
        sleep(Duration::from_millis(200));
    }
    assert_eq!(orphans as usize, CLIENTS, "every echo closed behind a zero window:\n{}", strait.log_text());
    let pinned = in_use(&ns) - before;
    eprintln!("{CLIENTS} orphans pin {pinned} mbufs");
    assert!(pinned > 1000.0, "the queued answers pin mbufs ({pinned})");

    // The clients go silent: nothing strait sends reaches them any more.
    must("ip", &["netns", "exec", &ns.name, "nft", "add", "table", "inet", "silence"]);
    must(
        "ip",
        &["netns", "exec", &ns.name, "nft", "add", "chain", "inet", "silence", "input", "{ type filter hook input priority 0 ; }"],
    );
    must("ip", &["netns", "exec", &ns.name, "nft", "add", "rule", "inet", "silence", "input", "ip", "saddr", STRAIT_IP, "tcp", "sport", "7", "drop"]);
    let silent_since = Instant::now();
    loop {
        let orphans = metric(&ns, "strait_tcp_orphans").unwrap_or(-1.0);
        if orphans == 0.0 {
            break;
        }
        assert!(
            silent_since.elapsed() < Duration::from_secs(60),
            "{orphans} orphans still held 60 s after their peers went silent:\n{}",
            strait.log_text()
        );
        sleep(Duration::from_millis(250));
    }
    eprintln!("orphans reclaimed {:?} after the peers went silent", silent_since.elapsed());
    let aborted = metric(&ns, "strait_tcp_abort_on_timeout_total").unwrap_or(0.0);
    assert!(aborted as usize >= CLIENTS, "each orphan was reset for its unanswered probes ({aborted})");
    let probes = metric(&ns, "strait_tcp_win_probe_total").unwrap_or(0.0);
    assert!(probes > 0.0, "the window was probed");
    sleep(Duration::from_millis(300));
    let after = in_use(&ns);
    assert!(after <= before + 64.0, "mbufs back near the start: {before} before, {after} after");
    let _ = client.0.kill();
    let status = strait.terminate(Duration::from_secs(30));
    assert!(status.success(), "strait exited with {status}:\n{}", strait.log_text());
}
