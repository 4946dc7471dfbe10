//! Tests of [`super::render`]: names, types, units, `_total`, labels, aggregation.

use std::collections::{BTreeMap, BTreeSet};

use dataplane::dpdk::PortStats;
use dataplane::net::{DropReason, NetCounters};
use dataplane::tcp::Counters;

use super::*;
use crate::metrics::snapshot::{
    HttpStats, LcoreCounters, LcoreSnapshot, MempoolSnapshot, NetSnapshot, PortSnapshot, PortXstats,
    TcpSnapshot,
};

/// A parsed exposition: `# TYPE` per family and `series -> value` per sample line.
struct Parsed {
    types: BTreeMap<String, String>,
    helps: BTreeSet<String>,
    samples: BTreeMap<String, f64>,
}

fn parse(text: &str) -> Parsed {
    let mut p = Parsed {
        types: BTreeMap::new(),
        helps: BTreeSet::new(),
        samples: BTreeMap::new(),
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, ty) = rest.split_once(' ').expect("TYPE line has a type");
            assert!(
                p.types.insert(name.to_string(), ty.to_string()).is_none(),
                "family {name} typed twice"
            );
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP line has text");
            assert!(!help.trim().is_empty(), "{name} has an empty help");
            p.helps.insert(name.to_string());
        } else if !line.is_empty() {
            let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
            let v: f64 = value.parse().expect("sample value is a number");
            assert!(
                p.samples.insert(series.to_string(), v).is_none(),
                "series {series} repeated"
            );
        }
    }
    p
}

fn family_of(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

fn labels_of(series: &str) -> Vec<(String, String)> {
    let Some((_, rest)) = series.split_once('{') else {
        return Vec::new();
    };
    let body = rest.strip_suffix('}').expect("labels end with }");
    body.split("\",")
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once("=\"").expect("label has =\"");
            (k.to_string(), v.trim_end_matches('"').to_string())
        })
        .collect()
}

fn net_counters(seed: u64) -> Vec<(&'static str, u64)> {
    let mut n = NetCounters {
        rx_frames: 100 * seed,
        rx_arp: 2 * seed,
        tx_frames: 50 * seed,
        ..NetCounters::default()
    };
    n.add_drops(DropReason::Ipv4BadChecksum, 3 * seed);
    n.add_drops(DropReason::NotForUs, seed);
    n.iter().collect()
}

fn tcp_counters(seed: u64) -> Vec<(&'static str, u64)> {
    Counters {
        active_opens: 10 * seed,
        passive_opens: 20 * seed,
        syncookies_sent: 5 * seed,
        challenge_acks: seed,
        delayed_acks: 7 * seed,
        curr_estab: 4 * seed,
        ..Counters::default()
    }
    .iter()
    .collect()
}

