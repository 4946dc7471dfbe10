//! End to end, the proxy over IPv6 (issue 18): nginx listens on an IPv6 address only, in a
//! backend namespace behind strait's `net_af_packet` port; kernel clients reach strait's
//! listeners on the tap port over IPv6 and over IPv4 (a v4 client to a v6 server), and
//! every response comes back whole. wrk over IPv6 keeps its connections alive without an
//! error. PROXY protocol v2 carries v6 and v4 clients' addresses to an nginx that reads it.

mod common;

use std::time::Duration;

use common::backend::Nginx;
use common::{ping6, require_root, unique, Netns, Strait};

fn config(tap: &str, veth: &str, proxy_protocol: bool) -> String {
    let pp = if proxy_protocol { "proxy_protocol = \"v2\"\n" } else { "" };
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
{pp}"#
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
    backend.ip(&["-6", "addr", "add", "fd00:18:171::1/64", "dev", &vb, "nodad"]);
    backend.ip(&["link", "set", &vb, "up"]);
    (ns, backend, tap, va)
}

/// Strait started, the clients' side of the tap addressed, both sides answering ping -6.
fn start(ns: &Netns, backend: &Netns, tap: &str, va: &str, proxy_protocol: bool) -> Strait {
    let mut strait = Strait::start(ns, &config(tap, va, proxy_protocol));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    ns.ip(&["addr", "add", "198.18.170.1/24", "dev", tap]);
    ns.ip(&["-6", "addr", "add", "fd00:18:170::1/64", "dev", tap, "nodad"]);
    ns.ip(&["link", "set", tap, "up"]);
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
    let mut strait = start(&ns, &backend, &tap, &va, false);

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
    let mut strait = start(&ns, &backend, &tap, &va, true);
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
