//! [`Ops`] against a real lcore command queue served by a thread that runs
//! [`dataplane::control::poll`] over a TCP engine with the proxy as its application (no network: the
//! commands, replies, reload from a file and the admin socket are what is tested).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use dataplane::app::Apps;
use dataplane::control::{channel, poll};
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

fn setup(dir: &std::path::Path, toml: &str) -> (Arc<Ops>, Lcore, PathBuf) {
    let path = dir.join("strait.toml");
    std::fs::write(&path, toml).unwrap_or_else(|e| panic!("{e}"));
    let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let (handle, inbox) = channel(0);
    let lcore = serve(inbox, cfg.proxy_spec());
    let ops = Arc::new(Ops::new(path.clone(), cfg, vec![handle], Arc::new(AtomicBool::new(false))));
    (ops, lcore, path)
}

/// A thread serving `inbox` as an lcore running the proxy with `spec`.
fn serve(mut inbox: dataplane::control::Inbox<dataplane::app::proxy::admin::ProxyCommand>, spec: dataplane::app::proxy::ProxySpec) -> Lcore {
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
    assert!(ops.handle("server drain web nonsense").is_err_and(|e| e.contains("not an IPv4 address and port")));
    assert!(ops.handle("frobnicate").is_err_and(|e| e.contains("unknown request")));
    assert!(ops.handle("show connections").is_ok_and(|o| o.contains("connections:\n")));
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
    let ops = Ops::new(path.clone(), cfg, vec![h0, h1], Arc::new(AtomicBool::new(false)));
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
    let out = ctl::request(&sock, &words("show"), Duration::from_secs(5));
    assert!(out.as_ref().is_ok_and(|o| o.contains("listener=web")), "{out:?}");
    let err = ctl::request(&sock, &words("server enable web 1.2.3.4:5"), Duration::from_secs(5));
    assert!(err.is_err_and(|e| e.contains("no server")));
    // A second server on the same socket is refused while this one answers.
    let again = AdminServer::start(&sock, Arc::new(|_: &str| Ok(String::new())));
    assert!(again.is_err());
    server.shutdown();
    assert!(!sock.exists(), "the socket file is removed");
    assert!(ctl::request(&sock, &words("show"), Duration::from_secs(1)).is_err_and(|e| e.contains("connecting")));
    let _ = std::fs::remove_dir_all(dir);
}

/// `show connections` says which lcores' lists were cut at
/// [`dataplane::app::proxy::admin::MAX_CONNECTIONS_SHOWN`], and `ctl --json` keeps that as a section.
#[test]
fn a_cut_connection_list_says_so() {
    use dataplane::app::proxy::admin::{ConnView, LcoreView, MAX_CONNECTIONS_SHOWN};
    let conn = ConnView {
        session: 1,
        listener: "web".into(),
        side: "client",
        local: "198.18.0.2:80".parse().unwrap_or_else(|e| panic!("{e}")),
        remote: "198.18.0.1:40000".parse().unwrap_or_else(|e| panic!("{e}")),
        state: "ESTABLISHED".into(),
        cwnd: 14600,
        srtt: None,
        bytes_received: 0,
        bytes_acked: 0,
    };
    let full = LcoreView { lcore: 1, sessions: 4321, connections: vec![conn.clone(); MAX_CONNECTIONS_SHOWN], ..LcoreView::default() };
    let small = LcoreView { lcore: 2, sessions: 1, connections: vec![conn], ..LcoreView::default() };
    let text = super::render(&[full, small], true);
    assert!(text.contains("truncated:\n  lcore=1 shown=1000 sessions=4321 limit=1000\n"), "{}", &text[text.len().saturating_sub(300)..]);
    assert!(!text.contains("lcore=2 shown="), "lcore 2 was not cut");
    let json = crate::admin::ctl::to_json(&text);
    assert_eq!(json["truncated"][0]["sessions"], 4321);
    assert_eq!(json["connections"].as_array().map(Vec::len), Some(MAX_CONNECTIONS_SHOWN + 1));
    // Without the connection list nothing is said.
    assert!(!super::render(&[], true).contains("truncated"));
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
    let text = render(&views, false);
    assert!(
        text.contains("server=198.18.80.10:8080 weight=1 admin=enabled health=down ejected=1 check_lcore=1 configured=yes active=2 attempts=6 failed=2"),
        "{text}"
    );
    let json = crate::admin::ctl::to_json(&text);
    assert_eq!(json["servers"][0]["check_lcore"], 1, "{json}");
    assert!(!text.contains("partial"));
}
