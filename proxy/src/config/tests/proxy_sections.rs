//! `[[listener]]` and `[[pool]]` sections, PROXY protocol, impairment, and the dangerous
//! combinations `check-config` refuses (issue 16).

use super::*;

const TWO_PORTS: &str = r#"
[[port]]
name = "front"
device = "net_tap0,iface=strait0"
ipv4 = "198.18.0.2/24"

[[port]]
name = "back"
device = "net_tap1,iface=strait1"
ipv4 = "198.18.1.2/24"
"#;

const POOL: &str = r#"
[[pool]]
name = "web"
algorithm = "least_connections"
servers = [{ addr = "198.18.1.1:8080", weight = 3 }, { addr = "198.18.1.3:8080" }]
"#;

fn with_proxy(extra: &str) -> String {
    format!("{TWO_PORTS}{POOL}{extra}\n")
}

#[test]
fn listener_and_pool_are_parsed_with_defaults_and_source_addresses() {
    let cfg = ok(&with_proxy("[[listener]]\nname = \"http\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\n"));
    assert_eq!(cfg.pools.len(), 1);
    let p = &cfg.pools[0];
    assert_eq!((p.name.as_str(), p.algorithm), ("web", Algorithm::LeastConnections));
    assert_eq!(
        p.servers,
        vec![
            ServerConfig { addr: "198.18.1.1:8080".parse().unwrap(), weight: 3, max_connections: None, local_ip: "198.18.1.2".parse().unwrap() },
            ServerConfig { addr: "198.18.1.3:8080".parse().unwrap(), weight: 1, max_connections: None, local_ip: "198.18.1.2".parse().unwrap() },
        ]
    );
    let l = &cfg.listeners[0];
    assert_eq!((l.name.as_str(), l.pool.as_str(), l.max_connections), ("http", "web", 10_000));
    assert_eq!(l.listen, "198.18.0.2:80".parse().unwrap());
    assert_eq!((l.connect_timeout.as_millis(), l.idle_timeout.as_millis()), (3000, 60_000));
    assert!(l.nodelay && p.nodelay, "no Nagle on proxied connections by default");
    assert!(cfg.proxy_spec().listeners[0].nodelay && cfg.proxy_spec().pools[0].nodelay);
}

#[test]
fn keepalive_is_read_and_checked() {
    const L: &str = "[[listener]]\nname = \"a\"\nlisten = \"0.0.0.0:81\"\npool = \"web\"\n";
    let off = ok(&with_proxy(L));
    assert_eq!((off.listeners[0].keepalive, off.pools[0].keepalive), (None, None), "off by default, as SO_KEEPALIVE");
    let on = ok(&with_proxy(&format!("{L}keepalive = true\nkeepalive_idle_ms = 30000\nkeepalive_probes = 3\n")));
    let ka = on.proxy_spec().listeners[0].keepalive.expect("keepalive on");
    assert_eq!(
        (ka.idle.as_millis(), ka.interval.as_millis(), ka.probes),
        (30_000, 75_000, 3),
        "Linux's interval default"
    );
    let pool = format!("{TWO_PORTS}{}keepalive = true\n{L}", POOL.trim_end().to_string() + "\n");
    let ka = ok(&pool).proxy_spec().pools[0].keepalive.expect("pool keepalive on");
    assert_eq!((ka.idle.as_secs(), ka.interval.as_secs(), ka.probes), (7200, 75, 9), "Linux's defaults");
    one_error(
        &with_proxy(&format!("{L}keepalive_idle_ms = 30000\n")),
        "listener[0].keepalive_idle_ms",
        "keepalive = true",
    );
    one_error(
        &with_proxy(&format!("{L}keepalive = true\nkeepalive_probes = 0\n")),
        "listener[0].keepalive_probes",
        "out of range",
    );
    one_error(
        &with_proxy(&format!("{L}keepalive = true\nkeepalive_interval_ms = 999\n")),
        "listener[0].keepalive_interval_ms",
        "out of range",
    );
}

