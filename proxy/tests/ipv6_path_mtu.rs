//! End to end, path MTU over IPv6 (issue 18): a kernel client sits behind a kernel router
//! whose link towards the client carries 1280 bytes at most (IPv6's minimum), and strait's
//! echo service is on the other side (the router's tap), reached through its configured
//! `ipv6_gateway`. The client announces MSS 1440 (`advmss`), so strait sends 1500-byte
//! packets that the router cannot forward: IPv6 routers never fragment, the router answers
//! with ICMPv6 "packet too big" (MTU 1280, RFC 8201), strait's network layer hands it to
//! the engine, which finds the connection by the quoted tuple, checks the quoted sequence
//! number and lowers the MSS to 1220 (Linux `tcp_v6_err` / `tcp_v6_mtu_reduced`). 16 MB go
//! to the echo service and come back intact, with strait's TSO on and off.

mod common;

use std::time::{Duration, Instant};

use common::{must, ping6, require_root, unique, Netns, ONE_LCORE, Strait};

const BYTES: u64 = 16 * 1000 * 1000;
const STRAIT_IP: &str = "fd00:18:152::2";
const ROUTER_TAP_IP: &str = "fd00:18:152::1";
const CLIENT_IP: &str = "fd00:18:153::2";
const ROUTER_VETH_IP: &str = "fd00:18:153::1";

fn config(device: &str, tso: bool) -> String {
    format!(
        r#"
{ONE_LCORE}
[[port]]
name = "p0"
device = "{device}"
ipv4 = "198.18.152.2/24"
ipv6 = "{STRAIT_IP}/64"
ipv6_gateway = "{ROUTER_TAP_IP}"
mtu = 1500
[port.offloads]
tso = {tso}

[[app]]
kind = "echo"
listen = "[{STRAIT_IP}]:7"
"#
    )
}

/// `name=value` from the first log line carrying `message` (the counters list).
fn logged_counter(log: &str, message: &str, name: &str) -> u64 {
    let Some(line) = log.lines().find(|l| l.contains(message)) else { return 0 };
    let pat = format!(" {name}=");
    let padded = line.replace('"', " ");
    let Some(rest) = padded.split(&pat).nth(1) else { return 0 };
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)
}

fn sysctl(ns: &Netns, setting: &str) {
    must("ip", &["netns", "exec", &ns.name, "sysctl", "-q", "-w", setting]);
}

fn echo_behind_the_router(tag: &str, tso: bool) {
    let router = Netns::new(&format!("{tag}r"));
    let client = Netns::new(&format!("{tag}c"));
    let tap = unique(tag);
    let mut strait = Strait::start(&router, &config(&format!("net_tap0,iface={tap}"), tso));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    sysctl(&router, "net.ipv6.conf.all.forwarding=1");
    router.up_v6(&tap, &format!("{ROUTER_TAP_IP}/64"));
    let (vr, vc) = (unique(&format!("{tag}v")), unique(&format!("{tag}w")));
    router.ip(&["link", "add", &vr, "type", "veth", "peer", "name", &vc, "netns", &client.name]);
    router.ip(&["link", "set", &vr, "mtu", "1280"]);
    client.ip(&["link", "set", &vc, "mtu", "1280"]);
    router.up_v6(&vr, &format!("{ROUTER_VETH_IP}/64"));
    client.up_v6(&vc, &format!("{CLIENT_IP}/64"));
    // The client announces MSS 1440 although its own link is 1280: the bottleneck is
    // somewhere on the path, as for a host behind a tunnel.
    client.ip(&["-6", "route", "add", "fd00:18:152::/64", "via", ROUTER_VETH_IP, "advmss", "1440"]);
    assert!(ping6(&router, STRAIT_IP), "no ping -6 reply from the router's side:\n{}", strait.log_text());
    assert!(ping6(&client, STRAIT_IP), "no ping -6 reply through the router:\n{}", strait.log_text());

    let started = Instant::now();
    let out = client.exec("python3", &["-c", common::ECHO_CLIENT, STRAIT_IP, "7", &BYTES.to_string()]);
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "client failed: {text} {}\n{}", String::from_utf8_lossy(&out.stderr), strait.log_text());
    let field = |k: &str| text.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap_or_default().to_string();
    assert_eq!(field("got="), BYTES.to_string(), "echo returned a different amount: {text}\n{}", strait.log_text());
    assert_eq!(field("sha_sent="), field("sha_got="), "echoed bytes differ: {text}");
    assert_eq!(client.tcp_in_csum_errors(), Some(0), "the client received frames with bad TCP checksums");

    let status = strait.terminate(Duration::from_secs(30));
    let log = strait.log_text();
    assert!(status.success(), "strait exited with {status}:\n{log}");
    let ptb = logged_counter(&log, "final counters", "rx_icmpv6_packet_too_big");
    let reductions = logged_counter(&log, "final tcp counters", "TCPPMTUReductions");
    let retrans = logged_counter(&log, "final tcp counters", "RetransSegs");
    eprintln!("{tag} (tso {tso}): 16 MB echo in {elapsed:?}; rx_icmpv6_packet_too_big {ptb} TCPPMTUReductions {reductions} RetransSegs {retrans}");
    assert!(ptb > 0, "no packet too big reached the TCP layer:\n{log}");
    assert!(reductions > 0, "the path MTU was never lowered from ICMPv6:\n{log}");
    assert_eq!(logged_counter(&log, "final tcp counters", "TCPMTUPBlackHole"), 0, "ICMPv6 works here:\n{log}");
    // What was in flight when the first "too big" came back is resent at the new size,
    // nothing after it is too large.
    assert!(retrans < 100, "{retrans} retransmissions for one MTU drop:\n{log}");
}

#[test]
fn packet_too_big_with_tso() {
    if require_root("packet_too_big_with_tso") {
        echo_behind_the_router("s6pt", true);
    }
}

#[test]
fn packet_too_big_without_tso() {
    if require_root("packet_too_big_without_tso") {
        echo_behind_the_router("s6pn", false);
    }
}
