//! End to end (issue 15): one proxy over two lcores (software flow steering: `net_tap`
//! front port, `net_af_packet` back port with two queue pairs), nginx backends.
//!
//! * A listener with `max_connections = 10` admits exactly 10 concurrent sessions in
//!   total: 30 clients hold keep-alive connections at once, 10 are served and held (the
//!   backend sees 10 connections), 20 are refused, and the lcores' refusal counters add up
//!   to 20 (before, each lcore admitted 10).
//! * Least connections over two nginx keeps their connection counts within 1 of each other
//!   while long-lived sessions arrive one at a time on both lcores, sends new sessions to the
//!   server whose sessions ended, and stays within 2 when 20 arrive at once.
//!
//! * A server with `max_connections = 2` never sees a third connection from both lcores;
//!   sessions beyond wait in the queue and are served when a place frees, or reset when the
//!   queue is full or at the queue timeout.
//!
//! * One lcore runs a server's health checks (the backend sees one check per interval,
//!   not one per lcore, and only that lcore's counters show checks); when the checks take
//!   the server down, it stays down through a reload and sessions arriving on both lcores
//!   are refused without an attempt on it, and when they bring it back both lcores
//!   connect to it again.
//!
//! * A reload that one lcore cannot take in time (stalled on purpose with the test-only
//!   `--debug-stall-lcore-after`) is reported as failed and rolled back on both lcores: the
//!   old configuration runs everywhere, and the same file applies once both answer.
//!
//! Subnets 198.18.150-155, 198.18.184-187.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::backend::{nstat, nstat_delta, on_two_lcores, pool_config, Net, Nginx, Setup};
use common::{require_root, Netns, Strait};

/// Strait on lcores 0 and 1, the back port with a queue pair per lcore, `listener` keys
/// and `pool` keys added to the listener's and the pool's tables. The connect timeout is
/// 3 s, so that a slow connect on this loaded 2-core machine is not turned into a retry on
/// the other server, skewing the counts under test (a SYN to a server an lcore has not
/// resolved yet waits for the ARP reply: `proxy/tests/arp_wait.rs`).
fn two_lcore_config(net: Net, tap: &str, veth: &str, servers: &[u8], listener: &str, pool: &str) -> String {
    on_two_lcores(&pool_config(net, tap, veth, servers, "", pool), veth)
        .replace("connect_timeout_ms = 1000\n", &format!("connect_timeout_ms = 3000\n{listener}"))
}

/// Keep-alive HTTP clients that hold their connections until stdin closes.
///
/// `limit ADDR N`: N clients at once each send one request; prints `served=S refused=R`
/// once every one has its answer (a response, or a reset), then holds the served ones.
///
/// `spread ADDR`: 20 clients one after the other (`seq`), then closes 8 on the busier
/// server and opens 8 more one by one (`refill`), then 20 at once (`burst`); each client
/// learns its server from the response (nginx's index.html starts with its address).
/// Prints the largest difference between the two servers' counts after each open of the
/// first phase, how many of the refill went to the server that had freed places, and the
/// counts after each phase.
const CLIENTS: &str = r#"
import socket, sys, threading
mode, addr = sys.argv[1], sys.argv[2]
REQ = b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"

def fetch(s):
    data = b""
    while b"\r\n\r\n" not in data:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("closed before a response")
        data += d
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        d = s.recv(65536)
        if not d:
            raise ConnectionError("short body")
        body += d
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError("status %r" % head[:20])
    return body.split(b"\n")[0].decode()

def open_one():
    s = socket.create_connection((addr, 80), timeout=10)
    s.sendall(REQ)
    return s, fetch(s)

held = []
if mode == "queue":
    import time
    n, hold = int(sys.argv[3]), float(sys.argv[4])
    lock, served, refused = threading.Lock(), [], []
    t0 = time.time()
    def one():
        try:
            s, _ = open_one()
            with lock:
                served.append(time.time() - t0)
            time.sleep(hold)
            s.close()
        except Exception:
            with lock:
                refused.append(time.time() - t0)
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("served=%d refused_at_once=%d refused_late=%d served_at=%s refused_at=%s" % (
        len(served), sum(1 for t in refused if t < 0.5), sum(1 for t in refused if t >= 0.5),
        ["%.2f" % t for t in sorted(served)], ["%.2f" % t for t in sorted(refused)]), flush=True)
    sys.exit(0)
