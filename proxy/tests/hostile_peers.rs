//! End to end: hostile and broken peers cannot pin strait's memory.
//!
//! * **Zero window, then silence.** 40 kernel clients each send 300 KB to the echo service
//!   and a FIN, with a 4 KiB receive buffer they never read: strait's echo answers, closes
//!   (an orphan, its answer queued behind a closed window), and probes the window. Then
//!   the clients go silent (nftables drops everything strait sends them). With
//!   `[tcp] orphan_retries = 3` every orphan is reset after three unanswered probes (Linux
//!   `tcp_probe_timer` with `tcp_orphan_retries`), and the mbufs they pinned return to the
//!   pool. Before the persist timer was bounded they stayed pinned for ever.
//! * **Tiny segments above a hole.** A raw-socket peer (plain Python, the kernel's RSTs to
//!   it dropped by nftables) opens connections to the echo service and sends each of them
//!   800 one-byte segments at every other sequence number above a missing first byte,
//!   each pinning a whole mbuf, more than the pool holds; meanwhile a kernel client makes
//!   echo requests. Before buffers were charged whole and shedding spared in-order text,
//!   the pool ran dry and every connection's data, the legitimate client's included, was
//!   dropped. Now the pool stays above its reserve, the legitimate requests succeed, the
//!   counters name the defence (`TCPOFODrop`, `OfoPruned`), and once the attacker's
//!   connections idle out (`[[app]] idle_timeout_ms`) the pool is back at its start.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{must, ping_until_reply, require_root, unique, Netns, ONE_LCORE, Strait};

const METRICS: &str = "127.0.0.1:9101";
const STRAIT_IP: &str = "198.18.30.2";
const CLIENTS: usize = 40;

