//! Unit tests for [`Config`]: one per validation rule, plus the EAL argument vector.

use super::*;

/// A machine with CPUs 0-3.
fn cpus() -> CpuSet {
    CpuSet::from_ids(0..4)
}

const PORT: &str = r#"
[[port]]
name = "tap0"
device = "net_tap0,iface=strait0"
ipv4 = "198.18.0.2/24"
"#;

fn ok(toml: &str) -> Config {
    Config::from_toml_str_for(toml, &cpus()).unwrap_or_else(|e| panic!("expected OK, got:\n{e}"))
}

/// The errors for `toml`, as `(key, reason)` pairs.
fn errors(toml: &str) -> Vec<(String, String)> {
    match Config::from_toml_str_for(toml, &cpus()) {
        Ok(cfg) => panic!("expected errors, got {cfg:?}"),
        Err(ConfigErrors(v)) => v.into_iter().map(|e| (e.key, e.reason)).collect(),
    }
}

/// Asserts exactly one error, at `key`, whose reason contains `needle`.
fn one_error(toml: &str, key: &str, needle: &str) {
    let errs = errors(toml);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].0, key, "{errs:?}");
    assert!(
        errs[0].1.contains(needle),
        "{:?} does not contain {needle:?}",
        errs[0].1
    );
}

fn with_dpdk(dpdk: &str) -> String {
    format!("[dpdk]\n{dpdk}\n{PORT}")
}

fn with_port(extra: &str) -> String {
    format!("{PORT}{extra}\n")
}

#[test]
fn minimal_config_gets_the_defaults() {
    let cfg = ok(PORT);
    assert_eq!(
        cfg.log,
        LogConfig {
            format: LogFormat::Human,
            level: "info".into(),
            access: false,
            queue_lines: 65_536,
        }
    );
    assert_eq!(cfg.dpdk.lcores, vec![0]);
    assert_eq!(
        cfg.dpdk.memory,
        Memory::Hugepages {
            size_mb: 256,
            dir: None
        }
    );
    assert_eq!((cfg.dpdk.mbufs, cfg.dpdk.mbuf_cache), (8191, 256));
    assert!(cfg.dpdk.extra_eal_args.is_empty());
    let p = &cfg.ports[0];
    assert_eq!(p.name, "tap0");
    assert_eq!(p.device, Device::Vdev("net_tap0,iface=strait0".into()));
    assert_eq!((p.ipv4, p.prefix_len), (Ipv4Addr::new(198, 18, 0, 2), 24));
    assert_eq!((p.gateway, p.mtu, p.mac), (None, 1500, None));
    assert_eq!(p.offloads, Offloads::ALL);
}

#[test]
fn shipped_configs_are_valid() {
    let demo = ok(include_str!("../../../configs/demo.toml"));
    assert_eq!(demo.dpdk.memory, Memory::NoHuge { size_mb: 256 });
    assert_eq!(demo.ports[0].gateway, Some(Ipv4Addr::new(198, 18, 0, 1)));
    assert_eq!(demo.ports[0].mac, Some([2, 0, 0, 0, 0, 1]));
    let prod = Config::from_toml_str_for(
        include_str!("../../../configs/strait.toml"),
        &CpuSet::from_ids(0..8),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(prod.dpdk.lcores, vec![2, 3]);
    assert_eq!(
        prod.dpdk.memory,
        Memory::Hugepages {
            size_mb: 1024,
            dir: Some(PathBuf::from("/dev/hugepages"))
        }
    );
    assert_eq!(prod.ports[0].device, Device::Pci("0000:01:00.0".into()));
    assert!(!prod.ports[0].offloads.tso && prod.ports[0].offloads.rss);
}

#[test]
fn bad_example_reports_all_three_errors() {
    let errs = errors(include_str!("../../../configs/bad-example.toml"));
    let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["dpdk.lcroes", "dpdk.lcores", "port[0].ipv4"],
        "{errs:?}"
    );
    assert!(errs[0].1.contains("did you mean `lcores`"));
    assert!(errs[1]
        .1
        .contains("lcore 64 does not exist (this machine has CPUs 0-3)"));
    assert!(errs[2]
        .1
        .contains("\"198.18.0.300/24\" is not an IPv4 address with prefix"));
}

