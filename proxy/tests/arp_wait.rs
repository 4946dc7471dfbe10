//! End to end: the first SYN to a backend whose address strait has not resolved yet waits
//! for the ARP reply instead of being lost (Linux's `arp_queue`). Two nginx backends,
//! `.10` and `.11`, share one veth in the backend namespace; the set-up's ping from there
//! teaches strait `.10` only (the kernel's ARP request comes from its primary address).
//! Round robin sends one of two sessions to `.11`: both are served at once, each backend
//! connection made in one attempt in well under the 1 s SYN retransmission timeout.

mod common;

use std::time::{Duration, Instant};

use common::backend::{pool_config, Net, Setup};
use common::require_root;

/// The JSON field `key` of an access-log line, as text.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.split(&format!("\"{key}\":")).nth(1)?;
    let rest = rest.trim_start_matches('"');
    rest.split(['"', ',', '}']).next()
}

#[test]
fn the_first_syn_to_an_unresolved_backend_waits_for_arp() {
    if !require_root("the_first_syn_to_an_unresolved_backend_waits_for_arp") {
        return;
    }
    let net = Net { front: "198.18.154", back: "198.18.155", backend_port: 8080 };
    let mut s = Setup::start(net, 2, 0, |tap, veth| pool_config(net, tap, veth, &[0, 1], "access = true\n", ""), &[]);
    s.strait.wait_for_log(&["proxy listening"], Duration::from_secs(5));
    for _ in 0..2 {
        let t0 = Instant::now();
        let o = s.client.exec(
            "curl",
            &["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", &s.net.url("index.html")],
        );
        let took = t0.elapsed();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "200", "{}", s.diagnostics());
        assert!(took < Duration::from_millis(700), "a request took {took:?}: a SYN waited for a retransmission\n{}", s.diagnostics());
    }
    let t0 = Instant::now();
    let log = loop {
        let log = s.strait.log_text();
        if log.lines().filter(|l| l.contains("\"target\":\"strait::access\"")).count() >= 2 || t0.elapsed() > Duration::from_secs(5) {
            break log;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let access: Vec<&str> = log.lines().filter(|l| l.contains("\"target\":\"strait::access\"")).collect();
    assert_eq!(access.len(), 2, "{log}");
    let servers: Vec<&str> = access.iter().filter_map(|l| field(l, "server")).collect();
    assert!(servers.contains(&net.backend(1).as_str()), "one session went to the unresolved backend: {access:#?}");
    for l in &access {
        assert_eq!(field(l, "retries"), Some("0"), "connected in one attempt: {l}");
        let ms: f64 = field(l, "connect_ms").and_then(|v| v.parse().ok()).unwrap_or(f64::MAX);
        assert!(ms < 500.0, "connect time {ms} ms: {l}");
    }
}
