//! End to end: configuration reload under load. Three nginx backends; strait starts with
//! two of them. A long-lived keep-alive client opens its session first, then wrk
//! (`Connection: close`: a new session per request) runs while:
//!
//! 1. SIGHUP reloads a file that removes the long-lived session's server and adds the
//!    third: zero wrk errors, the long-lived session keeps getting answers from its
//!    (removed, draining) server after the reload, new sessions reach the new server;
//!    systemd hears RELOADING=1 with MONOTONIC_USEC, then READY=1;
//! 2. an invalid file is refused (the log names the key and why; traffic goes on);
//! 3. `strait ctl reload` (the admin API) puts the removed server back.
//!
//! Between 1 and 2, `strait ctl show connections` lists the long-lived session's backend
//! connection (ESTABLISHED, lcore 0), and `strait ctl server drain` keeps new sessions off
//! a server until `server enable`.

mod common;

use std::time::{Duration, Instant};

use common::backend::{pool_config, Net, Setup};
use common::{finish, require_root, unique, NotifySocket};

/// Keep-alive client: one GET every 50 ms on one connection for `secs`; prints the
/// seconds since start and the answering server (the page names it) per response.
const LONG_LIVED: &str = r#"
import socket, sys, time
addr, port, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.create_connection((addr, port), timeout=10)
t0 = time.time()
while time.time() - t0 < dur:
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: strait\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c:
            raise SystemExit("closed by peer")
        buf += c
    head, body = buf.split(b"\r\n\r\n", 1)
    cl = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < cl:
        c = s.recv(65536)
        if not c:
            raise SystemExit("closed by peer mid-body")
        body += c
    print("%.3f %s" % (time.time() - t0, body.split(b"\n")[0].decode()), flush=True)
    time.sleep(0.05)
print("done", flush=True)
"#;

