//! Many connections at once (issue 19): 10 000 kernel clients connect to the proxy at the
//! same moment (a burst of 10 000 SYNs), each sends one keep-alive request once all are
//! connected, and keeps its connection open until every client has its response; nginx
//! behind strait (default listen backlog, 511) sees the matching burst of 10 000 active
//! opens. Asserts every connection and every response succeeded, that strait held all
//! 10 000 sessions (20 000 TCP connections) at once, and that connections and mbufs return
//! to their start values after the clients close. Not timed: it checks behaviour, the
//! benchmark (`deploy/bench/run.sh`, workloads `concN`) measures cost.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::backend::{setup, Net, Options, INDEX_BYTES};
use common::{require_root, Killed, Netns};

/// Where strait's metrics endpoint listens in its namespace.
const METRICS: &str = "127.0.0.1:9100";
/// Concurrent clients.
const CLIENTS: usize = 10_000;

/// `addr port n path body_len`: opens n non-blocking connections at once, waits until all
/// are connected, sends one HTTP/1.1 request on each, reads every response (status 200,
/// Content-Length body_len, the whole body), prints `ok=N`, waits for a line on stdin with
/// every connection still open, then closes them all and prints `closed`.
const CLIENT: &str = r#"
import errno, resource, selectors, socket, sys, time
addr, port, n, path, body_len = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 256, n + 256))
sel = selectors.EpollSelector()
start = time.monotonic()
deadline = start + 180
socks = []
for i in range(n):
    s = socket.socket()
    s.setblocking(False)
    e = s.connect_ex((addr, port))
    if e not in (0, errno.EINPROGRESS):
        print("FAIL connect %d: %s" % (i, errno.errorcode.get(e, e)), flush=True)
        sys.exit(1)
    socks.append(s)
    sel.register(s, selectors.EVENT_WRITE, i)
connected = 0
while connected < n and time.monotonic() < deadline:
    for key, _ in sel.select(timeout=1):
        s = socks[key.data]
        e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if e:
            print("FAIL connection %d: %s after %.1f s" % (key.data, errno.errorcode.get(e, e), time.monotonic() - start), flush=True)
            sys.exit(1)
        sel.unregister(s)
        connected += 1
if connected < n:
    print("FAIL only %d of %d connected in %.0f s" % (connected, n, time.monotonic() - start), flush=True)
    sys.exit(1)
print("connected=%d seconds=%.1f" % (n, time.monotonic() - start), flush=True)
req = ("GET /%s HTTP/1.1\r\nHost: strait\r\n\r\n" % path).encode()
bufs = [b""] * n
for i, s in enumerate(socks):
    if s.send(req) != len(req):
        print("FAIL short send on %d" % i, flush=True)
        sys.exit(1)
    sel.register(s, selectors.EVENT_READ, i)
def complete(b):
    head, sep, body = b.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200"):
        return "status line %r" % lines[0]
    length = [int(l.split(b":")[1]) for l in lines[1:] if l.lower().startswith(b"content-length:")]
    if length != [body_len]:
        return "content-length %r" % length
    if len(body) > body_len:
        return "%d body bytes, more than %d" % (len(body), body_len)
    return "ok" if len(body) == body_len else None
done = 0
t1 = time.monotonic()
while done < n and time.monotonic() < deadline:
    for key, _ in sel.select(timeout=1):
        i = key.data
        d = socks[i].recv(65536)
        if not d:
            print("FAIL connection %d closed before its response (%d bytes)" % (i, len(bufs[i])), flush=True)
            sys.exit(1)
        bufs[i] += d
        verdict = complete(bufs[i])
        if verdict is None:
            continue
        if verdict != "ok":
            print("FAIL response %d: %s" % (i, verdict), flush=True)
            sys.exit(1)
        sel.unregister(socks[i])
        done += 1
if done < n:
    print("FAIL only %d of %d responses in time" % (done, n), flush=True)
    sys.exit(1)
