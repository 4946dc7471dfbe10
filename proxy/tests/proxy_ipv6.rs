//! End to end, the proxy over IPv6 (issue 18): nginx listens on an IPv6 address only, in a
//! backend namespace behind strait's `net_af_packet` port; kernel clients reach strait's
//! listeners on the tap port over IPv6 and over IPv4 (a v4 client to a v6 server), and
//! every response comes back whole. wrk over IPv6 keeps its connections alive without an
//! error. PROXY protocol v2 carries v6 and v4 clients' addresses to an nginx that reads it.
//! Health checks reach the v6 server, see it go when nginx dies and come back when it returns.

mod common;

use std::time::Duration;

use common::backend::Nginx;
use common::{ping6, require_root, unique, Netns, Strait, ONE_LCORE};

/// The proxy's configuration; `pool_extra` goes at the end of the pool's table (its
/// sub-tables and any later top-level table).
fn config(tap: &str, veth: &str, proxy_protocol: bool, pool_extra: &str) -> String {
    let pp = if proxy_protocol { "proxy_protocol = \"v2\"\n" } else { "" };
    format!(
        r#"
{ONE_LCORE}
[[port]]
name = "front"
device = "net_tap0,iface={tap}"
ipv4 = "198.18.170.2/24"
ipv6 = "fd00:18:170::2/64"

[[port]]
name = "back"
device = "net_af_packet0,iface={veth}"
ipv4 = "198.18.171.2/24"
ipv6 = "fd00:18:171::2/64"

[[listener]]
name = "web6"
listen = "[fd00:18:170::2]:80"
pool = "web"

[[listener]]
name = "web4"
listen = "198.18.170.2:80"
pool = "web"

[[pool]]
name = "web"
servers = [{{ addr = "[fd00:18:171::1]:8080" }}]
{pp}{pool_extra}"#
    )
}

/// The namespaces (strait's with the clients, the backend's), the tap's name, and a veth
/// into the backend namespace with fd00:18:171::1 on its far end.
fn namespaces(tag: &str) -> (Netns, Netns, String, String) {
    let ns = Netns::new(&format!("{tag}s"));
    let backend = Netns::new(&format!("{tag}b"));
    let tap = unique(&format!("{tag}t"));
    let (va, vb) = (unique(&format!("{tag}a")), unique(&format!("{tag}v")));
    ns.ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", &backend.name]);
    ns.exec("sysctl", &["-w", &format!("net.ipv6.conf.{va}.disable_ipv6=1")]);
    ns.ip(&["link", "set", &va, "up"]);
    let o = backend.exec("ethtool", &["-K", &vb, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]);
    assert!(o.status.success(), "ethtool: {}", String::from_utf8_lossy(&o.stderr));
    backend.up_v6(&vb, "fd00:18:171::1/64");
    (ns, backend, tap, va)
}

/// Strait started, the clients' side of the tap addressed, both sides answering ping -6.
fn start(ns: &Netns, backend: &Netns, tap: &str, va: &str, proxy_protocol: bool, pool_extra: &str) -> Strait {
    let mut strait = Strait::start(ns, &config(tap, va, proxy_protocol, pool_extra));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    ns.ip(&["addr", "add", "198.18.170.1/24", "dev", tap]);
    ns.up_v6(tap, "fd00:18:170::1/64");
    assert!(ping6(ns, "fd00:18:170::2"), "no ping -6 reply (front):\n{}", strait.log_text());
    assert!(ping6(backend, "fd00:18:171::2"), "no ping -6 reply (back):\n{}", strait.log_text());
    strait
}

