//! The proxy's families: per listener and per backend server, summed over lcores (every
//! lcore runs the same listeners and pools and publishes its own plain counters and
//! fixed-bucket histograms; nothing is locked on the data path).
//!
//! | family | type | labels |
//! |---|---|---|
//! | `strait_proxy_listener_connections` (sessions open) | gauge | `listener`, `pool` |
//! | `strait_proxy_listener_connections_total` | counter | `listener`, `pool` |
//! | `strait_proxy_listener_refused_connections_total` | counter | `listener`, `pool`, `reason="max_connections"\|"no_server"\|"connect_failed"\|"proxy_header"\|"queue_full"\|"queue_timeout"` |
//! | `strait_proxy_listener_queued_total` (sessions that waited for a server below its `max_connections`) | counter | `listener`, `pool` |
//! | `strait_proxy_listener_bytes_total` | counter | `listener`, `pool`, `direction="in"\|"out"` |
//! | `strait_proxy_listener_{idle_timeouts,resets,write_stalls}_total` | counter | `listener`, `pool` |
//! | `strait_proxy_listener_connection_duration_seconds` | histogram | `listener`, `pool` |
//! | `strait_proxy_server_connections` (open or connecting) | gauge | `pool`, `server` |
//! | `strait_proxy_server_connect_attempts_total`, `strait_proxy_server_connections_total` | counter | `pool`, `server` |
//! | `strait_proxy_server_connect_errors_total` | counter | `pool`, `server`, `reason="refused"\|"timeout"\|"other"` |
//! | `strait_proxy_server_bytes_total` | counter | `pool`, `server`, `direction="in"\|"out"` |
//! | `strait_proxy_server_connect_duration_seconds`, `strait_proxy_server_connection_duration_seconds` | histogram | `pool`, `server` |
//!
//! `direction="in"` is client to server, `"out"` server to client. `server` is the backend's
//! configured `address:port`; client addresses never appear.

use std::collections::{BTreeMap, HashMap};

use dataplane::app::proxy::{Histogram, ListenerStats, ServerStats};
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};

use super::{Families, Sample};
use crate::metrics::snapshot::Snapshot;

/// A histogram family built from pre-aggregated buckets (the `prometheus` crate's own
/// histograms only count observations made in this process).
struct Prebuilt {
    desc: Desc,
    family: MetricFamily,
}

impl Collector for Prebuilt {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        vec![self.family.clone()]
    }
}

impl Families {
    /// A histogram family (seconds); samples with equal labels are merged.
    pub(super) fn histogram(&mut self, name: &str, help: &str, labels: &[&str], samples: Vec<Sample<Histogram>>) {
        let desc = match Desc::new(
            name.to_string(),
            help.to_string(),
            labels.iter().map(|l| l.to_string()).collect(),
            HashMap::new(),
        ) {
            Ok(d) => d,
            Err(e) => return self.refused(name, e),
        };
        let mut merged: BTreeMap<Vec<String>, Histogram> = BTreeMap::new();
        for (values, h) in samples {
            if values.len() != labels.len() {
                self.refused(
                    name,
                    prometheus::Error::InconsistentCardinality { expect: labels.len(), got: values.len() },
                );
                continue;
            }
            match merged.get_mut(&values) {
                Some(m) => {
                    if !m.merge(&h) {
                        tracing::warn!(metric = name, "metrics: histograms with different buckets; buckets not merged");
                        self.failures += 1;
                    }
                }
                None => {
                    merged.insert(values, h);
                }
            }
        }
        let metrics = merged
            .into_iter()
            .map(|(values, h)| {
                let pairs = labels
                    .iter()
                    .zip(values)
                    .map(|(k, v)| {
                        let mut p = proto::LabelPair::default();
                        p.set_name((*k).to_string());
                        p.set_value(v);
                        p
                    })
                    .collect();
                let mut ph = proto::Histogram::default();
                ph.set_sample_count(h.count());
                ph.set_sample_sum(h.sum_seconds());
                ph.set_bucket(
                    h.cumulative_seconds()
                        .map(|(le, n)| {
                            let mut b = proto::Bucket::default();
                            b.set_upper_bound(le);
                            b.set_cumulative_count(n);
                            b
                        })
                        .collect(),
                );
                let mut m = proto::Metric::from_label(pairs);
                m.set_histogram(ph);
                m
            })
            .collect();
        let mut family = MetricFamily::default();
        family.set_name(name.to_string());
        family.set_help(help.to_string());
        family.set_field_type(MetricType::HISTOGRAM);
        family.set_metric(metrics);
        if let Err(e) = self.reg.register(Box::new(Prebuilt { desc, family })) {
            self.refused(name, e);
        }
    }
}

