//! End to end: the data plane on a real DPDK port answers ARP and ping from a kernel
//! peer in a network namespace the test creates, then shuts down cleanly on SIGTERM.
//!
//! Two port types: `net_tap` (a device with checksum/TSO offloads) and `net_af_packet`
//! over a veth pair (a device with none), so the adapter is exercised with and without
//! offload capabilities, and with and without RX interrupts for the idle lcore.

mod common;

use std::time::Duration;

use common::{ping_until_reply, require_root, strait_veth, unique, Finished, Netns, Strait};

fn config(device: &str, ipv4: &str) -> String {
    format!(
        r#"
[log]
format = "json"
level = "info"

[dpdk]
lcores = [0]
memory_mode = "no-huge"
memory_mb = 256
mbufs = 4095
mbuf_cache = 128

[[port]]
name = "p0"
device = "{device}"
ipv4 = "{ipv4}"
mtu = 1500
"#
    )
}

/// The lcore counter `name` from the shutdown line `final lcore counters` (which lists
/// the non-zero ones): 0 when absent.
fn lcore_counter(log: &str, name: &str) -> u64 {
    let line = log.lines().find(|l| l.contains("final lcore counters")).unwrap_or_default();
    let pat = format!("{name}=");
    line.split(&pat).nth(1).map_or(0, |rest| rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0))
}

/// Pings (small and near-MTU), checks the kernel resolved our MAC, and stops strait;
/// returns its log.
fn ping_and_stop(peer: &Netns, strait: &mut Strait, addr: &str) -> String {
    assert!(
        ping_until_reply(peer, addr, Duration::from_secs(20)),
        "no echo reply from {addr}:\n{}",
        strait.log_text()
    );
    let out = peer.exec("ping", &["-c", "5", "-i", "0.2", "-W", "2", addr]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(" 0% packet loss"), "ping lost replies:\n{text}");
    // Near the MTU: 1472 bytes of ICMP payload = a 1500-byte IP packet.
    let out = peer.exec("ping", &["-c", "3", "-i", "0.2", "-W", "2", "-s", "1472", "-M", "do", addr]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains(" 0% packet loss"), "large ping lost replies:\n{text}");
    // ARP: the kernel learned our MAC from our reply.
    let neigh = peer.ip(&["neigh", "show", addr]);
    assert!(neigh.contains("lladdr"), "kernel has no ARP entry for {addr}: {neigh:?}");

    let status = strait.terminate(Duration::from_secs(20));
    let log = strait.log_text();
    assert!(status.success(), "strait exited with {status}:\n{log}");
    assert!(log.contains("strait stopped"), "no clean shutdown in the log:\n{log}");
    assert!(log.contains("final counters") && log.contains("rx_icmp"), "no counters logged:\n{log}");
    log
}

#[test]
fn tap_port_answers_arp_and_ping_then_stops_cleanly() {
    if !require_root("tap_port_answers_arp_and_ping_then_stops_cleanly") {
        return;
    }
    let ns = Netns::new("sttap");
    let ifname = unique("stp");
    let ns_name = ns.name.clone();
    {
        let mut strait = Strait::start(&ns, &config(&format!("net_tap0,iface={ifname}"), "198.18.0.2/24"));
        let up = strait.wait_for_log(&["port up"], Duration::from_secs(30));
        assert!(up.contains("net_tap"), "unexpected driver: {up}");
        assert!(up.contains("tcp-cksum"), "a tap port grants TCP checksum offload: {up}");
        strait.wait_for_log(&["strait ready"], Duration::from_secs(10));
        assert!(ns.has_link(&ifname), "tap {ifname} not created in {ns_name}");
        ns.ip(&["addr", "add", "198.18.0.1/24", "dev", &ifname]);
        ns.ip(&["link", "set", &ifname, "up"]);
        let log = ping_and_stop(&ns, &mut strait, "198.18.0.2");
        assert!(!ns.has_link(&ifname), "tap {ifname} left behind after strait exited");
        // Adaptive polling: net_tap has RX interrupts, so the idle lcore blocked on them
        // and the pings (200 ms apart) woke it.
        assert!(log.contains("idle lcore waits for RX interrupts"), "RX interrupts not used on net_tap:\n{log}");
        let (waits, wakeups) = (lcore_counter(&log, "idle_interrupt_waits"), lcore_counter(&log, "idle_interrupt_wakeups"));
        assert!(waits > 0 && wakeups >= 5, "interrupt waits {waits}, woken by a frame {wakeups}:\n{log}");
    }
    drop(ns);
    let list = common::must("ip", &["netns", "list"]);
    assert!(!list.contains(&ns_name), "namespace {ns_name} left behind");
}

#[test]
fn af_packet_port_without_offloads_answers_arp_and_ping() {
    if !require_root("af_packet_port_without_offloads_answers_arp_and_ping") {
        return;
    }
    let strait_ns = Netns::new("stafa");
    let peer = Netns::new("stafb");
    let (va, vb) = strait_veth(&strait_ns, &peer, "sv", Finished::Neither);
    peer.ip(&["addr", "add", "198.18.1.1/24", "dev", &vb]);
    peer.ip(&["link", "set", &vb, "up"]);
    let names = (strait_ns.name.clone(), peer.name.clone());
    {
        let mut strait = Strait::start(&strait_ns, &config(&format!("net_af_packet0,iface={va}"), "198.18.1.2/24"));
        let up = strait.wait_for_log(&["port up"], Duration::from_secs(30));
        assert!(up.contains("af_packet"), "unexpected driver: {up}");
        let granted = up.split("\"granted\":").nth(1).unwrap_or_default();
        assert!(!granted.contains("tso") && !granted.contains("cksum"), "af_packet has no TSO or checksum offload: {up}");
        strait.wait_for_log(&["strait ready"], Duration::from_secs(10));
        let log = ping_and_stop(&peer, &mut strait, "198.18.1.2");
        // No RX interrupts on net_af_packet: the idle lcore naps instead.
        assert_eq!(lcore_counter(&log, "idle_interrupt_waits"), 0, "{log}");
        assert!(lcore_counter(&log, "idle_naps") > 0, "the idle lcore never napped:\n{log}");
    }
    drop(peer);
    drop(strait_ns);
    let list = common::must("ip", &["netns", "list"]);
    assert!(!list.contains(&names.0) && !list.contains(&names.1), "namespaces left behind");
}