#[test]
fn display_prints_one_error_line_each() {
    let Err(e) =
        Config::from_toml_str_for(include_str!("../../../configs/bad-example.toml"), &cpus())
    else {
        panic!("expected errors");
    };
    let text = e.to_string();
    assert_eq!(text.lines().count(), 3);
    assert!(text.lines().all(|l| l.starts_with("error: ")));
    assert!(
        text.contains("error: dpdk.lcroes: unknown key (did you mean `lcores`?)"),
        "{text}"
    );
}

#[test]
fn unknown_keys_are_rejected_at_every_level() {
    one_error(
        &format!("[logs]\nlevel = \"info\"\n{PORT}"),
        "logs",
        "did you mean `log`",
    );
    one_error(
        &format!("[log]\nfromat = \"json\"\n{PORT}"),
        "log.fromat",
        "did you mean `format`",
    );
    one_error(
        &with_dpdk("mbfus = 2047"),
        "dpdk.mbfus",
        "did you mean `mbufs`",
    );
    one_error(
        &with_port("vlan = 3"),
        "port[0].vlan",
        "unknown key (expected one of:",
    );
    one_error(
        &with_port("[port.offloads]\ntos = false"),
        "port[0].offloads.tos",
        "did you mean `tso`",
    );
}

#[test]
fn toml_syntax_errors_are_reported() {
    let errs = errors("[dpdk\nlcores = [0]");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].1.contains("TOML parse error"), "{errs:?}");
}

#[test]
fn type_mismatches_name_key_and_found_type() {
    one_error(
        &with_dpdk("mbufs = \"lots\""),
        "dpdk.mbufs",
        "expected an integer, found a string",
    );
    one_error(
        &with_dpdk("memory_mb = 256.5"),
        "dpdk.memory_mb",
        "expected an integer, found a float",
    );
    one_error(
        &with_port("mtu = true"),
        "port[0].mtu",
        "expected an integer, found a boolean",
    );
    one_error(
        &with_port("[port.offloads]\nrss = 1"),
        "port[0].offloads.rss",
        "expected true or false",
    );
    one_error(&format!("log = 3\n{PORT}"), "log", "expected a table");
    one_error(&with_dpdk("lcores = 0"), "dpdk.lcores", "expected an array");
    one_error(
        &with_dpdk("lcores = [\"0\"]"),
        "dpdk.lcores[0]",
        "expected an integer",
    );
}

#[test]
fn log_format_and_level() {
    let cfg = ok(&format!(
        "[log]\nformat = \"json\"\nlevel = \"warn,dataplane=debug\"\n{PORT}"
    ));
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.log.level, "warn,dataplane=debug");
    one_error(
        &format!("[log]\nformat = \"xml\"\n{PORT}"),
        "log.format",
        "expected \"human\" or \"json\"",
    );
    one_error(
        &format!("[log]\nlevel = \"foo=bogus\"\n{PORT}"),
        "log.level",
        "not a valid filter directive",
    );
    one_error(
        &format!("[log]\nlevel = \"\"\n{PORT}"),
        "log.level",
        "must not be empty",
    );
}

#[test]
fn lcores_rules() {
    assert_eq!(ok(&with_dpdk("lcores = [3, 1]")).dpdk.lcores, vec![3, 1]);
    one_error(&with_dpdk("lcores = []"), "dpdk.lcores", "at least one CPU");
    one_error(
        &with_dpdk("lcores = [1, 1]"),
        "dpdk.lcores",
        "lcore 1 is listed twice",
    );
    one_error(
        &with_dpdk("lcores = [4]"),
        "dpdk.lcores",
        "lcore 4 does not exist (this machine has CPUs 0-3)",
    );
    one_error(
        &with_dpdk("lcores = [-1]"),
        "dpdk.lcores[0]",
        "out of range",
    );
    let big = Config::from_toml_str_for(&with_dpdk("lcores = [128]"), &CpuSet::from_ids(0..200));
    let Err(ConfigErrors(e)) = big else {
        panic!("lcore 128 accepted")
    };
    assert!(e[0].reason.contains("< 128"), "{e:?}");
    // Every bad lcore is reported.
    assert_eq!(errors(&with_dpdk("lcores = [7, 8]")).len(), 2);
}

