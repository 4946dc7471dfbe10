//! [`render`]: a [`Snapshot`] as the Prometheus text exposition format (version 0.0.4),
//! built with the `prometheus` crate (a fresh [`Registry`] of typed metric families per
//! scrape, encoded by its [`TextEncoder`]).
//!
//! Naming follows the Prometheus conventions (<https://prometheus.io/docs/practices/naming/>):
//! everything under `strait_`, base units, `_total` on counters, and labels only for
//! `port`, `lcore`, `reason`, a few closed enumerations (`kind`, `state`, `offload`,
//! `direction`) and the configured proxy names (`listener`, `pool`, `server`), never
//! anything per client.
//!
//! | family | type | labels |
//! |---|---|---|
//! | `strait_up`, `strait_build_info{version,dpdk}`, `strait_start_time_seconds` | gauge | |
//! | `strait_lcore_busy_ratio` | gauge | `lcore` |
//! | `strait_lcore_cycles_total` | counter | `lcore`, `kind="busy"\|"all"` |
//! | `strait_lcore_busy_pass_seconds` (wall-clock duration of each loop pass that did work) | histogram | `lcore` |
//! | `strait_lcore_{iterations,rx_frames,tx_frames}_total` | counter | `lcore` |
//! | `strait_lcore_tx_dropped_frames_total` | counter | `lcore`, `reason="ring_full"\|"no_mbuf"` |
//! | `strait_port_{rx,tx}_{packets,bytes,errors}_total`, `strait_port_rx_{missed,nombuf}_total` | counter | `port` |
//! | `strait_port_offload_granted` | gauge 0/1 | `port`, `offload` |
//! | `strait_port_link_up`, `strait_port_link_changes_total` | gauge 0/1, counter | `port` |
//! | `strait_lcore_<name>_total` (other `LcoreStats` counters), `strait_port_xstats_total` (see [`lcore_port`]) | counter | `lcore`; `port`, `name` |
//! | `strait_net_dropped_frames_total` | counter | `port`, `reason` (a `DropReason` name) |
//! | `strait_net_<event>_total` (e.g. `strait_net_rx_arp_total`) | counter | `port` |
//! | `strait_tcp_<linux name in snake case>_total` (e.g. `strait_tcp_active_opens_total`) | counter | |
//! | `strait_tcp_current_established` | gauge | |
//! | `strait_tcp_orphans` | gauge | |
//! | `strait_tcp_connections` (any state) | gauge | |
//! | `strait_tcp_time_wait` (TIME-WAIT entries) | gauge | |
//! | `strait_tcp_buffer_bytes` (buffers the connections' queues pin) | gauge | |
//! | `strait_app_<counter>_total` (echo/sink services, e.g. `strait_app_idle_timeouts_total`) | counter | |
//! | `strait_mempool_mbufs` | gauge | `state="in_use"\|"available"` |
//! | `strait_mempool_capacity_mbufs` | gauge | |
//! | `strait_metrics_http_connections_total`, `strait_metrics_scrapes_total` | counter | |
//! | `strait_log_dropped_lines_total` | counter | |
//! | `strait_reloads_total` | counter | `result="ok"\|"rejected"\|"failed"` |
//! | `strait_admin_requests_total` | counter | `result="ok"\|"error"` |
//! | `strait_metrics_http_rejected_total` | counter | `reason` |
//! | `strait_proxy_listener_*`, `strait_proxy_server_*` (see [`proxy`]) | gauge, counter, histogram | `listener`, `pool`, `server`, ... |
//!
//! Net counters are summed over lcores per port, TCP counters over lcores: per-lcore
//! detail stays available through the `strait_lcore_*` families.
//!
//! Rendering never panics: a family the registry refuses (which would be a bug in the
//! names here, covered by the tests) is left out and logged.

use std::collections::BTreeMap;

