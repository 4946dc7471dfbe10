//! End to end: health checks from the data plane. Two nginx backends behind strait with
//! active TCP checks (interval 500 ms, fall 2, rise 2); wrk (`Connection: close`, a new
//! session per request) runs while backend 0 is killed:
//!
//! * the admin API shows it `health=down` within fall x interval (plus one check's
//!   timeout and the poll), and `strait_backend_up` says 0 for it, 1 for the other;
//! * once down it gets no new connection attempts: new sessions all go to backend 1;
//! * wrk's errors stay bounded (sessions on the killed server die with it; new ones
//!   that were refused were retried on the other server);
//! * restarted, it is `health=up` again after rise x interval.

mod common;

use std::time::{Duration, Instant};

use common::backend::{pool_config, Net, Nginx, Setup};
use common::{finish, require_root, unique};

const INTERVAL_MS: u64 = 500;
const FALL: u64 = 2;
const RISE: u64 = 2;

fn ctl(sock: &str, req: &str) -> String {
    let mut args = vec!["ctl", "--socket", sock];
    args.extend(req.split(' '));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_strait")).args(&args).output().expect("strait ctl");
    assert!(o.status.success(), "ctl {req}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `key=` value on the `show` line of `server`.
fn field(show: &str, server: &str, key: &str) -> Option<String> {
    let line = show.lines().find(|l| l.contains(&format!("server={server} ")))?;
    let v = line.split(&format!(" {key}=")).nth(1)?;
    Some(v.split_whitespace().next()?.to_string())
}

fn scrape(s: &Setup, port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = s.client.exec("curl", &["-sS", "--max-time", "5", &url]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `server`'s health is `want`; returns how long it took.
fn wait_health(s: &Setup, sock: &str, server: &str, want: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let show = ctl(sock, "show");
        if field(&show, server, "health").as_deref() == Some(want) {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{server} not {want} within {limit:?}:\n{show}\n{}", s.diagnostics());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_backend_is_marked_down_and_avoided() {
    if !require_root("a_killed_backend_is_marked_down_and_avoided") {
        return;
    }
    let t0 = Instant::now();
    let net = Net { front: "198.18.86", back: "198.18.87", backend_port: 8080 };
    let sock = std::env::temp_dir().join(unique("strait-ops-admin-")).with_extension("sock").display().to_string();
    let metrics_port = 9186;
    let extra = format!("[admin]\nsocket = \"{sock}\"\n[metrics]\nlisten = \"127.0.0.1:{metrics_port}\"\n");
    let pool =
        format!("[pool.health_check]\ninterval_ms = {INTERVAL_MS}\ntimeout_ms = 300\nfall = {FALL}\nrise = {RISE}\n");
    let mut s = Setup::start(net, 2, 0, |tap, veth| pool_config(net, tap, veth, &[0, 1], &extra, &pool), &[]);
    let (b0, b1) = (net.backend(0), net.backend(1));
    std::thread::sleep(Duration::from_millis(2 * INTERVAL_MS));
    let show = ctl(&sock, "show");
    assert_eq!(field(&show, &b0, "health").as_deref(), Some("up"), "{show}");
    // The same answer as JSON for scripts (`strait ctl --json`), parsed.
    let json: serde_json::Value = serde_json::from_str(&ctl(&sock, "--json show")).expect("ctl --json show is JSON");
    let servers = json["servers"].as_array().expect("servers list");
    assert_eq!(servers.len(), 2, "{json}");
    assert!(servers.iter().all(|s| s["health"] == "up" && s["pool"] == "web"), "{json}");
    assert_eq!(json["listeners"][0]["listener"], "web", "{json}");

    let wrk = s.client.spawn("wrk", &["-t1", "-c8", "-d8s", "-H", "Connection: close", &s.net.url("index.html")]);
    std::thread::sleep(Duration::from_secs(2));
    s.nginx[0].kill_in(&s.backend);
    let took = wait_health(&s, &sock, &b0, "down", Duration::from_secs(5));
    // The checks in flight at the kill may still pass: fall x interval, plus a check's
    // timeout and the polling of this test.
    let bound = Duration::from_millis(FALL * INTERVAL_MS + 300 + 200);
    assert!(took <= bound, "marked down after {took:?} (bound {bound:?})");
    // The metrics endpoint reads the verdict the checker wrote; a scrape may still be in flight.
    let down_series = format!("strait_backend_up{{pool=\"web\",server=\"{b0}\"}} 0");
    let start = Instant::now();
    let mut text = scrape(&s, metrics_port);
    while !text.contains(&down_series) && start.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(50));
        text = scrape(&s, metrics_port);
    }
    assert!(text.contains(&format!("strait_backend_up{{pool=\"web\",server=\"{b0}\"}} 0")), "{text}");
    assert!(text.contains(&format!("strait_backend_up{{pool=\"web\",server=\"{b1}\"}} 1")), "{text}");
    assert!(text.contains("strait_backend_down_transitions_total{pool=\"web\",server=\""), "{text}");
    // Down: no new attempts on it while wrk keeps opening sessions.
    let attempts =
        |show: &str, srv: &str| field(show, srv, "attempts").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let before = ctl(&sock, "show");
    std::thread::sleep(Duration::from_secs(1));
    let after = ctl(&sock, "show");
    assert_eq!(attempts(&before, &b0), attempts(&after, &b0), "a down server got attempts:\n{before}\n{after}");
    assert!(attempts(&after, &b1) > attempts(&before, &b1) + 50, "backend 1 takes the sessions:\n{before}\n{after}");

    let (code, out, err) = finish(wrk, Duration::from_secs(30));
    eprintln!("{out}");
    assert_eq!(code, Some(0), "wrk: {err}");
    let requests: u64 = out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // `Socket errors: connect A, read B, write C, timeout D`.
    let errors: u64 = out
        .lines()
        .find(|l| l.contains("Socket errors"))
        .map(|l| l.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    assert!(requests > 1000, "{out}");
    assert!(errors <= 16, "more errors than sessions the kill could cut: {errors}\n{out}");
    assert!(!out.contains("Non-2xx"), "{out}");

    // Back: rise x interval after it listens again.
    let dir_listen = net.backend(0);
    s.nginx[0] = Nginx::start(&s.backend, &dir_listen, 0);
    let back = wait_health(&s, &sock, &b0, "up", Duration::from_millis(RISE * INTERVAL_MS + 1500));
    let status = s.strait.terminate(Duration::from_secs(40));
    assert!(status.success(), "{}", s.diagnostics());
    eprintln!("health test: down after {took:?}, up again after {back:?}, {requests} requests, {errors} socket errors; took {:?}", t0.elapsed());
}
