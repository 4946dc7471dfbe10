//! End to end: a blocked stderr does not stop the data plane (issue 16). Strait's stdout
//! and stderr go through a `tee` process. With the access log on (one line per session)
//! and `[log] queue_lines = 1024`, tee is stopped (SIGSTOP: its pipe fills, as stderr does
//! when journald pushes back) and wrk opens new sessions (`Connection: close`) through the
//! proxy until the log queue overflows:
//!
//! * every request is answered (no wrk socket error, no non-2xx): the lcore never waits
//!   for stderr;
//! * `strait_log_dropped_lines_total` counts the lines that could not be queued;
//! * once tee runs again, strait logs again and stops cleanly on SIGTERM.

mod common;

use std::time::{Duration, Instant};

use common::backend::{pool_config, Nginx, Net, Setup};
use common::{finish, require_root, Strait};

const METRICS: &str = "127.0.0.1:9371";

/// `strait_log_dropped_lines_total`, read from the metrics endpoint inside `s.client`.
fn dropped_lines(s: &Setup) -> u64 {
    let o = s.client.exec("curl", &["-sS", "--max-time", "5", &format!("http://{METRICS}/metrics")]);
    let text = String::from_utf8_lossy(&o.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("strait_log_dropped_lines_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn a_blocked_stderr_costs_log_lines_not_requests() {
    if !require_root("a_blocked_stderr_costs_log_lines_not_requests") {
        return;
    }
    let net = Net { front: "198.18.152", back: "198.18.153", backend_port: 8080 };
    let extra = format!("access = true\nqueue_lines = 1024\n[metrics]\nlisten = \"{METRICS}\"\n");
    let mut tee = None;
    let mut s = Setup::with_strait(
        net,
        &[net.backend(0)],
        |ns, l| Nginx::start(ns, l, 0),
        |tap, veth| pool_config(net, tap, veth, &[0], &extra, ""),
        |ns, toml| {
            let (strait, t) = Strait::start_through_tee(ns, toml);
            tee = Some(t);
            strait
        },
    );
    s.strait.wait_for_log(&["proxy listening"], Duration::from_secs(5));
    let tee_pid = tee.as_ref().map(|t| t.0.id().to_string()).unwrap_or_default();
    assert_eq!(dropped_lines(&s), 0, "nothing dropped while stderr flows");

    common::must("kill", &["-STOP", &tee_pid]);
    let t0 = Instant::now();
    let mut requests = 0u64;
    // Until the queue (1 024 lines) and the pipe (64 KiB) are full and lines are dropped.
    while dropped_lines(&s) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "no log line dropped after {requests} sessions");
        let wrk = s.client.spawn("wrk", &["-t1", "-c16", "-d2s", "-H", "Connection: close", &s.net.url("index.html")]);
        let (code, out, err) = finish(wrk, Duration::from_secs(30));
        assert_eq!(code, Some(0), "wrk: {err}");
        assert!(
            !out.contains("Socket errors") && !out.contains("Non-2xx"),
            "every request answered while stderr is blocked:\n{out}"
        );
        requests += out
            .lines()
            .find_map(|l| l.trim().split_once(" requests in").and_then(|(n, _)| n.trim().parse::<u64>().ok()))
            .unwrap_or(0);
        std::thread::sleep(Duration::from_millis(300));
    }
    let dropped = dropped_lines(&s);
    eprintln!("{requests} sessions with stderr blocked; {dropped} log lines dropped");
    assert!(requests > 1024, "sessions: {requests}");

    common::must("kill", &["-CONT", &tee_pid]);
    // Logging resumes: a reload's line reaches the file. A line logged in the first
    // moments, while the writer still drains the full queue, is dropped as designed, so
    // the reload is asked again until one line gets through.
    let t1 = Instant::now();
    let mut resumed = false;
    while !resumed && t1.elapsed() < Duration::from_secs(20) {
        s.signal("HUP");
        let asked = Instant::now();
        while !resumed && asked.elapsed() < Duration::from_secs(2) {
            resumed = s.strait.log_text().contains("reloading the configuration");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(resumed, "no reload line reached the log after stderr was unblocked:\n{}", s.diagnostics());
    let status = s.strait.terminate(Duration::from_secs(30));
    assert!(status.success(), "strait exits cleanly: {status}\n{}", s.diagnostics());
}
