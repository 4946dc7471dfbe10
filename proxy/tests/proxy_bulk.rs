//! End to end: bulk transfers through the proxy with the SHA-256 checked at both ends
//! (set-up in `common::backend`: kernel client on strait's `net_tap` port, backend behind its
//! `net_af_packet` port).
//!
//! * a 1 GB download of a random file nginx serves from tmpfs (curl | sha256sum);
//! * a 1 GB upload to a backend that hashes what it receives until the client's FIN;
//! * the same two through 5% loss in each direction on the client-side port
//!   (`[port.impair]`, seeded), 1 GB each: the kernel client recovers at 9-40 MB/s, strait
//!   as the sender at 1.6-5 MB/s on the 2-core machine depending on its load (about three
//!   minutes for the download when the machine is otherwise idle).
//!
//! The tests take a lock so that they run one at a time: two busy-polling strait
//! processes and their peers on a 2-core machine would only slow each other down.
//!
//! Every transfer is watched through the metrics endpoint: when the proxy's byte
//! counters stop moving for [`STALL`], the test captures evidence while the connections
//! are still alive (`ss -tmi` and `nstat` of both kernel peers, strait's metrics and log)
//! and fails with it.

mod common;

use std::process::{Child, Output};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::backend::{counter, nstat, nstat_delta, setup, Net, Options, Setup};
use common::{must, require_root, Killed, Netns};

/// Size of the lossless transfers.
const BIG_BYTES: u64 = 1000 * 1000 * 1000;
/// One test at a time (see the module documentation).
static SERIAL: Mutex<()> = Mutex::new(());
/// No byte moving through the proxy for this long is a stall.
const STALL: Duration = Duration::from_secs(20);
/// Where strait's metrics endpoint listens in its namespace.
const METRICS: &str = "127.0.0.1:9100";
/// The upload backend's port.
const UPLOAD_PORT: u16 = 9000;

/// 5% loss each way on the client-side port, 1% reordering.
const LOSSY_PORT: &str = "
[port.impair]
seed = 7
rx_drop = 0.05
tx_drop = 0.05
reorder = 0.01
";

/// The upload backend: accepts one connection, hashes everything until EOF, answers
/// `bytes=N sha256=HEX` and closes.
const HASHING_SERVER: &str = r#"
import hashlib, socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(4)
c, _ = srv.accept()
h, n = hashlib.sha256(), 0
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    h.update(d)
    n += len(d)
c.sendall(b"bytes=%d sha256=%s\n" % (n, h.hexdigest().encode()))
c.close()
"#;

/// The upload client: sends the file, half-closes, prints the backend's answer.
const UPLOAD_CLIENT: &str = r#"
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=300)
with open(sys.argv[2], "rb") as f:
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        s.sendall(b)
s.shutdown(socket.SHUT_WR)
r = b""
while True:
    d = s.recv(4096)
    if not d:
        break
    r += d
print(r.decode().strip())
"#;

/// The sum of every sample of `family` in strait's metrics (None when unreachable).
fn metric_sum(ns: &Netns, family: &str) -> Option<f64> {
    let out = ns.exec("curl", &["-sS", "--max-time", "2", &format!("http://{METRICS}/metrics")]);
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Some(
        text.lines()
            .filter(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
            .sum(),
    )
}

/// Waits for `child`, failing with live evidence when the proxy's byte counters stop for
/// [`STALL`] or `limit` passes. Returns the output and the elapsed time.
fn watch(s: &Setup, mut child: Child, what: &str, limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut last = (-1.0, Instant::now());
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        sleep(Duration::from_millis(500));
        let bytes = metric_sum(&s.client, "strait_proxy_listener_bytes_total").unwrap_or(-1.0);
        if bytes != last.0 {
            last = (bytes, Instant::now());
        }
        let stalled = last.1.elapsed() >= STALL;
        if stalled || started.elapsed() > limit {
            let metrics = s.client.exec("curl", &["-sS", "--max-time", "2", &format!("http://{METRICS}/metrics")]);
            let metrics = String::from_utf8_lossy(&metrics.stdout)
                .lines()
                .filter(|l| l.starts_with("strait_proxy_") || l.starts_with("strait_tcp_") || l.starts_with("strait_mempool"))
                .collect::<Vec<_>>()
                .join("\n");
            let evidence = s.stall_evidence();
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: {} after {:?} (proxy bytes stuck at {} for {:?})\n--- strait metrics\n{metrics}\n{evidence}",
                if stalled { "STALLED" } else { "too slow" },
                started.elapsed(),
                last.0,
                last.1.elapsed()
            );
        }
    }
    let elapsed = started.elapsed();
    (child.wait_with_output().expect("client output"), elapsed)
}

