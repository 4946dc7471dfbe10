//! End to end: the proxy (set-up in `common::backend`: strait between kernel clients on a
//! `net_tap` port and nginx behind a `net_af_packet` port).
//!
//! Tests: wrk with keep-alive and with `Connection: close` (no socket error, every
//! response 2xx), and a client that half-closes after its request and still receives the
//! whole response.

mod common;

use std::process::{Command, Stdio};

use common::backend::{counter, setup, Net, Options, Setup, MEDIUM_BYTES};
use common::{require_root, Killed};

/// Runs wrk from the client side; asserts no socket error and no non-2xx response, and
/// returns the number of requests.
fn wrk(s: &Setup, extra: &[&str]) -> u64 {
    let url = s.net.url("index.html");
    let mut args = vec!["-t1", "-c10", "-d3s", "--latency"];
    args.extend_from_slice(extra);
    args.push(&url);
    let out = s.client.exec("wrk", &args);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text} {}\n{}", String::from_utf8_lossy(&out.stderr), s.diagnostics());
    eprintln!("{text}");
    assert!(!text.contains("Socket errors"), "wrk saw socket errors:\n{text}\n{}", s.diagnostics());
    assert!(!text.contains("Non-2xx"), "wrk saw non-2xx responses:\n{text}\n{}", s.diagnostics());
    let requests = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(requests >= 100, "only {requests} requests in 3 s:\n{text}\n{}", s.diagnostics());
    requests
}

#[test]
fn wrk_keep_alive_through_the_proxy() {
    if !require_root("wrk_keep_alive_through_the_proxy") {
        return;
    }
    let mut s = setup(Net { front: "198.18.70", back: "198.18.71", backend_port: 8080 }, &Options::default());
    let requests = wrk(&s, &[]);
    let line = s.stop();
    let total = counter(&line, "proxy_listener_total").unwrap_or(0);
    assert!((10..=20).contains(&total), "keep-alive: about 10 sessions expected, got {total} for {requests} requests: {line}");
    assert_eq!(counter(&line, "proxy_listener_active"), None, "sessions left open: {line}");
}

#[test]
fn wrk_connection_close_through_the_proxy() {
    if !require_root("wrk_connection_close_through_the_proxy") {
        return;
    }
    let mut s = setup(Net { front: "198.18.72", back: "198.18.73", backend_port: 8080 }, &Options::default());
    let requests = wrk(&s, &["-H", "Connection: close"]);
    let line = s.stop();
    let total = counter(&line, "proxy_listener_total").unwrap_or(0);
    assert!(total >= requests, "one session per request: {total} sessions for {requests} requests: {line}");
    // wrk drops its 10 connections with requests in flight when the 3 s are up (those
    // resets are propagated and counted); no other session may end in a reset.
    let resets = counter(&line, "proxy_listener_resets").unwrap_or(0);
    assert!(resets <= 10, "{resets} sessions were reset: {line}");
}


/// A backend that honours half-close (nginx treats a client's EOF during a response as an
/// abort): reads each request to EOF — which only comes if strait forwarded the client's
/// FIN — then sends a response of `size` bytes and closes.
const HALF_CLOSE_SERVER: &str = r#"
import socket, sys
addr, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((addr, port))
srv.listen(16)
for _ in range(n):
    c, _ = srv.accept()
    req = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        req += d
    body = bytes(i % 251 for i in range(size))
    c.sendall(b"HTTP/1.0 200 OK\r\nX-Request-Bytes: %d\r\nContent-Length: %d\r\n\r\n" % (len(req), size) + body)
    c.close()
"#;

/// Sends a request, shuts down its write side, reads the response to EOF.
const HALF_CLOSE: &str = r#"
import socket, sys
addr, path = sys.argv[1], sys.argv[2]
s = socket.create_connection((addr, 80), timeout=30)
req = ("GET /%s HTTP/1.0\r\nHost: x\r\n\r\n" % path).encode()
s.sendall(req)
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    d = s.recv(1 << 16)
    if not d:
        break
    data += d