#[test]
fn memory_rules() {
    assert_eq!(
        ok(&with_dpdk("memory_mode = \"no-huge\"\nmemory_mb = 64"))
            .dpdk
            .memory,
        Memory::NoHuge { size_mb: 64 }
    );
    assert_eq!(
        ok(&with_dpdk(
            "memory_mode = \"hugepages\"\nhugepage_dir = \"/mnt/huge\""
        ))
        .dpdk
        .memory,
        Memory::Hugepages {
            size_mb: 256,
            dir: Some(PathBuf::from("/mnt/huge"))
        }
    );
    one_error(
        &with_dpdk("memory_mode = \"huge\""),
        "dpdk.memory_mode",
        "expected \"no-huge\" or \"hugepages\"",
    );
    one_error(
        &with_dpdk("memory_mb = 63"),
        "dpdk.memory_mb",
        "out of range",
    );
    one_error(
        &with_dpdk("memory_mode = \"no-huge\"\nhugepage_dir = \"/mnt/huge\""),
        "dpdk.hugepage_dir",
        "only valid with memory_mode = \"hugepages\"",
    );
    one_error(
        &with_dpdk("hugepage_dir = \"mnt/huge\""),
        "dpdk.hugepage_dir",
        "absolute path",
    );
}

#[test]
fn rx_interrupts_default_on_and_must_be_a_bool() {
    assert!(ok(&with_dpdk("")).dpdk.rx_interrupts, "on by default");
    assert!(!ok(&with_dpdk("rx_interrupts = false")).dpdk.rx_interrupts);
    one_error(&with_dpdk("rx_interrupts = \"yes\""), "dpdk.rx_interrupts", "expected true or false");
}

