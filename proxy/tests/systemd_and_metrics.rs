//! End to end: a running `strait` talks to systemd over a real `NOTIFY_SOCKET` datagram
//! socket (READY once its port is up, WATCHDOG=1 while its lcores run, STOPPING on
//! SIGTERM), and serves Prometheus metrics that `promtool check metrics` accepts and
//! whose values follow what the data plane did (pings answered).

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{ping_until_reply, require_root, unique, Netns, Strait};

fn recv_until(sock: &UnixDatagram, needle: &str, timeout: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while start.elapsed() < timeout {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = msg.contains(needle);
            seen.push(msg);
            if done {
                return seen;
            }
        }
    }
    panic!("no notification with {needle:?} within {timeout:?}; got {seen:?}");
}

fn scrape(ns: &Netns, port: u16) -> String {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let script = "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())";
    let out = ns.exec("python3", &["-c", script, &url]);
    assert!(out.status.success(), "scrape failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit(' ').next()).and_then(|v| v.parse().ok())
}

#[test]
fn notify_socket_and_metrics_endpoint() {
    if !require_root("notify_socket_and_metrics_endpoint") {
        return;
    }
    let ns = Netns::new("stsd");
    let ifname = unique("sdt");
    let dir = std::env::temp_dir().join(unique("strait-notify-"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind NOTIFY_SOCKET");
    sock.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let metrics_port = 9100 + (std::process::id() % 500) as u16;
    let toml = format!(
        r#"
[log]
format = "json"
[dpdk]
lcores = [0]
memory_mode = "no-huge"
memory_mb = 256
mbufs = 4095
mbuf_cache = 128
[[port]]
name = "p0"
device = "net_tap0,iface={ifname}"
ipv4 = "198.18.6.2/24"
[metrics]
listen = "127.0.0.1:{metrics_port}"
"#
    );
    let sock_str = sock_path.display().to_string();
    let mut strait =
        Strait::start_with_env(&ns, &toml, &[("NOTIFY_SOCKET", &sock_str), ("WATCHDOG_USEC", "400000")]);
    let ready = recv_until(&sock, "READY=1", Duration::from_secs(30));
    // READY comes only after the port is up. Log lines reach the file through the log
    // writer thread, in the order they were emitted: "strait ready" is logged just before
    // READY is sent, so once it is in the file "port up" must be before it.
    let text = {
        strait.wait_for_log(&["strait ready"], Duration::from_secs(5));
        strait.log_text()
    };
    let (up, ready_line) = (text.find("port up"), text.find("strait ready"));
    assert!(up.is_some() && up < ready_line, "READY before the port was up: {ready:?}\n{text}");
    recv_until(&sock, "WATCHDOG=1", Duration::from_secs(5));
    recv_until(&sock, "WATCHDOG=1", Duration::from_secs(5));

    ns.ip(&["addr", "add", "198.18.6.1/24", "dev", &ifname]);
    ns.ip(&["link", "set", &ifname, "up"]);
    assert!(ping_until_reply(&ns, "198.18.6.2", Duration::from_secs(20)), "no echo reply:\n{}", strait.log_text());
    let out = ns.exec("ping", &["-c", "3", "-i", "0.2", "198.18.6.2"]);
    assert!(out.status.success());
    // Counters are published every 100 ms.
    std::thread::sleep(Duration::from_millis(300));

    let text = scrape(&ns, metrics_port);
    assert_eq!(value(&text, "strait_up"), Some(1.0), "{text}");
    assert!(text.contains("strait_build_info{"), "{text}");
    assert!(value(&text, "strait_port_rx_packets_total{port=\"p0\"}").unwrap_or(0.0) >= 4.0, "{text}");
    assert!(value(&text, "strait_lcore_busy_ratio{lcore=\"0\"}").is_some(), "{text}");
    assert!(text.contains("strait_port_offload_granted{offload=\"tso\",port=\"p0\"} 1"), "{text}");
    assert!(text.contains("strait_mempool_mbufs{state=\"in_use\"}"), "{text}");
    // rte_eth_xstats of the net_tap port, read at scrape time, and the lcore's other counters.
    assert!(value(&text, "strait_port_xstats_total{name=\"rx_good_packets\",port=\"p0\"}").unwrap_or(0.0) >= 4.0, "{text}");
    assert!(value(&text, "strait_lcore_redirected_frames_total{lcore=\"0\"}").is_some(), "{text}");
    assert!(text.contains("strait_tcp_"), "{text}");
    let pings = text
        .lines()
        .find(|l| l.starts_with("strait_net_") && l.contains("icmp_echo_reply"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert!(pings.unwrap_or(0.0) >= 4.0, "echo replies not counted:\n{text}");

    // promtool (Debian's prometheus package) accepts the exposition as it is.
    let file = dir.join("metrics.txt");
    std::fs::write(&file, &text).expect("write metrics");
    let check = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", file.display()))
        .output()
        .expect("run promtool");
    assert!(
        check.status.success() && check.stdout.is_empty() && check.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    let status = strait.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit {status}:\n{}", strait.log_text());
    recv_until(&sock, "STOPPING=1", Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Copies of the shipped units in a new directory, pointing at this build's binary and the
/// repository's hugepage script instead of the installed paths (`systemd-analyze` requires
/// the programs a unit names to exist); nothing else in the units changes.
fn unit_copies() -> (std::path::PathBuf, Vec<String>) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = std::env::temp_dir().join(unique("strait-units-"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = repo.join("deploy/setup-hugepages.sh").canonicalize().expect("setup-hugepages.sh");
    let mut paths = Vec::new();
    for unit in ["strait.service", "strait-hugepages.service"] {
        let text = std::fs::read_to_string(repo.join("deploy/systemd").join(unit)).expect("read unit");
        assert!(text.contains("/usr/bin/strait") || text.contains("/usr/lib/strait/"), "{unit} names its installed paths");
        let text = text
            .replace("/usr/bin/strait", env!("CARGO_BIN_EXE_strait"))
            .replace("/usr/lib/strait/setup-hugepages.sh", &script.display().to_string());
        let p = dir.join(unit);
        std::fs::write(&p, text).expect("write unit");
        paths.push(p.display().to_string());
    }
    (dir, paths)
}

/// `systemd-analyze verify` accepts the shipped units (every option known to systemd 252,
/// Debian 12's, and every program they run present) and the unit has what the operator
/// relies on: notify + watchdog, a reload that reports a refused configuration, no restart
/// loop on a configuration error. (PID 1 is not systemd on the test machines, so the
/// unit is checked here rather than started.)
#[test]
fn systemd_analyze_verify_accepts_the_units() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (dir, paths) = unit_copies();
    let out = std::process::Command::new("systemd-analyze").arg("verify").args(&paths).output().expect("run systemd-analyze");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let unit = std::fs::read_to_string(repo.join("deploy/systemd/strait.service")).expect("read unit");
    for needle in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/usr/bin/strait ctl reload",
        "RestartPreventExitStatus=2",
        "ExecStartPre=/usr/bin/strait check-config",
        "RuntimeDirectory=strait",
        "LimitMEMLOCK=infinity",
        "ProtectSystem=full",
    ] {
        assert!(unit.lines().any(|l| l.starts_with(needle)), "strait.service lacks {needle}");
    }
}

/// The hardening DPDK allows: `systemd-analyze security --offline` (systemd's own reading
/// of the unit) finds each option in effect, and the unit's overall exposure stays at or
/// below 4.5 (7.9 without them).
#[test]
fn the_unit_is_hardened_as_far_as_dpdk_allows() {
    let (dir, paths) = unit_copies();
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&paths[0])
        .output()
        .expect("run systemd-analyze security");
    let _ = std::fs::remove_dir_all(&dir);
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for setting in [
        "NoNewPrivileges=",
        "ProtectProc=",
        "PrivateMounts=",
        "ProtectControlGroups=",
        "ProtectKernelModules=",
        "ProtectKernelLogs=",
        "ProtectHostname=",
        "RestrictNamespaces=~net",
        "RestrictNamespaces=~user",
        "RestrictRealtime=",
        "RestrictSUIDSGID=",
        "LockPersonality=",
        "SystemCallArchitectures=",
        "SystemCallFilter=~@debug",
        "SystemCallFilter=~@mount",
        "SystemCallFilter=~@module",
        "SystemCallFilter=~@reboot",
        "UMask=",
        "NotifyAccess=",
        "CapabilityBoundingSet=~CAP_SYS_PTRACE",
        "CapabilityBoundingSet=~CAP_SYS_MODULE",
    ] {
        assert!(
            report.lines().any(|l| l.starts_with(&format!("\u{2713} {setting}"))),
            "systemd-analyze security does not see {setting} in effect:\n{report}"
        );
    }
    // "→ Overall exposure level for strait.service: 4.3 OK"
    let exposure = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for strait.service: ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    assert!(exposure <= 4.5, "exposure {exposure}:\n{report}");
}

/// The watchdog: WATCHDOG=1 keeps coming while the lcore loop runs and stops once it is
/// stalled (the test-only `--debug-stall-lcore-after` makes the lcore sleep for 10 s).
#[test]
fn watchdog_stops_while_an_lcore_is_stalled() {
    if !require_root("watchdog_stops_while_an_lcore_is_stalled") {
        return;
    }
    let ns = Netns::new("stwd");
    let ifname = unique("sdw");
    let dir = std::env::temp_dir().join(unique("strait-notify-"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sock_path = dir.join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind NOTIFY_SOCKET");
    sock.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let toml = format!(
        r#"
[log]
format = "json"
[dpdk]
lcores = [0]
memory_mode = "no-huge"
memory_mb = 256
mbufs = 4095
mbuf_cache = 128
[[port]]
name = "p0"
device = "net_tap0,iface={ifname}"
ipv4 = "198.18.88.2/25"
"#
    );
    let base = std::env::temp_dir().join(unique("strait-test-"));
    let config = base.with_extension("toml");
    let log = base.with_extension("log");
    std::fs::write(&config, toml).expect("config");
    let out = std::fs::File::create(&log).expect("log");
    let err = out.try_clone().expect("dup");
    let sock_str = sock_path.display().to_string();
    let child = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_strait"), "run", "--debug-stall-lcore-after", "3", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_str)
        .env("WATCHDOG_USEC", "400000")
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn strait");
    let mut strait = Strait { child, log, config };
    recv_until(&sock, "READY=1", Duration::from_secs(30));
    // Healthy: WATCHDOG=1 every 200 ms (half of WATCHDOG_USEC).
    let healthy = recv_until(&sock, "WATCHDOG=1", Duration::from_secs(2));
    assert!(healthy.iter().any(|m| m == "WATCHDOG=1"));
    strait.wait_for_log(&["debug: stalling this lcore on request"], Duration::from_secs(10));
    // The first check after the stall began still compares with a sample from before it
    // (and sends); once a check has seen no progress, nothing more is sent.
    strait.wait_for_log(&["withholding the systemd watchdog"], Duration::from_secs(5));
    let mut buf = [0u8; 256];
    while sock.recv(&mut buf).is_ok() {}
    let start = Instant::now();
    let mut during = Vec::new();
    while start.elapsed() < Duration::from_millis(2500) {
        if let Ok(n) = sock.recv(&mut buf) {
            during.push(format!("{:?} {}", start.elapsed(), String::from_utf8_lossy(&buf[..n])));
        }
    }
    assert!(
        !during.iter().any(|m| m.contains("WATCHDOG=1")),
        "WATCHDOG=1 sent while the lcore was stalled: {during:?}\n{}",
        strait.log_text()
    );
    // The stall ends after 10 s: the watchdog resumes.
    recv_until(&sock, "WATCHDOG=1", Duration::from_secs(10));
    let status = strait.terminate(Duration::from_secs(20));
    assert!(status.success(), "exit {status}:\n{}", strait.log_text());
    let _ = std::fs::remove_dir_all(&dir);
}
