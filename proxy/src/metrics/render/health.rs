//! Backend health families (from `Snapshot::backends`, every lcore's view of every
//! server; the data plane's checks are per lcore, so they are merged here):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `strait_backend_up` (1: every lcore has it up) | gauge | `pool`, `server` |
//! | `strait_backend_health_checks_total` | counter | `pool`, `server`, `result="passed"\|"failed"` |
//! | `strait_backend_down_transitions_total` (checks took it down) | counter | `pool`, `server` |
//! | `strait_backend_ejections_total` (passive ejection) | counter | `pool`, `server` |

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
        assert!(!render(&Snapshot::default()).contains("strait_backend_"), "no pools, no family");
    }
}
