//! End to end: `strait ctl` as a script uses it (issue 16). Two nginx backends behind
//! strait with the admin socket, metrics and the access log; a client holds three idle
//! keep-alive sessions through the proxy while:
//!
//! * every read command (`show`, `show connections`, `show info`, `capture status`, `help`)
//!   answers with `--json` a JSON object that the test parses and checks;
//! * `show connections limit 1` pages through the three sessions: each page says
//!   `more` and where the next starts (`next`), the last says it is the last, and every
//!   session is seen once with both of its connections;
//! * `server weight` and `server maint` show in `show` and in the exported metrics
//!   (`strait_backend_weight`, `strait_backend_admin_state`);
//! * `session kill` resets the session named by its page entry: the client sees the reset,
//!   the access log says `killed`, two sessions are left;
//! * refusals are logged with their reason: a fourth session over the listener's
//!   `max_connections = 3` (set through the environment, `STRAIT_LISTENER__0__MAX_CONNECTIONS`,
//!   an array entry named by index) is `refused_max_connections`, a session while one
//!   server is in maintenance and the other at weight 0 is `no_server`, both `ended_by=proxy
//!   phase=connect`.

mod common;

use std::time::{Duration, Instant};

use common::backend::{pool_config, Net, Setup};
use common::{finish, require_root, unique};

const METRICS: &str = "127.0.0.1:9176";

