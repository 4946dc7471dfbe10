//! The metrics endpoint against the real Prometheus tools (Debian package `prometheus`,
//! installed by `deploy/install-deps.sh`):
//!
//! * `promtool check metrics` finds no problem in the rendered exposition;
//! * a real `prometheus` server scrapes [`strait::metrics::Server`] every second and its
//!   query API returns the expected series and values.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dataplane::app::proxy::{ListenerStats, ProxyStats, ServerStats};
use dataplane::dpdk::{Offloads, PortStats};
use dataplane::net::{DropReason, NetCounters};
use dataplane::tcp::Counters;
use strait::metrics::{
    granted_offload_names, render, LcoreCounters, LcoreSnapshot, MempoolSnapshot, NetSnapshot, PortSnapshot, PortXstats,
    Server, Snapshot, TcpSnapshot,
};

/// One lcore's proxy: listener `web` on pool `app` with one server; `k` scales the figures.
fn proxy_stats(k: u64) -> ProxyStats {
    let mut listener = ListenerStats {
        name: "web".into(),
        pool: "app".into(),
        active: k,
        total: 100 * k,
        refused_max_connections: k,
        bytes_in: 1000 * k,
        bytes_out: 50_000 * k,
        ..ListenerStats::default()
    };
    let mut server = ServerStats {
        pool: "app".into(),
        addr: Some("198.18.70.1:8080".parse().expect("addr")),
        active: k,
        attempts: 100 * k,
        connected: 99 * k,
        connect_timeout: k,
        bytes_in: 1000 * k,
        bytes_out: 50_000 * k,
        ..ServerStats::default()
    };
    for _ in 0..k {
        listener.connection_duration.observe(std::time::Duration::from_millis(20));
        server.connect_duration.observe(std::time::Duration::from_micros(400));
        server.connection_duration.observe(std::time::Duration::from_millis(19));
    }
    ProxyStats { listeners: vec![listener], servers: vec![server] }
}

/// A snapshot with every family populated: two lcores, one port, all counters.
fn synthetic() -> Snapshot {
    let mut net = NetCounters {
        rx_frames: 1000,
        rx_arp: 3,
        tx_frames: 900,
        ..NetCounters::default()
    };
    net.add_drops(DropReason::Ipv4BadChecksum, 7);
    net.add_drops(DropReason::WrongEthertype, 2);
    let tcp = |k: u64| Counters {
        active_opens: 5 * k,
        syncookies_sent: 2 * k,
        curr_estab: k,
        ..Counters::default()
    };
    let lcore = |id: u32| LcoreSnapshot {
        lcore: id,
        busy_cycles: 300,
        total_cycles: 1200,
        iterations: 50,
        rx_frames: 500,
        tx_frames: 450,
        tx_dropped_full: 1,
        tx_dropped_nombuf: 0,
    };
    Snapshot {
        start_time_seconds: 1_700_000_000.0,
        lcores: vec![lcore(1), lcore(2)],
        ports: vec![PortSnapshot {
            name: "wan".into(),
            stats: PortStats {
                ipackets: 1000,
                opackets: 900,
                ibytes: 64_000,
                obytes: 57_600,
                ..PortStats::default()
            },
            granted_offloads: granted_offload_names(&Offloads {
                tso: true,
                rx_cksum: true,
                ..Offloads::NONE
            }),
            link_up: Some(true),
            link_changes: 1,
        }],
        net: vec![
            NetSnapshot {
                port: "wan".into(),
                lcore: 1,
                counters: net.iter().collect(),
            },
            NetSnapshot {
                port: "wan".into(),
                lcore: 2,
                counters: net.iter().collect(),
            },
        ],
        tcp: vec![
            TcpSnapshot {
                lcore: 1,
                counters: tcp(1).iter().collect(),
                connections: 5,
                time_wait: 0,
                buffer_bytes: 0,
            },
            TcpSnapshot {
                lcore: 2,
                counters: tcp(2).iter().collect(),
                connections: 6,
                time_wait: 0,
                buffer_bytes: 0,
            },
        ],
        mempool: Some(MempoolSnapshot {
            in_use: 1024,
            available: 7168,
            size: 8192,
        }),
        proxy: vec![proxy_stats(1), proxy_stats(2)],
        lcore_counters: vec![
            LcoreCounters::from_stats(1, &dataplane::lcore::LcoreStats::default()),
            LcoreCounters::from_stats(2, &dataplane::lcore::LcoreStats::default()),
        ],
        port_xstats: vec![PortXstats {
            port: "wan".into(),
            xstats: vec![("rx_good_packets".into(), 1000), ("rx_q0_bytes".into(), 64_000)],
        }],
        lcore_passes: [1, 2]
            .into_iter()
            .map(|id| {
                let mut h = dataplane::app::proxy::Histogram::busy_pass();
                h.observe(dataplane::time::Duration::from_micros(20));
                h.observe(dataplane::time::Duration::from_millis(30));
                (id, h)
            })
            .collect(),
        backends: vec![dataplane::app::proxy::BackendHealth {
            pool: "app".into(),
            addr: Some("198.18.70.1:8080".parse().expect("addr")),
            up: true,
            checks_passed: 10,
            checks_failed: 1,
            went_down: 0,
            ejections: 0,
            ejected_lcores: 0,
            weight: 1,
            admin: dataplane::app::proxy::admin::AdminState::Enabled,
        }],
        ..Snapshot::default()
    }
}