const LISTENER: &[&str] = &["listener", "pool"];
const SERVER: &[&str] = &["pool", "server"];

fn listener_labels(l: &ListenerStats) -> Vec<String> {
    vec![l.name.clone(), l.pool.clone()]
}

fn server_labels(s: &ServerStats) -> Vec<String> {
    vec![s.pool.clone(), s.addr.map(|a| a.to_string()).unwrap_or_default()]
}

/// One value of the extra label (`reason`, `direction`) and the counter it shows.
type Part<T> = (&'static str, fn(&T) -> u64);

/// Counters of `items` with one more label value per part.
fn split<'a, T: 'a>(
    items: impl Iterator<Item = &'a T>,
    labels: fn(&T) -> Vec<String>,
    parts: &[Part<T>],
) -> Vec<Sample<u64>> {
    let mut out = Vec::new();
    for item in items {
        for (label, f) in parts {
            let mut values = labels(item);
            values.push((*label).to_string());
            out.push((values, f(item)));
        }
    }
    out
}

/// Renders the proxy families (nothing when no lcore publishes proxy counters).
pub(super) fn proxy(out: &mut Families, snap: &Snapshot) {
    let listeners = || snap.proxy.iter().flat_map(|p| &p.listeners);
    let servers = || snap.proxy.iter().flat_map(|p| &p.servers);
    if listeners().next().is_none() && servers().next().is_none() {
        return;
    }
    let l_counter = |out: &mut Families, name: &str, help: &str, f: fn(&ListenerStats) -> u64| {
        out.counter(name, help, LISTENER, listeners().map(|l| (listener_labels(l), f(l))).collect());
    };
    let s_counter = |out: &mut Families, name: &str, help: &str, f: fn(&ServerStats) -> u64| {
        out.counter(name, help, SERVER, servers().map(|s| (server_labels(s), f(s))).collect());
    };

    // Gauges: summed over lcores here (the registry's gauges keep the last value).
    let mut active: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    for l in listeners() {
        *active.entry(listener_labels(l)).or_default() += l.active as f64;
    }
    out.gauge(
        "strait_proxy_listener_connections",
        "Client sessions open on the listener (each with its backend connection), summed over lcores.",
        LISTENER,
        active.into_iter().collect(),
    );
    l_counter(out, "strait_proxy_listener_connections_total", "Client sessions the listener accepted.", |l| l.total);
    out.counter(
        "strait_proxy_listener_refused_connections_total",
        "Client connections reset instead of proxied: reason=\"max_connections\" (listener full), \"no_server\" (no server could be picked or no source port), \"connect_failed\" (every connection attempt failed), \"proxy_header\" (no buffer for the PROXY protocol header), \"queue_full\" (every server at its max_connections and the pool's queue full), \"queue_timeout\" (waited queue_timeout_ms for a server).",
        &["listener", "pool", "reason"],
        split(
            listeners(),
            listener_labels,
            &[
                ("max_connections", |l| l.refused_max_connections),
                ("no_server", |l| l.refused_no_server),
                ("connect_failed", |l| l.refused_connect_failed),
                ("proxy_header", |l| l.refused_proxy_header),
                ("queue_full", |l| l.refused_queue_full),
                ("queue_timeout", |l| l.refused_queue_timeout),
            ],
        ),
    );
    l_counter(
        out,
        "strait_proxy_listener_queued_total",
        "Sessions that waited in the pool's queue for a server below its max_connections.",
        |l| l.queued,
    );
    out.counter(
        "strait_proxy_listener_bytes_total",
        "Payload bytes spliced by the listener's sessions: direction=\"in\" client to server, \"out\" server to client.",
        &["listener", "pool", "direction"],
        split(listeners(), listener_labels, &[("in", |l| l.bytes_in), ("out", |l| l.bytes_out)]),
    );
    l_counter(
        out,
        "strait_proxy_listener_idle_timeouts_total",
        "Sessions aborted because they moved no byte for the idle timeout.",
        |l| l.idle_timeouts,
    );
    l_counter(
        out,
        "strait_proxy_listener_resets_total",
        "Sessions ended by a reset or error on one side, propagated to the other as a reset.",
        |l| l.resets,
    );
    l_counter(
        out,
        "strait_proxy_listener_write_stalls_total",
        "Writes refused or cut short by a full send buffer (back-pressure: reading pauses).",
        |l| l.write_stalls,
    );
    out.histogram(
        "strait_proxy_listener_connection_duration_seconds",
        "Duration of client sessions, accept to the last close.",
        LISTENER,
        listeners().map(|l| (listener_labels(l), l.connection_duration)).collect(),
    );

    let mut active: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    for s in servers() {
        *active.entry(server_labels(s)).or_default() += s.active as f64;
    }
    out.gauge(
        "strait_proxy_server_connections",
        "Backend connections open or connecting to the server, summed over lcores.",
        SERVER,
        active.into_iter().collect(),
    );
    s_counter(out, "strait_proxy_server_connect_attempts_total", "Connection attempts made to the server.", |s| {
        s.attempts
    });
    s_counter(
        out,
        "strait_proxy_server_connections_total",
        "Connection attempts to the server that were established.",
        |s| s.connected,
    );
    out.counter(
        "strait_proxy_server_connect_errors_total",
        "Failed connection attempts to the server: reason=\"refused\" (RST to the SYN), \"timeout\" (connect timeout or SYN retries exhausted), \"other\" (aborted, no free source port).",
        &["pool", "server", "reason"],
        split(
            servers(),
            server_labels,
            &[("refused", |s| s.connect_refused), ("timeout", |s| s.connect_timeout), ("other", |s| s.connect_other)],
        ),
    );
    out.counter(
        "strait_proxy_server_bytes_total",
        "Payload bytes spliced to and from the server: direction=\"in\" written to it (from clients), \"out\" read from it.",
        &["pool", "server", "direction"],
        split(servers(), server_labels, &[("in", |s| s.bytes_in), ("out", |s| s.bytes_out)]),
    );
    out.histogram(
        "strait_proxy_server_connect_duration_seconds",
        "Duration of successful connection attempts to the server, SYN sent to established.",
        SERVER,
        servers().map(|s| (server_labels(s), s.connect_duration)).collect(),
    );
    out.histogram(
        "strait_proxy_server_connection_duration_seconds",
        "Duration of established backend connections to the server, established to closed.",
        SERVER,
        servers().map(|s| (server_labels(s), s.connection_duration)).collect(),
    );
}

#[cfg(test)]
pub(super) mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use dataplane::app::proxy::ProxyStats;
    use dataplane::time::Duration;

    use super::super::render_counting_failures;
    use super::*;

    /// One lcore's proxy counters: listener `web` (pool `app`) and two servers, with
    /// figures scaled by `seed`.
    pub(in crate::metrics::render) fn proxy_stats(seed: u64) -> ProxyStats {
        let mut listener = ListenerStats {
            name: "web".into(),
            pool: "app".into(),
            active: seed,
            total: 10 * seed,
            refused_max_connections: seed,
            refused_connect_failed: 2 * seed,
            bytes_in: 1000 * seed,
            bytes_out: 5000 * seed,
            resets: seed,
            queued: 4 * seed,
            refused_queue_timeout: seed,
            ..ListenerStats::default()
        };
        for ms in [3, 40, 2000] {
            listener.connection_duration.observe(Duration::from_millis(ms * seed));
        }
        let server = |port: u16, k: u64| {
            let mut s = ServerStats {
                pool: "app".into(),
                addr: Some(SocketAddr::from((Ipv4Addr::new(198, 18, 70, 2), port))),
                active: k,
                attempts: 6 * k,
                connected: 5 * k,
                connect_refused: k,
                bytes_in: 500 * k,
                bytes_out: 2500 * k,
                ..ServerStats::default()
            };
            s.connect_duration.observe(Duration::from_micros(300));
            s.connection_duration.observe(Duration::from_secs(k));
            s
        };
        ProxyStats { listeners: vec![listener], servers: vec![server(8080, seed), server(8081, 2 * seed)] }
    }

    fn text() -> String {
        let snap = Snapshot { proxy: vec![proxy_stats(1), proxy_stats(2)], ..Snapshot::default() };
        let (text, failures) = render_counting_failures(&snap);
        assert_eq!(failures, 0, "registry refused something:\n{text}");
        text
    }

    fn sample(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing in:\n{text}"))
    }

    #[test]
    fn listener_counters_and_gauge_are_summed_over_lcores() {
        let t = text();
        let l = "listener=\"web\",pool=\"app\"";
        assert!(t.contains("# TYPE strait_proxy_listener_connections gauge"));
        assert_eq!(sample(&t, &format!("strait_proxy_listener_connections{{{l}}}")), 3.0);
        assert_eq!(sample(&t, &format!("strait_proxy_listener_connections_total{{{l}}}")), 30.0);
        assert_eq!(
            sample(&t, &format!("strait_proxy_listener_refused_connections_total{{{l},reason=\"max_connections\"}}")),
            3.0
        );
        assert_eq!(
            sample(&t, &format!("strait_proxy_listener_refused_connections_total{{{l},reason=\"connect_failed\"}}")),
            6.0
        );
        assert_eq!(sample(&t, &format!("strait_proxy_listener_bytes_total{{direction=\"in\",{l}}}")), 3000.0);
        assert_eq!(sample(&t, &format!("strait_proxy_listener_bytes_total{{direction=\"out\",{l}}}")), 15000.0);
        assert_eq!(sample(&t, &format!("strait_proxy_listener_resets_total{{{l}}}")), 3.0);
        assert_eq!(sample(&t, &format!("strait_proxy_listener_queued_total{{{l}}}")), 12.0);
        assert_eq!(
            sample(&t, &format!("strait_proxy_listener_refused_connections_total{{{l},reason=\"queue_timeout\"}}")),
            3.0
        );
    }

    #[test]
    fn server_counters_carry_pool_and_address() {
        let t = text();
        let s = "pool=\"app\",server=\"198.18.70.2:8081\"";
        assert_eq!(sample(&t, &format!("strait_proxy_server_connections{{{s}}}")), 6.0);
        assert_eq!(sample(&t, &format!("strait_proxy_server_connect_attempts_total{{{s}}}")), 36.0);
        assert_eq!(sample(&t, &format!("strait_proxy_server_connections_total{{{s}}}")), 30.0);
        // Labels come out sorted by name.
        let errors = |reason: &str| {
            sample(
                &t,
                &format!(
                    "strait_proxy_server_connect_errors_total{{pool=\"app\",reason=\"{reason}\",server=\"198.18.70.2:8081\"}}"
                ),
            )
        };
        assert_eq!(errors("refused"), 6.0);
        assert_eq!(errors("timeout"), 0.0);
        assert_eq!(sample(&t, &format!("strait_proxy_server_bytes_total{{direction=\"out\",{s}}}")), 15000.0);
    }

    #[test]
    fn histograms_merge_lcores_with_cumulative_buckets_in_seconds() {
        let t = text();
        let l = "listener=\"web\",pool=\"app\"";
        assert!(t.contains("# TYPE strait_proxy_listener_connection_duration_seconds histogram"));
        // lcore 1: 3 ms, 40 ms, 2 s; lcore 2: 6 ms, 80 ms, 4 s.
        let bucket = |le: &str| {
            sample(&t, &format!("strait_proxy_listener_connection_duration_seconds_bucket{{{l},le=\"{le}\"}}"))
        };
        assert_eq!(bucket("0.005"), 1.0);
        assert_eq!(bucket("0.01"), 2.0);
        assert_eq!(bucket("0.1"), 4.0);
        assert_eq!(bucket("5"), 6.0);
        assert_eq!(bucket("+Inf"), 6.0);
        assert_eq!(sample(&t, &format!("strait_proxy_listener_connection_duration_seconds_count{{{l}}}")), 6.0);
        let sum = sample(&t, &format!("strait_proxy_listener_connection_duration_seconds_sum{{{l}}}"));
        assert!((sum - 6.129).abs() < 1e-9, "{sum}");
        let s = "pool=\"app\",server=\"198.18.70.2:8080\"";
        assert_eq!(
            sample(&t, &format!("strait_proxy_server_connect_duration_seconds_bucket{{{s},le=\"0.0005\"}}")),
            2.0
        );
        assert_eq!(
            sample(&t, &format!("strait_proxy_server_connect_duration_seconds_bucket{{{s},le=\"0.00025\"}}")),
            0.0
        );
        assert_eq!(sample(&t, &format!("strait_proxy_server_connection_duration_seconds_count{{{s}}}")), 2.0);
    }

    #[test]
    fn nothing_is_rendered_without_proxy_counters() {
        let (text, failures) = render_counting_failures(&Snapshot::default());
        assert_eq!(failures, 0);
        assert!(!text.contains("strait_proxy_"), "{text}");
    }
}
