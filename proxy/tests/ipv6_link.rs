//! IPv6 on a live link against real peers (issue 18): router discovery (radvd advertises a
//! default route and an on-link prefix, and strait, configured without `ipv6_gateway`,
//! answers a peer beyond that router: ping -6 and a TCP echo through the router it learnt),
//! duplicate address detection (a kernel peer already holding strait's configured address
//! answers strait's probe, so strait logs the conflict and never uses that address while
//! its link-local address keeps working), and MLD (a Linux bridge snooping MLD, flooding
//! no unknown multicast to strait's port, forwards the solicitations for strait's address
//! because strait reported its solicited-node group).

mod common;

use std::fs;
use std::time::Duration;

use common::{log_counter, ping6, require_root, strait_veth, unique, Finished, Killed, Netns, Strait, ONE_LCORE};

fn config(device: &str, v4: &str, v6: &str, mac: &str) -> String {
    format!(
        r#"
{ONE_LCORE}
[[port]]
name = "p0"
device = "{device}"
ipv4 = "{v4}"
ipv6 = "{v6}"
mac = "{mac}"
mtu = 1500

[[app]]
kind = "echo"
listen = "[::]:7"
"#
    )
}

/// Stops strait cleanly and returns its log.
fn stop(strait: &mut Strait) -> String {
    let status = strait.terminate(Duration::from_secs(30));
    let log = strait.log_text();
    assert!(status.success(), "strait exited with {status}:\n{log}");
    log
}