/// Two lcores, two ports, every net and TCP counter, a pool and some HTTP counts.
fn full() -> Snapshot {
    let lcore = |id: u32, k: u64| LcoreSnapshot {
        lcore: id,
        busy_cycles: 250 * k,
        total_cycles: 1000 * k,
        iterations: 9 * k,
        rx_frames: 11 * k,
        tx_frames: 12 * k,
        tx_dropped_full: 2 * k,
        tx_dropped_nombuf: 3 * k,
    };
    let stats = PortStats {
        ipackets: 1,
        opackets: 2,
        ibytes: 3,
        obytes: 4,
        imissed: 5,
        ierrors: 6,
        oerrors: 7,
        rx_nombuf: 8,
    };
    Snapshot {
        start_time_seconds: 1_700_000_000.5,
        lcores: vec![lcore(1, 1), lcore(2, 2)],
        ports: vec![
            PortSnapshot {
                name: "wan".into(),
                stats,
                granted_offloads: vec!["tso", "rx-cksum"],
                link_up: Some(true),
                link_changes: 2,
            },
            PortSnapshot {
                name: "lan".into(),
                stats: PortStats::default(),
                granted_offloads: vec![],
                link_up: Some(false),
                link_changes: 0,
            },
        ],
        net: vec![
            NetSnapshot {
                port: "wan".into(),
                lcore: 1,
                counters: net_counters(1),
            },
            NetSnapshot {
                port: "wan".into(),
                lcore: 2,
                counters: net_counters(2),
            },
            NetSnapshot {
                port: "lan".into(),
                lcore: 1,
                counters: net_counters(10),
            },
        ],
        tcp: vec![
            TcpSnapshot {
                lcore: 1,
                counters: tcp_counters(1),
                connections: 3,
                time_wait: 10,
                buffer_bytes: 4096,
            },
            TcpSnapshot {
                lcore: 2,
                counters: tcp_counters(2),
                connections: 4,
                time_wait: 20,
                buffer_bytes: 2048,
            },
        ],
        mempool: Some(MempoolSnapshot {
            in_use: 300,
            available: 700,
            size: 1000,
        }),
        http: HttpStats {
            connections: 4,
            scrapes: 3,
            rejected_not_found: 1,
            ..HttpStats::default()
        },
        proxy: vec![proxy::tests::proxy_stats(1), proxy::tests::proxy_stats(2)],
        backends: Vec::new(),
        lcore_counters: vec![
            LcoreCounters::from_stats(1, &dataplane::lcore::LcoreStats::default()),
            LcoreCounters::from_stats(2, &dataplane::lcore::LcoreStats::default()),
        ],
        port_xstats: vec![PortXstats { port: "wan".into(), xstats: vec![("rx_good_packets".into(), 1)] }],
        lcore_passes: vec![(1, passes(&[20, 30, 30_000])), (2, passes(&[5]))],
        log_dropped_lines: 7,
        reloads: (3, 1, 0),
        apps: vec![("app_accepted", 5), ("app_idle_timeouts", 2)],
        admin_requests: (7, 2),
    }
}

/// A busy-pass histogram with one observation per duration (microseconds).
fn passes(micros: &[u64]) -> dataplane::app::proxy::Histogram {
    let mut h = dataplane::app::proxy::Histogram::busy_pass();
    for &us in micros {
        h.observe(dataplane::time::Duration::from_micros(us));
    }
    h
}

fn rendered(snap: &Snapshot) -> Parsed {
    let (text, failures) = render_counting_failures(snap);
    assert_eq!(failures, 0, "registry refused something:\n{text}");
    parse(&text)
}

#[test]
fn every_family_has_help_type_prefix_and_counter_suffix() {
    let p = rendered(&full());
    assert!(
        p.types.len() > 40,
        "expected the full set of families, got {}",
        p.types.len()
    );
    for (name, ty) in &p.types {
        assert!(
            name.starts_with("strait_"),
            "{name} lacks the strait_ prefix"
        );
        assert!(p.helps.contains(name), "{name} has no HELP");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{name} is not snake case"
        );
        match ty.as_str() {
            "counter" => assert!(name.ends_with("_total"), "counter {name} lacks _total"),
            "gauge" => assert!(!name.ends_with("_total"), "gauge {name} ends in _total"),
            "histogram" => assert!(name.ends_with("_seconds"), "histogram {name} is not in seconds"),
            other => panic!("{name}: unexpected type {other}"),
        }
    }
    for series in p.samples.keys() {
        let family = family_of(series);
        let histogram_part = ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            family
                .strip_suffix(suffix)
                .is_some_and(|base| p.types.get(base).is_some_and(|t| t == "histogram"))
        });
        assert!(
            p.types.contains_key(family) || histogram_part,
            "{series} has no TYPE"
        );
    }
}

#[test]
fn labels_are_only_port_lcore_reason_and_closed_sets() {
    let p = rendered(&full());
    let allowed = [
        "port", "lcore", "reason", "kind", "state", "offload", "version", "dpdk", "listener",
        "pool", "server", "direction", "le", "name", "result",
    ];
    for series in p.samples.keys() {
        for (k, _) in labels_of(series) {
            assert!(
                allowed.contains(&k.as_str()),
                "{series}: label {k} not allowed"
            );
        }
    }
}

