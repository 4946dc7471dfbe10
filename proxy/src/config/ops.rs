//! Operating keys: `[admin]` (the admin API socket), `[shutdown]` (the drain deadline) and
//! the health checks of a `[[pool]]` (`[pool.health_check]`, `passive_failures`,
//! `passive_recovery_ms`).
//!
//! ```toml
//! [admin]
//! socket = "/run/strait/admin.sock"  # unix socket of the admin API (`strait ctl`)
//!
//! [shutdown]
//! drain_timeout_ms = 30000   # SIGTERM: established sessions get this long, then are reset
//!
//! [[pool]]
//! name = "web"
//! servers = [...]
//! passive_failures = 3       # consecutive failed connects on one lcore eject a server from it (0: off)
//! passive_recovery_ms = 10000 # how long an ejected server stays out
//! [pool.health_check]        # optional: active TCP-connect checks from one lcore per server
//! interval_ms = 1000
//! timeout_ms = 500
//! rise = 2                   # consecutive successes that bring a down server up
//! fall = 3                   # consecutive failures that take an up server down
//! send = "PING\r\n"          # optional bytes written once connected
//! expect = "PONG"            # optional: the reply must start with these bytes
//! ```

use std::path::PathBuf;
use std::time::Duration;

use config::Value;

use super::raw::{Errors, Table};

/// `[admin]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AdminConfig {
    /// The unix socket the admin API listens on; `None`: no admin API.
    pub socket: Option<PathBuf>,
}

/// `[shutdown]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownConfig {
    /// After SIGTERM, how long established sessions may take to finish before the rest
    /// are reset (0..=1 h, default 30 s).
    pub drain_timeout: Duration,
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig { drain_timeout: Duration::from_secs(30) }
    }
}

/// `[pool.health_check]`: active checks of every server of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    /// Time between the starts of two checks of one server (50 ms..=1 h, default 2 s).
    pub interval: Duration,
    /// Time one check may take (10 ms..=1 h, <= interval, default 1 s or the interval).
    pub timeout: Duration,
    /// Consecutive successes that bring a down server up (1..=100, default 2).
    pub rise: u32,
    /// Consecutive failures that take an up server down (1..=100, default 3).
    pub fall: u32,
    /// Bytes written once connected (empty: a plain connect check).
    pub send: Vec<u8>,
    /// Bytes the reply must start with (empty: any reply, or none, passes).
    pub expect: Vec<u8>,
}

/// Passive ejection of a pool's servers (`passive_failures`, `passive_recovery_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveHealthConfig {
    /// Consecutive failed connection attempts that eject a server (0: never; 0..=1000,
    /// default 0).
    pub failures: u32,
    /// How long an ejected server receives no new sessions (100 ms..=1 h, default 10 s).
    pub recovery: Duration,
}

impl Default for PassiveHealthConfig {
    fn default() -> Self {
        PassiveHealthConfig { failures: 0, recovery: Duration::from_secs(10) }
    }
}

/// Longest unix socket path (`sun_path` is 108 bytes with the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

fn ms(n: u32) -> Duration {
    Duration::from_millis(u64::from(n))
}

/// `[admin]`.
pub(crate) fn admin(value: &Value, errs: &mut Errors) -> Option<AdminConfig> {
    let t = Table::new(value, "admin", errs)?;
    t.deny_unknown(&["socket"], errs);
    if t.get("socket").is_none() {
        return Some(AdminConfig::default());
    }
    let s = t.string("socket", errs)?;
    if !s.starts_with('/') {
        return t.fail(errs, "socket", format!("{s:?} must be an absolute path (e.g. \"/run/strait/admin.sock\")"));
    }
    if s.contains('\0') || s.ends_with('/') {
        return t.fail(errs, "socket", format!("{s:?} is not a file path"));
    }
    if s.len() > MAX_SOCKET_PATH {
        return t.fail(
            errs,
            "socket",
            format!("{} bytes long; a unix socket path has at most {MAX_SOCKET_PATH}", s.len()),
        );
    }
    let path = PathBuf::from(&s);
    // Found here rather than after DPDK is up: the directory must exist (strait.service
    // creates /run/strait itself, RuntimeDirectory=strait), and a file that is not a
    // socket is never replaced.
    let dir = path.parent().unwrap_or(std::path::Path::new("/"));
    if dir != std::path::Path::new(RUNTIME_DIR) && !dir.is_dir() {
        return t.fail(errs, "socket", format!("{s:?}: the directory {} does not exist", dir.display()));
    }
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return t.fail(errs, "socket", format!("{s:?} exists and is not a socket (strait will not replace it)"));
        }
    }
    Some(AdminConfig { socket: Some(path) })
}

