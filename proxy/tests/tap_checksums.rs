//! End to end: checksums of frames built from odd-sized payload pieces on a `net_tap` port.
//!
//! DPDK 22.11's `net_tap` computes "offloaded" TCP checksums in software by summing each
//! segment of an mbuf chain on its own, which is wrong as soon as a segment other than
//! the last has an odd length (RFC 1071 §2). Strait's payloads are chains of received
//! mbufs, so an echo (or a proxy) re-sending data that arrived in odd-sized segments
//! builds exactly such chains. Strait must then checksum those frames itself: the kernel
//! peer counts no checksum error (`InCsumErrors` in its `/proc/net/snmp`), the bytes come
//! back intact without a copy, and the lcore counter `tx_sw_cksum_odd_pieces` shows the
//! path was taken.
//!
//! Found as a proxy download that stalled: the client dropped retransmissions with bad
//! checksums until the connection timed out.

mod common;

use std::time::Duration;

use common::{ping_until_reply, require_root, unique, Netns, Strait};

const CONFIG: &str = r#"
[log]
format = "json"
level = "info"

[dpdk]
lcores = [0]
memory_mode = "no-huge"
memory_mb = 512
mbufs = 16383
mbuf_cache = 256

[[port]]
name = "p0"
device = "net_tap0,iface=IFNAME"
ipv4 = "198.18.122.2/24"
mtu = 1500

[[app]]
kind = "echo"
listen = "198.18.122.2:7"
"#;

/// The number after `name=` in a `key=value` counters line.
fn counter(line: &str, name: &str) -> Option<u64> {
    let pat = format!("{name}=");
    let rest = line.split(&pat).nth(1)?;
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

#[test]
fn odd_sized_pieces_leave_with_correct_checksums() {
    if !require_root("odd_sized_pieces_leave_with_correct_checksums") {
        return;
    }
    let ns = Netns::new("stck");
    let ifname = unique("sck");
    let mut strait = Strait::start(&ns, &CONFIG.replace("IFNAME", &ifname));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    ns.ip(&["addr", "add", "198.18.122.1/24", "dev", &ifname]);
    ns.ip(&["link", "set", &ifname, "up"]);
    assert!(ping_until_reply(&ns, "198.18.122.2", Duration::from_secs(20)), "no ping reply:\n{}", strait.log_text());

    let total: u64 = 20 * 1000 * 1000;
    // Writes of 1001 bytes with Nagle off: odd-sized segments on strait's side.
    let out = ns.exec("python3", &["-c", common::ECHO_CLIENT, "198.18.122.2", "7", &total.to_string(), "1001"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |k: &str| text.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap_or_default().to_string();
    let errors = ns.tcp_in_csum_errors();

    let status = strait.terminate(Duration::from_secs(30));
    let log = strait.log_text();
    assert!(status.success(), "strait exited with {status}:\n{log}");
    assert!(out.status.success(), "client failed: {text} {}\n{log}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(field("got="), total.to_string(), "echo returned a different amount: {text}\n{log}");
    assert_eq!(field("sha_sent="), field("sha_got="), "echoed bytes differ: {text}");
    assert_eq!(errors, Some(0), "the kernel peer dropped frames with bad TCP checksums:\n{log}");
    let lcore = log.lines().find(|l| l.contains("final lcore counters")).unwrap_or_default();
    let sw = counter(lcore, "tx_sw_cksum_odd_pieces").unwrap_or(0);
    eprintln!("tx_sw_cksum_odd_pieces={sw}");
    assert!(sw > 0, "no frame with an odd-length piece was built, the test did not test anything: {lcore}");
    let tcp = log.lines().find(|l| l.contains("final tcp counters")).unwrap_or_default();
    assert!(tcp.contains("\"payload_copies\":0"), "the echo path copied payload: {tcp}");
}