#[test]
fn tcp_section_defaults_values_and_errors() {
    let d = ok(PORT).tcp;
    assert_eq!(d, TcpSection::default());
    assert_eq!(d.engine_config().congestion, dataplane::tcp::congestion::Algorithm::Cubic);
    assert!(d.engine_config().tlp, "tail loss probes on by default");
    let t = ok(&format!(
        "[tcp]\ncongestion = \"newreno\"\nmin_rto_ms = 20\nsndbuf = 65536\nrcvbuf = 131072\ninitial_cwnd = 4\ntail_loss_probes = false\n{PORT}"
    ))
    .tcp;
    let e = t.engine_config();
    assert_eq!(e.congestion, dataplane::tcp::congestion::Algorithm::NewReno);
    assert_eq!(e.min_rto, std::time::Duration::from_millis(20));
    assert_eq!((e.sndbuf, e.rcvbuf, e.initial_cwnd_segments, e.tlp), (65536, 131072, 4, false));
    let with_tcp = |body: &str| format!("[tcp]\n{body}\n{PORT}");
    one_error(&with_tcp("congestion = \"bbr\""), "tcp.congestion", "not a congestion control");
    one_error(&with_tcp("min_rto_ms = 0"), "tcp.min_rto_ms", "out of range");
    one_error(&with_tcp("sndbuf = 1000"), "tcp.sndbuf", "out of range");
    one_error(&with_tcp("rcvbuf = 2147483648"), "tcp.rcvbuf", "");
    one_error(&with_tcp("initial_cwnd = 0"), "tcp.initial_cwnd", "out of range");
    one_error(&with_tcp("tail_loss_probes = 1"), "tcp.tail_loss_probes", "expected true or false");
    one_error(&with_tcp("cubic = true"), "tcp.cubic", "");
    let o = ok(&with_tcp("orphan_retries = 3\nmax_orphans = 100")).tcp.engine_config();
    assert_eq!((o.orphan_retries, o.max_orphans), (3, 100));
    assert_eq!((d.orphan_retries, d.max_orphans), (8, 4096), "Linux's orphan retries; 4096 orphans per lcore");
    one_error(&with_tcp("orphan_retries = 0"), "tcp.orphan_retries", "out of range");
    one_error(&with_tcp("max_orphans = -1"), "tcp.max_orphans", "");
    let t = ok(&with_tcp("max_tw_buckets = 10")).tcp.engine_config();
    assert_eq!((t.max_time_wait, d.max_tw_buckets), (10, 65536), "tcp_max_tw_buckets per lcore");
    one_error(&with_tcp("max_tw_buckets = 1000001"), "tcp.max_tw_buckets", "out of range");
    let b = ok(&with_tcp("syn_backlog = 128\naccept_backlog = 64\nsyncookies = false")).tcp.engine_config();
    assert_eq!((b.syn_backlog, b.accept_backlog, b.syncookies), (128, 64, false));
    assert_eq!((d.syn_backlog, d.accept_backlog, d.syncookies), (4096, 4096, true), "Linux's somaxconn, cookies on overflow");
    one_error(&with_tcp("syn_backlog = 0"), "tcp.syn_backlog", "out of range");
    assert_eq!(d.synack_retries, 5, "Linux tcp_synack_retries");
    assert_eq!(ok(&with_tcp("synack_retries = 2")).tcp.engine_config().synack_retries, 2);
    one_error(&with_tcp("synack_retries = 16"), "tcp.synack_retries", "out of range");
    one_error(&with_tcp("accept_backlog = 1000001"), "tcp.accept_backlog", "out of range");
    one_error(&with_tcp("syncookies = \"yes\""), "tcp.syncookies", "expected true or false");
}

#[test]
fn tcp_path_mtu_keys() {
    use dataplane::tcp::MtuProbing;
    let with_tcp = |body: &str| format!("[tcp]\n{body}\n{PORT}");
    let d = ok(PORT).tcp.engine_config();
    assert_eq!((d.mtu_probing, d.base_mss), (MtuProbing::BlackHole, 1024), "black-hole detection on, Linux's base MSS");
    for (v, want) in [(0, MtuProbing::Off), (1, MtuProbing::BlackHole), (2, MtuProbing::Always)] {
        let t = ok(&with_tcp(&format!("mtu_probing = {v}\nbase_mss = 536"))).tcp.engine_config();
        assert_eq!((t.mtu_probing, t.base_mss), (want, 536), "mtu_probing = {v}");
    }
    one_error(&with_tcp("mtu_probing = 3"), "tcp.mtu_probing", "out of range");
    one_error(&with_tcp("mtu_probing = -1"), "tcp.mtu_probing", "");
    one_error(&with_tcp("mtu_probing = true"), "tcp.mtu_probing", "");
    one_error(&with_tcp("base_mss = 47"), "tcp.base_mss", "out of range");
    one_error(&with_tcp("base_mss = 65496"), "tcp.base_mss", "out of range");
    one_error(&with_tcp("mtu_probe = 1"), "tcp.mtu_probe", "");
}

#[test]
fn mbuf_rules() {
    let cfg = ok(&with_dpdk("mbufs = 1023\nmbuf_cache = 512"));
    assert_eq!((cfg.dpdk.mbufs, cfg.dpdk.mbuf_cache), (1023, 512));
    one_error(
        &with_dpdk("mbufs = 1022\nmbuf_cache = 0"),
        "dpdk.mbufs",
        "out of range",
    );
    one_error(
        &with_dpdk("mbuf_cache = 513"),
        "dpdk.mbuf_cache",
        "out of range",
    );
    // The 1.5x rule (unreachable through today's bounds, checked directly).
    assert!(validate::cache_fits(1023, 682));
    assert!(!validate::cache_fits(1023, 683));
    assert!(!validate::cache_fits(100, 67));
}