/// Path of a Prometheus tool, or a failure that says how to get it.
fn tool(name: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("`{name}` not found: install the Debian package `prometheus` (deploy/install-deps.sh)");
}

#[test]
fn promtool_check_metrics_reports_no_problem() {
    let text = render(&synthetic());
    let mut child = Command::new(tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool output");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool failed ({}):\n{report}\n--- exposition ---\n{text}",
        out.status
    );
    assert!(
        report.trim().is_empty(),
        "promtool reported problems:\n{report}"
    );
}

/// The alerting rules and the Grafana dashboard in deploy/ (issue 16): `promtool check
/// rules` accepts the rules, `promtool test rules` fires each failure mode's alert, and
/// every `strait_*` metric the rules, their tests or the dashboard name is one Strait
/// renders (histogram series by their family), so none can silently watch nothing.
#[test]
fn alert_rules_and_dashboard_use_only_exported_metrics() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rules = repo.join("deploy/prometheus/strait-alerts.yml");
    let out = Command::new(tool("promtool")).args(["check", "rules"]).arg(&rules).output().expect("run promtool");
    assert!(
        out.status.success(),
        "promtool check rules:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Each failure mode's alert fires on series shaped as Strait exports them, and none on a
    // healthy appliance (pool exhaustion, stalled lcore, RX/TX drops, server down, link
    // down, refused reload): promtool's rule unit tests.
    let out = Command::new(tool("promtool"))
        .args(["test", "rules", "strait-alerts.test.yml"])
        .current_dir(repo.join("deploy/prometheus"))
        .output()
        .expect("run promtool test rules");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && report.contains("SUCCESS"), "promtool test rules:\n{report}");
    let tests = std::fs::read_to_string(repo.join("deploy/prometheus/strait-alerts.test.yml")).expect("rule tests");
    for alert in ["StraitMbufPoolLow", "StraitLcoreStalled", "StraitRxMissed", "StraitTxDrops", "StraitServerDown", "StraitLinkDown", "StraitReloadFailed"] {
        assert!(tests.contains(&format!("alertname: {alert}\n        exp_alerts:\n          - exp_labels")), "no firing test for {alert}");
    }
    // Families in the exposition of a snapshot with every family populated.
    let text = render(&synthetic());
    let families: std::collections::BTreeSet<String> =
        text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).map(str::to_string).collect();
    let exported = |name: &str| {
        families.contains(name)
            || ["_bucket", "_sum", "_count"].iter().any(|s| name.strip_suffix(s).is_some_and(|b| families.contains(b)))
    };
    let dashboard = std::fs::read_to_string(repo.join("deploy/grafana/strait-dashboard.json")).expect("dashboard");
    let alerts = std::fs::read_to_string(&rules).expect("rules");
    let mut named = 0;
    for (file, body) in [("strait-alerts.yml", &alerts), ("strait-alerts.test.yml", &tests), ("strait-dashboard.json", &dashboard)] {
        let mut rest = body.as_str();
        while let Some(i) = rest.find("strait_") {
            let tail = &rest[i..];
            let end = tail.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
            let name = &tail[..end];
            rest = &tail[end..];
            // Not a metric: the dashboard's uid/tag "strait", the job label value.
            if name.len() <= "strait_".len() {
                continue;
            }
            named += 1;
            assert!(exported(name), "{file} uses {name}, which Strait does not export (families: {families:?})");
        }
    }
    assert!(named >= 20, "only {named} metric references found");
}