use dataplane::net::DropReason;
use prometheus::core::Collector;
use prometheus::{GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use super::snapshot::{Snapshot, KNOWN_OFFLOADS};

/// The DPDK release the appliance is built against (`strait_build_info{dpdk}`).
pub const DPDK_VERSION: &str = "22.11";

/// The Linux counter rendered as the `strait_tcp_current_established` gauge (not a counter).
const CURR_ESTAB: &str = "CurrEstab";
/// The Linux-named level rendered as the `strait_tcp_orphans` gauge.
const ORPHANS: &str = "TCPOrphans";

/// The Prometheus text exposition of `snap`.
pub fn render(snap: &Snapshot) -> String {
    render_counting_failures(snap).0
}

/// [`render`], also returning how many families or samples the registry refused.
fn render_counting_failures(snap: &Snapshot) -> (String, u32) {
    let mut out = Families {
        reg: Registry::new(),
        failures: 0,
    };
    process(&mut out, snap);
    lcores(&mut out, snap);
    lcore_port::lcore_counters(&mut out, snap);
    ports(&mut out, snap);
    lcore_port::port_xstats(&mut out, snap);
    net(&mut out, snap);
    tcp(&mut out, snap);
    apps(&mut out, snap);
    proxy::proxy(&mut out, snap);
    health::health(&mut out, snap);
    mempool(&mut out, snap);
    http(&mut out, snap);

    let mut text = String::new();
    if let Err(e) = TextEncoder::new().encode_utf8(&out.reg.gather(), &mut text) {
        tracing::warn!(error = %e, "metrics: encoding failed");
        out.failures += 1;
    }
    (text, out.failures)
}

/// A registry being filled, with a count of what it refused.
struct Families {
    reg: Registry,
    failures: u32,
}

/// One sample: label values (in the family's label order) and value.
type Sample<V> = (Vec<String>, V);

impl Families {
    fn refused(&mut self, name: &str, e: prometheus::Error) {
        tracing::warn!(metric = name, error = %e, "metrics: family left out");
        self.failures += 1;
    }

    fn register<C: Collector + Clone + 'static>(&mut self, name: &str, c: &C) {
        if let Err(e) = self.reg.register(Box::new(c.clone())) {
            self.refused(name, e);
        }
    }

    /// A counter family; values of samples with equal labels add up.
    fn counter(&mut self, name: &str, help: &str, labels: &[&str], samples: Vec<Sample<u64>>) {
        let vec = match IntCounterVec::new(Opts::new(name, help), labels) {
            Ok(v) => v,
            Err(e) => return self.refused(name, e),
        };
        for (values, v) in samples {
            match vec.get_metric_with_label_values(&values) {
                Ok(c) => c.inc_by(v),
                Err(e) => self.refused(name, e),
            }
        }
        self.register(name, &vec);
    }

    /// A counter family without labels.
    fn counter1(&mut self, name: &str, help: &str, v: u64) {
        self.counter(name, help, &[], vec![(Vec::new(), v)]);
    }

    /// A gauge family; of samples with equal labels the last wins.
    fn gauge(&mut self, name: &str, help: &str, labels: &[&str], samples: Vec<Sample<f64>>) {
        let vec = match GaugeVec::new(Opts::new(name, help), labels) {
            Ok(v) => v,
            Err(e) => return self.refused(name, e),
        };
        for (values, v) in samples {
            match vec.get_metric_with_label_values(&values) {
                Ok(g) => g.set(v),
                Err(e) => self.refused(name, e),
            }
        }
        self.register(name, &vec);
    }

    /// A gauge family without labels.
    fn gauge1(&mut self, name: &str, help: &str, v: f64) {
        self.gauge(name, help, &[], vec![(Vec::new(), v)]);
    }
}

fn process(out: &mut Families, snap: &Snapshot) {
    out.gauge1(
        "strait_up",
        "1 while the strait process serves metrics.",
        1.0,
    );
    out.gauge(
        "strait_build_info",
        "Build information: the strait version and the DPDK release; always 1.",
        &["version", "dpdk"],
        vec![(
            vec![
                env!("CARGO_PKG_VERSION").to_string(),
                DPDK_VERSION.to_string(),
            ],
            1.0,
        )],
    );
    out.gauge1(
        "strait_start_time_seconds",
        "Start time of the strait process, seconds since the Unix epoch.",
        snap.start_time_seconds,
    );
}

/// `strait_lcore_busy_pass_seconds{lcore}`: how long the loop's passes that did work took.
fn lcore_passes(out: &mut Families, snap: &Snapshot) {
    out.histogram(
        "strait_lcore_busy_pass_seconds",
        "Wall-clock durations of the lcore loop's passes that did work, preemption included: how long its RX rings went unpolled meanwhile (an AF_XDP ring of 2 048 frames fills in 20 ms at 100 000 frames/s).",
        &["lcore"],
        snap.lcore_passes.iter().map(|(lcore, h)| (vec![lcore.to_string()], *h)).collect(),
    );
}

