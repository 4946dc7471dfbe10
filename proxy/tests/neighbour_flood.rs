//! End to end: spoofed on-subnet sources cannot flood the neighbour table (issue 14).
//! A raw socket in the client namespace sends TCP SYNs from 250 addresses of the client
//! subnet that do not exist; each SYN-ACK needs an ARP resolution. Strait starts at
//! most `resolutions_per_second` (100) of them and counts the rest
//! (`arp_resolution_rate_limited`), and the proxy keeps serving through its pinned backend
//! while the flood's resolutions fail.

mod common;

use std::time::Duration;

use common::backend::{pool_config, Net, Setup};
use common::require_root;

/// TCP SYNs to `argv[2]`:80 from `argv[1]`.3 .. `argv[1]`.252 (IP_HDRINCL): each
/// SYN-ACK needs the spoofed source resolved.
const SPOOF: &str = r#"
import socket, struct, sys
prefix, dst = sys.argv[1], sys.argv[2]
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return (~s) & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
d = socket.inet_aton(dst)
for i in range(3, 253):
    src = socket.inet_aton("%s.%d" % (prefix, i))
    tcp = struct.pack("!HHIIBBHHH", 40000 + i, 80, 1000 * i, 0, 5 << 4, 0x02, 65535, 0, 0)
    pseudo = src + d + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", csum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0, 64, 6, 0, src, d)
    s.sendto(ip + tcp, (dst, 0))
"#;

#[test]
fn spoofed_sources_are_rate_limited_and_the_backend_stays_reachable() {
    if !require_root("spoofed_sources_are_rate_limited_and_the_backend_stays_reachable") {
        return;
    }
    let net = Net { front: "198.18.156", back: "198.18.157", backend_port: 8080 };
    let mut s = Setup::start(net, 1, 0, |tap, veth| pool_config(net, tap, veth, &[0], "", ""), &[]);
    s.strait.wait_for_log(&["proxy listening"], Duration::from_secs(5));
    let o = s.client.exec("python3", &["-c", SPOOF, net.front, &format!("{}.2", net.front)]);
    assert!(o.status.success(), "spoofer: {}", String::from_utf8_lossy(&o.stderr));
    // The proxy serves meanwhile and after.
    let get = s.client.exec("curl", &["-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", &s.net.url("index.html")]);
    assert_eq!(String::from_utf8_lossy(&get.stdout), "200", "{}", s.diagnostics());
    let status = s.strait.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let log = s.strait.log_text();
    let front = log
        .lines()
        .find(|l| l.contains("final counters") && l.contains("\"port\":\"front\""))
        .unwrap_or_default()
        .to_string();
    let limited = front
        .split(|c: char| c.is_whitespace() || c == '"')
        .find_map(|kv| kv.strip_prefix("arp_resolution_rate_limited="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    eprintln!("resolutions refused: {limited} (250 spoofed sources, SYN-ACK retransmissions included)");
    // 250 sources, a burst of 100 and 100/s: at least 100 refused.
    assert!(limited >= 100, "resolutions refused: {limited}; final counters: {front}\n{log}");
}
