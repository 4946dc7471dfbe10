//! Backend health families (from `Snapshot::backends`: one entry per server for the
//! whole process; one lcore checks each server and every lcore follows its verdict, so
//! there is nothing to merge and no "partly up"):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `strait_backend_up` (1: the checks' verdict is up) | gauge | `pool`, `server` |
//! | `strait_backend_ejected_lcores` (lcores whose passive ejection holds it out now) | gauge | `pool`, `server` |
//! | `strait_backend_health_checks_total` | counter | `pool`, `server`, `result="passed"\|"failed"` |
//! | `strait_backend_down_transitions_total` (checks took it down) | counter | `pool`, `server` |
//! | `strait_backend_ejections_total` (passive ejection, on any lcore) | counter | `pool`, `server` |
//! | `strait_backend_weight` (the balancer's weight now; 0: no new sessions) | gauge | `pool`, `server` |
//! | `strait_backend_admin_state` (1 for the operator's state, 0 for the others) | gauge | `pool`, `server`, `state="enabled"\|"drain"\|"maint"` |

use super::Families;
use crate::metrics::snapshot::Snapshot;

pub(super) fn health(out: &mut Families, snap: &Snapshot) {
    if snap.backends.is_empty() {
        return;
    }
    let label = |b: &dataplane::app::proxy::BackendHealth| {
        vec![b.pool.clone(), b.addr.map(|a| a.to_string()).unwrap_or_default()]
    };
    out.gauge(
        "strait_backend_up",
        "1 while the server's health checks (run once for the process, followed by every lcore) let it take new sessions, else 0.",
        &["pool", "server"],
        snap.backends.iter().map(|b| (label(b), if b.up { 1.0 } else { 0.0 })).collect(),
    );
    out.gauge(
        "strait_backend_ejected_lcores",
        "Lcores on which consecutive failed connects (passive health) hold the server out now.",
        &["pool", "server"],
        snap.backends.iter().map(|b| (label(b), b.ejected_lcores as f64)).collect(),
    );
    // Weight and admin state are set on every lcore at once and published with the
    // verdict (a `server weight` between two lcores' publications is brief).
    out.gauge(
        "strait_backend_weight",
        "The server's weight now (configured, or set with `strait ctl server weight`); 0 takes no new sessions.",
        &["pool", "server"],
        snap.backends.iter().map(|b| (label(b), f64::from(b.weight))).collect(),
    );
    let mut admin = Vec::new();
    for b in &snap.backends {
        for state in dataplane::app::proxy::admin::AdminState::ALL {
            let v = if b.admin == state { 1.0 } else { 0.0 };
            admin.push(([label(b), vec![state.name().to_string()]].concat(), v));
        }
    }
    out.gauge(
        "strait_backend_admin_state",
        "1 for the server's operator state (enabled, drain: no new sessions, maint: drain and no health checks), 0 for the others.",
        &["pool", "server", "state"],
        admin,
    );
    let mut checks = Vec::new();
    for b in &snap.backends {
        let l = label(b);
        checks.push(([l.clone(), vec!["passed".to_string()]].concat(), b.checks_passed));
        checks.push(([l, vec!["failed".to_string()]].concat(), b.checks_failed));
    }
    out.counter(
        "strait_backend_health_checks_total",
        "Active health checks of a server, by result.",
        &["pool", "server", "result"],
        checks,
    );
    out.counter(
        "strait_backend_down_transitions_total",
        "Times failing health checks took a server down.",
        &["pool", "server"],
        snap.backends.iter().map(|b| (label(b), b.went_down)).collect(),
    );
    out.counter(
        "strait_backend_ejections_total",
        "Times consecutive failed connects ejected a server on an lcore (passive health).",
        &["pool", "server"],
        snap.backends.iter().map(|b| (label(b), b.ejections)).collect(),
    );
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr};

    use dataplane::app::proxy::BackendHealth;
    use dataplane::app::proxy::admin::AdminState;

    use crate::metrics::render::render;
    use crate::metrics::snapshot::Snapshot;

    fn b(port: u16, up: bool, passed: u64, ejected_lcores: u64) -> BackendHealth {
        BackendHealth {
            pool: "web".into(),
            addr: Some(SocketAddr::from((Ipv4Addr::new(198, 18, 81, 10), port))),
            up,
            checks_passed: passed,
            checks_failed: 2,
            went_down: u64::from(!up),
            ejections: ejected_lcores + 1,
            ejected_lcores,
            weight: u32::from(port) - 8000,
            admin: if up { AdminState::Enabled } else { AdminState::Maint },
        }
    }

    #[test]
    fn one_series_per_server() {
        let snap = Snapshot { backends: vec![b(8080, true, 5, 0), b(8081, false, 1, 1)], ..Snapshot::default() };
        let text = render(&snap);
        let series = |name: &str, port: u16| format!("{name}{{pool=\"web\",server=\"198.18.81.10:{port}\"}}");
        assert!(text.contains(&format!("{} 1", series("strait_backend_up", 8080))), "{text}");
        assert!(text.contains(&format!("{} 0", series("strait_backend_up", 8081))), "{text}");
        assert_eq!(text.matches("strait_backend_up{").count(), 2, "one verdict per server: {text}");
        assert!(text.contains(&format!("{} 1", series("strait_backend_ejected_lcores", 8081))), "{text}");
        assert!(text.contains(&format!("{} 2", series("strait_backend_ejections_total", 8081))), "{text}");
        assert!(
            text.contains(
                "strait_backend_health_checks_total{pool=\"web\",result=\"passed\",server=\"198.18.81.10:8080\"} 5"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "strait_backend_health_checks_total{pool=\"web\",result=\"failed\",server=\"198.18.81.10:8081\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(&format!("{} 1", series("strait_backend_down_transitions_total", 8081))), "{text}");
        // Weight and admin state, one series per server.
        assert!(text.contains("strait_backend_weight{pool=\"web\",server=\"198.18.81.10:8080\"} 80\n"), "{text}");
        assert!(text.contains("strait_backend_weight{pool=\"web\",server=\"198.18.81.10:8081\"} 81\n"), "{text}");
        for (state, v) in [("enabled", 1), ("drain", 0), ("maint", 0)] {
            let series = format!("strait_backend_admin_state{{pool=\"web\",server=\"198.18.81.10:8080\",state=\"{state}\"}} {v}\n");
            assert!(text.contains(&series), "{series} in {text}");
        }
        let maint = BackendHealth { admin: AdminState::Maint, ..b(8082, true, 0, 0) };
        let text = render(&Snapshot { backends: vec![maint], ..Snapshot::default() });
        assert!(text.contains("strait_backend_admin_state{pool=\"web\",server=\"198.18.81.10:8082\",state=\"maint\"} 1\n"), "{text}");
        assert!(text.contains("strait_backend_admin_state{pool=\"web\",server=\"198.18.81.10:8082\",state=\"enabled\"} 0\n"), "{text}");
        assert!(!render(&Snapshot::default()).contains("strait_backend_"), "no pools, no family");
    }
}