fn lcores(out: &mut Families, snap: &Snapshot) {
    let l = &snap.lcores;
    let id = |lcore: u32| lcore.to_string();
    out.gauge(
        "strait_lcore_busy_ratio",
        "Share of the lcore's TSC cycles spent in loop iterations that did work (0 to 1).",
        &["lcore"],
        l.iter()
            .map(|s| (vec![id(s.lcore)], s.busy_ratio()))
            .collect(),
    );
    out.counter(
        "strait_lcore_cycles_total",
        "TSC cycles of the lcore loop: kind=\"busy\" in iterations that did work, kind=\"all\" since it started.",
        &["lcore", "kind"],
        l.iter()
            .flat_map(|s| {
                [
                    (vec![id(s.lcore), "busy".to_string()], s.busy_cycles),
                    (vec![id(s.lcore), "all".to_string()], s.total_cycles),
                ]
            })
            .collect(),
    );
    if !snap.lcore_passes.is_empty() {
        lcore_passes(out, snap);
    }
    let per_lcore = |f: fn(&super::snapshot::LcoreSnapshot) -> u64| -> Vec<Sample<u64>> {
        l.iter().map(|s| (vec![id(s.lcore)], f(s))).collect()
    };
    out.counter(
        "strait_lcore_iterations_total",
        "Iterations of the lcore loop.",
        &["lcore"],
        per_lcore(|s| s.iterations),
    );
    out.counter(
        "strait_lcore_rx_frames_total",
        "Frames received on the lcore's RX queues.",
        &["lcore"],
        per_lcore(|s| s.rx_frames),
    );
    out.counter(
        "strait_lcore_tx_frames_total",
        "Frames the lcore handed to its TX queues.",
        &["lcore"],
        per_lcore(|s| s.tx_frames),
    );
    out.counter(
        "strait_lcore_tx_dropped_frames_total",
        "Frames the lcore could not send: reason=\"ring_full\" (TX ring stayed full), \"no_mbuf\" (mbuf pool empty).",
        &["lcore", "reason"],
        l.iter()
            .flat_map(|s| {
                [
                    (vec![id(s.lcore), "ring_full".to_string()], s.tx_dropped_full),
                    (vec![id(s.lcore), "no_mbuf".to_string()], s.tx_dropped_nombuf),
                ]
            })
            .collect(),
    );
}

fn ports(out: &mut Families, snap: &Snapshot) {
    type Field = fn(&dataplane::dpdk::PortStats) -> u64;
    let fields: [(&str, &str, Field); 8] = [
        (
            "strait_port_rx_packets_total",
            "Packets received by the port (rte_eth_stats.ipackets).",
            |s| s.ipackets,
        ),
        (
            "strait_port_tx_packets_total",
            "Packets sent by the port (rte_eth_stats.opackets).",
            |s| s.opackets,
        ),
        (
            "strait_port_rx_bytes_total",
            "Bytes received by the port (rte_eth_stats.ibytes).",
            |s| s.ibytes,
        ),
        (
            "strait_port_tx_bytes_total",
            "Bytes sent by the port (rte_eth_stats.obytes).",
            |s| s.obytes,
        ),
        (
            "strait_port_rx_missed_total",
            "Packets the port dropped for lack of RX descriptors (rte_eth_stats.imissed).",
            |s| s.imissed,
        ),
        (
            "strait_port_rx_errors_total",
            "Erroneous packets received (rte_eth_stats.ierrors).",
            |s| s.ierrors,
        ),
        (
            "strait_port_tx_errors_total",
            "Packets the port failed to send (rte_eth_stats.oerrors).",
            |s| s.oerrors,
        ),
        (
            "strait_port_rx_nombuf_total",
            "RX mbuf allocation failures of the port (rte_eth_stats.rx_nombuf).",
            |s| s.rx_nombuf,
        ),
    ];
    for (name, help, f) in fields {
        let samples = snap
            .ports
            .iter()
            .map(|p| (vec![p.name.clone()], f(&p.stats)))
            .collect();
        out.counter(name, help, &["port"], samples);
    }
    let link: Vec<Sample<f64>> = snap
        .ports
        .iter()
        .filter_map(|p| p.link_up.map(|up| (vec![p.name.clone()], if up { 1.0 } else { 0.0 })))
        .collect();
    out.gauge("strait_port_link_up", "1 while the port's link is up, 0 while down (checked every second).", &["port"], link);
    let changes: Vec<Sample<u64>> = snap.ports.iter().map(|p| (vec![p.name.clone()], p.link_changes)).collect();
    out.counter("strait_port_link_changes_total", "Link up/down transitions seen since start.", &["port"], changes);
    let mut offloads = Vec::new();
    for p in &snap.ports {
        for &o in KNOWN_OFFLOADS {
            let on = p.granted_offloads.contains(&o);
            offloads.push((
                vec![p.name.clone(), o.to_string()],
                if on { 1.0 } else { 0.0 },
            ));
        }
        // A name outside the known list is still shown as granted.
        for &o in p
            .granted_offloads
            .iter()
            .filter(|o| !KNOWN_OFFLOADS.contains(o))
        {
            offloads.push((vec![p.name.clone(), o.to_string()], 1.0));
        }
    }
    out.gauge(
        "strait_port_offload_granted",
        "1 if the device granted the offload to the port (wanted and supported), else 0.",
        &["port", "offload"],
        offloads,
    );
}