/// `curl` of `url` from `ns`: (HTTP status, body bytes).
fn curl(ns: &Netns, url: &str) -> (String, u64) {
    let out = ns.exec("curl", &["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code} %{size_download}", url]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut f = text.split_whitespace();
    (f.next().unwrap_or_default().to_string(), f.next().and_then(|n| n.parse().ok()).unwrap_or(0))
}

#[test]
fn proxy_serves_a_v6_backend_to_v6_and_v4_clients() {
    if !require_root("proxy_serves_a_v6_backend_to_v6_and_v4_clients") {
        return;
    }
    let (ns, backend, tap, va) = namespaces("sp6");
    let nginx = Nginx::start(&backend, "[fd00:18:171::1]:8080", 0);
    let mut strait = start(&ns, &backend, &tap, &va, false, "");

    let direct = curl(&backend, "http://[fd00:18:171::1]:8080/index.html");
    assert_eq!(direct.0, "200", "nginx itself: {direct:?} {}", nginx.logs());
    for url in ["http://[fd00:18:170::2]:80/index.html", "http://198.18.170.2:80/index.html"] {
        for _ in 0..20 {
            let got = curl(&ns, url);
            assert_eq!(got, direct, "{url} through the proxy:\n{}", strait.log_text());
        }
    }
    let out = ns.exec("wrk", &["-t1", "-c10", "-d2s", "http://[fd00:18:170::2]:80/index.html"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "wrk failed: {text}");
    assert!(!text.contains("Socket errors") && !text.contains("Non-2xx"), "wrk over IPv6:\n{text}\n{}", strait.log_text());
    eprintln!("{text}");

    let status = strait.terminate(Duration::from_secs(30));
    let log = strait.log_text();
    assert!(status.success(), "strait exited with {status}:\n{log}");
    assert!(log.contains("strait stopped"), "no clean shutdown:\n{log}");
}

/// PROXY protocol v2 over IPv6, read by nginx (`listen ... proxy_protocol`, logging
/// `$proxy_protocol_addr $remote_addr`): the client's own address arrives, IPv6 for the
/// v6 client (AF_INET6) and IPv4 for the v4 one (AF_INET), on a connection from strait's
/// IPv6 backend address.
#[test]
fn proxy_protocol_v2_carries_v6_and_v4_clients_to_a_v6_nginx() {
    if !require_root("proxy_protocol_v2_carries_v6_and_v4_clients_to_a_v6_nginx") {
        return;
    }
    let (ns, backend, tap, va) = namespaces("spp");
    let nginx = Nginx::start_proxy_protocol(&backend, "[fd00:18:171::1]:8080");
    let mut strait = start(&ns, &backend, &tap, &va, true, "");
    for url in ["http://[fd00:18:170::2]:80/index.html", "http://198.18.170.2:80/index.html"] {
        let got = curl(&ns, url);
        assert_eq!(got.0, "200", "{url}: {got:?}\n{}\n{}", nginx.logs(), strait.log_text());
    }
    let log = nginx.access_log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines, vec!["fd00:18:170::1 fd00:18:171::2", "198.18.170.1 fd00:18:171::2"], "nginx's access log:\n{log}");
    let status = strait.terminate(Duration::from_secs(30));
    assert!(status.success(), "strait exited with {status}:\n{}", strait.log_text());
}

/// `strait ctl --socket SOCK show`: the `health=` of the v6 server.
fn v6_server_health(sock: &str) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["ctl", "--socket", sock, "show"])
        .output()
        .expect("strait ctl");
    let show = String::from_utf8_lossy(&o.stdout).into_owned();
    let line = show.lines().find(|l| l.contains("server=[fd00:18:171::1]:8080 ")).unwrap_or_default();
    line.split(" health=").nth(1).and_then(|v| v.split_whitespace().next()).unwrap_or("?").to_string()
}

fn wait_v6_health(sock: &str, want: &str, strait: &Strait) {
    let start = std::time::Instant::now();
    while v6_server_health(sock) != want {
        assert!(start.elapsed() < Duration::from_secs(10), "the v6 server is not {want}:\n{}", strait.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn health_checks_follow_a_v6_server_down_and_up() {
    if !require_root("health_checks_follow_a_v6_server_down_and_up") {
        return;
    }
    let (ns, backend, tap, va) = namespaces("sh6");
    let mut nginx = Nginx::start(&backend, "[fd00:18:171::1]:8080", 0);
    let sock = std::env::temp_dir().join(unique("strait-admin6-")).with_extension("sock").display().to_string();
    let extra = format!("[pool.health_check]\ninterval_ms = 300\ntimeout_ms = 200\nfall = 2\nrise = 2\n\n[admin]\nsocket = \"{sock}\"\n");
    let mut strait = start(&ns, &backend, &tap, &va, false, &extra);
    wait_v6_health(&sock, "up", &strait);
    assert_eq!(curl(&ns, "http://[fd00:18:170::2]:80/index.html").0, "200");
    nginx.kill_in(&backend);
    wait_v6_health(&sock, "down", &strait);
    let nginx = Nginx::start(&backend, "[fd00:18:171::1]:8080", 0);
    wait_v6_health(&sock, "up", &strait);
    let got = curl(&ns, "http://[fd00:18:170::2]:80/index.html");
    assert_eq!(got.0, "200", "after the server came back: {got:?}\n{}\n{}", nginx.logs(), strait.log_text());
    let status = strait.terminate(Duration::from_secs(30));
    assert!(status.success(), "strait exited with {status}:\n{}", strait.log_text());
}
