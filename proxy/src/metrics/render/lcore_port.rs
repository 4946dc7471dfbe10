//! Generic per-lcore counters and per-port DPDK extended statistics:
//!
//! | family | type | labels |
//! |---|---|---|
//! | `strait_lcore_<name>_total` for each `LcoreStats::iter()` counter not rendered by a dedicated family (e.g. `strait_lcore_redirected_frames_total`) | counter | `lcore` |
//! | `strait_lcore_memory_pressure` (1 while the engine is under memory pressure), `strait_lcore_tx_held_frames` (frames in TX backlogs) | gauge | `lcore` |
//! | `strait_port_xstats_total` (name = the DPDK xstat name, e.g. `rx_good_packets`) | counter | `port`, `name` |
//!
//! The lcore counters `rx_frames`, `tx_frames`, `tx_dropped_full` and `tx_dropped_nombuf`
//! already have their own families in `render.rs` and are left out here.

use std::collections::BTreeMap;

use super::{snake_case, Families, Sample};
use crate::metrics::snapshot::Snapshot;

/// `LcoreStats::iter()` names rendered by the dedicated `strait_lcore_*` families.
const RENDERED_ELSEWHERE: &[&str] = &[
    "rx_frames",
    "tx_frames",
    "tx_dropped_full",
    "tx_dropped_nombuf",
];

/// `LcoreStats::iter()` names that are levels, not counters (rendered as gauges).
const GAUGES: &[&str] = &["memory_pressure", "tx_held_frames"];

/// A help text for a known lcore counter; a generic one for any other.
fn lcore_help(name: &str) -> String {
    let what = match name {
        "tcp_rx_segments" => "TCP segments handed to the engine",
        "tcp_rx_dropped" => "Received TCP segments dropped before the engine (bad range or no mbuf)",
        "tcp_tx_segments" => "TCP segments the engine emitted (super-segments count once)",
        "tcp_tx_unresolved" => "TCP segments dropped because their next hop could not be resolved (failed, too slow, too many waiting)",
        "tcp_tx_awaiting_arp" => "TCP segments held until their next hop's ARP reply, then sent",
        "tcp_tx_no_route" => "TCP segments dropped because no port has their source address",
        "tcp_tx_unusable_source" => {
            "TCP segments dropped because their IPv6 source is ours but not usable: tentative (duplicate address detection) or duplicate"
        }
        "tx_sw_cksum_odd_pieces" => {
            "TCP segments checksummed in software because the device would get a chain with an odd-length piece wrong"
        }
        "tcp_tx_build_failed" => "TCP segments that could not be built (no mbuf, chain or offload failure)",
        "tso_segments" => "Super-segments handed to the NIC for TSO",
        "gso_frames" => "Frames produced by software GSO",
        "memory_pressure_changes" => "Times the TCP engine entered or left memory pressure",
        "memory_pressure" => "1 while the lcore's TCP engine is under memory pressure, else 0",
        "tcp_rx_shed" => "Received TCP data segments shed because the mbuf pool ran low",
        "redirected_frames" => "Received TCP frames of a flow another lcore owns, handed to it",
        "redirected_active_open_frames" => "Redirected frames that were return traffic of connections an lcore opened",
        "redirect_received_frames" => "Frames other lcores handed to this one",
        "redirect_dropped_frames" => "Frames or ARP copies that could not be handed to another lcore",
        "arp_shared_frames" => "Copies of ARP packets handed to the other lcores' neighbour tables",
        "tx_dropped_refused" => {
            "Frames dropped because the TX ring took nothing: the head frame after 5 ms, every waiting frame after 20 ms"
        }
        "tx_held_frames" => "Frames waiting in the lcore's TX backlogs for a ring to take them",
        "idle_naps" => "Times the idle lcore slept a fixed nap between polls",
        "idle_interrupt_waits" => "Times the idle lcore blocked until an RX interrupt, a wake-up or 1 ms passed",
        "idle_interrupt_wakeups" => "Interrupt waits ended by a frame or a wake-up before the timeout",
        n if n.starts_with("impair_") => "Frames the impairment layer affected (test/lab feature)",
        _ => "Lcore counter",
    };
    format!("{what} (dataplane::lcore::LcoreStats {name}).")
}

