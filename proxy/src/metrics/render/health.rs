//! Backend health families (from `Snapshot::backends`, every lcore's view of every
//! server; the data plane's checks are per lcore, so they are merged here):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `strait_backend_up` (1: every lcore has it up) | gauge | `pool`, `server` |
//! | `strait_backend_health_checks_total` | counter | `pool`, `server`, `result="passed"\|"failed"` |
//! | `strait_backend_down_transitions_total` (checks took it down) | counter | `pool`, `server` |
//! | `strait_backend_ejections_total` (passive ejection) | counter | `pool`, `server` |
//! | `strait_backend_weight` (the balancer's weight now; 0: no new sessions) | gauge | `pool`, `server` |
//! | `strait_backend_admin_state` (1 for the operator's state, 0 for the others) | gauge | `pool`, `server`, `state="enabled"\|"drain"\|"maint"` |

use std::collections::BTreeMap;

use super::Families;
use crate::metrics::snapshot::Snapshot;

pub(super) fn health(out: &mut Families, snap: &Snapshot) {
    if snap.backends.is_empty() {
        return;
    }
    let label = |b: &dataplane::app::proxy::BackendHealth| {
        vec![b.pool.clone(), b.addr.map(|a| a.to_string()).unwrap_or_default()]
    };
    let mut up: BTreeMap<Vec<String>, bool> = BTreeMap::new();
    for b in &snap.backends {
        let e = up.entry(label(b)).or_insert(true);
        *e = *e && b.up;
    }
    out.gauge(
        "strait_backend_up",
        "1 while health checks and passive ejection let the server take new sessions on every lcore, else 0.",
        &["pool", "server"],
        up.into_iter().map(|(l, u)| (l, if u { 1.0 } else { 0.0 })).collect(),
    );
    // Weight and admin state are set on every lcore at once: the first lcore's view
    // stands for all (a `server weight` between two lcores' publications is brief).
    let mut first: BTreeMap<Vec<String>, &dataplane::app::proxy::BackendHealth> = BTreeMap::new();
    for b in &snap.backends {
        first.entry(label(b)).or_insert(b);
    }
    out.gauge(
        "strait_backend_weight",
        "The server's weight now (configured, or set with `strait ctl server weight`); 0 takes no new sessions.",
        &["pool", "server"],
        first.iter().map(|(l, b)| (l.clone(), f64::from(b.weight))).collect(),
    );
    let mut admin = Vec::new();
    for (l, b) in &first {
        for state in dataplane::control::AdminState::ALL {
            let v = if b.admin == state { 1.0 } else { 0.0 };
            admin.push(([l.clone(), vec![state.name().to_string()]].concat(), v));
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
        "Times consecutive failed connects ejected a server (passive health).",
        &["pool", "server"],
        snap.backends.iter().map(|b| (label(b), b.ejections)).collect(),
    );
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddrV4};

    use dataplane::app::proxy::BackendHealth;
    use dataplane::control::AdminState;

    use crate::metrics::render::render;
    use crate::metrics::snapshot::Snapshot;

    fn b(port: u16, up: bool, passed: u64) -> BackendHealth {
        BackendHealth {
            pool: "web".into(),
            addr: Some(SocketAddrV4::new(Ipv4Addr::new(198, 18, 81, 10), port)),
            up,
            checks_passed: passed,
            checks_failed: 2,
            went_down: u64::from(!up),
            ejections: 0,
            weight: u32::from(port) - 8000,
            admin: if up { AdminState::Enabled } else { AdminState::Maint },
        }
    }

    #[test]
    fn health_is_merged_over_lcores() {
        // Two lcores: 8080 up on both, 8081 down on the second.
        let snap = Snapshot {
            backends: vec![b(8080, true, 5), b(8081, true, 1), b(8080, true, 5), b(8081, false, 0)],
            ..Snapshot::default()
        };
        let text = render(&snap);
        assert!(text.contains("strait_backend_up{pool=\"web\",server=\"198.18.81.10:8080\"} 1"), "{text}");
        assert!(text.contains("strait_backend_up{pool=\"web\",server=\"198.18.81.10:8081\"} 0"), "{text}");
        assert!(
            text.contains(
                "strait_backend_health_checks_total{pool=\"web\",result=\"passed\",server=\"198.18.81.10:8080\"} 10"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "strait_backend_health_checks_total{pool=\"web\",result=\"failed\",server=\"198.18.81.10:8081\"} 4"
            ),
            "{text}"
        );
        assert!(
            text.contains("strait_backend_down_transitions_total{pool=\"web\",server=\"198.18.81.10:8081\"} 1"),
            "{text}"
        );
        // Weight and admin state: the first lcore's view (8081 is in maintenance on the
        // second only in this synthetic snapshot; an operator sets every lcore at once).
        assert!(text.contains("strait_backend_weight{pool=\"web\",server=\"198.18.81.10:8080\"} 80\n"), "{text}");
        assert!(text.contains("strait_backend_weight{pool=\"web\",server=\"198.18.81.10:8081\"} 81\n"), "{text}");
        for (state, v) in [("enabled", 1), ("drain", 0), ("maint", 0)] {
            let series = format!("strait_backend_admin_state{{pool=\"web\",server=\"198.18.81.10:8080\",state=\"{state}\"}} {v}\n");
            assert!(text.contains(&series), "{series} in {text}");
        }
        let maint = BackendHealth { admin: AdminState::Maint, ..b(8082, true, 0) };
        let text = render(&Snapshot { backends: vec![maint], ..Snapshot::default() });
        assert!(text.contains("strait_backend_admin_state{pool=\"web\",server=\"198.18.81.10:8082\",state=\"maint\"} 1\n"), "{text}");
        assert!(text.contains("strait_backend_admin_state{pool=\"web\",server=\"198.18.81.10:8082\",state=\"enabled\"} 0\n"), "{text}");
        assert!(!render(&Snapshot::default()).contains("strait_backend_"), "no pools, no family");
    }
}
