//! End to end: a tiny mbuf pool (1023) drained by slow readers. Clients connect to the echo
//! service, send as much as they can and never read, so strait's send and receive buffers
//! fill with mbufs. Strait must enter memory pressure (logged, counted), stop the slow
//! clients' connections at their memory limit (12/16 of the pool, Linux `tcp_mem[2]`,
//! counted `TCPMemoryLimited`), keep answering ping and serve a new client meanwhile (the
//! limit leaves the rest of the pool to the RX ring and new connections; only at the
//! pool's reserve would a SYN be refused with a RST), and once the slow clients are gone,
//! leave pressure and end with the pool back at its start value.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{log_field, ping_until_reply, require_root, unique, Netns, Strait};

const CONFIG: &str = r#"
[log]
format = "json"
level = "info"

[dpdk]
lcores = [0]
memory_mode = "no-huge"
memory_mb = 256
mbufs = 1023
mbuf_cache = 32

[[port]]
name = "p0"
device = "net_tap0,iface=IFNAME"
ipv4 = "198.18.41.2/24"
mtu = 1500

[[app]]
kind = "echo"
listen = "198.18.41.2:7"

[metrics]
listen = "127.0.0.1:9741"
"#;

/// TCP connections (any state) as the metrics endpoint reports them.
fn connections(ns: &Netns) -> Option<u64> {
    let script = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:9741/metrics', timeout=2).read().decode())";
    let out = ns.exec("python3", &["-c", script]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("strait_tcp_connections "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

/// `n` clients with a tiny receive buffer send until their sends stall for a second,
/// then print `stuck=<n>` and hold their connections until stdin closes; then they
/// close with unread data (a RST).
const SLOW: &str = r#"
import socket, sys, threading
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks, stuck, lock = [], [0], threading.Lock()
def one():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect((addr, port))
    socks.append(s)
    s.settimeout(1)
    chunk = b"x" * 65536
    while True:
        try:
            s.send(chunk)
        except socket.timeout:
            break
    with lock:
        stuck[0] += 1
threads = [threading.Thread(target=one) for _ in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join(120)
print("stuck=%d" % stuck[0], flush=True)
sys.stdin.read()
for s in socks:
    s.close()
print("closed", flush=True)
"#;

/// One connection attempt: prints `refused`, `timeout` or `echo=<ok>` and the seconds it took.
const PROBE: &str = r#"
import socket, sys, time
t = time.time()
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
    s.settimeout(10)
    s.sendall(b"hello strait")
    s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        d = s.recv(100)
        if not d:
            break
        got += d
    print("echo=%s secs=%.2f" % (got == b"hello strait", time.time() - t))
except ConnectionRefusedError:
    print("refused secs=%.2f" % (time.time() - t))
except ConnectionResetError:
    print("refused secs=%.2f" % (time.time() - t))
except socket.timeout:
    print("timeout secs=%.2f" % (time.time() - t))
"#;

fn probe(ns: &Netns) -> String {
    let out = ns.exec("python3", &["-c", PROBE, "198.18.41.2", "7"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn slow_readers_drain_the_pool_without_breaking_strait() {
    if !require_root("slow_readers_drain_the_pool_without_breaking_strait") {
        return;
    }
    let ns = Netns::new("stmx");
    let ifname = unique("smx");
    let mut strait = Strait::start(&ns, &CONFIG.replace("IFNAME", &ifname));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    ns.ip(&["addr", "add", "198.18.41.1/24", "dev", &ifname]);
    ns.ip(&["link", "set", &ifname, "up"]);
    assert!(ping_until_reply(&ns, "198.18.41.2", Duration::from_secs(20)), "no ping reply:\n{}", strait.log_text());
    assert!(probe(&ns).starts_with("echo=True"), "echo works before the flood:\n{}", strait.log_text());

    let mut slow = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", SLOW, "198.18.41.2", "7", "8"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn slow clients");
    let mut lines = BufReader::new(slow.stdout.take().expect("stdout"));
    let mut line = String::new();
    let _ = lines.read_line(&mut line);
    assert!(line.starts_with("stuck="), "slow clients did not stall: {line:?}\n{}", strait.log_text());
    strait.wait_for_log(&["memory pressure: buffers low"], Duration::from_secs(20));

    // Under pressure: ping answers, and a new client is served beside the stuck ones.
    assert!(ping_until_reply(&ns, "198.18.41.2", Duration::from_secs(10)), "no ping under pressure:\n{}", strait.log_text());
    let p = probe(&ns);
    assert!(p.starts_with("echo=True"), "a new client under pressure was not served: {p}\n{}", strait.log_text());

    // The slow clients go away (close with unread data: RST); pressure ends.
    drop(slow.stdin.take());
    let _ = lines.read_line(&mut line);
    let _ = slow.wait();
    strait.wait_for_log(&["memory pressure over"], Duration::from_secs(20));
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(10) {
        last = probe(&ns);
        if last.starts_with("echo=True") {
            break;
        }
    }
    assert!(last.starts_with("echo=True"), "no echo after the pressure: {last}\n{}", strait.log_text());
    // Let the last connections finish their close: a slow client's RST can meet a
    // connection whose receive side shed data (RFC 5961 challenge ACK, then the peer's
    // second RST), and a FIN or challenge ACK dropped on a full TX ring is sent again only
    // by the retransmission or persist timer (backed off while the pressure lasted).
    // Wait, bounded, until the engine holds no connection at all.
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    let mut left = connections(&ns);
    while std::time::Instant::now() < deadline && left != Some(0) {
        std::thread::sleep(Duration::from_millis(250));
        left = connections(&ns);
    }
    eprintln!("connections left before SIGTERM: {left:?}");

    let status = strait.terminate(Duration::from_secs(30));
    let log = strait.log_text();
    assert!(status.success(), "strait exited with {status}:\n{log}");
    for l in log.lines().filter(|l| l.contains("final") || l.contains("memory pressure") || l.contains("mbuf pool")) {
        eprintln!("{l}");
    }
    let lcore = log.lines().find(|l| l.contains("final lcore counters")).unwrap_or_default();
    assert!(lcore.contains("memory_pressure_changes=2"), "pressure entered and left once: {lcore}");
    let tcp = log.lines().find(|l| l.contains("final tcp counters")).unwrap_or_default();
    assert!(tcp.contains("TCPMemoryPressures=1") && !tcp.contains("TCPMemoryLimited=0"), "{tcp}");
    assert_eq!(log_field(&log, "final tcp counters", "connections"), Some(0), "connections left:\n{log}");
    let at_start = log_field(&log, "mbuf pool usage", "in_use_at_start");
    let at_end = log_field(&log, "final tcp counters", "pool_in_use");
    assert!(at_start.is_some() && at_start == at_end, "pool not back: {at_start:?} at start, {at_end:?} at the end:\n{log}");
    let _ = std::io::stderr().flush();
}
