//! End to end: two lcores on devices without usable RSS (software flow steering).
//!
//! * `net_tap` with two queue pairs: the kernel spreads flows over the queues by its own
//!   hash, strait's owner of a flow is the lcore its symmetric Toeplitz hash names; kernel
//!   clients' connections to the echo service land on both lcores, mis-steered frames are
//!   handed to their owner (counted) and every byte comes back intact.
//! * The proxy with a `net_af_packet` backend port (two queue pairs, the kernel's packet
//!   fanout) and nginx in a namespace: backend connections are opened by both lcores;
//!   return traffic that the fanout puts on the other lcore is handed to the opening lcore
//!   and counted (`redirected_active_open_frames`), and every request succeeds — no backend
//!   connection is reset by a lcore that does not know it.
//!
//! Both lcores busy-poll on a 2-core machine: the tests are short. Subnets 198.18.96-98.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{ping_until_reply, require_root, unique, Netns, Strait};

const DPDK_TWO_LCORES: &str = r#"
[log]
format = "json"
level = "info"

[dpdk]
lcores = [0, 1]
memory_mode = "no-huge"
memory_mb = 512
mbufs = 16383
mbuf_cache = 256
"#;

/// The JSON number `key` in the line carrying `message`.
fn log_field(log: &str, message: &str, key: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(message))?;
    let rest = line.split(&format!("\"{key}\":")).nth(1)?;
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Stops strait, checks a clean exit with the pool back at its start value, prints the
/// per-lcore lines and returns the log.
fn stop(strait: &mut Strait) -> String {
    sleep(Duration::from_millis(500));
    let status = strait.terminate(Duration::from_secs(30));
    let log = strait.log_text();
    assert!(status.success(), "strait exited with {status}:\n{log}");
    assert!(log.contains("strait stopped"), "no clean shutdown:\n{log}");
    for line in log
        .lines()
        .filter(|l| l.contains("final") || l.contains("steering"))
    {
        eprintln!("{line}");
    }
    let start = log_field(&log, "mbuf pool usage", "in_use_at_start");
    let end = log_field(&log, "mbuf pool usage", "in_use");
    assert!(
        start.is_some() && start == end,
        "mbufs leaked: {start:?} at start, {end:?} at the end:\n{log}"
    );
    log
}

/// Hand-offs are conserved: every frame one lcore redirected (and every ARP copy it
/// shared) was received by the other, none dropped.
fn check_handoffs(log: &str) -> (u64, u64) {
    let sum = |name: &str| {
        (0..2)
            .map(|l| common::lcore_counter(log, "final lcore counters", l, name))
            .sum::<u64>()
    };
    let (sent, received) = (sum("redirected_frames"), sum("redirect_received_frames"));
    assert_eq!(
        sum("redirect_dropped_frames"),
        0,
        "hand-offs dropped:\n{log}"
    );
    assert_eq!(
        sent + sum("arp_shared_frames"),
        received,
        "every redirected frame reaches its owner:\n{log}"
    );
    (sent, sum("redirected_active_open_frames"))
}

#[test]
fn echo_connections_spread_over_two_lcores_without_rss() {
    if !require_root("echo_connections_spread_over_two_lcores_without_rss") {
        return;
    }
    let t0 = Instant::now();
    let ns = Netns::new("sste");
    let tap = unique("sst");
    let toml = format!(
        "{DPDK_TWO_LCORES}
[[port]]
name = \"p0\"
device = \"net_tap0,iface={tap}\"
ipv4 = \"198.18.96.2/24\"
mtu = 1500

[[app]]
kind = \"echo\"
listen = \"198.18.96.2:7\"
"
    );
    let mut strait = Strait::start(&ns, &toml);
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    let mode = strait.wait_for_log(&["flow steering", "lcores\":2"], Duration::from_secs(1));
    assert!(
        mode.contains("software"),
        "net_tap has no usable RSS here: {mode}"
    );
    ns.ip(&["addr", "add", "198.18.96.1/24", "dev", &tap]);
    ns.ip(&["link", "set", &tap, "up"]);
    assert!(
        ping_until_reply(&ns, "198.18.96.2", Duration::from_secs(20)),
        "no ping reply:\n{}",
        strait.log_text()
    );
    let out = ns.exec("python3", &["-c", common::MANY_ECHOES, "198.18.96.2", "7", "300", "50"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "client failed: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ok=300 errors=0"),
        "not every connection was echoed intact: {text}\n{}",
        strait.log_text()
    );
    let log = stop(&mut strait);
    let accepted: Vec<u64> = (0..2)
        .map(|l| common::lcore_counter(&log, "final tcp counters", l, "app_accepted"))
        .collect();
    assert_eq!(
        accepted.iter().sum::<u64>(),
        300,
        "every connection accepted once: {accepted:?}\n{log}"
    );
    assert!(
        accepted.iter().all(|&n| n >= 50),
        "both lcores accepted connections: {accepted:?}"
    );
    for l in 0..2 {
        assert_eq!(
            common::lcore_counter(&log, "final tcp counters", l, "app_closed"),
            accepted[l as usize],
            "lcore {l} closed all"
        );
    }
    let (redirected, _) = check_handoffs(&log);
    // The kernel's hash and ours disagree on about half the flows: their first frames
    // (at least the SYN) were handed over.
    assert!(
        redirected >= 50,
        "only {redirected} frames redirected for 300 connections:\n{log}"
    );
    eprintln!(
        "echo over two lcores: {accepted:?} accepted, {redirected} frames redirected, {:?}",
        t0.elapsed()
    );
}