if mode == "limit":
    n = int(sys.argv[3])
    served, refused, lock = [0], [0], threading.Lock()
    barrier = threading.Barrier(n + 1, timeout=60)
    def one():
        try:
            s, _ = open_one()
            with lock:
                served[0] += 1
                held.append(s)
        except Exception:
            with lock:
                refused[0] += 1
        barrier.wait()
    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    print("served=%d refused=%d" % (served[0], refused[0]), flush=True)
else:
    counts, conns, maxdiff = {}, [], [0]
    def note(s, srv):
        conns.append((s, srv))
        counts[srv] = counts.get(srv, 0) + 1
    def diff():
        v = list(counts.values()) + [0, 0]
        return abs(v[0] - v[1]) if len(counts) <= 2 else 99
    order = []
    for _ in range(20):
        s, srv = open_one()
        note(s, srv)
        order.append(srv.split(":")[0].split(".")[-1])
        maxdiff[0] = max(maxdiff[0], diff())
    seq = dict(counts)
    busy = max(counts, key=counts.get)
    closing = [c for c in conns if c[1] == busy][:8]
    for c in closing:
        c[0].close()
        conns.remove(c)
        counts[busy] -= 1
    import time
    time.sleep(1)
    refill_to = []
    for _ in range(8):
        s, srv = open_one()
        note(s, srv)
        refill_to.append(srv)
    refill = dict(counts)
    lock = threading.Lock()
    errors = [0]
    def one():
        try:
            s, srv = open_one()
            with lock:
                note(s, srv)
        except Exception:
            with lock:
                errors[0] += 1
    threads = [threading.Thread(target=one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("seq=%s seqmaxdiff=%d refill=%s refill_to_freed=%d burst=%s burstdiff=%d errors=%d" % (
        sorted(seq.values()), maxdiff[0], sorted(refill.values()),
        sum(1 for s in refill_to if s == busy), sorted(counts.values()), diff(), errors[0]) + " order=" + ",".join(order), flush=True)
    held = [c[0] for c in conns]
sys.stdin.read()
for s in held:
    s.close()
"#;

/// Starts `CLIENTS` in `ns`; returns it (holding its connections) and its result line.
fn clients(ns: &Netns, args: &[&str]) -> (Child, String) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, "python3", "-c", CLIENTS])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the clients");
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    (child, line.trim().to_string())
}

/// Lets the clients close their connections and exit.
fn release(mut child: Child) {
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"bye\n");
    }
    let _ = child.wait();
}

/// `key=N` in `line`.
fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(&format!("{key}="))).and_then(|v| v.parse().ok())
}

/// Established connections in the backend namespace to `addr` (`ip:port`).
fn backend_connections(s: &Setup, addr: &str) -> usize {
    let out = s.backend.exec("ss", &["-Htn", "state", "established", "src", addr]);
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.trim().is_empty()).count()
}

/// `proxy_listener_<name>{web}` of each lcore's final counters line, by lcore (0, 1).
fn per_lcore(log: &str, name: &str) -> [u64; 2] {
    let mut out = [0; 2];
    for line in log.lines().filter(|l| l.contains("final proxy counters")) {
        let lcore = if line.contains("\"lcore\":1,") { 1 } else { 0 };
        out[lcore] += common::backend::counter(line, name).unwrap_or(0);
    }
    out
}