/// The `strait_lcore_<name>_total` counters and the `strait_lcore_memory_pressure` gauge.
pub(super) fn lcore_counters(out: &mut Families, snap: &Snapshot) {
    // name -> samples; a BTreeMap keeps the output stable.
    let mut counters: BTreeMap<&str, Vec<Sample<u64>>> = BTreeMap::new();
    let mut gauges: BTreeMap<&str, Vec<Sample<f64>>> = BTreeMap::new();
    for l in &snap.lcore_counters {
        let lcore = l.lcore.to_string();
        for &(name, v) in &l.counters {
            if RENDERED_ELSEWHERE.contains(&name) {
                continue;
            }
            if GAUGES.contains(&name) {
                gauges
                    .entry(name)
                    .or_default()
                    .push((vec![lcore.clone()], v as f64));
            } else {
                counters
                    .entry(name)
                    .or_default()
                    .push((vec![lcore.clone()], v));
            }
        }
    }
    for (name, samples) in counters {
        let family = format!("strait_lcore_{}_total", snake_case(name));
        out.counter(&family, &lcore_help(name), &["lcore"], samples);
    }
    for (name, samples) in gauges {
        let family = format!("strait_lcore_{}", snake_case(name));
        out.gauge(&family, &lcore_help(name), &["lcore"], samples);
    }
}

