//! End to end: drain on SIGTERM. A client downloads 200 MB through strait from nginx
//! (curl, rate-limited so that the transfer is under way when the signal comes);
//! strait gets SIGTERM mid-transfer:
//!
//! * with `[shutdown] drain_timeout_ms = 30000` the download completes (all bytes,
//!   HTTP 200), a new connection is refused meanwhile, strait exits 0 and told systemd
//!   STOPPING=1;
//! * with `drain_timeout_ms = 1000` the client sees its connection reset after about a
//!   second and strait exits 0.
//!
//! Both run with `[log] access = true`: the access log records the download (bytes,
//! server, client, `closed`) and the reset one (`drain_deadline`).

mod common;

use std::time::{Duration, Instant};

use common::backend::{pool_config, Net, Setup};
use common::{finish, require_root, NotifySocket};

/// The download.
const BIG: u64 = 200 * 1000 * 1000;

fn start(net: Net, drain_ms: u64, notify: &NotifySocket) -> Setup {
    // `access = true` lands in the `[log]` table the config starts with.
    let extra = format!("access = true\n[shutdown]\ndrain_timeout_ms = {drain_ms}\n");
    let toml = |tap: &str, veth: &str| pool_config(net, tap, veth, &[0], &extra, "");
    Setup::start(net, 1, BIG, toml, &[("NOTIFY_SOCKET", &notify.path)])
}

/// curl downloading `/shm/big.bin` at `rate`; prints `<bytes> <http code>`.
fn download(s: &Setup, rate: &str) -> std::process::Child {
    let url = s.net.url("shm/big.bin");
    s.client.spawn(
        "curl",
        &[
            "-sS",
            "--max-time",
            "120",
            "--limit-rate",
            rate,
            "-o",
            "/dev/null",
            "-w",
            "%{size_download} %{http_code}",
            &url,
        ],
    )
}

/// Waits until strait has a session (the download is under way).
fn wait_for_session(s: &mut Setup) {
    s.strait.wait_for_log(&["\"message\":\"lcore loop started\""], Duration::from_secs(5));
    let start = Instant::now();
    // The listener's counters are logged only at exit; the kernel's view is enough here.
    loop {
        let ss = s.client.exec("ss", &["-tn", "state", "established", "dst", &format!("{}.2:80", s.net.front)]);
        if String::from_utf8_lossy(&ss.stdout).lines().count() > 1 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the download did not start:\n{}", s.diagnostics());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_with_a_30s_deadline_lets_a_200mb_download_finish() {
    if !require_root("sigterm_with_a_30s_deadline_lets_a_200mb_download_finish") {
        return;
    }
    let t0 = Instant::now();
    let mut notify = NotifySocket::new();
    let net = Net { front: "198.18.80", back: "198.18.81", backend_port: 8080 };
    let mut s = start(net, 30_000, &notify);
    assert!(notify.wait_for("READY=1", Duration::from_secs(5)).is_some(), "no READY");
    // 200 MB at 25 MB/s: about 8 s, well inside the deadline.
    let curl = download(&s, "25M");
    wait_for_session(&mut s);
    std::thread::sleep(Duration::from_millis(500));
    let term = Instant::now();
    s.signal("TERM");
    assert!(notify.wait_for("STOPPING=1", Duration::from_secs(5)).is_some(), "no STOPPING=1: {:?}", notify.seen);
    s.strait.wait_for_log(&["draining: listeners closed"], Duration::from_secs(5));
    // Not accepting any more: a new connection is refused.
    let refused = s.client.exec("curl", &["-sS", "--max-time", "5", "-o", "/dev/null", &s.net.url("index.html")]);
    assert_eq!(
        refused.status.code(),
        Some(7),
        "curl exit 7 (connection refused) expected: {}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let (code, out, err) = finish(curl, Duration::from_secs(60));
    assert_eq!(code, Some(0), "curl failed: {out} {err}\n{}", s.diagnostics());
    assert_eq!(out.trim(), format!("{BIG} 200"), "incomplete download\n{}", s.diagnostics());
    let status = s.wait_exit(Duration::from_secs(35));
    assert!(status.success(), "strait exited with {status}:\n{}", s.diagnostics());
    let log = s.strait.log_text();
    assert!(log.contains("\"sessions_reset\":0") && log.contains("strait stopped"), "{log}");
    // The access log: one line for the download, closed normally, every byte counted.
    let access: Vec<&str> = log.lines().filter(|l| l.contains("\"target\":\"strait::access\"")).collect();
    let big = access
        .iter()
        .find(|l| l.contains("\"reason\":\"closed\"") && l.contains(&format!("\"server\":\"{}\"", net.backend(0))));
    let bytes_out = big
        .and_then(|l| l.split("\"bytes_out\":").nth(1))
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(bytes_out.is_some_and(|b| b > BIG && b < BIG + 1000), "access log: {access:?}");
    assert!(big.is_some_and(|l| l.contains(&format!("\"client\":\"{}.1:", net.front)) && l.contains("\"listener\":\"web\"")), "{access:?}");
    // Who ended it and where, the connect time and retries (HAProxy tcplog's facts).
    assert!(
        big.is_some_and(|l| l.contains("\"phase\":\"data\"")
            && l.contains("\"retries\":0")
            && l.contains("\"connect_ms\":\"0.")
            && (l.contains("\"ended_by\":\"client\"") || l.contains("\"ended_by\":\"server\""))),
        "{access:?}"
    );
    eprintln!(
        "drain with 30 s deadline: download finished {:?} after SIGTERM; test took {:?}",
        term.elapsed(),
        t0.elapsed()
    );
}

#[test]
fn sigterm_with_a_1s_deadline_resets_the_download() {
    if !require_root("sigterm_with_a_1s_deadline_resets_the_download") {
        return;
    }
    let t0 = Instant::now();
    let mut notify = NotifySocket::new();
    let net = Net { front: "198.18.82", back: "198.18.83", backend_port: 8080 };
    let mut s = start(net, 1_000, &notify);
    assert!(notify.wait_for("READY=1", Duration::from_secs(5)).is_some(), "no READY");
    // 200 MB at 10 MB/s would take 20 s: it cannot finish within the deadline.
    let curl = download(&s, "10M");
    wait_for_session(&mut s);
    let term = Instant::now();
    s.signal("TERM");
    let (code, out, err) = finish(curl, Duration::from_secs(20));
    let after = term.elapsed();
    // curl 56: failure receiving data (connection reset by peer).
    assert_eq!(code, Some(56), "curl should see a reset: {out} {err}\n{}", s.diagnostics());
    assert!(err.contains("reset") || err.contains("Recv failure"), "{err}");
    assert!(after >= Duration::from_millis(900) && after < Duration::from_secs(5), "reset after {after:?}");
    let status = s.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "strait exited with {status}:\n{}", s.diagnostics());
    assert!(notify.wait_for("STOPPING=1", Duration::from_secs(1)).is_some(), "no STOPPING=1: {:?}", notify.seen);
    let log = s.strait.log_text();
    assert!(log.contains("drain deadline passed: sessions reset") && log.contains("\"sessions_reset\":1"), "{log}");
    assert!(
        log.lines().any(|l| l.contains("\"target\":\"strait::access\"")
            && l.contains("\"reason\":\"drain_deadline\"")
            && l.contains("\"ended_by\":\"proxy\"")),
        "no access log line for the reset session:\n{log}"
    );
    eprintln!("drain with 1 s deadline: reset {after:?} after SIGTERM; test took {:?}", t0.elapsed());
}