#[test]
fn max_connections_is_global_over_two_lcores() {
    if !require_root("max_connections_is_global_over_two_lcores") {
        return;
    }
    let net = Net { front: "198.18.150", back: "198.18.151", backend_port: 8080 };
    let mut s = Setup::start(net, 1, 0, |tap, veth| two_lcore_config(net, tap, veth, &[0], "max_connections = 10\n", ""), &[]);
    s.strait.wait_for_log(&["flow steering", "lcores\":2"], Duration::from_secs(1));
    let front = format!("{}.2", net.front);
    let (child, line) = clients(&s.client, &["limit", &front, "30"]);
    // Every client has its answer and the served ones hold their sessions: the backend
    // sees exactly those.
    let backend = backend_connections(&s, &net.backend(0));
    release(child);
    assert_eq!(line, "served=10 refused=20", "{}", s.diagnostics());
    assert_eq!(backend, 10, "backend connections while 10 sessions are held");
    s.stop();
    let log = s.strait.log_text();
    let (refused, total) = (per_lcore(&log, "proxy_listener_refused_max_connections"), per_lcore(&log, "proxy_listener_total"));
    eprintln!("per lcore: sessions {total:?}, refused {refused:?}");
    assert_eq!(refused.iter().sum::<u64>(), 20, "refusals over both lcores:\n{log}");
    assert_eq!(total.iter().sum::<u64>(), 10, "sessions over both lcores:\n{log}");
    assert!(
        (0..2).all(|l| total[l] + refused[l] > 0),
        "clients reached both lcores: sessions {total:?}, refused {refused:?}"
    );
}