#[test]
fn extra_eal_args_rules() {
    let cfg = ok(&with_dpdk(
        "extra_eal_args = [\"--log-level=lib.eal:debug\"]",
    ));
    assert_eq!(
        cfg.dpdk.extra_eal_args,
        vec!["--log-level=lib.eal:debug".to_string()]
    );
    one_error(
        &with_dpdk("extra_eal_args = [\"\"]"),
        "dpdk.extra_eal_args[0]",
        "must not be empty",
    );
    one_error(
        &with_dpdk("extra_eal_args = [\"-x\", \"--vdev=net_null0\"]"),
        "dpdk.extra_eal_args[1]",
        "set by strait",
    );
    one_error(
        &with_dpdk(r#"extra_eal_args = ["a\u0000b"]"#),
        "dpdk.extra_eal_args[0]",
        "NUL",
    );
    one_error(
        &with_dpdk("extra_eal_args = [3]"),
        "dpdk.extra_eal_args[0]",
        "expected a string",
    );
}

#[test]
fn at_least_one_port() {
    one_error("[log]\nlevel = \"info\"", "port", "at least one [[port]]");
    one_error("port = []", "port", "at least one [[port]]");
    one_error("[port]\nname = \"a\"", "port", "write [[port]], not [port]");
}

#[test]
fn port_required_keys() {
    let errs = errors("[[port]]\nmtu = 1500");
    let keys: Vec<&str> = errs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["port[0].name", "port[0].device", "port[0].ipv4"]);
    assert!(errs.iter().all(|(_, r)| r == "required key is missing"));
}

#[test]
fn port_name_rules() {
    let port = |name: &str| {
        format!("[[port]]\nname = {name:?}\ndevice = \"net_tap0\"\nipv4 = \"10.0.0.2/24\"")
    };
    one_error(&port("Tap0"), "port[0].name", "may only contain");
    one_error(&port(""), "port[0].name", "1 to 32 characters");
    one_error(&port(&"x".repeat(33)), "port[0].name", "1 to 32 characters");
    let dup =
        format!("{PORT}[[port]]\nname = \"tap0\"\ndevice = \"net_tap1\"\nipv4 = \"198.18.1.2/24\"");
    one_error(&dup, "port[1].name", "already used by port[0]");
}

#[test]
fn port_device_rules() {
    let port =
        |dev: &str| format!("[[port]]\nname = \"p\"\ndevice = {dev:?}\nipv4 = \"10.0.0.2/24\"");
    assert_eq!(
        ok(&port("0000:AF:00.1")).ports[0].device,
        Device::Pci("0000:af:00.1".into())
    );
    assert_eq!(
        ok(&port("net_null0")).ports[0].device,
        Device::Vdev("net_null0".into())
    );
    one_error(&port("eth0"), "port[0].device", "neither a DPDK vdev");
    one_error(
        &port("01:00.0"),
        "port[0].device",
        "nor a PCI address (DDDD:BB:DD.F)",
    );
    one_error(&port("net_tap0,iface"), "port[0].device", "not key=value");
    let dup = format!(
        "{PORT}[[port]]\nname = \"tap1\"\ndevice = \"net_tap0,iface=x\"\nipv4 = \"198.18.1.2/24\""
    );
    one_error(
        &dup,
        "port[1].device",
        "\"net_tap0\" is already used by port[0]",
    );
}