#[test]
fn nodelay_is_read_and_checked() {
    let cfg = ok(&with_proxy("[[listener]]\nname = \"a\"\nlisten = \"0.0.0.0:81\"\npool = \"web\"\nnodelay = false\n"));
    assert!(!cfg.listeners[0].nodelay);
    assert!(!cfg.proxy_spec().listeners[0].nodelay);
    one_error(
        &with_proxy("[[listener]]\nname = \"a\"\nlisten = \"0.0.0.0:81\"\npool = \"web\"\nnodelay = \"yes\"\n"),
        "listener[0].nodelay",
        "",
    );
}

#[test]
fn listener_limits_and_timeouts_are_read() {
    let cfg = ok(&with_proxy(
        "[[listener]]\nname = \"a\"\nlisten = \"0.0.0.0:81\"\npool = \"web\"\nmax_connections = 5\nconnect_timeout_ms = 250\nidle_timeout_ms = 1000\n",
    ));
    let l = &cfg.listeners[0];
    assert_eq!((l.max_connections, l.connect_timeout.as_millis(), l.idle_timeout.as_millis()), (5, 250, 1000));
}

#[test]
fn a_listener_naming_an_unknown_pool_is_an_error() {
    one_error(&with_proxy("[[listener]]\nname = \"a\"\nlisten = \"198.18.0.2:80\"\npool = \"api\"\n"), "listener[0].pool", "no [[pool]] is named \"api\" (defined: web)");
}

#[test]
fn a_listener_needs_a_port_address() {
    one_error(&with_proxy("[[listener]]\nname = \"a\"\nlisten = \"198.18.7.7:80\"\npool = \"web\"\n"), "listener[0].listen", "not the address of any port");
    one_error(&with_proxy("[[listener]]\nname = \"a\"\nlisten = \"198.18.0.2:0\"\npool = \"web\"\n"), "listener[0].listen", "1..=65535");
}

#[test]
fn listener_names_and_addresses_are_unique_and_apps_do_not_collide() {
    let two = "[[listener]]\nname = \"a\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\n[[listener]]\nname = \"a\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\n";
    let errs = errors(&with_proxy(two));
    assert!(errs.iter().any(|(k, r)| k == "listener[1].name" && r.contains("already used by listener[0]")), "{errs:?}");
    assert!(errs.iter().any(|(k, r)| k == "listener[1].listen" && r.contains("already used by listener[0]")), "{errs:?}");
    let app = "[[app]]\nkind = \"echo\"\nlisten = \"198.18.0.2:80\"\n[[listener]]\nname = \"a\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\n";
    one_error(&with_proxy(app), "listener[0].listen", "already used by app[0]");
}

#[test]
fn listener_numbers_are_range_checked() {
    one_error(
        &with_proxy("[[listener]]\nname = \"a\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\nmax_connections = 0\n"),
        "listener[0].max_connections",
        "out of range",
    );
    one_error(
        &with_proxy("[[listener]]\nname = \"a\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\nidle_timeout_ms = \"soon\"\n"),
        "listener[0].idle_timeout_ms",
        "expected an integer",
    );
}

#[test]
fn pool_errors_name_their_keys() {
    let bad = r#"
[[pool]]
name = "web"
algorithm = "random"
servers = [{ addr = "198.18.1.1:8080", weight = 0 }, { addr = "198.18.1.1" }, { addr = "198.18.1.1:8080" }, { adr = "x" }]

[[pool]]
name = "web"
servers = []
"#;
    let errs = errors(&format!("{TWO_PORTS}{bad}"));
    let has = |key: &str, needle: &str| errs.iter().any(|(k, r)| k == key && r.contains(needle));
    assert!(has("pool[0].algorithm", "\"random\" is not an algorithm"), "{errs:?}");
    assert!(has("pool[0].servers[0].weight", "out of range"), "{errs:?}");
    assert!(has("pool[0].servers[1].addr", "is not an address and port"), "{errs:?}");
    assert!(has("pool[0].servers[3].adr", "unknown key (did you mean `addr`?)"), "{errs:?}");
    assert!(has("pool[0].servers[3].addr", "required key is missing"), "{errs:?}");
    assert!(has("pool[1].servers", "at least one server"), "{errs:?}");
}