print("ok=%d seconds=%.1f" % (done, time.monotonic() - t1), flush=True)
sys.stdin.readline()
for s in socks:
    s.close()
print("closed", flush=True)
"#;

/// A metric's value (summed over label sets) from strait's endpoint.
fn metric(ns: &Netns, prefix: &str) -> Option<u64> {
    let out = ns.exec("curl", &["-sS", "--max-time", "5", &format!("http://{METRICS}/metrics")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let vals: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!vals.is_empty()).then(|| vals.iter().sum::<f64>() as u64)
}

fn in_use(ns: &Netns) -> Option<u64> {
    metric(ns, "strait_mempool_mbufs{state=\"in_use\"}")
}

#[test]
fn ten_thousand_concurrent_clients_through_the_proxy() {
    if !require_root("ten_thousand_concurrent_clients_through_the_proxy") {
        return;
    }
    let net = Net { front: "198.18.140", back: "198.18.141", backend_port: 8080 };
    let mut s = setup(net, &Options { metrics: Some(METRICS), ..Options::default() });
    let mbufs_start = in_use(&s.client).expect("metrics endpoint");
    assert_eq!(metric(&s.client, "strait_tcp_connections"), Some(0));

    let addr = format!("{}.2", net.front);
    let mut child = Command::new("ip")
        .args(["netns", "exec", &s.client.name, "python3", "-c", CLIENT, &addr, "80", &CLIENTS.to_string(), "index.html"])
        .arg(INDEX_BYTES.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let guard = Killed(child);
    let mut line = String::new();
    let mut lines = Vec::new();
    // connected=..., then ok=... (or FAIL ...).
    for _ in 0..2 {
        line.clear();
        out.read_line(&mut line).expect("client output");
        eprintln!("client: {}", line.trim());
        lines.push(line.trim().to_string());
        assert!(line.starts_with("connected=") || line.starts_with("ok="), "client: {line}\n{}", s.stall_evidence());
    }
    assert!(lines[1].starts_with(&format!("ok={CLIENTS} ")), "{lines:?}");

    // Every client still holds its connection: strait has all the sessions at once. The
    // gauges are copies the lcore publishes now and then (and skips while a scrape holds
    // them), so they may lag the last sessions by a moment: wait for them to settle.
    let settle = Instant::now();
    let (mut sessions, mut tcp);
    loop {
        sessions = metric(&s.client, "strait_proxy_listener_connections").unwrap_or(0);
        tcp = metric(&s.client, "strait_tcp_connections").unwrap_or(0);
        if (sessions == CLIENTS as u64 && tcp == 2 * CLIENTS as u64) || settle.elapsed() > Duration::from_secs(10) {
            break;
        }
        sleep(Duration::from_millis(200));
    }
    eprintln!("sessions open: {sessions}, TCP connections: {tcp}, mbufs in use: {:?} (start {mbufs_start})", in_use(&s.client));
    assert_eq!(sessions, CLIENTS as u64, "sessions open at once");
    assert_eq!(tcp, 2 * CLIENTS as u64, "client and backend connections at once");

    writeln!(stdin, "close").expect("tell the client to close");
    line.clear();
    out.read_line(&mut line).expect("client output");
    assert_eq!(line.trim(), "closed");
    drop(guard);

    // The sessions end (the clients' FINs, then the backends'): connections and mbufs
    // return to where they started.
    let start = Instant::now();
    loop {
        let (tcp, mbufs) = (metric(&s.client, "strait_tcp_connections"), in_use(&s.client));
        if tcp == Some(0) && mbufs == Some(mbufs_start) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "60 s after the clients closed: {tcp:?} TCP connections, {mbufs:?} mbufs in use (start {mbufs_start})\n{}",
            s.diagnostics()
        );
        sleep(Duration::from_millis(500));
    }
    let proxy = s.stop();
    eprintln!("{proxy}");
    let log = s.strait.log_text();
    let tcp_line = log.lines().find(|l| l.contains("final tcp counters")).unwrap_or_default();
    eprintln!("{tcp_line}");
}