#[test]
fn af_xdp_port_rules() {
    let port = |dev: &str, mtu: u32| {
        format!("[[port]]\nname = \"x\"\ndevice = {dev:?}\nipv4 = \"10.0.0.2/24\"\nmtu = {mtu}")
    };
    let cfg = ok(&port("net_af_xdp0,iface=veth0,busy_budget=0", 1500));
    assert!(super::af_xdp::is_af_xdp(&cfg.ports[0].device));
    one_error(&port("net_af_xdp0", 1500), "port[0].device", "needs iface=");
    one_error(&port("net_af_xdp0,iface=v,queue_cnt=2", 1500), "port[0].device", "unknown argument \"queue_cnt\"");
    one_error(&port("net_af_xdp0,iface=v", 9000), "port[0].device", "mtu 9000 is above 1774");
    // One queue per lcore.
    let two = format!("[dpdk]\nlcores = [0, 1]\n{}", port("net_af_xdp0,iface=v", 1500));
    one_error(&two, "port[0].device", "queue_count=1 but dpdk.lcores has 2 lcore(s)");
    let two = format!("[dpdk]\nlcores = [0, 1]\n{}", port("net_af_xdp0,iface=v,queue_count=2", 1500));
    ok(&two);
    // Or a whole number of queues per lcore, never a remainder.
    ok(&format!("[dpdk]\nlcores = [0, 1]\n{}", port("net_af_xdp0,iface=v,queue_count=4", 1500)));
    ok(&port("net_af_xdp0,iface=v,queue_count=4", 1500));
    let three = format!("[dpdk]\nlcores = [0, 1]\n{}", port("net_af_xdp0,iface=v,queue_count=3", 1500));
    one_error(&three, "port[0].device", "queue_count=3 but dpdk.lcores has 2 lcore(s): an AF_XDP port needs a whole number of queues per lcore");
    // A PCI device cannot share the packed pool.
    let mixed = format!(
        "{}\n[[port]]\nname = \"nic\"\ndevice = \"0000:00:04.0\"\nipv4 = \"198.18.1.2/24\"",
        port("net_af_xdp0,iface=v", 1500)
    );
    one_error(&mixed, "port[1].device", "cannot share the mbuf pool with a net_af_xdp port");
}

#[test]
fn port_address_rules() {
    let port = |ip: &str| format!("[[port]]\nname = \"p\"\ndevice = \"net_tap0\"\nipv4 = {ip:?}");
    one_error(&port("198.18.0.2"), "port[0].ipv4", "expected a.b.c.d/len");
    one_error(
        &port("198.18.0.255/24"),
        "port[0].ipv4",
        "broadcast address",
    );
    one_error(&port("198.18.0.2/33"), "port[0].ipv4", "out of range");
    let dup =
        format!("{PORT}[[port]]\nname = \"tap1\"\ndevice = \"net_tap1\"\nipv4 = \"198.18.0.2/16\"");
    one_error(&dup, "port[1].ipv4", "already used by port[0]");
}

#[test]
fn gateway_rules() {
    assert_eq!(
        ok(&with_port("gateway = \"198.18.0.1\"")).ports[0].gateway,
        Some(Ipv4Addr::new(198, 18, 0, 1))
    );
    one_error(
        &with_port("gateway = \"198.18.1.1\""),
        "port[0].gateway",
        "not inside the port's subnet 198.18.0.2/24",
    );
    one_error(
        &with_port("gateway = \"198.18.0.2\""),
        "port[0].gateway",
        "port's own address",
    );
    one_error(
        &with_port("gateway = \"198.18.0.255\""),
        "port[0].gateway",
        "broadcast address",
    );
    one_error(
        &with_port("gateway = \"gw\""),
        "port[0].gateway",
        "not an IPv4 address",
    );
}

#[test]
fn arp_resolution_rate_rules() {
    assert_eq!(ok(PORT).ports[0].arp_resolutions_per_second, 100, "the default");
    assert_eq!(ok(&with_port("arp_resolutions_per_second = 5000")).ports[0].arp_resolutions_per_second, 5000);
    one_error(&with_port("arp_resolutions_per_second = 0"), "port[0].arp_resolutions_per_second", "");
    one_error(&with_port("arp_resolutions_per_second = 2000000"), "port[0].arp_resolutions_per_second", "");
}

