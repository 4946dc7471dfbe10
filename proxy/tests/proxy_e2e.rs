//! End to end: the proxy. One strait process with two ports — a `net_tap` port towards
//! kernel clients in strait's namespace, and a `net_af_packet` port over a veth pair
//! towards a backend namespace where nginx (Debian's nginx-light, own temporary config,
//! pid, log and document root, `daemon off`) serves files. Clients connect to strait's
//! listener; strait connects to nginx from its backend port and splices the two.
//!
//! Tests: wrk with keep-alive and with `Connection: close` (no socket error, every
//! response 2xx), and a client that half-closes
//! after its request and still receives the whole response. nginx, the namespaces and
//! strait are cleaned up by guards, also when a test fails.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{must, ping_until_reply, require_root, unique, Netns, Strait};

/// Size of the small page wrk fetches.
const INDEX_BYTES: usize = 4096;
/// Size of the half-close test's response body.
const MEDIUM_BYTES: usize = 1 << 20;
/// Size of the large download.
const BIG_BYTES: u64 = 100 * 1000 * 1000;

/// Addresses of one test: client side `front.{1,2}`, backend side `back.{1,2}` (x.1 is
/// the kernel peer, x.2 is strait).
struct Net {
    front: &'static str,
    back: &'static str,
    /// The backend server's TCP port (nginx: 8080).
    backend_port: u16,
}

fn config(n: &Net, tap: &str, veth: &str) -> String {
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

[[port]]
name = "front"
device = "net_tap0,iface={tap}"
ipv4 = "{front}.2/24"
mtu = 1500

[[port]]
name = "back"
device = "net_af_packet0,iface={veth}"
ipv4 = "{back}.2/24"
mtu = 1500

[[listener]]
name = "web"
listen = "{front}.2:80"
pool = "web"
max_connections = 10000
connect_timeout_ms = 3000
idle_timeout_ms = 60000

[[pool]]
name = "web"
algorithm = "round_robin"
servers = [{{ addr = "{back}.1:{port}", weight = 1 }}]
"#,
        front = n.front,
        back = n.back,
        port = n.backend_port,
    )
}