fn is_drop_reason(name: &str) -> bool {
    DropReason::ALL.iter().any(|r| r.name() == name)
}

fn net(out: &mut Families, snap: &Snapshot) {
    // port -> reason -> sum, and event -> port -> sum; BTreeMaps keep the output stable.
    let mut drops: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut events: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for n in &snap.net {
        for &(name, v) in &n.counters {
            let slot = if is_drop_reason(name) {
                drops.entry((n.port.as_str(), name)).or_default()
            } else {
                events
                    .entry(name)
                    .or_default()
                    .entry(n.port.as_str())
                    .or_default()
            };
            *slot = slot.saturating_add(v);
        }
    }
    out.counter(
        "strait_net_dropped_frames_total",
        "Frames or packets the link/network layer discarded, by reason (dataplane::net::DropReason), summed over lcores.",
        &["port", "reason"],
        drops.into_iter().map(|((p, r), v)| (vec![p.to_string(), r.to_string()], v)).collect(),
    );
    for (event, per_port) in events {
        let name = format!("strait_net_{}_total", snake_case(event));
        let help = format!("Link/network layer event counter {event} (dataplane::net::NetCounters), summed over lcores.");
        let samples = per_port
            .into_iter()
            .map(|(p, v)| (vec![p.to_string()], v))
            .collect();
        out.counter(&name, &help, &["port"], samples);
    }
}

fn tcp(out: &mut Families, snap: &Snapshot) {
    // metric name -> (Linux names, sum over lcores)
    let mut sums: BTreeMap<String, (Vec<&str>, u64)> = BTreeMap::new();
    let mut established: Option<u64> = None;
    let mut orphans: u64 = 0;
    let mut connections: u64 = 0;
    let mut time_wait: u64 = 0;
    let mut buffer_bytes: u64 = 0;
    for t in &snap.tcp {
        connections = connections.saturating_add(t.connections);
        time_wait = time_wait.saturating_add(t.time_wait);
        buffer_bytes = buffer_bytes.saturating_add(t.buffer_bytes);
        for &(linux, v) in &t.counters {
            if linux == CURR_ESTAB {
                established = Some(established.unwrap_or(0).saturating_add(v));
                continue;
            }
            if linux == ORPHANS {
                orphans = orphans.saturating_add(v);
                continue;
            }
            let e = sums.entry(tcp_metric_name(linux)).or_default();
            if !e.0.contains(&linux) {
                e.0.push(linux);
            }
            e.1 = e.1.saturating_add(v);
        }
    }
    for (name, (linux, v)) in sums {
        let help = format!(
            "TCP counter {} (Linux netstat name), summed over lcores.",
            linux.join("+")
        );
        out.counter1(&name, &help, v);
    }
    if let Some(v) = established {
        out.gauge1(
            "strait_tcp_current_established",
            "TCP connections currently in ESTABLISHED or CLOSE-WAIT (Linux CurrEstab), summed over lcores.",
            v as f64,
        );
    }
    if !snap.tcp.is_empty() {
        out.gauge1(
            "strait_tcp_orphans",
            "TCP connections the application closed that are still sending or closing (bounded by [tcp] max_orphans per lcore), summed over lcores.",
            orphans as f64,
        );
        out.gauge1(
            "strait_tcp_connections",
            "TCP connections in the engines, in any state from SYN-RECEIVED to LAST-ACK (TIME-WAIT is kept apart, as compact entries), summed over lcores.",
            connections as f64,
        );
        out.gauge1(
            "strait_tcp_time_wait",
            "Compact TIME-WAIT entries in the engines (bounded by [tcp] max_tw_buckets per lcore; Linux /proc/net/sockstat \"tw\"), summed over lcores.",
            time_wait as f64,
        );
        out.gauge1(
            "strait_tcp_buffer_bytes",
            "Buffer bytes (mbufs, counted whole) the connections' receive, out-of-order and send queues pin (Linux tcp_memory_allocated, /proc/net/sockstat \"mem\"), summed over lcores.",
            buffer_bytes as f64,
        );
    }
}

