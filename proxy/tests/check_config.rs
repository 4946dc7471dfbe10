//! End-to-end tests of `strait check-config` and `strait --version`, running the real
//! binary on the shipped example configurations.

use std::path::PathBuf;
use std::process::{Command, Output};

fn configs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// Runs `strait` with `args` and `env`, with no other `STRAIT_*` variables or `RUST_LOG`
/// leaking in from the test environment.
fn strait(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strait"));
    for (k, _) in std::env::vars() {
        if k.starts_with("STRAIT_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).envs(env.iter().copied());
    cmd.output()
        .unwrap_or_else(|e| panic!("running strait: {e}"))
}

fn check_config(file: &str, env: &[(&str, &str)]) -> Output {
    let path = configs_dir().join(file);
    let path = path
        .to_str()
        .unwrap_or_else(|| panic!("non-UTF-8 path {path:?}"));
    strait(&["check-config", path], env)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn bad_example_exits_2_with_errors_naming_their_keys() {
    let out = check_config("bad-example.toml", &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "stderr:\n{stderr}");
    assert!(
        lines.contains(&"error: dpdk.lcroes: unknown key (did you mean `lcores`?)"),
        "{stderr}"
    );
    assert!(
        lines.contains(
            &"error: port[0].ipv4: \"198.18.0.300/24\" is not an IPv4 address with prefix (expected a.b.c.d/len)"
        ),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty());
}

/// A configuration for a bigger machine checks on a smaller one: lcores this machine lacks
/// are a warning for `check-config` (and an error for `run`, which needs them).
#[test]
fn a_config_for_more_cpus_checks_with_a_warning() {
    let dir = std::env::temp_dir().join(format!("strait-cc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("big.toml");
    std::fs::write(&file, "[dpdk]\nlcores = [0, 127]\n[[port]]\nname = \"a\"\ndevice = \"net_tap0\"\nipv4 = \"198.18.0.2/24\"\n")
        .expect("write");
    let path = file.to_str().expect("utf-8");
    let out = strait(&["check-config", path], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.starts_with("warning: dpdk.lcores: lcore 127 not online on this machine"), "{stderr}");
    assert!(text(&out.stdout).starts_with("config OK: "), "{}", text(&out.stdout));
    let out = strait(&["run", "--config", path], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "run refuses it: {stderr}");
    assert!(stderr.contains("error: dpdk.lcores: lcore 127 does not exist"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_config_is_ok() {
    let out = check_config("demo.toml", &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert!(
        stdout
            .starts_with("config OK: 2 ports [tap0 net_tap0,iface=strait0 198.18.0.2/24 mtu 1500, tap1 net_tap1,iface=strait1 198.18.1.2/24 mtu 1500]"),
        "{stdout}"
    );
    assert!(stdout.contains("log info (human)"), "{stdout}");
}

#[test]
fn environment_overrides_the_log_level() {
    let out = check_config("demo.toml", &[("STRAIT_LOG__LEVEL", "debug")]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert!(stdout.contains("log debug (human)"), "{stdout}");
}

#[test]
fn bad_environment_override_is_reported() {
    let out = check_config("demo.toml", &[("STRAIT_LOG__LEVEL", "foo=bogus")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.starts_with("error: log.level: \"foo=bogus\" is not a valid filter directive"),
        "{stderr}"
    );
    assert!(stderr.contains("STRAIT_LOG__LEVEL"), "{stderr}");
}

#[test]
fn missing_file_exits_2() {
    let out = check_config("does-not-exist.toml", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn version_is_printed() {
    let out = strait(&["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout).trim(),
        format!("strait {}", env!("CARGO_PKG_VERSION"))
    );
}

/// An entry of an array of tables is named by its index (issue 16): `STRAIT_PORT__1__MTU`
/// changes the second port only; an entry the file lacks is an error naming the variable;
/// the hugepage unit's own `STRAIT_HUGEPAGES` is not an override.
#[test]
fn environment_overrides_reach_array_entries_by_index() {
    let out = check_config("demo.toml", &[("STRAIT_PORT__1__MTU", "1400"), ("STRAIT_HUGEPAGES", "1024")]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert!(stdout.contains("198.18.0.2/24 mtu 1500, tap1 net_tap1,iface=strait1 198.18.1.2/24 mtu 1400]"), "{stdout}");
    let out = check_config("demo.toml", &[("STRAIT_PORT__2__MTU", "1400"), ("STRAIT_PORT__MTU", "1400")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("error: port[2]: STRAIT_PORT__2__MTU: no entry 2: the file has 2 in port"), "{stderr}");
    assert!(stderr.contains("error: port: STRAIT_PORT__MTU: port is a list: name its entry by index"), "{stderr}");
}

/// IPv6 on a port (issue 18): accepted and shown in the summary; a mistake names its key.
#[test]
fn ipv6_on_a_port_is_checked() {
    let v6 = [("STRAIT_PORT__0__IPV6", "2001:db8::2/64"), ("STRAIT_PORT__0__IPV6_GATEWAY", "fe80::1")];
    let out = check_config("demo.toml", &v6);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr:\n{}", text(&out.stderr));
    assert!(stdout.contains("tap0 net_tap0,iface=strait0 198.18.0.2/24 2001:db8::2/64 mtu 1500"), "{stdout}");
    let out = check_config("demo.toml", &[("STRAIT_PORT__0__IPV6", "2001:db8::2/129")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("error: port[0].ipv6: \"2001:db8::2/129\": prefix length 129 is out of range (must be 1..=128)"),
        "{stderr}"
    );
    let out = check_config("demo.toml", &[("STRAIT_PORT__0__IPV6", "2001:db8::2/64"), ("STRAIT_PORT__0__IPV6_GATEWAY", "2001:db9::1")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("error: port[0].ipv6_gateway: 2001:db9::1 is not inside the port's prefix"), "{stderr}");
    let out = check_config("demo.toml", &[("STRAIT_PORT__0__IPV6", "2001:db8::2/64"), ("STRAIT_PORT__0__MTU", "1200")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("error: port[0].mtu: 1200 is below IPv6's minimum MTU of 1280"), "{stderr}");
}