fn ctl(sock: &str, req: &str) -> (bool, String) {
    let mut args = vec!["ctl", "--socket", sock];
    args.extend(req.split(' '));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_strait")).args(&args).output().expect("run strait ctl");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

#[test]
fn reload_under_wrk_load_keeps_established_sessions() {
    if !require_root("reload_under_wrk_load_keeps_established_sessions") {
        return;
    }
    let t0 = Instant::now();
    let mut notify = NotifySocket::new();
    let net = Net { front: "198.18.84", back: "198.18.85", backend_port: 8080 };
    let sock = std::env::temp_dir().join(unique("strait-ops-admin-")).with_extension("sock").display().to_string();
    let admin = format!("[admin]\nsocket = \"{sock}\"\n");
    let mut s = Setup::start(
        net,
        3,
        0,
        |tap, veth| pool_config(net, tap, veth, &[0, 1], &admin, ""),
        &[("NOTIFY_SOCKET", &notify.path)],
    );
    assert!(notify.wait_for("READY=1", Duration::from_secs(5)).is_some());
    let (tap, veth) = (s.tap.clone(), s.veth.clone());

    // The long-lived session, first: find its server.
    let addr = format!("{}.2", net.front);
    let mut long = s.client.spawn("python3", &["-c", LONG_LIVED, &addr, "80", "10"]);
    let started = Instant::now();
    let show = loop {
        let (ok, show) = ctl(&sock, "show");
        assert!(ok, "{show}");
        if show.contains("sessions=1") {
            break show;
        }
        if let Ok(Some(st)) = long.try_wait() {
            let (_, out, err) = finish(long, Duration::from_secs(1));
            panic!("long-lived client exited ({st}): {out} {err}\n{}", s.diagnostics());
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no session:\n{show}\n{}", s.diagnostics());
        std::thread::sleep(Duration::from_millis(100));
    };
    let pinned = [0u8, 1]
        .into_iter()
        .find(|&i| {
            show.contains(&format!(
                "server={} weight=1 admin=enabled health=up ejected=0 check_lcore=- configured=yes active=1",
                net.backend(i)
            ))
        })
        .unwrap_or_else(|| panic!("the long-lived session is on no server:\n{show}"));
    let other = 1 - pinned;

    // wrk, a new session per request, across both reloads.
    let wrk = s.client.spawn("wrk", &["-t1", "-c8", "-d6s", "-H", "Connection: close", &s.net.url("index.html")]);
    std::thread::sleep(Duration::from_millis(1500));
    // 1. Remove the pinned server, add the third.
    std::fs::write(&s.strait.config, pool_config(net, &tap, &veth, &[other, 2], &admin, "")).expect("write config");
    s.signal("HUP");
    let reloading = notify
        .wait_for("RELOADING=1", Duration::from_secs(5))
        .unwrap_or_else(|| panic!("no RELOADING=1: {:?}", notify.seen));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let ready = notify.collect(Duration::from_millis(500));
    assert!(ready.iter().any(|m| m.contains("READY=1")), "no READY=1 after the reload: {ready:?}");
    s.strait.wait_for_log(&["configuration reloaded"], Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(1500));
    let (_, show) = ctl(&sock, "show");
    assert!(
        show.contains(&format!(
            "server={} weight=1 admin=enabled health=up ejected=0 check_lcore=- configured=no active=1",
            net.backend(pinned)
        )),
        "{show}"
    );
    let new_attempts = show
        .lines()
        .find(|l| l.contains(&format!("server={} ", net.backend(2))))
        .and_then(|l| l.split("attempts=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(new_attempts > 10, "the added server takes new sessions: {show}");

    // The admin API's connection detail shows the long-lived session on its server.
    let (ok, conns) = ctl(&sock, "show connections");
    let pinned_conn = conns.lines().find(|l| l.contains(&format!("remote={} ", net.backend(pinned))));
    assert!(
        ok && pinned_conn.is_some_and(|l| l.contains("lcore=0") && l.contains("side=backend") && l.contains("state=ESTABLISHED")),
        "{conns}"
    );
    // Draining a server by hand: no new sessions for it, until enabled again.
    let attempts = |srv: &str| {
        let (_, show) = ctl(&sock, "show");
        show.lines()
            .find(|l| l.contains(&format!("server={srv} ")))
            .and_then(|l| l.split("attempts=").nth(1))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (ok, out) = ctl(&sock, &format!("server drain web {}", net.backend(2)));
    assert!(ok && out.contains("drain"), "{out}");
    let a = attempts(&net.backend(2));
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(attempts(&net.backend(2)), a, "a drained server got new sessions");
    let (ok, out) = ctl(&sock, &format!("server enable web {}", net.backend(2)));
    assert!(ok && out.contains("enabled"), "{out}");

    // 2. An invalid file: refused, reason logged, traffic unaffected.
    std::fs::write(&s.strait.config, pool_config(net, &tap, &veth, &[other, 2], &admin, "algorithm = \"fastest\""))
        .expect("write");
    s.signal("HUP");
    let line = s.strait.wait_for_log(&["reload rejected"], Duration::from_secs(5));
    assert!(line.contains("pool[0].algorithm"), "{line}");
    let (ok, err) = ctl(&sock, "reload");
    assert!(!ok && err.contains("pool[0].algorithm") && err.contains("not an algorithm"), "{err}");

    // 3. The admin API reloads the server back in.
    std::fs::write(&s.strait.config, pool_config(net, &tap, &veth, &[0, 1, 2], &admin, "")).expect("write");
    let (ok, out) = ctl(&sock, "reload");
    assert!(ok && out.contains("3 server(s)"), "{out}");

    let (code, wrk_out, wrk_err) = finish(wrk, Duration::from_secs(30));
    eprintln!("{wrk_out}");
    assert_eq!(code, Some(0), "wrk: {wrk_err}");
    assert!(
        !wrk_out.contains("Socket errors") && !wrk_out.contains("Non-2xx"),
        "wrk saw errors:\n{wrk_out}\n{}",
        s.diagnostics()
    );
    let requests: u64 = wrk_out
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(requests >= 200, "{wrk_out}");

    let (code, out, err) = finish(long, Duration::from_secs(20));
    assert_eq!(code, Some(0), "long-lived client: {out} {err}\n{}", s.diagnostics());
    let answers: Vec<(f64, String)> = out
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(t, srv)| t.parse::<f64>().ok().map(|t| (t, srv.to_string())))
        .collect();
    assert!(out.trim_end().ends_with("done"), "{out}");
    assert!(answers.iter().all(|(_, srv)| *srv == net.backend(pinned)), "one session, one server: {out}");
    // The reload came about 1.5 s after the session started, in the client's 10 s; count
    // the answers well after it.
    let after = answers.iter().filter(|(t, _)| *t > 6.0).count();
    assert!(after >= 20, "the long-lived session kept transferring after the reload: {out}");
    let status = s.strait.terminate(Duration::from_secs(40));
    assert!(status.success(), "{}", s.diagnostics());
    eprintln!("reload test: {requests} wrk requests, {} long-lived answers; took {:?}", answers.len(), t0.elapsed());
}