#[test]
fn process_families() {
    let p = rendered(&full());
    assert_eq!(p.samples["strait_up"], 1.0);
    let info = format!(
        "strait_build_info{{dpdk=\"22.11\",version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(p.samples[&info], 1.0);
    assert_eq!(p.types["strait_start_time_seconds"], "gauge");
    assert_eq!(p.samples["strait_start_time_seconds"], 1_700_000_000.5);
}

#[test]
fn lcore_families_carry_the_lcore_label() {
    let p = rendered(&full());
    assert_eq!(p.types["strait_lcore_busy_ratio"], "gauge");
    assert_eq!(p.samples["strait_lcore_busy_ratio{lcore=\"1\"}"], 0.25);
    assert_eq!(p.samples["strait_lcore_busy_ratio{lcore=\"2\"}"], 0.25);
    assert_eq!(
        p.samples["strait_lcore_cycles_total{kind=\"busy\",lcore=\"2\"}"],
        500.0
    );
    assert_eq!(
        p.samples["strait_lcore_cycles_total{kind=\"all\",lcore=\"2\"}"],
        2000.0
    );
    assert_eq!(p.samples["strait_lcore_iterations_total{lcore=\"1\"}"], 9.0);
    // Busy passes per lcore, cumulative buckets in seconds: lcore 1 had two passes within
    // 50 µs and one of 30 ms (the rings unpolled that long).
    assert_eq!(p.types["strait_lcore_busy_pass_seconds"], "histogram");
    let bucket = |lcore: u32, le: &str| p.samples[&format!("strait_lcore_busy_pass_seconds_bucket{{lcore=\"{lcore}\",le=\"{le}\"}}")];
    assert_eq!((bucket(1, "0.00001"), bucket(1, "0.00005"), bucket(1, "0.025"), bucket(1, "0.05")), (0.0, 2.0, 2.0, 3.0));
    assert_eq!(bucket(2, "0.00001"), 1.0);
    assert_eq!(p.samples["strait_lcore_busy_pass_seconds_count{lcore=\"1\"}"], 3.0);
    assert!((p.samples["strait_lcore_busy_pass_seconds_sum{lcore=\"1\"}"] - 0.03005).abs() < 1e-9);
    assert_eq!(p.samples["strait_lcore_rx_frames_total{lcore=\"2\"}"], 22.0);
    assert_eq!(p.samples["strait_lcore_tx_frames_total{lcore=\"1\"}"], 12.0);
    assert_eq!(
        p.samples["strait_lcore_tx_dropped_frames_total{lcore=\"2\",reason=\"ring_full\"}"],
        4.0
    );
    assert_eq!(
        p.samples["strait_lcore_tx_dropped_frames_total{lcore=\"2\",reason=\"no_mbuf\"}"],
        6.0
    );
}

#[test]
fn port_families_in_packets_and_bytes_with_offload_gauges() {
    let p = rendered(&full());
    let expect = [
        ("rx_packets", 1.0),
        ("tx_packets", 2.0),
        ("rx_bytes", 3.0),
        ("tx_bytes", 4.0),
        ("rx_missed", 5.0),
        ("rx_errors", 6.0),
        ("tx_errors", 7.0),
        ("rx_nombuf", 8.0),
    ];
    for (what, v) in expect {
        let family = format!("strait_port_{what}_total");
        assert_eq!(p.types[&family], "counter");
        assert_eq!(
            p.samples[&format!("{family}{{port=\"wan\"}}")],
            v,
            "{family}"
        );
        assert_eq!(
            p.samples[&format!("{family}{{port=\"lan\"}}")],
            0.0,
            "{family}"
        );
    }
    assert_eq!(p.types["strait_port_offload_granted"], "gauge");
    for &o in KNOWN_OFFLOADS {
        let wan =
            p.samples[&format!("strait_port_offload_granted{{offload=\"{o}\",port=\"wan\"}}")];
        assert_eq!(
            wan,
            if o == "tso" || o == "rx-cksum" {
                1.0
            } else {
                0.0
            },
            "{o}"
        );
        let lan =
            p.samples[&format!("strait_port_offload_granted{{offload=\"{o}\",port=\"lan\"}}")];
        assert_eq!(lan, 0.0, "{o}");
    }
}

#[test]
fn net_drops_by_reason_and_events_summed_over_lcores() {
    let p = rendered(&full());
    let drop = |port: &str, reason: &str| {
        p.samples
            [&format!("strait_net_dropped_frames_total{{port=\"{port}\",reason=\"{reason}\"}}")]
    };
    assert_eq!(drop("wan", "ipv4_bad_checksum"), 9.0); // 3 + 6 over two lcores
    assert_eq!(drop("wan", "not_for_us"), 3.0);
    assert_eq!(drop("lan", "ipv4_bad_checksum"), 30.0);
    // Every drop reason is present, and only as a reason.
    for r in DropReason::ALL {
        assert!(p.samples.contains_key(&format!(
            "strait_net_dropped_frames_total{{port=\"wan\",reason=\"{}\"}}",
            r.name()
        )));
        assert!(!p
            .types
            .contains_key(&format!("strait_net_{}_total", r.name())));
    }
    assert_eq!(p.samples["strait_net_rx_frames_total{port=\"wan\"}"], 300.0);
    assert_eq!(p.samples["strait_net_rx_arp_total{port=\"lan\"}"], 20.0);
    assert_eq!(p.samples["strait_net_tx_frames_total{port=\"wan\"}"], 150.0);
    assert_eq!(p.samples["strait_net_arp_evicted_total{port=\"wan\"}"], 0.0);
}

#[test]
fn tcp_counters_summed_with_linux_names_and_established_gauge() {
    let p = rendered(&full());
    assert_eq!(p.samples["strait_tcp_active_opens_total"], 30.0);
    assert_eq!(p.samples["strait_tcp_passive_opens_total"], 60.0);
    assert_eq!(p.samples["strait_tcp_syncookies_sent_total"], 15.0);
    assert_eq!(p.samples["strait_tcp_challenge_ack_total"], 3.0);
    assert_eq!(p.samples["strait_tcp_delayed_acks_total"], 21.0);
    assert_eq!(p.samples["strait_tcp_in_segs_total"], 0.0);
    assert_eq!(p.types["strait_tcp_current_established"], "gauge");
    assert_eq!(p.samples["strait_tcp_current_established"], 12.0);
    assert_eq!(p.types["strait_tcp_connections"], "gauge");
    assert_eq!(p.samples["strait_tcp_connections"], 7.0);
    assert_eq!(p.types["strait_tcp_time_wait"], "gauge");
    assert_eq!(p.samples["strait_tcp_time_wait"], 30.0);
    assert_eq!(p.types["strait_tcp_buffer_bytes"], "gauge");
    assert_eq!(p.samples["strait_tcp_buffer_bytes"], 6144.0);
    assert_eq!(p.types["strait_app_idle_timeouts_total"], "counter");
    assert_eq!(p.samples["strait_app_idle_timeouts_total"], 2.0);
    assert_eq!(p.samples["strait_app_accepted_total"], 5.0);
    assert!(!p.types.keys().any(|n| n.contains("curr_estab")));
    // One family per Linux counter (less CurrEstab and TCPOrphans, gauges), none lost to a
    // name clash.
    let tcp_counters = p
        .types
        .iter()
        .filter(|(n, t)| n.starts_with("strait_tcp_") && *t == "counter")
        .count();
    assert_eq!(tcp_counters, Counters::default().iter().count() - 2, "all but the two levels");
    assert_eq!(p.types["strait_tcp_orphans"], "gauge");
}

#[test]
fn mempool_and_http_families() {
    let p = rendered(&full());
    assert_eq!(p.samples["strait_mempool_mbufs{state=\"in_use\"}"], 300.0);
    assert_eq!(
        p.samples["strait_mempool_mbufs{state=\"available\"}"],
        700.0
    );
    assert_eq!(p.samples["strait_mempool_capacity_mbufs"], 1000.0);
    assert_eq!(p.samples["strait_metrics_http_connections_total"], 4.0);
    assert_eq!(p.samples["strait_metrics_scrapes_total"], 3.0);
    assert_eq!(p.samples["strait_log_dropped_lines_total"], 7.0);
    assert_eq!(p.samples["strait_reloads_total{result=\"ok\"}"], 3.0);
    assert_eq!(p.samples["strait_reloads_total{result=\"rejected\"}"], 1.0);
    assert_eq!(p.samples["strait_admin_requests_total{result=\"ok\"}"], 7.0);
    assert_eq!(p.samples["strait_admin_requests_total{result=\"error\"}"], 2.0);
    assert_eq!(p.samples["strait_port_link_up{port=\"wan\"}"], 1.0);
    assert_eq!(p.samples["strait_port_link_up{port=\"lan\"}"], 0.0);
    assert_eq!(p.samples["strait_port_link_changes_total{port=\"wan\"}"], 2.0);
    assert_eq!(
        p.samples["strait_metrics_http_rejected_total{reason=\"not_found\"}"],
        1.0
    );
    assert_eq!(
        p.samples["strait_metrics_http_rejected_total{reason=\"too_large\"}"],
        0.0
    );
}

#[test]
fn empty_snapshot_still_says_up_and_leaves_out_empty_families() {
    let p = rendered(&Snapshot::default());
    assert_eq!(p.samples["strait_up"], 1.0);
    assert!(p.types.contains_key("strait_build_info"));
    for prefix in [
        "strait_lcore_",
        "strait_port_",
        "strait_net_",
        "strait_tcp_",
        "strait_mempool_",
    ] {
        assert!(
            !p.types.keys().any(|n| n.starts_with(prefix)),
            "{prefix} families without data"
        );
    }
}

#[test]
fn hostile_port_names_are_escaped_not_fatal() {
    let mut snap = full();
    snap.ports[0].name = "we\"ird\\port\nname".into();
    let (text, failures) = render_counting_failures(&snap);
    assert_eq!(failures, 0);
    assert!(
        text.contains(r#"strait_port_rx_packets_total{port="we\"ird\\port\nname"} 1"#),
        "{text}"
    );
}

#[test]
fn unknown_granted_offload_is_shown_as_granted() {
    let mut snap = full();
    snap.ports[1].granted_offloads = vec!["lro"];
    let p = rendered(&snap);
    assert_eq!(
        p.samples["strait_port_offload_granted{offload=\"lro\",port=\"lan\"}"],
        1.0
    );
}

#[test]
fn snake_case_of_linux_names() {
    let cases = [
        ("ActiveOpens", "strait_tcp_active_opens_total"),
        ("SyncookiesSent", "strait_tcp_syncookies_sent_total"),
        ("TCPChallengeACK", "strait_tcp_challenge_ack_total"),
        (
            "TCPChallengeACKLimited",
            "strait_tcp_challenge_ack_limited_total",
        ),
        ("DelayedACKs", "strait_tcp_delayed_acks_total"),
        ("PAWSEstabRejected", "strait_tcp_paws_estab_rejected_total"),
        ("TCPOFOQueue", "strait_tcp_ofo_queue_total"),
        ("TCPMTUPProbes", "strait_tcp_mtup_probes_total"),
        ("TCPPMTUReductions", "strait_tcp_pmtu_reductions_total"),
        ("TCPICMPBadMTU", "strait_tcp_icmp_bad_mtu_total"),
        ("InCsumErrors", "strait_tcp_in_csum_errors_total"),
        ("OutOfWindowIcmps", "strait_tcp_out_of_window_icmps_total"),
        ("IcmpInErrors", "strait_tcp_icmp_in_errors_total"),
        ("TCPMTUPBlackHole", "strait_tcp_mtup_black_hole_total"),
        ("TCPDSACKRecv", "strait_tcp_dsack_recv_total"),
        ("TCPTimeouts", "strait_tcp_timeouts_total"),
        ("TCP", "strait_tcp_tcp_total"),
    ];
    for (linux, metric) in cases {
        assert_eq!(tcp_metric_name(linux), metric, "{linux}");
    }
    assert_eq!(snake_case("rx_frames"), "rx_frames");
    assert_eq!(snake_case("Ipv4Bad-x"), "ipv4_bad_x");
}

#[test]
fn every_tcp_counter_gets_a_distinct_valid_name() {
    let names: Vec<String> = Counters::default()
        .iter()
        .map(|(n, _)| tcp_metric_name(n))
        .collect();
    let distinct: BTreeSet<&String> = names.iter().collect();
    assert_eq!(distinct.len(), names.len(), "{names:?}");
    for n in &names {
        assert!(!n.contains("__") && !n.contains("_tcp_tcp_"), "{n}");
    }
}