/// nginx in a namespace (own config and files, `daemon off`); killed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    fn start(ns: &Netns, listen: &str) -> Nginx {
        let dir = std::env::temp_dir().join(unique("strait-steer-nginx-"));
        fs::create_dir_all(dir.join("www")).expect("nginx dirs");
        let page: Vec<u8> = (0..4096).map(|i| b'a' + (i % 26) as u8).collect();
        fs::write(dir.join("www/index.html"), page).expect("index");
        let d = dir.display();
        let conf = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 4096; }}\nhttp {{ access_log off; client_body_temp_path {d}/body; \
             proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; \
             scgi_temp_path {d}/scgi; server {{ listen {listen}; root {d}/www; }} }}\n"
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("nginx.conf");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "nginx", "-p"])
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let mut n = Nginx { child, dir };
        let start = Instant::now();
        while !String::from_utf8_lossy(&ns.exec("ss", &["-ltn"]).stdout).contains(listen) {
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!("nginx exited ({status})");
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx does not listen on {listen}"
            );
            sleep(Duration::from_millis(50));
        }
        n
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn proxy_backend_return_traffic_reaches_the_opening_lcore() {
    if !require_root("proxy_backend_return_traffic_reaches_the_opening_lcore") {
        return;
    }
    let t0 = Instant::now();
    let client = Netns::new("sstp");
    let backend = Netns::new("sstb");
    let (va, vb, tap) = (unique("ssa"), unique("ssb"), unique("ssp"));
    client.ip(&[
        "link",
        "add",
        &va,
        "type",
        "veth",
        "peer",
        "name",
        &vb,
        "netns",
        &backend.name,
    ]);
    client.ip(&["link", "set", &va, "up"]);
    for (ns, dev) in [(&client, &va), (&backend, &vb)] {
        let o = ns.exec(
            "ethtool",
            &[
                "-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
            ],
        );
        assert!(
            o.status.success(),
            "ethtool: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    backend.ip(&["addr", "add", "198.18.98.1/24", "dev", &vb]);
    backend.ip(&["link", "set", &vb, "up"]);
    let nginx = Nginx::start(&backend, "198.18.98.1:8080");
    let toml = format!(
        "{DPDK_TWO_LCORES}
[[port]]
name = \"front\"
device = \"net_tap0,iface={tap}\"
ipv4 = \"198.18.97.2/24\"
mtu = 1500

[[port]]
name = \"back\"
device = \"net_af_packet0,iface={va},qpairs=2\"
ipv4 = \"198.18.98.2/24\"
mtu = 1500

[[listener]]
name = \"web\"
listen = \"198.18.97.2:80\"
pool = \"web\"
max_connections = 10000
connect_timeout_ms = 3000
idle_timeout_ms = 60000

[[pool]]
name = \"web\"
algorithm = \"round_robin\"
servers = [{{ addr = \"198.18.98.1:8080\", weight = 1 }}]
"
    );
    let mut strait = Strait::start(&client, &toml);
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    client.ip(&["addr", "add", "198.18.97.1/24", "dev", &tap]);
    client.ip(&["link", "set", &tap, "up"]);
    assert!(
        ping_until_reply(&client, "198.18.97.2", Duration::from_secs(20)),
        "no ping (front):\n{}",
        strait.log_text()
    );
    assert!(
        ping_until_reply(&backend, "198.18.98.2", Duration::from_secs(20)),
        "no ping (back):\n{}",
        strait.log_text()
    );
    // One backend connection per request.
    let out = client.exec(
        "wrk",
        &[
            "-t1",
            "-c8",
            "-d2s",
            "-H",
            "Connection: close",
            "http://198.18.97.2:80/index.html",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("{text}");
    assert!(out.status.success(), "wrk failed: {text}");
    assert!(
        !text.contains("Non-2xx"),
        "non-2xx responses:\n{text}\n{}",
        strait.log_text()
    );
    let requests: u64 = text
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(requests >= 50, "only {requests} requests in 2 s:\n{text}");
    let log = stop(&mut strait);
    drop(nginx);
    let opens: Vec<u64> = (0..2)
        .map(|l| common::lcore_counter(&log, "final tcp counters", l, "ActiveOpens"))
        .collect();
    assert!(
        opens.iter().all(|&n| n >= 10),
        "both lcores opened backend connections: {opens:?}\n{log}"
    );
    assert!(
        opens.iter().sum::<u64>() >= requests,
        "a backend connection per request: {opens:?} for {requests}"
    );
    // A backend frame reaching an lcore that did not open the connection would be
    // answered with a RST (no such connection) and fail its request; only the client
    // connections wrk cuts when its 2 s are up end in resets.
    let resets: u64 = (0..2)
        .map(|l| common::lcore_counter(&log, "final tcp counters", l, "OutRsts"))
        .sum();
    assert!(resets <= 16, "{resets} RSTs sent:\n{log}");
    let (redirected, active) = check_handoffs(&log);
    // No RSS on either port: the fanout hash of af_packet puts about half of the backend
    // flows' frames on the other lcore, and they are handed to the opening one.
    assert!(
        active > 0,
        "no backend return frame needed a hand-off (fanout should spread them):\n{log}"
    );
    eprintln!(
        "proxy over two lcores: {requests} requests, active opens {opens:?}, {redirected} frames redirected \
         ({active} of them backend return traffic), {resets} RSTs, {:?}",
        t0.elapsed()
    );
}

/// utime + stime of process `pid`, in seconds (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing ')'.
    let rest = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<u64> = rest
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    let hz: f64 = String::from_utf8_lossy(
        &Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default(),
    )
    .trim()
    .parse()
    .unwrap_or(100.0);
    ticks as f64 / hz
}

#[test]
fn idle_two_lcores_do_not_burn_their_cores() {
    if !require_root("idle_two_lcores_do_not_burn_their_cores") {
        return;
    }
    let ns = Netns::new("ssti");
    let tap = unique("ssi");
    let toml = format!(
        "{DPDK_TWO_LCORES}
[[port]]
name = \"p0\"
device = \"net_tap0,iface={tap}\"
ipv4 = \"198.18.99.2/24\"
mtu = 1500

[[app]]
kind = \"echo\"
listen = \"198.18.99.2:7\"
"
    );
    let mut strait = Strait::start(&ns, &toml);
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    ns.ip(&["addr", "add", "198.18.99.1/24", "dev", &tap]);
    ns.ip(&["link", "set", &tap, "up"]);
    assert!(
        ping_until_reply(&ns, "198.18.99.2", Duration::from_secs(20)),
        "no ping reply:\n{}",
        strait.log_text()
    );
    // `ip netns exec` execs strait in place: the child's pid is strait's.
    let pid = strait.child.id();
    sleep(Duration::from_millis(500));
    let before = cpu_seconds(pid);
    sleep(Duration::from_secs(3));
    let used = cpu_seconds(pid) - before;
    eprintln!("idle strait (2 lcores): {used:.2} s of CPU in 3 s");
    assert!(
        used < 0.3,
        "idle strait used {used:.2} s of CPU in 3 s (limit: 10% of one core)"
    );
    // Idle, not asleep: it still answers at once.
    assert!(
        ping_until_reply(&ns, "198.18.99.2", Duration::from_secs(2)),
        "no ping reply after idling"
    );
    stop(&mut strait);
}