/// Opens three keep-alive sessions, one request on each, prints `ready`, holds them for
/// `hold` seconds, then prints each socket's state: `open`, `eof` or `reset`.
const HOLDER: &str = r#"
import socket, sys, time
addr, port, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
socks = []
for i in range(3):
    s = socket.create_connection((addr, port), timeout=10)
    s.sendall(b"GET /index.html HTTP/1.1\r\nHost: strait\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    cl = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < cl:
        body += s.recv(65536)
    socks.append(s)
print("ready", flush=True)
time.sleep(hold)
for s in socks:
    s.setblocking(False)
    try:
        print("eof" if s.recv(1) == b"" else "data", flush=True)
    except BlockingIOError:
        print("open", flush=True)
    except ConnectionResetError:
        print("reset", flush=True)
"#;

/// `strait ctl --socket SOCK <words>`: (success, stdout, stderr).
fn ctl(sock: &str, req: &str) -> (bool, String, String) {
    let mut args = vec!["ctl", "--socket", sock];
    args.extend(req.split(' '));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_strait")).args(&args).output().expect("run strait ctl");
    (o.status.success(), String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `strait ctl --json <req>`, parsed.
fn json(sock: &str, req: &str) -> serde_json::Value {
    let (ok, out, err) = ctl(sock, &format!("--json {req}"));
    assert!(ok, "ctl --json {req}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("ctl --json {req} is not JSON ({e}): {out}"))
}

fn scrape(s: &Setup) -> String {
    let o = s.client.exec("curl", &["-sS", "--max-time", "5", &format!("http://{METRICS}/metrics")]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Waits until the metrics hold `series` (the lcores publish every 100 ms).
fn wait_series(s: &Setup, series: &str) {
    let start = Instant::now();
    loop {
        let text = scrape(s);
        if text.lines().any(|l| l == series) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(3), "no {series:?} in:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctl_json_paging_weight_maint_and_kill() {
    if !require_root("ctl_json_paging_weight_maint_and_kill") {
        return;
    }
    let net = Net { front: "198.18.174", back: "198.18.175", backend_port: 8080 };
    let sock = std::env::temp_dir().join(unique("strait-ctl-")).with_extension("sock").display().to_string();
    let extra = format!("access = true\n[admin]\nsocket = \"{sock}\"\n[metrics]\nlisten = \"{METRICS}\"\n");
    let mut s = Setup::start(
        net,
        2,
        0,
        |tap, veth| pool_config(net, tap, veth, &[0, 1], &extra, ""),
        &[("STRAIT_LISTENER__0__MAX_CONNECTIONS", "3")],
    );
    let (b0, b1) = (net.backend(0), net.backend(1));

    let mut holder = s.client.spawn("python3", &["-c", HOLDER, &format!("{}.2", net.front), "80", "6"]);
    let start = Instant::now();
    while json(&sock, "show")["sessions"] != 3 {
        if let Ok(Some(st)) = holder.try_wait() {
            let (_, out, err) = finish(holder, Duration::from_secs(1));
            panic!("the client exited ({st}): {out} {err}\n{}", s.diagnostics());
        }
        assert!(start.elapsed() < Duration::from_secs(10), "three sessions never open:\n{}", s.diagnostics());
        std::thread::sleep(Duration::from_millis(50));
    }

    // `show`: listeners and servers.
    let show = json(&sock, "show");
    assert_eq!((show["lcores"].as_i64(), show["draining"].as_bool()), (Some(1), Some(false)), "{show}");
    assert_eq!(show["listeners"][0]["listener"], "web", "{show}");
    assert_eq!(show["listeners"][0]["active"], 3, "{show}");
    assert_eq!(show["servers"].as_array().map(Vec::len), Some(2), "{show}");

    // `show info`: the process.
    let info = json(&sock, "show info");
    assert_eq!(info["pid"].as_u64(), Some(u64::from(s.strait.child.id())), "{info}");
    assert_eq!(info["sessions"], 3, "{info}");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"), "{info}");
    assert_eq!(info["draining"], false, "{info}");
    assert!(info["uptime_s"].is_i64() && info["rss_kb"].as_i64().is_some_and(|k| k > 0), "{info}");
    assert!(info["config"].as_str().is_some_and(|c| c.ends_with(".toml")), "{info}");

    // `capture status` and `help`.
    assert_eq!(json(&sock, "capture status")["capture"], "off");
    assert!(json(&sock, "help")["message"].as_str().is_some_and(|m| m.contains("show connections [limit N]")));

    // `show connections`: one page holds them all.
    let all = json(&sock, "show connections");
    assert_eq!((all["shown_sessions"].as_i64(), all["more"].as_bool(), all["limit"].as_i64()), (Some(3), Some(false), Some(1000)), "{all}");
    assert!(all.get("next").is_none(), "no next page: {all}");
    let conns = all["connections"].as_array().cloned().unwrap_or_default();
    assert_eq!(conns.len(), 6, "{all}");
    assert!(conns.iter().all(|c| c["state"] == "ESTABLISHED" && c["lcore"] == 0 && c["listener"] == "web"), "{all}");
    assert_eq!(conns.iter().filter(|c| c["side"] == "backend").count(), 3, "{all}");

    // Paging, one session a page (`--limit` and a trailing `--json`, as a script may write).
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0..3 {
        let req = match &cursor {
            None => "show connections --limit 1".to_string(),
            Some(c) => format!("show connections --limit 1 --after {c}"),
        };
        let (ok, out, err) = ctl(&sock, &format!("{req} --json"));
        assert!(ok, "{req}: {err}");
        let p: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{req}: {e}: {out}"));
        let last = page == 2;
        assert_eq!((p["shown_sessions"].as_i64(), p["more"].as_bool()), (Some(1), Some(!last)), "page {page}: {p}");
        let c = p["connections"].as_array().cloned().unwrap_or_default();
        assert_eq!(c.len(), 2, "both connections of one session: {p}");
        let session = c[0]["session"].as_u64().unwrap_or_else(|| panic!("{p}"));
        assert!(c.iter().all(|c| c["session"] == session), "{p}");
        assert!(seen.last().is_none_or(|&prev| session > prev), "in session order: {seen:?} then {session}");
        seen.push(session);
        if last {
            assert!(p.get("next").is_none(), "the last page has no next: {p}");
        } else {
            assert_eq!(p["next"], format!("0:{session}"), "{p}");
        }
        cursor = p["next"].as_str().map(str::to_string);
    }
    let mut from_all: Vec<u64> = conns.iter().filter_map(|c| c["session"].as_u64()).collect();
    from_all.dedup();
    assert_eq!(seen, from_all, "the pages hold the sessions of the one page");
    let (ok, _, err) = ctl(&sock, "show connections limit 0");
    assert!(!ok && err.contains("limit \"0\": not a number of sessions"), "{err}");

    // A fourth session: over max_connections (3, from the environment), refused and logged.
    let url = s.net.url("index.html");
    let o = s.client.exec("curl", &["-sS", "--max-time", "3", &url]);
    assert!(!o.status.success(), "a fourth session was served: {}", String::from_utf8_lossy(&o.stdout));
    let line = s.strait.wait_for_log(&["\"reason\":\"refused_max_connections\""], Duration::from_secs(3));
    assert!(line.contains("\"ended_by\":\"proxy\"") && line.contains("\"phase\":\"connect\"") && line.contains("\"server\":\"-\""), "{line}");

    // Weight and maintenance: in `show` and in the metrics.
    let (ok, out, err) = ctl(&sock, &format!("server weight web {b1} 0"));
    assert!(ok && out.contains("weight 0"), "{out}{err}");
    let (ok, out, err) = ctl(&sock, &format!("server maint web {b0}"));
    assert!(ok && out.contains("maint"), "{out}{err}");
    let show = json(&sock, "show");
    let server = |addr: &str| show["servers"].as_array().and_then(|l| l.iter().find(|s| s["server"] == addr).cloned());
    assert!(server(&b0).is_some_and(|s| s["admin"] == "maint" && s["weight"] == 1), "{show}");
    assert!(server(&b1).is_some_and(|s| s["admin"] == "enabled" && s["weight"] == 0), "{show}");
    wait_series(&s, &format!("strait_backend_weight{{pool=\"web\",server=\"{b1}\"}} 0"));
    wait_series(&s, &format!("strait_backend_weight{{pool=\"web\",server=\"{b0}\"}} 1"));
    wait_series(&s, &format!("strait_backend_admin_state{{pool=\"web\",server=\"{b0}\",state=\"maint\"}} 1"));
    wait_series(&s, &format!("strait_backend_admin_state{{pool=\"web\",server=\"{b0}\",state=\"enabled\"}} 0"));
    wait_series(&s, &format!("strait_backend_admin_state{{pool=\"web\",server=\"{b1}\",state=\"enabled\"}} 1"));

    // Kill the first page's session.
    let victim = seen[0];
    let (ok, out, err) = ctl(&sock, &format!("session kill 0 {victim}"));
    assert!(ok && out.contains(&format!("session {victim} on lcore 0 reset")), "{out}{err}");
    let line = s.strait.wait_for_log(&["\"target\":\"strait::access\"", "\"reason\":\"killed\""], Duration::from_secs(3));
    assert!(line.contains("\"ended_by\":\"proxy\"") && line.contains("\"phase\":\"data\""), "{line}");
    let left = json(&sock, "show connections");
    assert_eq!(left["shown_sessions"], 2, "{left}");
    assert!(left["connections"].as_array().is_some_and(|c| c.iter().all(|c| c["session"] != victim)), "{left}");
    let (ok, _, err) = ctl(&sock, &format!("session kill 0 {victim}"));
    assert!(!ok && err.contains(&format!("no session {victim} on lcore 0")), "{err}");

    // Room again, but no server to take it: one in maintenance, the other at weight 0.
    let o = s.client.exec("curl", &["-sS", "--max-time", "3", &url]);
    assert!(!o.status.success(), "served with no server available: {}", String::from_utf8_lossy(&o.stdout));
    let line = s.strait.wait_for_log(&["\"reason\":\"no_server\""], Duration::from_secs(3));
    assert!(line.contains("\"ended_by\":\"proxy\"") && line.contains("\"phase\":\"connect\""), "{line}");
    let (ok, _, err) = ctl(&sock, &format!("server enable web {b0}"));
    assert!(ok, "{err}");
    wait_series(&s, &format!("strait_backend_admin_state{{pool=\"web\",server=\"{b0}\",state=\"enabled\"}} 1"));
    let o = s.client.exec("curl", &["-sS", "--max-time", "3", &url]);
    assert!(o.status.success(), "served again once enabled: {}", String::from_utf8_lossy(&o.stderr));

    // The refused requests are counted.
    let text = scrape(&s);
    let errors = text
        .lines()
        .find_map(|l| l.strip_prefix("strait_admin_requests_total{result=\"error\"} "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(errors.is_some_and(|e| e >= 2.0), "limit 0 and a second kill were refused: {errors:?}");

    let (code, out, err) = finish(holder, Duration::from_secs(20));
    assert_eq!(code, Some(0), "client: {out} {err}");
    let states: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(states.iter().filter(|&&s| s == "reset").count(), 1, "one session reset: {out}");
    assert_eq!(states.iter().filter(|&&s| s == "open").count(), 2, "the others untouched: {out}");
    let status = s.strait.terminate(Duration::from_secs(40));
    assert!(status.success(), "{}", s.diagnostics());
}