fn serial() -> MutexGuard<'static, ()> {
    // A test that failed while holding the lock poisons it; the next one may still run.
    SERIAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn digest(text: &str) -> String {
    text.split_whitespace().next().unwrap_or_default().to_string()
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

/// Downloads `bytes` of random data through the proxy and checks the digest.
fn download(net: Net, bytes: u64, front_port_extra: &'static str, limit: Duration) {
    let mut s = setup(net, &Options { front_port_extra, metrics: Some(METRICS), big_bytes: bytes });
    let want = must("sha256sum", &[&s.nginx[0].big_path().to_string_lossy()]);
    let before = nstat(&s.client);
    let script = format!("set -o pipefail; curl -sS --fail {} | sha256sum", s.net.url("shm/big.bin"));
    let child = s.client.spawn("bash", &["-c", &script]);
    let (out, elapsed) = watch(&s, child, &format!("{bytes} B download"), limit);
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl failed: {got} {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.stall_evidence()
    );
    assert_eq!(digest(&got), digest(&want), "downloaded bytes differ");
    let after = nstat(&s.client);
    eprintln!(
        "download {bytes} B in {elapsed:?} ({:.1} MB/s); client kernel: InSegs {} RetransSegs {} TCPTimeouts {}",
        mb_per_s(bytes, elapsed),
        nstat_delta(&before, &after, "TcpInSegs"),
        nstat_delta(&before, &after, "TcpRetransSegs"),
        nstat_delta(&before, &after, "TcpExtTCPTimeouts"),
    );
    let line = s.stop();
    let out_bytes = counter(&line, "proxy_listener_bytes_out").unwrap_or(0);
    assert!(out_bytes > bytes, "bytes_out {out_bytes} does not cover the download: {line}");
    if !front_port_extra.is_empty() {
        // The loss was real: strait, the sender, retransmitted.
        let log = s.strait.log_text();
        let tcp = log.lines().find(|l| l.contains("final tcp counters")).unwrap_or_default();
        let retrans: u64 = tcp
            .split("RetransSegs=")
            .nth(1)
            .map(|r| r.chars().take_while(char::is_ascii_digit).collect::<String>())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        eprintln!("strait retransmitted {retrans} segments; strait {}", tcp.split("\"counters\":\"").nth(1).unwrap_or(tcp));
        assert!(retrans > 1000, "5% loss must cost strait retransmissions: {tcp}");
    }
    assert_eq!(counter(&line, "proxy_listener_resets"), None, "the session was reset: {line}");
}

/// Uploads `bytes` of random data through the proxy to the hashing backend.
fn upload(net: Net, bytes: u64, front_port_extra: &'static str, limit: Duration) {
    let back = format!("{}.1", net.back);
    let front = format!("{}.2", net.front);
    let mut s = setup(
        Net { backend_port: UPLOAD_PORT, ..net },
        &Options { front_port_extra, metrics: Some(METRICS), big_bytes: bytes },
    );
    let file = s.nginx[0].big_path();
    let want = must("sha256sum", &[&file.to_string_lossy()]);
    let server = s.backend.spawn("python3", &["-c", HASHING_SERVER, &back, &UPLOAD_PORT.to_string()]);
    let _server = Killed(server);
    s.wait_backend_listening(&back, UPLOAD_PORT);
    let before = nstat(&s.client);
    let child = s.client.spawn("python3", &["-c", UPLOAD_CLIENT, &front, &file.to_string_lossy()]);
    let (out, elapsed) = watch(&s, child, &format!("{bytes} B upload"), limit);
    let after = nstat(&s.client);
    let got = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "upload client failed: {got} {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.stall_evidence()
    );
    assert_eq!(got.trim(), format!("bytes={bytes} sha256={}", digest(&want)), "uploaded bytes differ");
    let (out_segs, retrans, timeouts) = (
        nstat_delta(&before, &after, "TcpOutSegs"),
        nstat_delta(&before, &after, "TcpRetransSegs"),
        nstat_delta(&before, &after, "TcpExtTCPTimeouts"),
    );
    // How the kernel sender recovered: spurious RTOs and undos, reordering it detected,
    // D-SACKs it received (copies it sent needlessly that Strait reported).
    let recovery = ["TcpExtTCPSpuriousRTOs", "TcpExtTCPLossUndo", "TcpExtTCPSACKReorder", "TcpExtTCPDSACKRecv", "TcpExtTCPLostRetransmit"]
        .map(|n| format!("{} {}", n.trim_start_matches("TcpExt"), nstat_delta(&before, &after, n)))
        .join(" ");
    eprintln!(
        "upload {bytes} B in {elapsed:?} ({:.1} MB/s); client kernel: OutSegs {out_segs} RetransSegs {retrans} TCPTimeouts {timeouts} {recovery}",
        mb_per_s(bytes, elapsed)
    );
    if !front_port_extra.is_empty() {
        assert!(retrans > out_segs / 100, "5% loss must cost the kernel sender retransmissions: {retrans} of {out_segs}");
    }
    let line = s.stop();
    let in_bytes = counter(&line, "proxy_listener_bytes_in").unwrap_or(0);
    assert_eq!(in_bytes, bytes, "bytes_in does not match the upload: {line}");
    assert_eq!(counter(&line, "proxy_listener_resets"), None, "the session was reset: {line}");
}

#[test]
fn download_1gb_through_the_proxy_is_intact() {
    if !require_root("download_1gb_through_the_proxy_is_intact") {
        return;
    }
    let _serial = serial();
    download(Net { front: "198.18.76", back: "198.18.77", backend_port: 8080 }, BIG_BYTES, "", Duration::from_secs(240));
}

#[test]
fn upload_1gb_through_the_proxy_is_intact() {
    if !require_root("upload_1gb_through_the_proxy_is_intact") {
        return;
    }
    let _serial = serial();
    upload(Net { front: "198.18.76", back: "198.18.77", backend_port: 8080 }, BIG_BYTES, "", Duration::from_secs(240));
}

#[test]
fn download_1gb_through_5_percent_loss_is_intact() {
    if !require_root("download_1gb_through_5_percent_loss_is_intact") {
        return;
    }
    let _serial = serial();
    download(
        Net { front: "198.18.78", back: "198.18.79", backend_port: 8080 },
        BIG_BYTES,
        LOSSY_PORT,
        Duration::from_secs(480),
    );
}

#[test]
fn upload_1gb_through_5_percent_loss_is_intact() {
    if !require_root("upload_1gb_through_5_percent_loss_is_intact") {
        return;
    }
    let _serial = serial();
    upload(
        Net { front: "198.18.78", back: "198.18.79", backend_port: 8080 },
        BIG_BYTES,
        LOSSY_PORT,
        Duration::from_secs(300),
    );
}