/// `strait_app_<counter>_total`: the echo and sink services' counters, summed over lcores.
fn apps(out: &mut Families, snap: &Snapshot) {
    for &(name, v) in &snap.apps {
        let help = format!("Echo/sink service counter {name} (dataplane::app::AppCounters), summed over lcores.");
        out.counter1(&format!("strait_{}_total", snake_case(name)), &help, v);
    }
}

fn mempool(out: &mut Families, snap: &Snapshot) {
    let Some(m) = snap.mempool else { return };
    out.gauge(
        "strait_mempool_mbufs",
        "Mbufs of the packet pool: state=\"in_use\" taken and not returned, \"available\" free (per-lcore caches included).",
        &["state"],
        vec![(vec!["in_use".to_string()], m.in_use as f64), (vec!["available".to_string()], m.available as f64)],
    );
    out.gauge1(
        "strait_mempool_capacity_mbufs",
        "Mbufs the packet pool was created with.",
        m.size as f64,
    );
}

fn http(out: &mut Families, snap: &Snapshot) {
    out.counter1(
        "strait_log_dropped_lines_total",
        "Log lines (access log included) dropped because stderr was too slow and the log writer's queue was full.",
        snap.log_dropped_lines,
    );
    let (ok, rejected, failed) = snap.reloads;
    out.counter(
        "strait_reloads_total",
        "Configuration reloads (SIGHUP, strait ctl reload) by result: ok applied on every lcore, rejected refused before anything changed, failed not applied by an lcore.",
        &["result"],
        vec![(vec!["ok".into()], ok), (vec!["rejected".into()], rejected), (vec!["failed".into()], failed)],
    );
    let (ok, error) = snap.admin_requests;
    out.counter(
        "strait_admin_requests_total",
        "Admin API requests (strait ctl) by answer: ok, or error (an unknown or malformed request, a failed command).",
        &["result"],
        vec![(vec!["ok".into()], ok), (vec!["error".into()], error)],
    );
    let h = &snap.http;
    out.counter1(
        "strait_metrics_http_connections_total",
        "Connections accepted by the metrics HTTP server.",
        h.connections,
    );
    out.counter1(
        "strait_metrics_scrapes_total",
        "Requests for /metrics answered with 200.",
        h.scrapes,
    );
    let reasons = [
        ("connection_limit", h.rejected_connection_limit),
        ("timeout", h.rejected_timeout),
        ("not_found", h.rejected_not_found),
        ("method", h.rejected_method),
        ("bad_request", h.rejected_bad_request),
        ("too_large", h.rejected_too_large),
        ("version", h.rejected_version),
    ];
    out.counter(
        "strait_metrics_http_rejected_total",
        "Connections or requests the metrics HTTP server refused, by reason.",
        &["reason"],
        reasons
            .into_iter()
            .map(|(r, v)| (vec![r.to_string()], v))
            .collect(),
    );
}

/// `strait_tcp_<name>_total` for the Linux counter `linux`: snake case, without Linux's
/// `TCP` prefix (the family already says tcp): `ActiveOpens` -> `strait_tcp_active_opens_total`,
/// `TCPChallengeACK` -> `strait_tcp_challenge_ack_total`.
pub fn tcp_metric_name(linux: &str) -> String {
    let base = match linux.strip_prefix("TCP") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_uppercase()) => rest,
        _ => linux,
    };
    format!("strait_tcp_{}_total", snake_case(base))
}

/// `CamelCase`/`ACRONYMCase` to `snake_case`: a word starts at an upper-case letter after a
/// lower-case letter or digit, and at the last capital of an acronym followed by a
/// lower-case word (`PAWSEstab` -> `paws_estab`) unless that word is a plural `s`
/// (`DelayedACKs` -> `delayed_acks`). Characters outside `[A-Za-z0-9_]` become `_`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut s = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next = chars.get(i + 1).copied();
            let plural_s =
                next == Some('s') && !matches!(chars.get(i + 2), Some(c) if c.is_ascii_lowercase());
            let starts_word = prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase()
                    && next.is_some_and(|n| n.is_ascii_lowercase())
                    && !plural_s);
            if starts_word && !s.ends_with('_') {
                s.push('_');
            }
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            s.push(c.to_ascii_lowercase());
        } else {
            s.push('_');
        }
    }
    s
}

mod health;
mod lcore_port;
mod proxy;
#[cfg(test)]
mod tests;