#[test]
fn mtu_rules() {
    assert_eq!(ok(&with_port("mtu = 9000")).ports[0].mtu, 9000);
    assert_eq!(ok(&with_port("mtu = 576")).ports[0].mtu, 576);
    one_error(&with_port("mtu = 575"), "port[0].mtu", "must be 576..=9000");
    one_error(
        &with_port("mtu = 9001"),
        "port[0].mtu",
        "must be 576..=9000",
    );
}

#[test]
fn mac_rules() {
    assert_eq!(
        ok(&with_port("mac = \"02:00:00:00:00:01\"")).ports[0].mac,
        Some([2, 0, 0, 0, 0, 1])
    );
    one_error(
        &with_port("mac = \"02:00:00:00:01\""),
        "port[0].mac",
        "not a MAC address",
    );
    one_error(
        &with_port("mac = \"03:00:00:00:00:01\""),
        "port[0].mac",
        "unicast",
    );
}

#[test]
fn offload_switches_only_turn_off() {
    let cfg = ok(&with_port(
        "[port.offloads]\ntso = false\nrx_checksum = false",
    ));
    let o = cfg.ports[0].offloads;
    assert!(!o.tso && !o.rx_cksum);
    assert!(o.ipv4_cksum && o.tcp_cksum && o.udp_cksum && o.multi_seg && o.rss);
    // Every mistyped switch is reported, not just the first.
    assert_eq!(
        errors(&with_port("[port.offloads]\ntso = 0\nrss = \"no\"")).len(),
        2
    );
}

#[test]
fn errors_from_all_sections_are_collected() {
    let toml = "[log]\nformat = \"xml\"\n[dpdk]\nmbufs = 5\n[[port]]\nname = \"A\"\ndevice = \"x\"\nipv4 = \"1.2.3.4/24\"\nmtu = 1";
    let keys: Vec<String> = errors(toml).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "log.format",
            "dpdk.mbufs",
            "port[0].name",
            "port[0].device",
            "port[0].mtu"
        ]
    );
}

#[test]
fn eal_args_for_a_vdev_in_no_huge_mode() {
    let cfg = ok(&format!("[dpdk]\nlcores = [1, 0]\nmemory_mode = \"no-huge\"\nextra_eal_args = [\"--log-level=8\"]\n{PORT}"));
    let args = cfg.dpdk.eal_args(&cfg.ports, "strait-42");
    let expect = [
        "strait",
        "-l",
        "1,0",
        "--main-lcore",
        "1",
        "--no-huge",
        "-m",
        "256",
        "--no-shconf",
        "--no-telemetry",
        "--file-prefix",
        "strait-42",
        "--no-pci",
        "--vdev=net_tap0,iface=strait0",
        "--log-level=8",
    ];
    assert_eq!(args, expect);
}

#[test]
fn eal_args_for_pci_with_hugepages() {
    let toml = "[dpdk]\nlcores = [2]\nhugepage_dir = \"/dev/hugepages\"\nmemory_mb = 1024\n\
                [[port]]\nname = \"a\"\ndevice = \"0000:01:00.0\"\nipv4 = \"10.0.0.2/24\"\n\
                [[port]]\nname = \"b\"\ndevice = \"net_null0\"\nipv4 = \"10.0.1.2/24\"";
    let cfg = ok(toml);
    let args = cfg.dpdk.eal_args(&cfg.ports, "p");
    let expect = [
        "strait",
        "-l",
        "2",
        "--main-lcore",
        "2",
        "--huge-dir",
        "/dev/hugepages",
        "-m",
        "1024",
        "--in-memory",
        "--no-telemetry",
        "--file-prefix",
        "p",
        "-a",
        "0000:01:00.0",
        "--vdev=net_null0",
    ];
    assert_eq!(args, expect);
}

#[test]
fn summary_mentions_the_essentials() {
    // Its own configuration, so that the shipped examples can change freely.
    let s = ok(&with_dpdk("memory_mode = \"no-huge\"\nmbufs = 8191")).summary();
    assert_eq!(
        s,
        "1 port [tap0 net_tap0,iface=strait0 198.18.0.2/24 mtu 1500]; lcores [0]; memory no-huge 256 MiB; \
         8191 mbufs (cache 256); log info (human)"
    );
}

