//! End to end: SYN-flood resilience. hping3 in a namespace of its own floods strait's
//! listener with SYNs from a spoofed, unreachable source (bounded: a packet count and a
//! time limit), routed through the client namespace, while wrk (`Connection: close`: a
//! handshake per request) runs from the client namespace. The listener's SYN queue fills
//! and strait answers with SYN cookies (RFC 4987 §3.6): `strait_tcp_syncookies_sent_total`
//! rises, and wrk's success rate stays >= 99%.

mod common;

use std::time::{Duration, Instant};

use common::backend::{pool_config, Net, Setup};
use common::{finish, require_root, unique, Netns};

fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or(0)
}

#[test]
fn syn_flood_while_wrk_runs() {
    if !require_root("syn_flood_while_wrk_runs") {
        return;
    }
    let t0 = Instant::now();
    let net = Net { front: "198.18.89", back: "198.18.83", backend_port: 8080 };
    let metrics_port = 9189;
    let extra = format!("[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n");
    // The front port routes through the client namespace (back to the attacker side).
    let toml = |tap: &str, veth: &str| {
        pool_config(net, tap, veth, &[0], &extra, "")
            .replace("ipv4 = \"198.18.89.2/24\"", "ipv4 = \"198.18.89.2/24\"\ngateway = \"198.18.89.1\"")
    };
    let s = Setup::start(net, 1, 0, toml, &[]);

    // The attacker: its own namespace, a veth into the client namespace, which forwards.
    let attacker = Netns::new("sopf");
    let (fa, fb) = (unique("sfa"), unique("sfb"));
    attacker.ip(&["link", "add", &fa, "type", "veth", "peer", "name", &fb, "netns", &s.client.name]);
    attacker.ip(&["addr", "add", "198.18.88.130/25", "dev", &fa]);
    attacker.ip(&["link", "set", &fa, "up"]);
    attacker.ip(&["route", "add", "default", "via", "198.18.88.129"]);
    s.client.ip(&["addr", "add", "198.18.88.129/25", "dev", &fb]);
    s.client.ip(&["link", "set", &fb, "up"]);
    for key in ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"] {
        let o = s.client.exec("sysctl", &["-qw", key]);
        assert!(o.status.success(), "sysctl {key}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let scrape = || {
        let o = s.client.exec("curl", &["-sS", "--max-time", "5", &format!("http://127.0.0.1:{metrics_port}/metrics")]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let before = counter(&scrape(), "strait_tcp_syncookies_sent_total");

    let wrk = s.client.spawn("wrk", &["-t1", "-c8", "-d8s", "-H", "Connection: close", &s.net.url("index.html")]);
    std::thread::sleep(Duration::from_secs(1));
    // 60 000 SYNs, one every 50 us, from a source nobody answers for (198.18.88.200
    // does not exist: the SYN-ACKs die in the client namespace), at most 10 s.
    let flood = attacker.spawn(
        "timeout",
        &["10", "hping3", "-q", "-S", "-p", "80", "-i", "u50", "-c", "60000", "-a", "198.18.88.200", "198.18.89.2"],
    );
    let (fcode, fout, ferr) = finish(flood, Duration::from_secs(15));
    let (code, out, err) = finish(wrk, Duration::from_secs(30));
    eprintln!("hping3 (exit {fcode:?}): {fout} {ferr}\n{out}");
    assert_eq!(code, Some(0), "wrk: {err}");
    let after = counter(&scrape(), "strait_tcp_syncookies_sent_total");
    assert!(after > before + 1000, "SYN cookies sent: {before} -> {after}\n{}", scrape());
    let requests: u64 = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let errors: u64 = out
        .lines()
        .find(|l| l.contains("Socket errors"))
        .map(|l| l.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    let non2xx: u64 = out
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let success = requests.saturating_sub(non2xx) as f64 / (requests + errors).max(1) as f64;
    assert!(requests > 500, "{out}");
    assert!(
        success >= 0.99,
        "success {success:.4}: {requests} requests, {errors} socket errors, {non2xx} non-2xx\n{out}"
    );
    eprintln!("syn flood: cookies {before} -> {after}, wrk {requests} requests, {errors} errors, success {success:.4}; took {:?}", t0.elapsed());
    drop(attacker);
}
