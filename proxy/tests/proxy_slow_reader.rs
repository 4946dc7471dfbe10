//! End to end: a slow reader behind the proxy. nginx (fast, same host) serves a 20 MB
//! random file; the kernel client reads it at 1 MB/s with a small socket receive buffer.
//! Back-pressure must hold the proxy's memory for that session within the buffer limits of
//! its two connections: strait reads from the backend only what the client connection's
//! send buffer takes, and the backend connection's receive window closes meanwhile.
//!
//! The mbufs held are sampled from the metrics endpoint during the transfer
//! (`strait_mempool_mbufs{state="in_use"}` minus the idle baseline); times the mbuf data
//! size they must stay under `2 × (sndbuf + rcvbuf)` of the engine's TCP configuration.
//! The body's SHA-256 must match the file's.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::backend::{counter, setup, Net, Options};
use common::{must, require_root, Killed, Netns};

/// Size of the response.
const BYTES: u64 = 20 * 1000 * 1000;
/// The client's reading rate, bytes per second.
const RATE: u64 = 1000 * 1000;
/// Data room of one mbuf (DPDK's default, `RTE_MBUF_DEFAULT_DATAROOM`, as strait's pool).
const MBUF_DATA_BYTES: u64 = 2048;
/// Where strait's metrics endpoint listens in its namespace.
const METRICS: &str = "127.0.0.1:9100";

/// Reads the response at `rate` bytes/s with a 64 KiB receive buffer; prints the status,
/// body length and body SHA-256.
const SLOW_CLIENT: &str = r#"
import hashlib, socket, sys, time
addr, path, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.settimeout(60)
s.connect((addr, 80))
s.sendall(("GET /%s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode())
buf, head = b"", None
h, n, start = hashlib.sha256(), 0, time.monotonic()
while True:
    d = s.recv(16384)
    if not d:
        break
    if head is None:
        buf += d
        if b"\r\n\r\n" not in buf:
            continue
        head, _, d = buf.partition(b"\r\n\r\n")
    h.update(d)
    n += len(d)
    ahead = n / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
status = head.split(b" ")[1].decode() if head else "none"
print("status=%s body=%d sha256=%s seconds=%.1f" % (status, n, h.hexdigest(), time.monotonic() - start))
"#;

/// `strait_mempool_mbufs{state="in_use"}` from the metrics endpoint.
fn mbufs_in_use(ns: &Netns) -> Option<u64> {
    let out = ns.exec("curl", &["-sS", "--max-time", "2", &format!("http://{METRICS}/metrics")]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("strait_mempool_mbufs{state=\"in_use\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

#[test]
fn slow_reader_memory_stays_within_the_buffer_limits() {
    if !require_root("slow_reader_memory_stays_within_the_buffer_limits") {
        return;
    }
    let mut s = setup(
        Net { front: "198.18.78", back: "198.18.79", backend_port: 8080 },
        &Options { metrics: Some(METRICS), big_bytes: BYTES, ..Options::default() },
    );
    let tcp = dataplane::tcp::TcpConfig::default();
    let limit = 2 * (u64::from(tcp.sndbuf) + u64::from(tcp.rcvbuf));
    let want = must("sha256sum", &[&s.nginx[0].big_path().to_string_lossy()]);
    let want = want.split_whitespace().next().unwrap_or_default().to_string();

    // The idle baseline: RX rings filled, nothing in flight.
    let baseline = (0..4)
        .filter_map(|_| {
            sleep(Duration::from_millis(150));
            mbufs_in_use(&s.client)
        })
        .min()
        .expect("metrics endpoint answers");

    let front = format!("{}.2", s.net.front);
    let client = s.client.spawn("python3", &["-c", SLOW_CLIENT, &front, "shm/big.bin", &RATE.to_string()]);
    let mut client = Killed(client);
    let started = Instant::now();
    let mut samples = Vec::new();
    while let Ok(None) = client.0.try_wait() {
        assert!(started.elapsed() < Duration::from_secs(90), "slow reader did not finish:\n{}", s.stall_evidence());
        if let Some(v) = mbufs_in_use(&s.client) {
            samples.push(v.saturating_sub(baseline));
        }
        sleep(Duration::from_millis(250));
    }
    let mut out = String::new();
    if let Some(mut stdout) = client.0.stdout.take() {
        std::io::Read::read_to_string(&mut stdout, &mut out).expect("client stdout");
    }
    let elapsed = started.elapsed();
    assert!(out.contains(&format!("status=200 body={BYTES} sha256={want}")), "response incomplete or altered: {out}\n{}", s.diagnostics());

    let peak = samples.iter().copied().max().unwrap_or(0);
    let mid: Vec<u64> = samples.iter().copied().skip(samples.len() / 4).take(samples.len() / 2).collect();
    eprintln!(
        "slow reader: {BYTES} B in {elapsed:?}; mbufs over baseline {baseline}: peak {peak} ({} B), {} samples, \
         mid-transfer {:?}..{:?}; limit {limit} B",
        peak * MBUF_DATA_BYTES,
        samples.len(),
        mid.iter().min(),
        mid.iter().max()
    );
    // The client really was slow, and strait did hold data for it (the test measures
    // something): the backend could have sent everything in well under a second.
    assert!(elapsed >= Duration::from_secs(15), "the client read too fast for the test: {elapsed:?}");
    assert!(samples.len() >= 20, "too few samples: {samples:?}");
    assert!(peak * MBUF_DATA_BYTES >= 256 * 1024, "no data was ever held in strait: peak {peak} mbufs");
    assert!(
        peak * MBUF_DATA_BYTES <= limit,
        "strait held {peak} mbufs ({} B) for one slow session, above 2 x (sndbuf + rcvbuf) = {limit} B; samples {samples:?}",
        peak * MBUF_DATA_BYTES
    );
    let line = s.stop();
    assert_eq!(counter(&line, "proxy_listener_total"), Some(1), "{line}");
    assert!(counter(&line, "proxy_listener_write_stalls").unwrap_or(0) > 0, "no back-pressure recorded: {line}");
}
