//! `[[app]]`: services on the TCP stack (echo, sink), and where a service or a proxy
//! listener may listen (an address of some port, or a family's wildcard).

use config::{Value, ValueKind};

use super::raw::{describe, Errors, Table};
use super::validate::fail;
use super::{AppKind, AppSpec, PortConfig};

/// `[[app]]` (optional). `ports` is `None` when the ports were invalid: the addresses
/// are then not checked against them (their errors are reported already).
pub(crate) fn apps(value: Option<&Value>, ports: Option<&[PortConfig]>, errs: &mut Errors) -> Option<Vec<AppSpec>> {
    let Some(value) = value else {
        return Some(Vec::new());
    };
    let items = match &value.kind {
        ValueKind::Array(items) => items,
        ValueKind::Table(_) => {
            return fail(errs, "app".into(), "expected an array of tables: write [[app]], not [app]");
        }
        _ => {
            return fail(
                errs,
                "app".into(),
                format!("expected an array of tables ([[app]]), found {}", describe(value)),
            );
        }
    };
    let before = errs.0.len();
    let parsed: Vec<Option<AppSpec>> =
        items.iter().enumerate().map(|(i, v)| app(v, i, ports, errs)).collect();
    for (i, a) in parsed.iter().enumerate() {
        let Some(a) = a else { continue };
        for (j, b) in parsed.iter().enumerate().take(i) {
            if b.is_some_and(|b| b.listen == a.listen) {
                errs.push(format!("app[{i}].listen"), format!("{} is already used by app[{j}]", a.listen));
            }
        }
    }
    if errs.0.len() != before {
        return None;
    }
    parsed.into_iter().collect()
}

fn app(value: &Value, index: usize, ports: Option<&[PortConfig]>, errs: &mut Errors) -> Option<AppSpec> {
    let path = format!("app[{index}]");
    let t = Table::new(value, &path, errs)?;
    t.deny_unknown(&["kind", "listen", "max_connections", "idle_timeout_ms"], errs);
    let kind = t.required_string("kind", errs).and_then(|k| match k.as_str() {
        "echo" => Some(AppKind::Echo),
        "sink" => Some(AppKind::Sink),
        other => t.fail(errs, "kind", format!("{other:?} is not an app kind (expected \"echo\" or \"sink\")")),
    });
    let listen = t.required_string("listen", errs).and_then(|l| {
        // IPv6 in brackets, as in a URL (RFC 3986 §3.2.2): "[2001:db8::2]:7".
        let Ok(addr) = l.trim().parse::<std::net::SocketAddr>() else {
            return t.fail(
                errs,
                "listen",
                format!("{l:?} is not an address and port (e.g. \"198.18.0.2:7\" or \"[2001:db8::2]:7\")"),
            );
        };
        if addr.port() == 0 {
            return t.fail(errs, "listen", format!("{l:?}: the TCP port must be 1..=65535"));
        }
        if let std::net::SocketAddr::V6(a) = addr {
            if a.scope_id() != 0 || a.flowinfo() != 0 {
                return t.fail(errs, "listen", format!("{l:?}: no scope or flow label (a port's addresses are global)"));
            }
        }
        let addr = std::net::SocketAddr::new(addr.ip(), addr.port());
        if let Some(ports) = ports {
            if let Err(why) = local_address(ports, addr.ip()) {
                return t.fail(errs, "listen", why);
            }
        }
        Some(addr)
    });
    // Hostile peers (issue 14): connections, and the buffers behind them, are bounded.
    let max_connections =
        t.uint_or("max_connections", dataplane::app::AppSpec::DEFAULT_MAX_CONNECTIONS, 1, 1_000_000, errs);
    let default_idle = u32::try_from(dataplane::app::AppSpec::DEFAULT_IDLE_TIMEOUT.as_millis()).unwrap_or(60_000);
    let idle = t.uint_or("idle_timeout_ms", default_idle, 1, 86_400_000, errs);
    Some(AppSpec {
        kind: kind?,
        listen: listen?,
        max_connections: max_connections?,
        idle_timeout: dataplane::time::Duration::from_millis(u64::from(idle?)),
    })
}

/// Whether some port has `ip` (or, unspecified, some port has its family): the address a
/// service listens on.
pub(crate) fn local_address(ports: &[PortConfig], ip: std::net::IpAddr) -> Result<(), String> {
    use std::net::IpAddr;
    let found = match ip {
        IpAddr::V4(a) => a.is_unspecified() || ports.iter().any(|p| p.ipv4 == a),
        IpAddr::V6(a) if a.is_unspecified() => ports.iter().any(|p| p.ipv6.is_some()),
        IpAddr::V6(a) => ports.iter().any(|p| p.ipv6.and_then(|v| v.addr) == Some(a)),
    };
    if found {
        return Ok(());
    }
    let mut have: Vec<String> = ports.iter().map(|p| p.ipv4.to_string()).collect();
    have.extend(ports.iter().filter_map(|p| p.ipv6.and_then(|v| v.addr)).map(|a| a.to_string()));
    let any = if ip.is_ipv4() { "0.0.0.0" } else { "[::] on a port with `ipv6`" };
    Err(format!("{ip} is not the address of any port (have {}; or use {any})", have.join(", ")))
}