head, _, body = data.partition(b"\r\n\r\n")
ok = body == bytes(i % 251 for i in range(len(body)))
print("status=%s body=%d intact=%s request=%d %s" % (head.split(b" ")[1].decode() if head else "none", len(body), ok, len(req), head.decode(errors="replace").replace("\r\n", " | ")))
"#;

#[test]
fn half_closed_client_still_receives_the_whole_response() {
    if !require_root("half_closed_client_still_receives_the_whole_response") {
        return;
    }
    let mut s = setup(Net { front: "198.18.74", back: "198.18.75", backend_port: 8081 }, &Options::default());
    let back = format!("{}.1", s.net.back);
    let server = Command::new("ip")
        .args(["netns", "exec", &s.backend.name, "python3", "-c", HALF_CLOSE_SERVER, &back, "8081", "3"])
        .arg(MEDIUM_BYTES.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn backend");
    let _server = Killed(server);
    s.wait_backend_listening(&back, 8081);
    let addr = format!("{}.2", s.net.front);
    for _ in 0..3 {
        let out = s.client.exec("python3", &["-c", HALF_CLOSE, &addr, "medium.bin"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "client failed: {text} {}\n{}", String::from_utf8_lossy(&out.stderr), s.diagnostics());
        assert!(text.contains(&format!("status=200 body={MEDIUM_BYTES} intact=True")), "incomplete response: {text}\n{}", s.diagnostics());
        // The backend read the whole request up to the client's FIN, forwarded by strait.
        let request = text.split_whitespace().find_map(|w| w.strip_prefix("request=")).unwrap_or_default();
        assert!(text.contains(&format!("X-Request-Bytes: {request}")), "the backend saw a different request: {text}");
    }
    let line = s.stop();
    assert_eq!(counter(&line, "proxy_listener_total"), Some(3), "{line}");
    assert_eq!(counter(&line, "proxy_listener_resets"), None, "sessions were reset: {line}");
}

/// The link of each port is watched (issue 16): taking the tap's kernel end down shows as
/// `strait_port_link_up{port="front"} 0` and a "link down" warning, bringing it back as 1,
/// and both transitions are counted.
#[test]
fn link_state_is_logged_and_exported() {
    if !require_root("link_state_is_logged_and_exported") {
        return;
    }
    const METRICS: &str = "127.0.0.1:9100";
    let mut s = setup(Net { front: "198.18.142", back: "198.18.143", backend_port: 8080 }, &Options { metrics: Some(METRICS), ..Options::default() });
    let sample = |s: &Setup, name: &str| -> Option<f64> {
        let out = s.client.exec("curl", &["-sS", "--max-time", "2", &format!("http://{METRICS}/metrics")]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok()))
    };
    let wait = |s: &Setup, name: &str, want: f64| {
        let start = std::time::Instant::now();
        while sample(s, name) != Some(want) {
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "{name} never became {want}: {:?}", sample(s, name));
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    wait(&s, "strait_port_link_up{port=\"front\"}", 1.0);
    s.client.ip(&["link", "set", &s.tap, "down"]);
    wait(&s, "strait_port_link_up{port=\"front\"}", 0.0);
    s.strait.wait_for_log(&["link down", "front"], std::time::Duration::from_secs(5));
    s.client.ip(&["link", "set", &s.tap, "up"]);
    wait(&s, "strait_port_link_up{port=\"front\"}", 1.0);
    assert_eq!(sample(&s, "strait_port_link_changes_total{port=\"front\"}"), Some(2.0));
    assert_eq!(sample(&s, "strait_port_link_up{port=\"back\"}"), Some(1.0));
    assert!(s.strait.terminate(std::time::Duration::from_secs(30)).success(), "{}", s.diagnostics());
}