fn config(tap: &str) -> String {
    format!(
        r#"
{ONE_LCORE}
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

/// A raw-socket attacker: `n` connections to `dst:7` from `src`, then `m` one-byte
/// segments on each at every other sequence number above the missing first byte.
const TINY_SEGMENTS: &str = r#"
import random, select, socket, struct, sys, time
dst, src, n, m = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return (~s) & 0xffff
def seg(sport, seq, ack, flags, payload=b"", opts=b""):
    h = struct.pack("!HHIIBBHHH", sport, 7, seq & 0xffffffff, ack & 0xffffffff, ((20 + len(opts)) // 4) << 4, flags, 65535, 0, 0) + opts
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(h) + len(payload))
    c = csum(ph + h + payload)
    return h[:16] + struct.pack("!H", c) + h[18:] + payload
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
s.bind((src, 0))
conns = []
for i in range(n):
    sport, isn = 40000 + i, random.getrandbits(32)
    s.sendto(seg(sport, isn, 0, 0x02, opts=b"\x02\x04\x05\xb4"), (dst, 0))
    deadline = time.time() + 3
    while time.time() < deadline:
        if not select.select([s], [], [], 0.5)[0]:
            continue
        pkt = s.recv(65535)
        t = pkt[(pkt[0] & 15) * 4:]
        sp, dp, seq, _, _, fl = struct.unpack("!HHIIBB", t[:14])
        if sp == 7 and dp == sport and fl & 0x12 == 0x12:
            s.sendto(seg(sport, isn + 1, seq + 1, 0x10), (dst, 0))
            conns.append((sport, isn + 1, seq + 1))
            break
print("established", len(conns), flush=True)
for k in range(m):
    for sport, base, ack in conns:
        s.sendto(seg(sport, base + 1 + 2 * k, ack, 0x18, b"x"), (dst, 0))
    time.sleep(0.002)
print("sent", flush=True)
time.sleep(600)
"#;

/// A legitimate client: `n` echo requests of 1000 bytes, each on its own connection with
/// a 3 s deadline; prints how many came back whole.
const REQUESTS: &str = r#"
import socket, sys, time
addr, n = sys.argv[1], int(sys.argv[2])
ok = 0
for i in range(n):
    try:
        s = socket.create_connection((addr, 7), timeout=3)
        data = bytes((i + j) % 251 for j in range(1000))
        s.sendall(data)
        got = b""
        while len(got) < len(data):
            b = s.recv(65536)
            if not b:
                break
            got += b
        s.close()
        ok += got == data
    except OSError:
        pass
    time.sleep(0.01)
print("ok", ok, flush=True)
"#;

const ATTACKER_IP: &str = "198.18.31.3";
const ATTACK_CONNS: usize = 30;
const ATTACK_SEGMENTS: usize = 800;
const REQUESTS_N: usize = 300;
const POOL: f64 = 16383.0;

fn tiny_config(tap: &str) -> String {
    format!(
        r#"
[log]
format = "json"
level = "info"

[dpdk]
lcores = [0]
memory_mode = "no-huge"
memory_mb = 512
mbufs = 16383
mbuf_cache = 256

[metrics]
listen = "{METRICS}"

[[port]]
name = "p0"
device = "net_tap0,iface={tap}"
ipv4 = "198.18.31.2/24"

[[app]]
kind = "echo"
listen = "198.18.31.2:7"
idle_timeout_ms = 4000
"#
    )
}

#[test]
fn tiny_segments_above_a_hole_cannot_drain_the_pool() {
    if !require_root("tiny_segments_above_a_hole_cannot_drain_the_pool") {
        return;
    }
    let strait_ip = "198.18.31.2";
    let ns = Netns::new("stn");
    let tap = unique("stn");
    let mut strait = Strait::start(&ns, &tiny_config(&tap));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    ns.ip(&["addr", "add", "198.18.31.1/24", "dev", &tap]);
    ns.ip(&["addr", "add", &format!("{ATTACKER_IP}/24"), "dev", &tap]);
    ns.ip(&["link", "set", &tap, "up"]);
    assert!(ping_until_reply(&ns, strait_ip, Duration::from_secs(20)), "no ping reply:\n{}", strait.log_text());
    // The kernel knows no socket of the raw peer: its RSTs would end the connections.
    let nft = |args: &[&str]| {
        let mut a = vec!["netns", "exec", &ns.name, "nft"];
        a.extend_from_slice(args);
        must("ip", &a);
    };
    nft(&["add", "table", "inet", "raw_peer"]);
    nft(&["add", "chain", "inet", "raw_peer", "out", "{ type filter hook output priority 0 ; }"]);
    nft(&["add", "rule", "inet", "raw_peer", "out", "tcp", "sport", "40000-40999", "tcp", "flags", "rst", "drop"]);
    sleep(Duration::from_millis(300));
    let before = in_use(&ns);
    assert!(before > 0.0, "metrics endpoint answers");

    let mut legit = common::Killed(ns.spawn("python3", &["-c", REQUESTS, strait_ip, &REQUESTS_N.to_string()]));
    let mut attacker = common::Killed(ns.spawn(
        "python3",
        &["-c", TINY_SEGMENTS, strait_ip, ATTACKER_IP, &ATTACK_CONNS.to_string(), &ATTACK_SEGMENTS.to_string()],
    ));
    let mut peak = 0.0f64;
    let started = Instant::now();
    let out = loop {
        peak = peak.max(in_use(&ns));
        if started.elapsed() > Duration::from_secs(90) {
            panic!("legitimate client did not finish:\n{}", strait.log_text());
        }
        sleep(Duration::from_millis(100));
        if let Ok(Some(_)) = legit.0.try_wait() {
            let mut out = String::new();
            if let Some(mut o) = legit.0.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut o, &mut out);
            }
            break out;
        }
    };
    let ok: usize = out.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    // The attacker may still be sending: wait (10 s at most) until its segments arrived.
    let offered = (ATTACK_CONNS * ATTACK_SEGMENTS) as f64;
    let counted = || {
        let dropped = metric(&ns, "strait_tcp_ofo_drop_total").unwrap_or(0.0);
        let queued = metric(&ns, "strait_tcp_ofo_queue_total").unwrap_or(0.0);
        (queued, dropped)
    };
    let waited = Instant::now();
    while counted().0 + counted().1 < offered * 0.9 && waited.elapsed() < Duration::from_secs(10) {
        peak = peak.max(in_use(&ns));
        sleep(Duration::from_millis(100));
    }
    let (queued, dropped) = counted();
    let pruned = metric(&ns, "strait_tcp_ofo_pruned_total").unwrap_or(0.0);
    eprintln!(
        "legitimate {ok}/{REQUESTS_N}; mbufs in use {before} before, peak {peak}; TCPOFOQueue {queued} TCPOFODrop {dropped} OfoPruned {pruned}"
    );
    assert!(ok * 100 >= REQUESTS_N * 99, "legitimate requests {ok}/{REQUESTS_N}:\n{}", strait.log_text());
    // The bound: each attacking connection holds at most its initial budget (128 KiB of
    // buffers, 60 mbufs), far below memory pressure (7/8 of the pool in use).
    let bound = before + (ATTACK_CONNS * 60) as f64 + 1024.0;
    assert!(peak < bound, "peak {peak} mbufs in use, bound {bound}, pool {POOL}");
    assert!(offered > POOL, "the attack offers more segments than the pool has mbufs");
    assert!(queued + dropped >= offered * 0.9, "the attack arrived: {queued} queued + {dropped} dropped of {offered}");
    assert!(dropped > 0.0, "the defence is counted: TCPOFODrop {dropped}, OfoPruned {pruned}");
    // The attacker's connections idle out (4 s) and give their mbufs back.
    let _ = attacker.0.kill();
    let quiet = Instant::now();
    loop {
        let now_in_use = in_use(&ns);
        if now_in_use <= before + 64.0 {
            eprintln!("mbufs back to {now_in_use} after {:?}", quiet.elapsed());
            break;
        }
        assert!(quiet.elapsed() < Duration::from_secs(30), "{now_in_use} mbufs still in use (start {before})");
        sleep(Duration::from_millis(250));
    }
    let status = strait.terminate(Duration::from_secs(30));
    assert!(status.success(), "strait exited with {status}:\n{}", strait.log_text());
}
