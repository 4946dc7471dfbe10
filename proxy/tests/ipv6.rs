//! End to end over IPv6 (issue 18): a kernel peer in a network namespace resolves strait's
//! address by neighbour discovery, pings it (`ping -6`), and a 100 MB echo goes each way
//! over TCP/IPv6 intact (the SHA-256 of what came back equals that of what was sent), on
//! the tap port (checksum offload; its TSO is IPv4-only, so v6 super-segments are cut
//! here) and over a veth with `net_af_packet` (no offloads: frames cut and summed here),
//! and on AF_XDP (linear frames: software GSO). The same port
//! keeps serving IPv4 beside it; two lcores steer v6 flows in software.

mod common;

use std::time::Duration;

use common::{log_counter, log_field, must, ping6, ping_until_reply, require_root, strait_veth, unique, Finished, Netns, Strait, ONE_LCORE};

const BYTES: u64 = 100 * 1000 * 1000;

fn config(device: &str, v4: &str, v6: &str) -> String {
    format!(
        r#"
{ONE_LCORE}
[[port]]
name = "p0"
device = "{device}"
ipv4 = "{v4}"
ipv6 = "{v6}"
mtu = 1500

[[app]]
kind = "echo"
listen = "[::]:7"

[[app]]
kind = "echo"
listen = "0.0.0.0:7"
"#
    )
}

/// Runs the echo client from `peer` against `addr:7` and checks the digests.
fn echo(peer: &Netns, strait: &Strait, addr: &str, bytes: u64) {
    let out = peer.exec("python3", &["-c", common::ECHO_CLIENT, addr, "7", &bytes.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let errs = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "client failed: {text} {errs}\n{}", strait.log_text());
    let field = |k: &str| text.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap_or_default().to_string();
    assert_eq!(field("sent="), bytes.to_string(), "client did not send everything: {text}");
    assert_eq!(field("got="), bytes.to_string(), "echo returned a different amount: {text}\n{}", strait.log_text());
    assert_eq!(field("sha_sent="), field("sha_got="), "echoed bytes differ: {text}");
    assert!(text.contains("err=[]"), "client saw errors: {text}");
    assert_eq!(peer.tcp_in_csum_errors(), Some(0), "the kernel peer dropped frames with bad TCP checksums");
}

/// The kernel's neighbour entry for strait's address: resolved (a MAC learnt from our
/// advertisement), not FAILED or INCOMPLETE.
fn neighbour_resolved(peer: &Netns, ifname: &str, addr: &str) -> String {
    let out = must("ip", &["-n", &peer.name, "-6", "neigh", "show", addr, "dev", ifname]);
    assert!(out.contains("lladdr"), "the kernel did not resolve {addr} by NDP: {out:?}");
    assert!(!out.contains("FAILED") && !out.contains("INCOMPLETE"), "{out:?}");
    out
}

/// That most of the `bytes` strait echoed went out in frames its software GSO cut from
/// IPv6 super-segments (Linux `tcp6_gso_segment`): half a full frame's worth at least. Read
/// from the lcore's final counters, after [`stop_clean`].
fn sent_by_software_gso(strait: &Strait, bytes: u64) {
    let log = strait.log_text();
    let frames = log_counter(&log, "final lcore counters", "gso_frames").unwrap_or(0);
    assert!(frames > bytes / 1428 / 2, "{frames} frames from software GSO for {bytes} bytes echoed:\n{log}");
}

/// Stops strait: clean exit, no connection left, the pool back where it started.
fn stop_clean(strait: &mut Strait) {
    let status = strait.terminate(Duration::from_secs(30));
    let log = strait.log_text();
    assert!(status.success(), "strait exited with {status}:\n{log}");
    assert_eq!(log_field(&log, "final tcp counters", "connections"), Some(0), "connections left:\n{log}");
    let start = log_field(&log, "mbuf pool usage", "in_use_at_start");
    let end = log_field(&log, "final tcp counters", "pool_in_use");
    assert!(start.is_some() && start == end, "mbufs leaked: {start:?} at start, {end:?} at the end:\n{log}");
}

#[test]
fn ping6_ndp_and_echo_100mb_over_tap() {
    if !require_root("ping6_ndp_and_echo_100mb_over_tap") {
        return;
    }
    let ns = Netns::new("st6t");
    let ifname = unique("s6t");
    let mut strait = Strait::start(&ns, &config(&format!("net_tap0,iface={ifname}"), "198.18.6.2/24", "fd00:18:6::2/64"));
    strait.wait_for_log(&["port up"], Duration::from_secs(30));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(10));
    ns.ip(&["addr", "add", "198.18.6.1/24", "dev", &ifname]);
    ns.up_v6(&ifname, "fd00:18:6::1/64");
    assert!(ping6(&ns, "fd00:18:6::2"), "no ping -6 reply:\n{}", strait.log_text());
    neighbour_resolved(&ns, &ifname, "fd00:18:6::2");
    echo(&ns, &strait, "fd00:18:6::2", BYTES);
    // IPv4 on the same port, beside it.
    assert!(ping_until_reply(&ns, "198.18.6.2", Duration::from_secs(20)), "no IPv4 ping reply:\n{}", strait.log_text());
    echo(&ns, &strait, "198.18.6.2", 1_000_000);
    stop_clean(&mut strait);
    let log = strait.log_text();
    assert!(log.contains(&format!("app_bytes_written={}", BYTES + 1_000_000)), "echo did not write every byte back:\n{log}");
}

