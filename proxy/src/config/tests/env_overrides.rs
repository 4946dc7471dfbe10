//! `STRAIT_*` environment overrides ([`crate::config::env`]): plain keys, keys inside
//! array entries named by index, other `STRAIT_*` variables left alone, errors naming
//! the variable.

use super::*;

fn env_vars(vars: &[(&str, &str)]) -> EnvSource {
    EnvSource::Map(
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn with_env(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    Config::build(
        config::File::from_str(toml, config::FileFormat::Toml),
        env_vars(vars),
        &cpus(),
    )
}

#[test]
fn environment_overrides_file_values() {
    let cfg = with_env(
        &format!("[log]\nlevel = \"info\"\n{PORT}"),
        &[
            ("STRAIT_LOG__LEVEL", "debug"),
            ("STRAIT_LOG__FORMAT", "json"),
            ("STRAIT_DPDK__LCORES", "1,2"),
            ("STRAIT_DPDK__MBUFS", "4095"),
            ("STRAIT_DPDK__EXTRA_EAL_ARGS", "--log-level=8"),
            ("OTHER_VAR", "ignored"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.log.level, "debug");
    assert_eq!(cfg.log.format, LogFormat::Json);
    assert_eq!(cfg.dpdk.lcores, vec![1, 2]);
    assert_eq!(cfg.dpdk.mbufs, 4095);
    assert_eq!(cfg.dpdk.extra_eal_args, vec!["--log-level=8".to_string()]);
    // A single lcore parses as an integer and still counts as a list.
    let cfg = with_env(PORT, &[("STRAIT_DPDK__LCORES", "3")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.dpdk.lcores, vec![3]);
}

#[test]
fn other_strait_variables_are_not_overrides() {
    // The hugepage unit's knob is not a key path: ignored.
    let cfg = with_env(PORT, &[("STRAIT_HUGEPAGES", "1024"), ("STRAIT_LOG__LEVEL", "debug")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.log.level, "debug");
    let cfg = with_env(PORT, &[("STRAIT_X", "1"), ("STRAITLOG__LEVEL", "debug")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.log.level, "info");
}

const PROXY: &str = r#"
[[port]]
name = "front"
device = "net_tap0"
ipv4 = "198.18.0.2/24"
[[port]]
name = "back"
device = "net_tap1"
ipv4 = "198.18.1.2/24"
[[listener]]
name = "web"
listen = "198.18.0.2:80"
pool = "web"
[[pool]]
name = "web"
servers = [{ addr = "198.18.1.1:8080" }, { addr = "198.18.1.3:8080" }]
"#;

/// Keys inside array entries, the entry named by its index: `port[1].mtu` is
/// `STRAIT_PORT__1__MTU`, nested lists too, with the value validated like the file's.
#[test]
fn array_entries_are_overridden_by_index() {
    let cfg = with_env(
        PROXY,
        &[
            ("STRAIT_PORT__1__MTU", "1400"),
            ("STRAIT_PORT__0__OFFLOADS__TSO", "false"),
            ("STRAIT_LISTENER__0__MAX_CONNECTIONS", "5"),
            ("STRAIT_POOL__0__SERVERS__1__WEIGHT", "7"),
            ("STRAIT_POOL__0__ALGORITHM", "least_connections"),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((cfg.ports[0].mtu, cfg.ports[1].mtu), (1500, 1400));
    assert!(!cfg.ports[0].offloads.tso && cfg.ports[1].offloads.tso);
    assert_eq!(cfg.listeners[0].max_connections, 5);
    assert_eq!((cfg.pools[0].servers[0].weight, cfg.pools[0].servers[1].weight), (1, 7));
    assert_eq!(cfg.pools[0].algorithm, Algorithm::LeastConnections);
    // Values are checked as the file's, naming the variable.
    let Err(ConfigErrors(e)) = with_env(PROXY, &[("STRAIT_PORT__1__MTU", "99")]) else { panic!("expected errors") };
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].key, "port[1].mtu");
    assert!(e[0].reason.contains("from environment variable STRAIT_PORT__1__MTU"), "{e:?}");
    // An unknown key in an entry: the usual suggestion.
    let Err(ConfigErrors(e)) = with_env(PROXY, &[("STRAIT_PORT__0__MTUU", "1400")]) else { panic!("expected errors") };
    assert_eq!(e[0].key, "port[0].mtuu", "{e:?}");
    assert!(e[0].reason.contains("did you mean `mtu`"), "{e:?}");
}

/// An override changes an entry the file has: a missing or out-of-range index is an
/// error naming the variable (never "write [[port]], not [port]").
#[test]
fn array_entry_overrides_name_an_existing_entry() {
    let Err(ConfigErrors(e)) = with_env(
        PROXY,
        &[
            ("STRAIT_PORT__MTU", "1400"),
            ("STRAIT_PORT__2__MTU", "1400"),
            ("STRAIT_POOL__0__SERVERS__5__WEIGHT", "2"),
            ("STRAIT_APP__0__KIND", "echo"),
            ("STRAIT_LISTENER__0", "x"),
        ],
    ) else {
        panic!("expected errors")
    };
    let got: Vec<(&str, &str)> = e.iter().map(|e| (e.key.as_str(), e.reason.as_str())).collect();
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[0].0, "port");
    assert!(got[0].1.starts_with("STRAIT_PORT__MTU: port is a list: name its entry by index") && got[0].1.contains("STRAIT_PORT__0__MTU"), "{got:?}");
    assert_eq!(got[1], ("port[2]", "STRAIT_PORT__2__MTU: no entry 2: the file has 2 in port"));
    assert_eq!(got[2], ("pool[0].servers[5]", "STRAIT_POOL__0__SERVERS__5__WEIGHT: no entry 5: the file has 2 in pool[0].servers"));
    assert_eq!(got[3], ("app", "STRAIT_APP__0__KIND: the file has no [[app]] entry to override"));
    assert_eq!(got[4], ("listener[0]", "STRAIT_LISTENER__0: name a key inside the entry"));
    let Err(ConfigErrors(e)) = with_env(PORT, &[("STRAIT_LOG____LEVEL", "debug")]) else { panic!("expected errors") };
    assert!(e[0].reason.contains("an empty key between `__` separators"), "{e:?}");
}

#[test]
fn bad_environment_overrides_name_the_variable() {
    let Err(ConfigErrors(e)) = with_env(
        PORT,
        &[
            ("STRAIT_LOG__LEVLE", "debug"),
            ("STRAIT_DPDK__MBUFS", "many"),
        ],
    ) else {
        panic!("expected errors")
    };
    assert_eq!(e.len(), 2, "{e:?}");
    assert_eq!(e[0].key, "log.levle");
    assert!(
        e[0].reason.contains("did you mean `level`") && e[0].reason.contains("STRAIT_LOG__LEVLE"),
        "{e:?}"
    );
    assert_eq!(e[1].key, "dpdk.mbufs");
    assert!(e[1].reason.contains("STRAIT_DPDK__MBUFS"), "{e:?}");
}

proptest::proptest! {
    /// Any set of `STRAIT_*` variables built from key names, indices (small, past the end,
    /// too big for an index), empty parts and other words is a configuration or errors,
    /// never a panic.
    #[test]
    fn any_overrides_give_a_config_or_errors(
        vars in proptest::collection::vec(
            (
                proptest::collection::vec(
                    proptest::sample::select(vec![
                        "port", "listener", "pool", "app", "log", "dpdk", "servers", "offloads", "mtu", "weight",
                        "level", "tso", "0", "1", "2", "7", "18446744073709551616", "", "x",
                    ]),
                    1..5,
                ),
                proptest::sample::select(vec!["1400", "true", "debug", "-1", "", "1.5", "a,b"]),
            ),
            0..4,
        )
    ) {
        let vars: Vec<(String, String)> =
            vars.into_iter().map(|(parts, v)| (format!("STRAIT_{}", parts.join("__").to_uppercase()), v.to_string())).collect();
        let refs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        match with_env(PROXY, &refs) {
            Ok(_) => {}
            Err(ConfigErrors(e)) => proptest::prop_assert!(!e.is_empty()),
        }
    }
}