/// A temporary directory and a `prometheus` process: killed and removed on drop, also
/// when an assertion fails.
struct Prometheus {
    child: Option<Child>,
    dir: PathBuf,
    addr: SocketAddr,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("strait-prom-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("data")).expect("temp dir");
        // Built before the process so that a failure below still removes the directory.
        let mut guard = Prometheus {
            child: None,
            dir,
            addr: free_port(),
        };
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: strait\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = guard.dir.join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write config");
        let log = std::fs::File::create(guard.dir.join("prometheus.log")).expect("log file");
        let log2 = log.try_clone().expect("log file");
        let child = Command::new(tool("prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--web.listen-address={}", guard.addr))
            .arg(format!(
                "--storage.tsdb.path={}",
                guard.dir.join("data").display()
            ))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("start prometheus");
        guard.child = Some(child);
        guard
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    /// The value of the single series `query` returns, once it returns one.
    fn query(&self, query: &str) -> Option<(String, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(query));
        let body = http_get(self.addr, &path)?;
        if !body.contains("\"status\":\"success\"") {
            return None;
        }
        // {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},"value":[1700000000.1,"42"]}]}}
        let at = body.find("\"value\":[")?;
        let rest = &body[at..];
        let open = rest.find(",\"")? + 2;
        let close = rest[open..].find('"')? + open;
        let value = rest[open..close].parse().ok()?;
        Some((body, value))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A tiny HTTP/1.0 GET (no chunked encoding); the body of a 200, else `None`.
fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    c.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    c.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?;
    (head.starts_with("HTTP/1.") && status == "200").then(|| body.to_string())
}

#[test]
fn real_prometheus_scrapes_the_endpoint() {
    let server = Server::start("127.0.0.1:0".parse().expect("addr"), Arc::new(synthetic))
        .expect("metrics server");
    let target = server.local_addr();
    let prom = Prometheus::start(target);

    // Series that must appear, with their values.
    let version = env!("CARGO_PKG_VERSION");
    let build_info = format!("strait_build_info{{version=\"{version}\",dpdk=\"22.11\"}}");
    let expected: &[(&str, f64)] = &[
        ("up{job=\"strait\"}", 1.0),
        ("strait_up", 1.0),
        (&build_info, 1.0),
        ("strait_start_time_seconds", 1_700_000_000.0),
        ("strait_lcore_busy_ratio{lcore=\"2\"}", 0.25),
        (
            "strait_lcore_cycles_total{lcore=\"1\",kind=\"all\"}",
            1200.0,
        ),
        ("strait_port_rx_bytes_total{port=\"wan\"}", 64_000.0),
        (
            "strait_port_offload_granted{port=\"wan\",offload=\"tso\"}",
            1.0,
        ),
        (
            "strait_port_offload_granted{port=\"wan\",offload=\"multi-seg\"}",
            0.0,
        ),
        (
            "strait_net_dropped_frames_total{port=\"wan\",reason=\"ipv4_bad_checksum\"}",
            14.0,
        ),
        ("strait_net_rx_frames_total{port=\"wan\"}", 2000.0),
        ("strait_tcp_active_opens_total", 15.0),
        ("strait_tcp_syncookies_sent_total", 6.0),
        ("strait_tcp_current_established", 3.0),
        ("strait_mempool_mbufs{state=\"in_use\"}", 1024.0),
        ("strait_mempool_capacity_mbufs", 8192.0),
        ("strait_tcp_connections", 11.0),
        ("strait_port_xstats_total{port=\"wan\",name=\"rx_good_packets\"}", 1000.0),
        ("strait_lcore_redirected_frames_total{lcore=\"2\"}", 0.0),
        ("strait_proxy_listener_connections{listener=\"web\",pool=\"app\"}", 3.0),
        ("strait_proxy_listener_connections_total{listener=\"web\",pool=\"app\"}", 300.0),
        (
            "strait_proxy_listener_refused_connections_total{listener=\"web\",reason=\"max_connections\"}",
            3.0,
        ),
        ("strait_proxy_listener_bytes_total{listener=\"web\",direction=\"out\"}", 150_000.0),
        ("strait_proxy_server_connections{pool=\"app\",server=\"198.18.70.1:8080\"}", 3.0),
        ("strait_proxy_server_connect_errors_total{server=\"198.18.70.1:8080\",reason=\"timeout\"}", 3.0),
        ("strait_proxy_server_bytes_total{server=\"198.18.70.1:8080\",direction=\"in\"}", 3000.0),
        (
            "strait_proxy_server_connect_duration_seconds_bucket{server=\"198.18.70.1:8080\",le=\"0.0005\"}",
            3.0,
        ),
        (
            "strait_proxy_server_connect_duration_seconds_bucket{server=\"198.18.70.1:8080\",le=\"0.00025\"}",
            0.0,
        ),
        ("strait_proxy_listener_connection_duration_seconds_count{listener=\"web\"}", 3.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    for &(query, want) in expected {
        let (body, got) = loop {
            if let Some(found) = prom.query(query) {
                break found;
            }
            assert!(
                Instant::now() < deadline,
                "{query} never appeared in Prometheus; its log:\n{}",
                prom.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        };
        assert_eq!(got, want, "{query}: {body}");
        if query.starts_with("strait_build_info") {
            assert!(body.contains("\"job\":\"strait\""), "{body}");
            assert!(
                body.contains(&format!("\"instance\":\"{target}\"")),
                "{body}"
            );
        }
    }
    // Prometheus reads the buckets as a histogram: every session took 20 ms, in the
    // (10 ms, 50 ms] bucket, so the median interpolates inside it.
    let (body, median) = prom
        .query("histogram_quantile(0.5, strait_proxy_listener_connection_duration_seconds_bucket{listener=\"web\"})")
        .expect("median session duration");
    assert!(median > 0.01 && median <= 0.05, "median {median}: {body}");
    // Prometheus's scrapes reached the server (counted by the server itself).
    let (_, scrapes) = prom
        .query("strait_metrics_scrapes_total")
        .expect("scrape counter");
    assert!(scrapes >= 1.0, "scrapes {scrapes}");
    drop(prom);
    server.shutdown();
}