/// The directory strait.service creates for the admin socket (`RuntimeDirectory=strait`).
const RUNTIME_DIR: &str = "/run/strait";

/// `[shutdown]`.
pub(crate) fn shutdown(value: &Value, errs: &mut Errors) -> Option<ShutdownConfig> {
    let t = Table::new(value, "shutdown", errs)?;
    t.deny_unknown(&["drain_timeout_ms"], errs);
    let d = t.uint_or("drain_timeout_ms", 30_000, 0, 3_600_000, errs)?;
    Some(ShutdownConfig { drain_timeout: ms(d) })
}

/// The pool keys of passive ejection, from the pool's table `t`.
pub(crate) fn passive(t: &Table<'_>, errs: &mut Errors) -> Option<PassiveHealthConfig> {
    let failures = t.uint_or("passive_failures", 0, 0, 1000, errs);
    let recovery = t.uint_or("passive_recovery_ms", 10_000, 100, 3_600_000, errs);
    Some(PassiveHealthConfig { failures: failures?, recovery: ms(recovery?) })
}

/// `[pool.health_check]` when present (`Some(None)` when absent).
pub(crate) fn health_check(t: &Table<'_>, errs: &mut Errors) -> Option<Option<HealthCheckConfig>> {
    let Some(value) = t.get("health_check") else { return Some(None) };
    let h = Table::new(value, &t.path_of("health_check"), errs)?;
    h.deny_unknown(&["interval_ms", "timeout_ms", "rise", "fall", "send", "expect"], errs);
    let interval = h.uint_or("interval_ms", 2_000, 50, 3_600_000, errs);
    // Default: 1 s, or the interval when that is shorter.
    let timeout = h.uint_or("timeout_ms", interval.unwrap_or(1_000).min(1_000), 10, 3_600_000, errs);
    let rise = h.uint_or("rise", 2, 1, 100, errs);
    let fall = h.uint_or("fall", 3, 1, 100, errs);
    let bytes = |key: &str, errs: &mut Errors| -> Option<Vec<u8>> {
        match h.get(key) {
            None => Some(Vec::new()),
            Some(_) => {
                let s = h.string(key, errs)?;
                if s.len() > 1024 {
                    return h.fail(errs, key, format!("{} bytes long; at most 1024", s.len()));
                }
                Some(s.into_bytes())
            }
        }
    };
    let send = bytes("send", errs);
    let expect = bytes("expect", errs);
    if let (Some(i), Some(to)) = (interval, timeout) {
        if to > i {
            return h.fail(errs, "timeout_ms", format!("{to} is longer than interval_ms ({i}): checks would overlap"));
        }
    }
    Some(Some(HealthCheckConfig {
        interval: ms(interval?),
        timeout: ms(timeout?),
        rise: rise?,
        fall: fall?,
        send: send?,
        expect: expect?,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::{Config, ConfigErrors};
    use super::*;

    const BASE: &str = r#"
[[port]]
name = "tap0"
device = "net_tap0,iface=strait0"
ipv4 = "198.18.80.2/24"
"#;

    const POOL: &str = r#"
[[listener]]
name = "web"
listen = "198.18.80.2:80"
pool = "web"
[[pool]]
name = "web"
servers = [{ addr = "198.18.80.1:8080" }]
"#;

    fn cpus() -> super::super::CpuSet {
        super::super::CpuSet::from_ids(0..4)
    }

    fn parse(extra: &str) -> Result<Config, Vec<(String, String)>> {
        Config::from_toml_str_for(&format!("{BASE}{extra}"), &cpus())
            .map_err(|ConfigErrors(v)| v.into_iter().map(|e| (e.key, e.reason)).collect())
    }

    fn one_error(extra: &str, key: &str, needle: &str) {
        let errs = parse(extra).err().unwrap_or_default();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, key, "{errs:?}");
        assert!(errs[0].1.contains(needle), "{:?} lacks {needle:?}", errs[0].1);
    }

    #[test]
    fn defaults_without_the_sections() {
        let cfg = parse("").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cfg.admin.socket, None);
        assert_eq!(cfg.shutdown.drain_timeout, Duration::from_secs(30));
        assert!(!cfg.log.access);
    }

    #[test]
    fn admin_socket_directory_must_exist_and_a_non_socket_file_is_never_replaced() {
        let dir = std::env::temp_dir().join(format!("strait-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let missing = format!("[admin]\nsocket = \"{}/nope/admin.sock\"\n", dir.display());
        let e = parse(&missing).err().unwrap_or_default();
        assert!(e.iter().any(|(k, r)| k == "admin.socket" && r.contains("does not exist")), "{e:?}");
        let file = dir.join("notes.txt");
        std::fs::write(&file, "keep me").unwrap_or_else(|e| panic!("{e}"));
        let e = parse(&format!("[admin]\nsocket = \"{}\"\n", file.display())).err().unwrap_or_default();
        assert!(e.iter().any(|(k, r)| k == "admin.socket" && r.contains("is not a socket")), "{e:?}");
        // The unit's runtime directory need not exist yet.
        assert!(parse("[admin]\nsocket = \"/run/strait/admin.sock\"\n").is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn admin_socket_must_be_an_absolute_short_path() {
        let cfg = parse("[admin]\nsocket = \"/run/strait/admin.sock\"\n").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cfg.admin.socket, Some(PathBuf::from("/run/strait/admin.sock")));
        one_error("[admin]\nsocket = \"admin.sock\"\n", "admin.socket", "absolute");
        one_error(&format!("[admin]\nsocket = \"/{}\"\n", "a".repeat(120)), "admin.socket", "at most 107");
        one_error("[admin]\nsocket = \"/run/\"\n", "admin.socket", "not a file path");
        one_error("[admin]\nsokcet = \"/x\"\n", "admin.sokcet", "did you mean `socket`");
    }

    #[test]
    fn drain_timeout_is_range_checked() {
        let cfg = parse("[shutdown]\ndrain_timeout_ms = 1000\n").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cfg.shutdown.drain_timeout, Duration::from_secs(1));
        let cfg = parse("[shutdown]\ndrain_timeout_ms = 0\n").unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cfg.shutdown.drain_timeout, Duration::ZERO, "0: reset at once");
        one_error("[shutdown]\ndrain_timeout_ms = 3600001\n", "shutdown.drain_timeout_ms", "out of range");
        one_error("[shutdown]\ndrain_timeout_ms = \"30s\"\n", "shutdown.drain_timeout_ms", "expected an integer");
    }

    #[test]
    fn access_log_switch_is_a_boolean() {
        let cfg = parse("[log]\naccess = true\n").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(cfg.log.access);
        one_error("[log]\naccess = \"yes\"\n", "log.access", "expected true or false");
    }

    #[test]
    fn health_check_keys_are_parsed_with_defaults() {
        let cfg =
            parse(&format!("{POOL}passive_failures = 2\n[pool.health_check]\ninterval_ms = 500\nsend = \"PING\"\n"))
                .unwrap_or_else(|e| panic!("{e:?}"));
        let p = &cfg.pools[0];
        let h = p.health_check.clone().unwrap_or_else(|| panic!("health_check missing"));
        let half = Duration::from_millis(500);
        assert_eq!((h.interval, h.timeout, h.rise, h.fall), (half, half, 2, 3), "timeout defaults to the interval");
        assert_eq!(h.send, b"PING".to_vec());
        assert!(h.expect.is_empty());
        assert_eq!(p.passive, PassiveHealthConfig { failures: 2, recovery: Duration::from_secs(10) });
        let plain = parse(POOL).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(plain.pools[0].health_check, None);
        assert_eq!(plain.pools[0].passive, PassiveHealthConfig::default());
    }

    #[test]
    fn health_check_errors_name_their_keys() {
        one_error(&format!("{POOL}[pool.health_check]\nfall = 0\n"), "pool[0].health_check.fall", "out of range");
        one_error(
            &format!("{POOL}[pool.health_check]\ninterval_ms = 100\ntimeout_ms = 200\n"),
            "pool[0].health_check.timeout_ms",
            "longer than interval_ms",
        );
        one_error(
            &format!("{POOL}[pool.health_check]\nrize = 2\n"),
            "pool[0].health_check.rize",
            "did you mean `rise`",
        );
        one_error(&format!("{POOL}passive_recovery_ms = 5\n"), "pool[0].passive_recovery_ms", "out of range");
    }
}