#[test]
fn a_server_max_connections_is_global_and_the_queue_serves_or_times_out() {
    if !require_root("a_server_max_connections_is_global_and_the_queue_serves_or_times_out") {
        return;
    }
    // One server taking 2 connections, 4 places in the queue for 1.5 s. 8 clients at once,
    // each holding its connection 1 s after its response: 2 served at once, 4 wait, 2 find
    // the queue full; after 1 s two places free and two waiting clients are served, the
    // other two are reset at the queue timeout (1.5 s), before the next places free (2 s).
    let net = Net { front: "198.18.154", back: "198.18.155", backend_port: 8080 };
    let pool = "max_queue = 4\nqueue_timeout_ms = 1500\n";
    let mut s = Setup::start(
        net,
        1,
        0,
        |tap, veth| {
            two_lcore_config(net, tap, veth, &[0], "", pool).replace(
                &format!("{{ addr = \"{}\" }}", net.backend(0)),
                &format!("{{ addr = \"{}\", max_connections = 2 }}", net.backend(0)),
            )
        },
        &[],
    );
    s.strait.wait_for_log(&["flow steering", "lcores\":2"], Duration::from_secs(1));
    let front = format!("{}.2", net.front);
    let mut child = Command::new("ip")
        .args(["netns", "exec", &s.client.name, "python3", "-c", CLIENTS, "queue", &front, "8", "1.0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the clients");
    // The backend's view while the clients run: never more than 2 connections.
    let mut most = 0;
    let started = std::time::Instant::now();
    while matches!(child.try_wait(), Ok(None)) && started.elapsed() < Duration::from_secs(30) {
        most = most.max(backend_connections(&s, &net.backend(0)));
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = BufReader::new(out).read_line(&mut line);
    }
    let _ = child.wait();
    eprintln!("{line}; at most {most} backend connections");
    s.stop();
    let log = s.strait.log_text();
    let sum = |name: &str| per_lcore(&log, name).iter().sum::<u64>();
    let (queued, full, timeout) =
        (sum("proxy_listener_queued"), sum("proxy_listener_refused_queue_full"), sum("proxy_listener_refused_queue_timeout"));
    eprintln!("queued {queued}, refused: queue full {full}, queue timeout {timeout}");
    assert!(most <= 2, "the backend saw {most} connections at once");
    assert!(line.starts_with("served=4 refused_at_once=2 refused_late=2 "), "{line}\n{log}");
    assert_eq!((queued, full, timeout), (4, 2, 2), "{log}");
    assert_eq!(sum("proxy_listener_total"), 8);
}

#[test]
fn least_connections_is_global_over_two_lcores() {
    if !require_root("least_connections_is_global_over_two_lcores") {
        return;
    }
    let net = Net { front: "198.18.152", back: "198.18.153", backend_port: 8080 };
    let mut s = Setup::start(
        net,
        2,
        0,
        |tap, veth| two_lcore_config(net, tap, veth, &[0, 1], "", "algorithm = \"least_connections\"\n"),
        &[],
    );
    s.strait.wait_for_log(&["flow steering", "lcores\":2"], Duration::from_secs(1));
    let front = format!("{}.2", net.front);
    let (child, line) = clients(&s.client, &["spread", &front]);
    let backend = [backend_connections(&s, &net.backend(0)), backend_connections(&s, &net.backend(1))];
    release(child);
    eprintln!("{line}; backend connections {backend:?}");
    s.stop();
    let log = s.strait.log_text();
    for l in log.lines().filter(|l| l.contains("final proxy counters")) {
        eprintln!("{l}");
    }
    assert_eq!(field(&line, "errors"), Some(0), "{line}\n{}", s.diagnostics());
    // One at a time: never more than 1 apart (each lcore on its own counts would send the
    // first session of each to the same server: 2 apart).
    assert!(line.starts_with("seq=[10, 10] seqmaxdiff=1 "), "{line}");
    // The 8 freed places are on one server: every new session goes there.
    assert_eq!(field(&line, "refill_to_freed"), Some(8), "{line}");
    assert!(line.contains("refill=[10, 10]"), "{line}");
    // 20 at once on both lcores: within 2 (two lcores picking at the same instant).
    assert!(field(&line, "burstdiff").is_some_and(|d| d <= 2), "{line}");
    assert_eq!(backend.iter().sum::<usize>(), 40, "{backend:?}");
    assert!(backend[0].abs_diff(backend[1]) <= 2, "backend connections {backend:?}");
    let total = per_lcore(&log, "proxy_listener_total");
    eprintln!("sessions per lcore: {total:?}");
    assert_eq!(total.iter().sum::<u64>(), 48);
    assert!(total.iter().all(|&n| n >= 5), "sessions on both lcores: {total:?}");
}

fn ctl(sock: &str, req: &str) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_strait"))
        .args(["ctl", "--socket", sock])
        .args(req.split(' '))
        .output()
        .expect("strait ctl");
    assert!(o.status.success(), "ctl {req}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `key=` value on the `show` line of `server`.
fn server_field(show: &str, server: &str, key: &str) -> Option<String> {
    let line = show.lines().find(|l| l.contains(&format!("server={server} ")))?;
    let v = line.split(&format!(" {key}=")).nth(1)?;
    Some(v.split_whitespace().next()?.to_string())
}

/// Waits (at most `limit`) until `server`'s health is `want`.
fn wait_health(s: &Setup, sock: &str, server: &str, want: &str, limit: Duration) {
    let start = std::time::Instant::now();
    loop {
        let show = ctl(sock, "show");
        if server_field(&show, server, "health").as_deref() == Some(want) {
            return;
        }
        assert!(start.elapsed() < limit, "{server} not {want} within {limit:?}:\n{show}\n{}", s.diagnostics());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `proxy_server_<name>{web/<server>}` of each lcore's final counters line (lcores 0, 1).
fn per_lcore_server(log: &str, name: &str, server: &str) -> [u64; 2] {
    let pat = format!("{name}{{web/{server}}}=");
    let mut out = [0; 2];
    for line in log.lines().filter(|l| l.contains("final proxy counters")) {
        let lcore = if line.contains("\"lcore\":1,") { 1 } else { 0 };
        let v = line.split(&pat).nth(1).map(|r| r.chars().take_while(char::is_ascii_digit).collect::<String>());
        out[lcore] += v.and_then(|v| v.parse().ok()).unwrap_or(0);
    }
    out
}

#[test]
fn one_lcore_checks_a_server_and_both_follow_its_verdict() {
    if !require_root("one_lcore_checks_a_server_and_both_follow_its_verdict") {
        return;
    }
    const INTERVAL_MS: u64 = 200;
    const WINDOW_MS: u64 = 3000;
    let net = Net { front: "198.18.184", back: "198.18.185", backend_port: 8080 };
    let sock = std::env::temp_dir().join(common::unique("strait-2l-admin-")).with_extension("sock").display().to_string();
    let extra = format!("[admin]\nsocket = \"{sock}\"\n");
    let pool = format!("[pool.health_check]\ninterval_ms = {INTERVAL_MS}\ntimeout_ms = 150\nfall = 2\nrise = 2\n");
    let mut s = Setup::start(net, 1, 0, |tap, veth| on_two_lcores(&pool_config(net, tap, veth, &[0], &extra, &pool), veth), &[]);
    s.strait.wait_for_log(&["flow steering", "lcores\":2"], Duration::from_secs(1));
    let (b0, front) = (net.backend(0), format!("{}.2", net.front));

    // No client yet: every connection the backend accepts is a check. One per interval
    // from one lcore (two lcores each checking would make ~30 in the window).
    std::thread::sleep(Duration::from_millis(500));
    let before = nstat(&s.backend);
    std::thread::sleep(Duration::from_millis(WINDOW_MS));
    let checks = nstat_delta(&before, &nstat(&s.backend), "TcpPassiveOpens");
    let per_interval = WINDOW_MS / INTERVAL_MS;
    eprintln!("{checks} check connections in {WINDOW_MS} ms at one per {INTERVAL_MS} ms");
    assert!((per_interval - 2..=per_interval + 2).contains(&checks), "{checks} checks in the window, {per_interval} expected");
    let show = ctl(&sock, "show");
    let checker = server_field(&show, &b0, "check_lcore");
    assert!(matches!(checker.as_deref(), Some("0" | "1")), "one lcore runs the checks:\n{show}");
    assert_eq!(server_field(&show, &b0, "health").as_deref(), Some("up"), "{show}");
    assert!(!show.contains("partial"), "{show}");

    // Down: sessions on both lcores are refused at once, none is tried on the server,
    // also after a reload (the verdict and the checker are kept by the server's name).
    s.nginx[0].kill_in(&s.backend);
    wait_health(&s, &sock, &b0, "down", Duration::from_secs(5));
    let reloaded = ctl(&sock, "reload");
    assert!(reloaded.contains("reloaded"), "{reloaded}");
    let show = ctl(&sock, "show");
    assert_eq!(server_field(&show, &b0, "health").as_deref(), Some("down"), "still down after the reload:\n{show}");
    assert_eq!(server_field(&show, &b0, "check_lcore"), checker, "the same lcore checks it:\n{show}");
    let attempts = |show: &str| server_field(show, &b0, "attempts").and_then(|v| v.parse::<u64>().ok());
    let attempts_down = attempts(&ctl(&sock, "show"));
    let (child, down) = clients(&s.client, &["limit", &front, "20"]);
    release(child);
    assert_eq!(down, "served=0 refused=20", "{}", s.diagnostics());
    assert_eq!(attempts(&ctl(&sock, "show")), attempts_down, "a down server got attempts");

    // Up again: sessions on both lcores reach it.
    s.nginx[0] = Nginx::start(&s.backend, &b0, 0);
    wait_health(&s, &sock, &b0, "up", Duration::from_secs(3));
    let (child, up) = clients(&s.client, &["limit", &front, "20"]);
    let conns = ctl(&sock, "show connections");
    release(child);
    assert_eq!(up, "served=20 refused=0", "{}", s.diagnostics());
    let lcores_to_b0: std::collections::BTreeSet<&str> = conns
        .lines()
        .filter(|l| l.contains("side=backend") && l.contains(&format!("remote={b0} ")))
        .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("lcore=")))
        .collect();
    assert_eq!(lcores_to_b0.into_iter().collect::<Vec<_>>(), ["0", "1"], "both lcores connect to it:\n{conns}");

    s.stop();
    let log = s.strait.log_text();
    let (no_server, connect_failed) =
        (per_lcore(&log, "proxy_listener_refused_no_server"), per_lcore(&log, "proxy_listener_refused_connect_failed"));
    let checks_by = per_lcore_server(&log, "proxy_server_health_checks", &b0);
    eprintln!("refused no_server {no_server:?}, connect_failed {connect_failed:?}; checks per lcore {checks_by:?}");
    assert!(no_server.iter().all(|&n| n > 0) && no_server.iter().sum::<u64>() == 20, "both lcores refused: {no_server:?}");
    assert_eq!(connect_failed, [0, 0], "nothing was tried on the down server");
    let mine: Vec<usize> = (0..2).filter(|&l| checks_by[l] > 0).collect();
    assert_eq!(mine.len(), 1, "checks from one lcore only: {checks_by:?}");
    assert_eq!(checker.as_deref(), Some(if mine == [0] { "0" } else { "1" }), "ctl names that lcore");
}

#[test]
fn a_reload_one_lcore_cannot_take_is_rolled_back_on_both() {
    if !require_root("a_reload_one_lcore_cannot_take_is_rolled_back_on_both") {
        return;
    }
    let net = Net { front: "198.18.186", back: "198.18.187", backend_port: 8080 };
    let sock = std::env::temp_dir().join(common::unique("strait-2l-admin-")).with_extension("sock").display().to_string();
    let extra = format!("[admin]\nsocket = \"{sock}\"\n");
    let b0 = net.backend(0);
    let mut s = Setup::with_strait(
        net,
        std::slice::from_ref(&b0),
        |ns, l| Nginx::start(ns, l, 0),
        |tap, veth| on_two_lcores(&pool_config(net, tap, veth, &[0], &extra, ""), veth),
        |ns, toml| Strait::start_with_args(ns, toml, &["--debug-stall-lcore-after", "2"]),
    );
    s.strait.wait_for_log(&["flow steering", "lcores\":2"], Duration::from_secs(1));
    let front = format!("{}.2", net.front);
    let weight = |show: &str| server_field(show, &b0, "weight");
    let before = ctl(&sock, "show");
    assert_eq!(weight(&before).as_deref(), Some("1"), "{before}");

    // The new file gives the server weight 5; one lcore sleeps for 10 s when it comes.
    let config = std::fs::read_to_string(&s.strait.config).unwrap_or_else(|e| panic!("{e}"));
    let changed = config.replace(&format!("{{ addr = \"{b0}\" }}"), &format!("{{ addr = \"{b0}\", weight = 5 }}"));
    assert_ne!(changed, config, "the server line was found");
    std::fs::write(&s.strait.config, changed).unwrap_or_else(|e| panic!("{e}"));
    s.strait.wait_for_log(&["debug: stalling this lcore on request"], Duration::from_secs(10));
    let o = Command::new(env!("CARGO_BIN_EXE_strait")).args(["ctl", "--socket", &sock, "reload"]).output().expect("strait ctl");
    let (ok, err) = (o.status.success(), String::from_utf8_lossy(&o.stderr).into_owned());
    assert!(!ok, "the reload was reported as applied: {}", String::from_utf8_lossy(&o.stdout));
    assert!(err.contains("no answer within") && err.contains("rolled back on every lcore"), "{err}");

    // Once the lcore wakes up, both lcores run the old configuration...
    let start = std::time::Instant::now();
    let show = loop {
        let o = Command::new(env!("CARGO_BIN_EXE_strait")).args(["ctl", "--socket", &sock, "show"]).output().expect("strait ctl");
        if o.status.success() {
            break String::from_utf8_lossy(&o.stdout).into_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(20), "the stalled lcore never answered again");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(weight(&show).as_deref(), Some("1"), "the old weight on every lcore:\n{show}");
    let (child, served) = clients(&s.client, &["limit", &front, "10"]);
    release(child);
    assert_eq!(served, "served=10 refused=0", "{}", s.diagnostics());
    // ...and the same file applies on both once both answer.
    let reloaded = ctl(&sock, "reload");
    assert!(reloaded.contains("reloaded"), "{reloaded}");
    assert_eq!(weight(&ctl(&sock, "show")).as_deref(), Some("5"));
    s.stop();
    let log = s.strait.log_text();
    assert!(log.contains("rolled back"), "the failed reload is logged:\n{log}");
}