/// nginx in the backend namespace with its own files; killed (and its files removed) on
/// drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    fn start(ns: &Netns, listen: &str, big: bool) -> Nginx {
        let dir = std::env::temp_dir().join(unique("strait-nginx-"));
        let www = dir.join("www");
        fs::create_dir_all(&www).expect("nginx dirs");
        fs::write(www.join("index.html"), pattern(INDEX_BYTES)).expect("index");
        fs::write(www.join("medium.bin"), pattern(MEDIUM_BYTES)).expect("medium");
        if big {
            let out = must(
                "sh",
                &["-c", &format!("head -c {BIG_BYTES} /dev/urandom > {}/big.bin && echo ok", www.display())],
            );
            assert!(out.contains("ok"));
        }
        let d = dir.display();
        let conf = format!(
            r#"
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    server {{
        listen {listen} reuseport;
        root {d}/www;
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("nginx.conf");
        let log = fs::File::create(dir.join("stderr.log")).expect("nginx stderr");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "nginx", "-p"])
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nginx");
        let mut n = Nginx { child, dir };
        // Ready once it listens.
        let start = Instant::now();
        loop {
            let ss = ns.exec("ss", &["-ltn"]);
            if String::from_utf8_lossy(&ss.stdout).contains(listen) {
                break;
            }
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!("nginx exited ({status}): {}", n.logs());
            }
            assert!(start.elapsed() < Duration::from_secs(10), "nginx does not listen on {listen}: {}", n.logs());
            sleep(Duration::from_millis(50));
        }
        n
    }

    fn logs(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Strait (client side in its namespace, on the tap), nginx behind a veth in a backend
/// namespace.
struct Setup {
    // Field order is drop order: strait and nginx before their namespaces.
    strait: Strait,
    nginx: Nginx,
    client: Netns,
    backend: Netns,
    net: Net,
}

fn setup(net: Net, big: bool) -> Setup {
    let client = Netns::new("spxa");
    let backend = Netns::new("spxb");
    let (va, vb, tap) = (unique("spa"), unique("spb"), unique("spt"));
    client.ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", &backend.name]);
    client.ip(&["link", "set", &va, "up"]);
    // af_packet hands strait what the veth carries: the kernel must put finished frames
    // on it (no GSO super-frames, no deferred checksums).
    for (ns, dev) in [(&client, &va), (&backend, &vb)] {
        let o = ns.exec("ethtool", &["-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]);
        assert!(o.status.success(), "ethtool: {}", String::from_utf8_lossy(&o.stderr));
    }
    backend.ip(&["addr", "add", &format!("{}.1/24", net.back), "dev", &vb]);
    backend.ip(&["link", "set", &vb, "up"]);
    let nginx = Nginx::start(&backend, &format!("{}.1:8080", net.back), big);
    let mut strait = Strait::start(&client, &config(&net, &tap, &va));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    strait.wait_for_log(&["proxy listening"], Duration::from_secs(1));
    client.ip(&["addr", "add", &format!("{}.1/24", net.front), "dev", &tap]);
    client.ip(&["link", "set", &tap, "up"]);
    assert!(
        ping_until_reply(&client, &format!("{}.2", net.front), Duration::from_secs(20)),
        "no ping reply on the client side:\n{}",
        strait.log_text()
    );
    assert!(
        ping_until_reply(&backend, &format!("{}.2", net.back), Duration::from_secs(20)),
        "no ping reply on the backend side:\n{}",
        strait.log_text()
    );
    Setup { strait, nginx, client, backend, net }
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("http://{}.2:80/{path}", self.net.front)
    }

    fn diagnostics(&self) -> String {
        format!("strait log:\n{}\nnginx log:\n{}", self.strait.log_text(), self.nginx.logs())
    }

    /// Stops strait: clean exit, no connection left in the engine, the final proxy
    /// counters logged; returns that line.
    fn stop(&mut self) -> String {
        // Let the last FIN/ACK exchanges finish.
        sleep(Duration::from_millis(500));
        let status = self.strait.terminate(Duration::from_secs(30));
        let log = self.strait.log_text();
        assert!(status.success(), "strait exited with {status}:\n{log}");
        assert!(log.contains("strait stopped"), "no clean shutdown:\n{log}");
        let tcp = log.lines().find(|l| l.contains("final tcp counters")).unwrap_or_default().to_string();
        assert!(tcp.contains("\"connections\":0"), "connections left at shutdown: {tcp}\n{log}");
        let proxy = log.lines().find(|l| l.contains("final proxy counters")).unwrap_or_default().to_string();
        assert!(proxy.contains("proxy_listener_total{web}="), "no proxy counters: {log}");
        eprintln!("{proxy}");
        proxy
    }
}

/// Runs wrk from the client side; asserts no socket error and no non-2xx response, and
/// returns the number of requests.
fn wrk(s: &Setup, extra: &[&str]) -> u64 {
    let url = s.url("index.html");
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

/// The `proxy_listener_<counter>{web}` value in the final counters line.
fn counter(line: &str, name: &str) -> Option<u64> {
    let pat = format!("{name}{{web}}=");
    let rest = line.split(&pat).nth(1)?;
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

#[test]
fn wrk_keep_alive_through_the_proxy() {
    if !require_root("wrk_keep_alive_through_the_proxy") {
        return;
    }
    let mut s = setup(Net { front: "198.18.60", back: "198.18.61", backend_port: 8080 }, false);
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
    let mut s = setup(Net { front: "198.18.62", back: "198.18.63", backend_port: 8080 }, false);
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

/// A child process killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn half_closed_client_still_receives_the_whole_response() {
    if !require_root("half_closed_client_still_receives_the_whole_response") {
        return;
    }
    let mut s = setup(Net { front: "198.18.66", back: "198.18.67", backend_port: 8081 }, false);
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
    let start = Instant::now();
    while !String::from_utf8_lossy(&s.backend.exec("ss", &["-ltn"]).stdout).contains(&format!("{back}:8081")) {
        assert!(start.elapsed() < Duration::from_secs(10), "the backend does not listen");
        sleep(Duration::from_millis(50));
    }
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