#[test]
fn duplicate_pool_names_and_servers_are_errors() {
    one_error(&with_proxy("[[pool]]\nname = \"web\"\nservers = [{ addr = \"198.18.1.5:80\" }]\n"), "pool[1].name", "already used by pool[0]");
    one_error(
        &with_proxy("[[pool]]\nname = \"api\"\nservers = [{ addr = \"198.18.1.5:80\" }, { addr = \"198.18.1.5:80\" }]\n"),
        "pool[1].servers[1].addr",
        "198.18.1.5:80 is already listed as pool[1].servers[0]",
    );
}

#[test]
fn servers_must_be_reachable_and_not_ourselves() {
    one_error(
        &format!("{TWO_PORTS}[[pool]]\nname = \"p\"\nservers = [{{ addr = \"203.0.113.5:80\" }}]\n"),
        "pool[0].servers[0].addr",
        "on no port's subnet and no port has a gateway",
    );
    one_error(
        &format!("{TWO_PORTS}[[pool]]\nname = \"p\"\nservers = [{{ addr = \"198.18.1.2:80\" }}]\n"),
        "pool[0].servers[0].addr",
        "strait's own port address",
    );
    // Through a gateway: the port with the gateway is the source.
    let gw = "[[port]]\nname = \"up\"\ndevice = \"net_tap2,iface=strait2\"\nipv4 = \"198.18.5.2/24\"\ngateway = \"198.18.5.1\"\n";
    let cfg = ok(&format!("{TWO_PORTS}{gw}[[pool]]\nname = \"p\"\nservers = [{{ addr = \"203.0.113.5:80\" }}]\n"));
    assert_eq!(cfg.pools[0].servers[0].local_ip, "198.18.5.2".parse::<std::net::Ipv4Addr>().unwrap());
}

#[test]
fn listener_and_pool_must_be_arrays_of_tables() {
    one_error(&format!("{TWO_PORTS}[pool]\nname = \"p\"\n"), "pool", "write [[pool]], not [pool]");
    one_error(&format!("listener = 3\n{TWO_PORTS}"), "listener", "expected an array of tables ([[listener]])");
}

#[test]
fn impairment_is_off_by_default() {
    let cfg = ok(PORT);
    assert!(cfg.ports[0].impair.is_passthrough());
    assert_eq!(cfg.ports[0].impair, ImpairConfig::default());
}

#[test]
fn impairment_parses_every_key() {
    let cfg = ok(&with_port(
        "[port.impair]\nseed = 7\nrx_drop = 0.05\ntx_drop = 0.04\nreorder = 0.01\nduplicate = 0.002\ncorrupt = 0\ndelay_ms = 3",
    ));
    let i = cfg.ports[0].impair;
    assert_eq!(i.seed, 7);
    assert_eq!((i.rx.drop.as_f64(), i.tx.drop.as_f64()), (0.05, 0.04));
    for d in [i.rx, i.tx] {
        assert_eq!((d.reorder.as_f64(), d.duplicate.as_f64(), d.corrupt.as_f64()), (0.01, 0.002, 0.0));
        assert_eq!(d.delay, std::time::Duration::from_millis(3));
    }
    // Missing keys: no impairment of that kind, seed 1.
    let i = ok(&with_port("[port.impair]\nrx_drop = 1")).ports[0].impair;
    assert_eq!((i.seed, i.rx.drop.as_f64(), i.tx.drop.as_f64()), (1, 1.0, 0.0));
}