#[test]
fn radvd_gives_the_default_route_to_a_peer_beyond_the_router() {
    if !require_root("radvd_gives_the_default_route_to_a_peer_beyond_the_router") {
        return;
    }
    // The router namespace holds strait and the kernel side of its tap; the far peer is
    // one hop beyond, on another prefix.
    let router = Netns::new("s6r");
    let far = Netns::new("s6f");
    let tap = unique("s6rt");
    let (rf, fr) = (unique("s6rf"), unique("s6fr"));
    for key in ["net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.default.accept_dad=0"] {
        assert!(router.exec("sysctl", &["-w", key]).status.success(), "sysctl {key}");
    }
    router.ip(&["link", "add", &rf, "type", "veth", "peer", "name", &fr, "netns", &far.name]);
    router.up_v6(&rf, "fd00:18:11::1/64");
    far.up_v6(&fr, "fd00:18:11::2/64");
    far.ip(&["-6", "route", "add", "default", "via", "fd00:18:11::1"]);

    let mut strait =
        Strait::start(&router, &config(&format!("net_tap0,iface={tap}"), "198.18.16.2/24", "fd00:18:10::2/64", "02:00:00:00:18:10"));
    strait.wait_for_log(&["port up"], Duration::from_secs(30));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(10));
    router.up_v6(&tap, "fd00:18:10::1/64");

    let base = std::env::temp_dir().join(unique("radvd-"));
    let (conf, radvd_log) = (base.with_extension("conf"), base.with_extension("log"));
    fs::write(
        &conf,
        format!(
            "interface {tap} {{\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  AdvDefaultLifetime 60;\n  \
             AdvCurHopLimit 37;\n  AdvLinkMTU 1400;\n  prefix fd00:18:10::/64 {{ AdvOnLink on; AdvAutonomous off; }};\n}};\n"
        ),
    )
    .expect("write radvd.conf");
    let pid = base.with_extension("pid");
    let _radvd = Killed(router.spawn(
        "radvd",
        &["--nodaemon", "--config", &conf.to_string_lossy(), "--pidfile", &pid.to_string_lossy(), "--logmethod", "logfile", "--logfile", &radvd_log.to_string_lossy()],
    ));
    let radvd_says = || fs::read_to_string(&radvd_log).unwrap_or_default();

    // The reply to a peer off every prefix of strait's goes to the router radvd announced.
    assert!(ping6(&far, "fd00:18:10::2"), "no ping -6 reply across the router\nradvd: {}\n{}", radvd_says(), strait.log_text());
    // Strait's TCP segments as the far peer receives them: all, and those with the hop limit
    // radvd advertised (37), less the router's one hop (RFC 4861 §6.3.4 CurHopLimit).
    let nft = |args: &[&str]| assert!(far.exec("nft", args).status.success(), "nft {args:?}");
    nft(&["add", "table", "inet", "hops"]);
    nft(&["add", "chain", "inet", "hops", "in", "{ type filter hook input priority 0; }"]);
    nft(&["add", "rule", "inet", "hops", "in", "ip6", "saddr", "fd00:18:10::2", "tcp", "sport", "7", "counter"]);
    nft(&["add", "rule", "inet", "hops", "in", "ip6", "saddr", "fd00:18:10::2", "tcp", "sport", "7", "ip6", "hoplimit", "36", "counter"]);
    // ...and by size: none above the link MTU radvd advertised (1400), but full ones near it.
    nft(&["add", "rule", "inet", "hops", "in", "ip6", "saddr", "fd00:18:10::2", "tcp", "sport", "7", "meta", "length", ">", "1400", "counter"]);
    nft(&["add", "rule", "inet", "hops", "in", "ip6", "saddr", "fd00:18:10::2", "tcp", "sport", "7", "meta", "length", ">", "1300", "counter"]);
    // The lcore hands the advertised MTU to its TCP engine within a publish interval.
    let seen = strait.wait_for_log(&["IPv6 link MTU from router advertisements"], Duration::from_secs(10));
    assert!(seen.contains("IPv6 link MTU from router advertisements"), "the advertised MTU was not applied:\n{}", strait.log_text());
    let out = far.exec("python3", &["-c", common::ECHO_CLIENT, "fd00:18:10::2", "7", "1000000"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success() && text.contains("got=1000000") && text.contains("err=[]"), "TCP echo across the router: {text}");
    let rules = String::from_utf8_lossy(&far.exec("nft", &["list", "table", "inet", "hops"]).stdout).into_owned();
    let packets: Vec<u64> = rules
        .lines()
        .filter_map(|l| l.split("counter packets ").nth(1))
        .filter_map(|c| c.split(' ').next()?.parse().ok())
        .collect();
    assert!(packets.len() == 4 && packets[0] > 0 && packets[0] == packets[1], "TCP segments with the advertised hop limit: {rules}");
    assert!(packets[2] == 0 && packets[3] > 0, "TCP segments sized for the advertised MTU: {rules}");
    let log = stop(&mut strait);
    let _ = fs::remove_file(&conf);
    let _ = fs::remove_file(&radvd_log);
    let counter = |name: &str| log_counter(&log, "final counters", name).unwrap_or(0);
    assert!(counter("ra_router_added") >= 1, "no default router learnt:\n{log}");
    assert!(counter("ra_prefix_added") >= 1, "no on-link prefix learnt:\n{log}");
    assert!(counter("tx_router_solicit") >= 1, "no router solicitation:\n{log}");
    assert_eq!((counter("ra_mtu_changed"), counter("ra_mtu_ignored")), (1, 0), "{log}");
    assert_eq!((counter("tx_dad_probe"), counter("dad_preferred"), counter("dad_failed")), (2, 2, 0), "{log}");
    assert!(log.contains("IPv6 address usable"), "{log}");
}

