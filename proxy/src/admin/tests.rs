//! [`Operator`] against a real lcore command queue served by a thread that runs
//! [`dataplane::command::poll`] over a TCP engine with the proxy as its application (no network: the
//! commands, replies, reload from a file and the admin socket are what is tested).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use dataplane::app::Apps;
use dataplane::command::{channel, poll};
use dataplane::tcp::{Engine, HeapPayload, TcpConfig};
use dataplane::time::Instant;

use super::server::AdminServer;
use super::*;

const CONFIG: &str = r#"
[[port]]
name = "tap0"
device = "net_tap0,iface=strait0"
ipv4 = "198.18.80.2/24"
[[listener]]
name = "web"
listen = "198.18.80.2:80"
pool = "web"
[[pool]]
name = "web"
servers = [{ addr = "198.18.80.10:8080" }, { addr = "198.18.80.11:8080" }]
"#;

/// A fake lcore: polls its queue until `stop`.
struct Lcore {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Lcore {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn setup(dir: &std::path::Path, toml: &str) -> (Arc<Operator>, Lcore, PathBuf) {
    let path = dir.join("strait.toml");
    std::fs::write(&path, toml).unwrap_or_else(|e| panic!("{e}"));
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let (handle, inbox) = channel(0);
    let lcore = serve(inbox, cfg.proxy_spec());
    let ops = Arc::new(Operator::new(path.clone(), cfg, vec![handle], Arc::new(AtomicBool::new(false))));
    (ops, lcore, path)
}

/// A thread serving `inbox` as an lcore running the proxy with `spec`.
fn serve(inbox: dataplane::command::Inbox<dataplane::app::proxy::admin::ProxyCommand>, spec: dataplane::app::proxy::ProxySpec) -> Lcore {
    serve_feeding(inbox, spec, None)
}

/// As [`serve`]; with `frame`, the lcore offers that frame to its capture tap (when it has
/// one) every loop iteration, as if it received it on port 0.
fn serve_feeding(mut inbox: dataplane::command::Inbox<dataplane::app::proxy::admin::ProxyCommand>, spec: dataplane::app::proxy::ProxySpec, frame: Option<Vec<u8>>) -> Lcore {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let t0 = std::time::Instant::now();
        let now = || Instant::from_nanos(u64::try_from(t0.elapsed().as_nanos()).unwrap_or(0) + 1);
        let mut engine = Engine::<HeapPayload>::new(TcpConfig::default(), [7; 16], now());
        let mut apps = Apps::new();
        assert_eq!(apps.start_proxy(&mut engine, &spec), Ok(()));
        while !s.load(Ordering::Relaxed) {
            poll(&mut inbox, &mut engine, apps.proxy_mut(), now());
            if let (Some(tap), Some(f)) = (inbox.capture_mut(), &frame) {
                use dataplane::capture::{Direction, Origin};
                for _ in 0..64 {
                    let origin = Origin { port: 0, queue: 0, direction: Direction::Rx };
                    tap.offer(origin, now(), dataplane::capture::unix_nanos(), f.len(), std::iter::once(f.as_slice()));
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    Lcore { stop, thread: Some(thread) }
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strait-admin-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{e}"));
    d
}

#[test]
fn show_and_server_admin_state_through_the_queue() {
    let dir = temp_dir("show");
    let (ops, _lcore, _) = setup(&dir, CONFIG);
    let info = ops.handle("show info").unwrap_or_else(|e| panic!("{e}"));
    for key in ["version=", "pid=", "uptime_s=", "lcores=0 ", "sessions=0 ", "draining=no ", "reloads_ok=", "rss_kb="] {
        assert!(info.contains(key), "show info has {key}: {info}");
    }
    assert!(info.contains(&format!("pid={} ", std::process::id())), "{info}");
    let out = ops.handle("show").unwrap_or_else(|e| panic!("{e}"));
    assert!(out.contains("listener=web listen=198.18.80.2:80 pool=web state=open active=0 total=0"), "{out}");
    assert!(
        out.contains("pool=web server=198.18.80.10:8080 weight=1 admin=enabled health=up ejected=0 check_lcore=- configured=yes"),
        "{out}"
    );
    let r = ops.handle("server drain web 198.18.80.11:8080");
    assert_eq!(r, Ok("server 198.18.80.11:8080 in pool web: drain".to_string()));
    assert!(ops.handle("show").is_ok_and(|o| o.contains("server=198.18.80.11:8080 weight=1 admin=drain")));
    assert!(ops.handle("server drain web 198.18.80.99:8080").is_err_and(|e| e.contains("no server 198.18.80.99:8080")));
    assert!(ops.handle("server drain web nonsense").is_err_and(|e| e.contains("is not an address and port")));
    assert!(ops.handle("frobnicate").is_err_and(|e| e.contains("unknown request")));
    assert!(ops.handle("show connections").is_ok_and(|o| o.contains("shown_sessions=0 limit=1000 more=no\n") && o.contains("connections:\n")));
    assert!(ops.handle("show connections limit 5 after 0:3").is_ok_and(|o| o.contains("shown_sessions=0 limit=5 more=no\n")));
    assert!(ops.handle("show connections limit x").is_err_and(|e| e.contains("limit \"x\": not a number of sessions")));
    // Maintenance, weight, kill.
    assert_eq!(ops.handle("server maint web 198.18.80.10:8080"), Ok("server 198.18.80.10:8080 in pool web: maint".into()));
    assert!(ops.handle("show").is_ok_and(|o| o.contains("server=198.18.80.10:8080 weight=1 admin=maint")));
    assert_eq!(ops.handle("server weight web 198.18.80.10:8080 7"), Ok("server 198.18.80.10:8080 in pool web: weight 7".into()));
    assert!(ops.handle("show").is_ok_and(|o| o.contains("server=198.18.80.10:8080 weight=7 admin=maint")));
    assert!(ops.handle("server weight web 198.18.80.10:8080 1001").is_err_and(|e| e.contains("not a weight (0..=1000)")));
    assert!(ops.handle("server weight web 198.18.80.99:8080 2").is_err_and(|e| e.contains("no server 198.18.80.99:8080")));
    assert_eq!(ops.handle("server kill web 198.18.80.10:8080"), Ok("sessions of server 198.18.80.10:8080 in pool web reset: 0".into()));
    assert!(ops.handle("session kill 0 99").is_err_and(|e| e.contains("no session 99 on lcore 0")));
    assert!(ops.handle("session kill 7 1").is_err_and(|e| e.contains("no lcore 7")));
    assert!(ops.handle("session kill x 1").is_err_and(|e| e.contains("not an lcore id")));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn reload_applies_a_valid_file_and_rejects_an_invalid_one() {
    let dir = temp_dir("reload");
    let (ops, _lcore, path) = setup(&dir, CONFIG);
    // The outcome counters (`strait_reloads_total{result}`, `show info`) are per process:
    // other tests may add to them meanwhile, never take away.
    let (ok0, rejected0, _) = reload_counts();
    let added = CONFIG.replace(
        "{ addr = \"198.18.80.11:8080\" }",
        "{ addr = \"198.18.80.11:8080\" }, { addr = \"198.18.80.12:8080\", weight = 5 }",
    );
    std::fs::write(&path, &added).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ops.handle("reload"), Ok("reloaded: 1 listener(s), 1 pool(s), 3 server(s)".to_string()));
    assert!(ops.handle("show").is_ok_and(|o| o.contains("server=198.18.80.12:8080 weight=5")));
    // Invalid: the reason names the key; the running configuration stays.
    std::fs::write(&path, added.replace("weight = 5", "weight = 0")).unwrap_or_else(|e| panic!("{e}"));
    let err = ops.handle("reload").err().unwrap_or_default();
    assert!(err.contains("pool[0].servers[2].weight: 0 is out of range"), "{err}");
    // Needs a restart: refused, naming the section.
    std::fs::write(
        &path,
        added.replace("198.18.80.2/24", "198.18.80.3/24").replace("198.18.80.2:80", "198.18.80.3:80"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let err = ops.handle("reload").err().unwrap_or_default();
    assert!(err.contains("port: changed; this needs a restart"), "{err}");
    assert!(ops.handle("show").is_ok_and(|o| o.contains("server=198.18.80.12:8080 weight=5")), "still the valid one");
    let (ok1, rejected1, _) = reload_counts();
    assert!(ok1 > ok0 && rejected1 >= rejected0 + 2, "one applied, two rejected: {ok0}->{ok1}, {rejected0}->{rejected1}");
    let info = ops.handle("show info").unwrap_or_default();
    assert!(info.contains(&format!("reloads_rejected={rejected1}")) || rejected1 < reload_counts().1, "{info}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_reload_an_lcore_cannot_take_in_time_is_rolled_back_everywhere() {
    let dir = temp_dir("atomic");
    let path = dir.join("strait.toml");
    std::fs::write(&path, CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let (h0, inbox0) = channel(0);
    let _lcore0 = serve(inbox0, cfg.proxy_spec());
    // Lcore 1 takes no command until later: stuck.
    let (h1, inbox1) = channel(1);
    let spec = cfg.proxy_spec();
    let ops = Operator::new(path.clone(), cfg, vec![h0, h1], Arc::new(AtomicBool::new(false)));
    let added = CONFIG.replace(
        "{ addr = \"198.18.80.11:8080\" }",
        "{ addr = \"198.18.80.11:8080\" }, { addr = \"198.18.80.12:8080\", weight = 5 }",
    );
    std::fs::write(&path, &added).unwrap_or_else(|e| panic!("{e}"));
    let err = ops.handle("reload").err().unwrap_or_default();
    assert!(err.contains("lcore 1: no answer within"), "{err}");
    assert!(err.contains("rolled back on every lcore: the running configuration stays"), "{err}");
    assert!(reload_counts().2 > 0, "counted as failed");
    // Lcore 1 wakes up: it takes the prepare, then the abort. Both lcores run the old
    // configuration.
    let _lcore1 = serve(inbox1, spec);
    let show = ops.handle("show").unwrap_or_else(|e| panic!("{e}"));
    assert!(show.contains("lcores=2 ") && !show.contains("198.18.80.12"), "nothing changed anywhere: {show}");
    // Once every lcore answers, the same file applies everywhere.
    assert_eq!(ops.handle("reload"), Ok("reloaded: 1 listener(s), 1 pool(s), 3 server(s)".to_string()));
    let show = ops.handle("show").unwrap_or_else(|e| panic!("{e}"));
    assert!(show.contains("server=198.18.80.12:8080 weight=5"), "{show}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_admin_socket_answers_ctl_requests() {
    let dir = temp_dir("sock");
    let (ops, _lcore, _) = setup(&dir, CONFIG);
    let sock = dir.join("admin.sock");
    let o = Arc::clone(&ops);
    let server = AdminServer::start(&sock, Arc::new(move |l: &str| o.handle(l))).unwrap_or_else(|e| panic!("{e}"));
    let mode = std::fs::metadata(&sock).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600));
    let words = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
    let (ok0, err0) = super::server::request_counts();
    let out = ctl::request(&sock, &words("show"), Duration::from_secs(5));
    assert!(out.as_ref().is_ok_and(|o| o.contains("listener=web")), "{out:?}");
    let err = ctl::request(&sock, &words("server enable web 1.2.3.4:5"), Duration::from_secs(5));
    assert!(err.is_err_and(|e| e.contains("no server")));
    let err = ctl::request(&sock, &words("show connections limit many"), Duration::from_secs(5));
    assert!(err.is_err_and(|e| e.contains("not a number of sessions")));
    // Counted by answer (`strait_admin_requests_total{result}`; other tests' servers may
    // add to the process-wide counts meanwhile, never take away).
    let (ok1, err1) = super::server::request_counts();
    assert!(ok1 > ok0 && err1 >= err0 + 2, "ok {ok0}->{ok1}, error {err0}->{err1}");
    // A second server on the same socket is refused while this one answers.
    let again = AdminServer::start(&sock, Arc::new(|_: &str| Ok(String::new())));
    assert!(again.is_err());
    server.shutdown();
    assert!(!sock.exists(), "the socket file is removed");
    assert!(ctl::request(&sock, &words("show"), Duration::from_secs(1)).is_err_and(|e| e.contains("connecting")));
    let _ = std::fs::remove_dir_all(dir);
}

/// A capture ends by itself at its size bound (`max-mb`) and its time bound (`seconds`),
/// the file no bigger than the bound plus one frame, and says which bound ended it.
#[test]
fn a_capture_ends_at_its_size_and_time_bounds() {
    let dir = temp_dir("capture");
    let path = dir.join("strait.toml");
    std::fs::write(&path, CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let ports = vec!["tap0".to_string()];
    let (h, inbox) = channel(0);
    let _lcore = serve_feeding(inbox, cfg.proxy_spec(), Some(vec![0xab; 1500]));
    let file = dir.join("size.pcapng");
    let words = format!("{} max-mb 1 frames 1000000 rate 1000000", file.display());
    let req = capture::parse(&words.split(' ').collect::<Vec<_>>(), &ports).unwrap_or_else(|e| panic!("{e}"));
    let session = capture::Session::start(req, &ports, std::slice::from_ref(&h)).unwrap_or_else(|e| panic!("{e}"));
    let start = std::time::Instant::now();
    while !session.finished() {
        assert!(start.elapsed() < Duration::from_secs(10), "no end at 1 MiB: {}", session.status().render(true));
        std::thread::sleep(Duration::from_millis(10));
    }
    let done = session.stop();
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    assert_eq!(done.ended, "max-mb", "{}", done.render(false));
    assert!((1 << 20..(1 << 20) + 1600).contains(&size), "file of {size} bytes for max-mb 1");
    assert_eq!(done.bytes, size, "the summary counts what the file holds");

    // Nothing to capture on queue 1 (the lcore offers queue 0): the time bound ends it.
    let file = dir.join("time.pcapng");
    let words = format!("{} port tap0 queue 1 seconds 1", file.display());
    let req = capture::parse(&words.split(' ').collect::<Vec<_>>(), &ports).unwrap_or_else(|e| panic!("{e}"));
    let session = capture::Session::start(req, &ports, std::slice::from_ref(&h)).unwrap_or_else(|e| panic!("{e}"));
    let start = std::time::Instant::now();
    while !session.finished() {
        assert!(start.elapsed() < Duration::from_secs(5), "no end after 1 s");
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = start.elapsed();
    let done = session.stop();
    assert_eq!((done.ended.as_str(), done.frames), ("seconds", 0), "{}", done.render(false));
    assert!(took >= Duration::from_millis(900), "ended after {took:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A server's line in `show` over two lcores: one health (the verdict every lcore reads),
/// the lcores ejecting it, the lcore checking it; never "partial".
#[test]
fn show_gives_one_health_per_server_over_lcores() {
    use dataplane::app::proxy::admin::{HealthState, LcoreView, ServerView};
    let server = ServerView {
        pool: "web".into(),
        addr: "198.18.80.10:8080".parse().unwrap_or_else(|e| panic!("{e}")),
        weight: 1,
        admin: AdminState::Enabled,
        health: HealthState::Down,
        ejected: false,
        checking: false,
        configured: true,
        active: 1,
        attempts: 3,
        failed: 1,
    };
    let views = [
        LcoreView { lcore: 0, servers: vec![ServerView { ejected: true, ..server.clone() }], ..LcoreView::default() },
        LcoreView { lcore: 1, servers: vec![ServerView { checking: true, ..server.clone() }], ..LcoreView::default() },
    ];
    let text = super::show::render(&views, None);
    assert!(
        text.contains("server=198.18.80.10:8080 weight=1 admin=enabled health=down ejected=1 check_lcore=1 configured=yes active=2 attempts=6 failed=2"),
        "{text}"
    );
    let json = crate::admin::ctl::to_json(&text);
    assert_eq!(json["servers"][0]["check_lcore"], 1, "{json}");
    assert!(!text.contains("partial"));
}