#[test]
fn impairment_probabilities_must_lie_in_zero_to_one() {
    one_error(&with_port("[port.impair]\nrx_drop = 1.5"), "port[0].impair.rx_drop", "probability between 0 and 1");
    one_error(&with_port("[port.impair]\nreorder = -0.1"), "port[0].impair.reorder", "probability between 0 and 1");
    one_error(&with_port("[port.impair]\ncorrupt = \"lots\""), "port[0].impair.corrupt", "probability between 0 and 1");
    // Every bad key is reported, each by name.
    let errs = errors(&with_port("[port.impair]\ntx_drop = 2\nduplicate = true\ndelay_ms = -1\ndrop = 0.1"));
    let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
    for k in ["port[0].impair.tx_drop", "port[0].impair.duplicate", "port[0].impair.delay_ms", "port[0].impair.drop"] {
        assert!(keys.contains(&k), "{k} missing from {errs:?}");
    }
}

// ----- [[pool]] proxy_protocol -----

fn pool_with_pp(value: &str) -> String {
    format!(
        "{TWO_PORTS}[[pool]]\nname = \"web\"\nservers = [{{ addr = \"198.18.1.1:8080\" }}]\nproxy_protocol = {value}\n[[listener]]\nname = \"a\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\n"
    )
}

#[test]
fn proxy_protocol_is_off_unless_set_and_reaches_the_proxy_spec() {
    use dataplane::app::proxy::ProxyProtocol;
    let off = ok(&with_proxy("[[listener]]\nname = \"a\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\n"));
    assert_eq!(off.pools[0].proxy_protocol, None);
    assert_eq!(off.proxy_spec().pools[0].proxy_protocol, None);
    for (value, version) in [("\"v1\"", ProxyProtocol::V1), ("\"v2\"", ProxyProtocol::V2)] {
        let cfg = ok(&pool_with_pp(value));
        assert_eq!(cfg.pools[0].proxy_protocol, Some(version));
        assert_eq!(cfg.proxy_spec().pools[0].proxy_protocol, Some(version));
    }
}

#[test]
fn proxy_protocol_other_values_are_errors_naming_the_key() {
    one_error(&pool_with_pp("\"v3\""), "pool[0].proxy_protocol", "\"v3\" is not a PROXY protocol version (expected \"v1\" or \"v2\"");
    one_error(&pool_with_pp("\"V1\""), "pool[0].proxy_protocol", "is not a PROXY protocol version");
    one_error(&pool_with_pp("2"), "pool[0].proxy_protocol", "expected a string");
}