#[test]
fn a_duplicate_address_is_detected_logged_and_never_used() {
    if !require_root("a_duplicate_address_is_detected_logged_and_never_used") {
        return;
    }
    let strait_ns = Netns::new("s6d");
    let peer = Netns::new("s6p");
    let (va, vb) = strait_veth(&strait_ns, &peer, "s6d", Finished::Neither);
    // The peer already holds the address strait is configured with.
    peer.up_v6(&vb, "fd00:18:12::2/64");
    // Until its own link-local address has passed detection the kernel does not defend
    // (the veth has just come up): wait for it, as a host on a live link would be.
    let start = std::time::Instant::now();
    while !peer.ip(&["-6", "addr", "show", "dev", &vb, "tentative"]).trim().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the peer's addresses stay tentative");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut strait =
        Strait::start(&strait_ns, &config(&format!("net_af_packet0,iface={va}"), "198.18.18.2/24", "fd00:18:12::2/64", "02:00:00:00:18:12"));
    strait.wait_for_log(&["port up"], Duration::from_secs(30));
    let line = strait.wait_for_log(&["duplicate IPv6 address"], Duration::from_secs(10));
    assert!(line.contains("fd00:18:12::2"), "the log names the address:\n{line}");
    // The link-local address (EUI-64 of the MAC) passed and answers.
    assert!(ping6(&peer, &format!("fe80::ff:fe00:1812%{vb}")), "link-local address unusable:\n{}", strait.log_text());
    let log = stop(&mut strait);
    let counter = |name: &str| log_counter(&log, "final counters", name).unwrap_or(0);
    assert_eq!((counter("dad_failed"), counter("dad_preferred")), (1, 1), "{log}");
}

#[test]
fn a_bridge_snooping_mld_forwards_our_solicitations() {
    if !require_root("a_bridge_snooping_mld_forwards_our_solicitations") {
        return;
    }
    // The bridge, its querier (queries every 2 s, answers within 1 s) and strait's tap in
    // one namespace; the kernel peer behind a veth on the same bridge.
    let ns = Netns::new("s6m");
    let peer = Netns::new("s6q");
    let br = unique("s6mb");
    let tap = unique("s6mt");
    assert!(ns.exec("sysctl", &["-w", "net.ipv6.conf.default.accept_dad=0"]).status.success());
    ns.ip(&[
        "link", "add", &br, "type", "bridge", "mcast_snooping", "1", "mcast_querier", "1", "mcast_mld_version", "2",
        "mcast_query_interval", "200", "mcast_query_response_interval", "100", "mcast_startup_query_interval", "100",
    ]);
    ns.ip(&["link", "set", &br, "up"]);
    let (vp, vq) = (unique("s6mp"), unique("s6mq"));
    ns.ip(&["link", "add", &vp, "type", "veth", "peer", "name", &vq, "netns", &peer.name]);
    ns.ip(&["link", "set", &vp, "master", &br, "up"]);
    peer.up_v6(&vq, "fd00:18:13::1/64");

    let mut strait =
        Strait::start(&ns, &config(&format!("net_tap0,iface={tap}"), "198.18.19.2/24", "fd00:18:13::2/64", "02:00:00:00:18:13"));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    ns.ip(&["link", "set", &tap, "master", &br, "up"]);
    // Unknown multicast is not flooded to strait's port: only what it reported reaches it.
    let o = ns.exec("bridge", &["link", "set", "dev", &tap, "mcast_flood", "off"]);
    assert!(o.status.success(), "bridge link set: {}", String::from_utf8_lossy(&o.stderr));

    let group = "ff02::1:ff00:2";
    let start = std::time::Instant::now();
    let mdb = loop {
        let out = ns.exec("bridge", &["mdb", "show", "dev", &br]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.lines().any(|l| l.contains(&tap) && l.contains(group)) || start.elapsed() > Duration::from_secs(15) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(mdb.lines().any(|l| l.contains(&tap) && l.contains(group)), "the bridge never learnt {group} on strait's port:\n{mdb}\n{}", strait.log_text());
    assert!(ping6(&peer, "fd00:18:13::2"), "no ping -6 reply through the snooping bridge:\n{mdb}\n{}", strait.log_text());
    let log = stop(&mut strait);
    let counter = |name: &str| log_counter(&log, "final counters", name).unwrap_or(0);
    assert!(counter("tx_mld_report") >= 2 && counter("rx_mld_query") >= 1, "{log}");
}