#[test]
fn apps_are_optional_and_parsed() {
    assert!(ok(PORT).apps.is_empty());
    let cfg = ok(&with_port(
        "[[app]]\nkind = \"echo\"\nlisten = \"198.18.0.2:7\"\n[[app]]\nkind = \"sink\"\nlisten = \"0.0.0.0:9\"\nmax_connections = 5\nidle_timeout_ms = 1500",
    ));
    assert_eq!(
        cfg.apps,
        vec![
            AppSpec {
                kind: AppKind::Echo,
                listen: "198.18.0.2:7".parse().unwrap_or_else(|e| panic!("{e}")),
                max_connections: 10_000,
                idle_timeout: std::time::Duration::from_secs(60),
            },
            AppSpec {
                kind: AppKind::Sink,
                listen: "0.0.0.0:9".parse().unwrap_or_else(|e| panic!("{e}")),
                max_connections: 5,
                idle_timeout: std::time::Duration::from_millis(1500),
            },
        ]
    );
    one_error(
        &with_port("[[app]]\nkind = \"echo\"\nlisten = \"198.18.0.2:7\"\nmax_connections = 0"),
        "app[0].max_connections",
        "out of range",
    );
    one_error(
        &with_port("[[app]]\nkind = \"echo\"\nlisten = \"198.18.0.2:7\"\nidle_timeout_ms = 0"),
        "app[0].idle_timeout_ms",
        "out of range",
    );
    assert!(cfg.summary().contains("apps [echo 198.18.0.2:7, sink 0.0.0.0:9]"), "{}", cfg.summary());
}

#[test]
fn app_kind_must_be_known() {
    one_error(&with_port("[[app]]\nkind = \"proxy\"\nlisten = \"198.18.0.2:7\""), "app[0].kind", "not an app kind");
    one_error(&with_port("[[app]]\nlisten = \"198.18.0.2:7\""), "app[0].kind", "required key is missing");
}

#[test]
fn app_listen_must_be_a_local_address_and_port() {
    one_error(&with_port("[[app]]\nkind = \"echo\"\nlisten = \"198.18.0.2\""), "app[0].listen", "is not an address and port");
    one_error(&with_port("[[app]]\nkind = \"echo\"\nlisten = \"198.18.0.2:0\""), "app[0].listen", "1..=65535");
    one_error(&with_port("[[app]]\nkind = \"echo\"\nlisten = \"10.9.9.9:7\""), "app[0].listen", "not the address of any port");
    one_error(&with_port("[[app]]\nkind = \"echo\""), "app[0].listen", "required key is missing");
}

#[test]
fn app_listen_addresses_are_unique_and_keys_known() {
    one_error(
        &with_port("[[app]]\nkind = \"echo\"\nlisten = \"198.18.0.2:7\"\n[[app]]\nkind = \"sink\"\nlisten = \"198.18.0.2:7\""),
        "app[1].listen",
        "already used by app[0]",
    );
    one_error(&with_port("[[app]]\nkind = \"echo\"\nlisten = \"198.18.0.2:7\"\nbacklog = 5"), "app[0].backlog", "unknown key");
    one_error(&with_port("[app]\nkind = \"echo\""), "app", "write [[app]], not [app]");
}

#[test]
fn metrics_listen_is_optional_and_validated() {
    assert_eq!(ok(&with_port("")).metrics.listen, None);
    let cfg = ok(&with_port("[metrics]\nlisten = \"127.0.0.1:9100\""));
    assert_eq!(cfg.metrics.listen, Some("127.0.0.1:9100".parse().expect("addr")));
    one_error(&with_port("[metrics]\nlisten = \"localhost\""), "metrics.listen", "not an address and port");
    one_error(&with_port("[metrics]\nlisten = \"127.0.0.1:9100\"\nport = 3"), "metrics.port", "unknown key");
}

mod env_overrides;
mod ipv6;
mod proxy_sections;