/// `strait_port_xstats_total{port,name}`: every extended statistic of every port.
pub(super) fn port_xstats(out: &mut Families, snap: &Snapshot) {
    let samples: Vec<Sample<u64>> = snap
        .port_xstats
        .iter()
        .flat_map(|p| {
            p.xstats
                .iter()
                .map(|(name, v)| (vec![p.port.clone(), name.clone()], *v))
        })
        .collect();
    if samples.is_empty() {
        return;
    }
    out.counter(
        "strait_port_xstats_total",
        "Extended device statistics of the port (rte_eth_xstats_get); name is the DPDK xstat name.",
        &["port", "name"],
        samples,
    );
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use dataplane::lcore::LcoreStats;

    use super::super::render_counting_failures;
    use crate::metrics::snapshot::{LcoreCounters, PortXstats, Snapshot};

    fn rendered(snap: &Snapshot) -> String {
        let (text, failures) = render_counting_failures(snap);
        assert_eq!(failures, 0, "registry refused something:\n{text}");
        text
    }

    fn stats(k: u64) -> LcoreStats {
        let s = LcoreStats::default();
        s.rx_frames.store(100 * k, Ordering::Relaxed);
        s.redirected_frames.store(3 * k, Ordering::Relaxed);
        s.redirected_active_open_frames.store(k, Ordering::Relaxed);
        s.redirect_received_frames.store(5 * k, Ordering::Relaxed);
        s.redirect_dropped_frames.store(7 * k, Ordering::Relaxed);
        s.arp_shared_frames.store(11 * k, Ordering::Relaxed);
        s.tx_sw_cksum_odd_pieces.store(13 * k, Ordering::Relaxed);
        s.memory_pressure.store(1, Ordering::Relaxed);
        s
    }

    fn two_lcores() -> Snapshot {
        Snapshot {
            lcore_counters: vec![
                LcoreCounters::from_stats(0, &stats(1)),
                LcoreCounters::from_stats(1, &stats(2)),
            ],
            ..Snapshot::default()
        }
    }

    #[test]
    fn steering_counters_are_rendered_per_lcore() {
        let text = rendered(&two_lcores());
        for line in [
            "strait_lcore_redirected_frames_total{lcore=\"0\"} 3\n",
            "strait_lcore_redirected_frames_total{lcore=\"1\"} 6\n",
            "strait_lcore_redirected_active_open_frames_total{lcore=\"1\"} 2\n",
            "strait_lcore_redirect_received_frames_total{lcore=\"0\"} 5\n",
            "strait_lcore_redirect_dropped_frames_total{lcore=\"1\"} 14\n",
            "strait_lcore_arp_shared_frames_total{lcore=\"0\"} 11\n",
            "strait_lcore_tx_sw_cksum_odd_pieces_total{lcore=\"1\"} 26\n",
            "# TYPE strait_lcore_redirected_frames_total counter\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn every_lcore_stats_counter_has_exactly_one_family() {
        let text = rendered(&two_lcores());
        for (name, _) in LcoreStats::default().iter() {
            let counter = format!("# TYPE strait_lcore_{name}_total counter\n");
            let gauge = format!("# TYPE strait_lcore_{name} gauge\n");
            let hits = usize::from(text.contains(&counter)) + usize::from(text.contains(&gauge));
            if super::RENDERED_ELSEWHERE.contains(&name) {
                // Only the dedicated families (absent here: no LcoreSnapshot given).
                assert_eq!(
                    hits, 0,
                    "{name} rendered generically although it has its own family"
                );
            } else {
                assert_eq!(hits, 1, "{name} not rendered exactly once:\n{text}");
            }
        }
    }

    #[test]
    fn memory_pressure_is_a_gauge_not_a_counter() {
        let text = rendered(&two_lcores());
        assert!(
            text.contains("# TYPE strait_lcore_memory_pressure gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("strait_lcore_memory_pressure{lcore=\"0\"} 1\n"),
            "{text}"
        );
        assert!(
            !text.contains("strait_lcore_memory_pressure_total"),
            "{text}"
        );
    }

    #[test]
    fn dedicated_and_generic_lcore_families_do_not_collide() {
        let mut snap = two_lcores();
        snap.lcores = vec![crate::metrics::snapshot::LcoreSnapshot {
            lcore: 0,
            rx_frames: 100,
            ..Default::default()
        }];
        let text = rendered(&snap);
        assert_eq!(
            text.matches("# TYPE strait_lcore_rx_frames_total counter\n")
                .count(),
            1,
            "{text}"
        );
        assert!(
            text.contains("strait_lcore_rx_frames_total{lcore=\"0\"} 100\n"),
            "{text}"
        );
    }

    #[test]
    fn port_xstats_are_counters_labelled_by_port_and_name() {
        let snap = Snapshot {
            port_xstats: vec![
                PortXstats {
                    port: "wan".into(),
                    xstats: vec![("rx_good_packets".into(), 42), ("rx_q0_bytes".into(), 4200)],
                },
                PortXstats {
                    port: "lan".into(),
                    xstats: vec![("rx_good_packets".into(), 7)],
                },
            ],
            ..Snapshot::default()
        };
        let text = rendered(&snap);
        assert_eq!(
            text.matches("# TYPE strait_port_xstats_total counter\n")
                .count(),
            1,
            "{text}"
        );
        for line in [
            "strait_port_xstats_total{name=\"rx_good_packets\",port=\"wan\"} 42\n",
            "strait_port_xstats_total{name=\"rx_q0_bytes\",port=\"wan\"} 4200\n",
            "strait_port_xstats_total{name=\"rx_good_packets\",port=\"lan\"} 7\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn hostile_xstat_names_are_escaped_not_fatal() {
        let snap = Snapshot {
            port_xstats: vec![PortXstats {
                port: "wan".into(),
                xstats: vec![("we\"ird\\x\nstat".into(), 1), (String::new(), 2)],
            }],
            ..Snapshot::default()
        };
        let text = rendered(&snap);
        assert!(
            text.contains(r#"strait_port_xstats_total{name="we\"ird\\x\nstat",port="wan"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("strait_port_xstats_total{name=\"\",port=\"wan\"} 2\n"),
            "{text}"
        );
    }

    #[test]
    fn no_xstats_and_no_lcores_leave_the_families_out() {
        let text = rendered(&Snapshot {
            port_xstats: vec![PortXstats {
                port: "wan".into(),
                xstats: vec![],
            }],
            ..Snapshot::default()
        });
        assert!(!text.contains("strait_port_xstats_total"), "{text}");
        assert!(!text.contains("strait_lcore_"), "{text}");
    }
}