/// Configurations that used to pass `check-config` and then misbehaved (issue 16): each is
/// an error naming its key.
#[test]
fn dangerous_combinations_are_refused_by_key() {
    // A short EAL option with its value glued on is still the option strait sets.
    one_error(&with_dpdk("extra_eal_args = [\"-l1\"]"), "dpdk.extra_eal_args[0]", "-l is set by strait");
    one_error(&with_dpdk("extra_eal_args = [\"-m512\"]"), "dpdk.extra_eal_args[0]", "-m is set by strait");
    assert_eq!(ok(&with_dpdk("extra_eal_args = [\"-v\"]")).dpdk.extra_eal_args, vec!["-v".to_string()]);
    // More mbufs than the memory holds.
    one_error(&with_dpdk("memory_mb = 64\nmbufs = 65535"), "dpdk.mbufs", "more than memory_mb = 64");
    // TSO without TCP checksum offload; jumbo frames without chained mbufs.
    one_error(&with_port("[port.offloads]\ntcp_checksum = false"), "port[0].offloads.tso", "TSO needs tcp_checksum");
    assert!(!ok(&with_port("[port.offloads]\ntso = false\ntcp_checksum = false")).ports[0].offloads.tso);
    let jumbo = "[[port]]\nname = \"j\"\ndevice = \"net_tap0\"\nipv4 = \"198.18.0.2/24\"\nmtu = 9000\n";
    one_error(&format!("{jumbo}[port.offloads]\nmulti_seg = false\n"), "port[0].mtu", "needs multi_seg = true");
    assert_eq!(ok(jumbo).ports[0].mtu, 9000);
    // Overlapping port subnets.
    let overlap = "[[port]]\nname = \"a\"\ndevice = \"net_tap0\"\nipv4 = \"198.18.0.2/16\"\n\
                   [[port]]\nname = \"b\"\ndevice = \"net_tap1\"\nipv4 = \"198.18.1.2/24\"\n";
    one_error(overlap, "port[1].ipv4", "overlaps port[0]'s subnet 198.18.0.2/16");
    // A server at its subnet's broadcast or network address.
    let pool = |addr: &str| format!("{TWO_PORTS}[[pool]]\nname = \"web\"\nservers = [{{ addr = \"{addr}\" }}]\n");
    one_error(&pool("198.18.1.255:80"), "pool[0].servers[0].addr", "broadcast");
    one_error(&pool("198.18.1.0:80"), "pool[0].servers[0].addr", "network address");
    // A wildcard listener shadowed by an exact one on the same port.
    let l = "[[listener]]\nname = \"any\"\nlisten = \"0.0.0.0:80\"\npool = \"web\"\n\
             [[listener]]\nname = \"one\"\nlisten = \"198.18.0.2:80\"\npool = \"web\"\n";
    one_error(&with_proxy(l), "listener[1].listen", "listener[0] on 0.0.0.0:80 is shadowed by listener[1]");
}

#[test]
fn log_queue_lines_is_validated() {
    let cfg = ok(&format!("[log]\nqueue_lines = 1024\n{PORT}"));
    assert_eq!(cfg.log.queue_lines, 1024);
    one_error(&format!("[log]\nqueue_lines = 10\n{PORT}"), "log.queue_lines", "out of range");
}

#[test]
fn server_max_connections_and_the_queue_are_parsed_and_validated() {
    let cfg = ok(&format!(
        "{TWO_PORTS}[[pool]]\nname = \"p\"\nmax_queue = 5\nqueue_timeout_ms = 250\nservers = [{{ addr = \"198.18.1.1:80\", max_connections = 2 }}, {{ addr = \"198.18.1.3:80\" }}]\n"
    ));
    let p = &cfg.pools[0];
    assert_eq!((p.servers[0].max_connections, p.servers[1].max_connections), (Some(2), None));
    assert_eq!((p.max_queue, p.queue_timeout.as_millis()), (5, 250));
    let spec = cfg.proxy_spec();
    assert_eq!(spec.pools[0].servers[0].max_connections, Some(2));
    assert_eq!((spec.pools[0].max_queue, spec.pools[0].queue_timeout.as_millis()), (5, 250));
    // Defaults: no limit; a queue of 1024 for 3 s once a server has a limit.
    let d = &ok(&with_proxy("")).pools[0];
    assert_eq!((d.servers[0].max_connections, d.max_queue, d.queue_timeout.as_millis()), (None, 1024, 3000));
    one_error(
        &format!("{TWO_PORTS}[[pool]]\nname = \"p\"\nservers = [{{ addr = \"198.18.1.1:80\", max_connections = 0 }}]\n"),
        "pool[0].servers[0].max_connections",
        "out of range",
    );
    one_error(
        &format!("{TWO_PORTS}[[pool]]\nname = \"p\"\nmax_queue = 10\nservers = [{{ addr = \"198.18.1.1:80\" }}]\n"),
        "pool[0].max_queue",
        "no server of the pool has max_connections",
    );
    one_error(
        &format!("{TWO_PORTS}[[pool]]\nname = \"p\"\nqueue_timeout_ms = 0\nservers = [{{ addr = \"198.18.1.1:80\", max_connections = 1 }}]\n"),
        "pool[0].queue_timeout_ms",
        "out of range",
    );
}