#[test]
fn echo_100mb_over_af_packet_v6_without_offloads() {
    if !require_root("echo_100mb_over_af_packet_v6_without_offloads") {
        return;
    }
    let strait_ns = Netns::new("st6a");
    let peer = Netns::new("st6b");
    let (va, vb) = strait_veth(&strait_ns, &peer, "s6a", Finished::Both);
    peer.up_v6(&vb, "fd00:18:7::1/64");
    let mut strait = Strait::start(&strait_ns, &config(&format!("net_af_packet0,iface={va}"), "198.18.7.2/24", "fd00:18:7::2/64"));
    strait.wait_for_log(&["port up"], Duration::from_secs(30));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(10));
    assert!(ping6(&peer, "fd00:18:7::2"), "no ping -6 reply:\n{}", strait.log_text());
    neighbour_resolved(&peer, &vb, "fd00:18:7::2");
    echo(&peer, &strait, "fd00:18:7::2", BYTES);
    stop_clean(&mut strait);
}

/// Two lcores on the tap port without usable RSS: TCP/IPv6 flows are steered in software
/// by the symmetric Toeplitz hash over the v6 4-tuple, mis-steered frames handed to their
/// owner, and each lcore resolves the peer by NDP itself (advertisements shared).
#[test]
fn v6_connections_spread_over_two_lcores_without_rss() {
    if !require_root("v6_connections_spread_over_two_lcores_without_rss") {
        return;
    }
    let ns = Netns::new("st6s");
    let tap = unique("s6s");
    let two = ONE_LCORE.replace("lcores = [0]", "lcores = [0, 1]").replace("mbufs = 32767", "mbufs = 16383");
    let toml = format!(
        "{two}
[[port]]
name = \"p0\"
device = \"net_tap0,iface={tap}\"
ipv4 = \"198.18.8.2/24\"
ipv6 = \"fd00:18:8::2/64\"

[[app]]
kind = \"echo\"
listen = \"[fd00:18:8::2]:7\"
"
    );
    let mut strait = Strait::start(&ns, &toml);
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    ns.up_v6(&tap, "fd00:18:8::1/64");
    assert!(ping6(&ns, "fd00:18:8::2"), "no ping -6 reply:\n{}", strait.log_text());
    let out = ns.exec("python3", &["-c", common::MANY_ECHOES, "fd00:18:8::2", "7", "300", "50"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("ok=300 errors=0"), "not every connection was echoed intact: {text}\n{}", strait.log_text());
    std::thread::sleep(Duration::from_millis(500));
    stop_clean(&mut strait);
    let log = strait.log_text();
    let accepted: Vec<u64> = (0..2).map(|l| common::lcore_counter(&log, "final tcp counters", l, "app_accepted")).collect();
    assert_eq!(accepted.iter().sum::<u64>(), 300, "every connection accepted once: {accepted:?}\n{log}");
    assert!(accepted.iter().all(|&n| n >= 50), "both lcores accepted connections: {accepted:?}");
    let sum = |name: &str| (0..2).map(|l| common::lcore_counter(&log, "final lcore counters", l, name)).sum::<u64>();
    assert_eq!(sum("redirect_dropped_frames"), 0, "hand-offs dropped:\n{log}");
    assert!(sum("redirected_frames") >= 50, "v6 frames were steered to their owners:\n{log}");
}

/// AF_XDP (copy mode on a veth; single-segment frames, so IPv6 super-segments are cut
/// into linear frames by software GSO): NDP, ping -6 and a 100 MB echo over TCP/IPv6.
#[test]
fn echo_100mb_over_af_xdp_v6() {
    if !require_root("echo_100mb_over_af_xdp_v6") {
        return;
    }
    let strait_ns = Netns::new("st6x");
    let peer = Netns::new("st6y");
    // The kernel side transmits finished frames (a veth hands AF_XDP frames with only
    // the pseudo-header sum otherwise, docs/af_xdp.md).
    let (va, vb) = strait_veth(&strait_ns, &peer, "s6x", Finished::Peer);
    peer.up_v6(&vb, "fd00:18:9::1/64");
    let mut strait =
        Strait::start(&strait_ns, &config(&format!("net_af_xdp0,iface={va},queue_count=1"), "198.18.9.2/24", "fd00:18:9::2/64"));
    let up = strait.wait_for_log(&["strait ready"], Duration::from_secs(60));
    assert!(up.contains("strait ready"), "strait did not start:\n{}", strait.log_text());
    assert!(ping6(&peer, "fd00:18:9::2"), "no ping -6 reply:\n{}", strait.log_text());
    neighbour_resolved(&peer, &vb, "fd00:18:9::2");
    echo(&peer, &strait, "fd00:18:9::2", BYTES);
    stop_clean(&mut strait);
    sent_by_software_gso(&strait, BYTES);
}
