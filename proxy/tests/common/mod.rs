//! Harness for end-to-end tests: throwaway network namespaces, a `strait` process inside
//! one, and clean-up that runs also when the test fails (everything is a guard with
//! `Drop`). Names are unique per test run (pid + counter), addresses come from
//! 198.18.0.0/15. [`backend`] adds strait as a proxy between a client and a backend
//! namespace with nginx, for the proxy and operating tests.
#![allow(dead_code)]

pub mod attack;
pub mod backend;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call; keep `tag` at most 4 bytes where the name
/// must fit an interface name (15 bytes).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() % 100_000;
    format!("{tag}{pid}x{n}")
}

/// True when the test may run. Root-only tests skip (with a line saying so) when not
/// root, unless `REQUIRE_ROOT_TESTS` is set, as in CI: then a skip is a failure.
pub fn require_root(test: &str) -> bool {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("1");
    if euid == "0" {
        return true;
    }
    if std::env::var_os("REQUIRE_ROOT_TESTS").is_some() {
        panic!("{test}: needs root, and REQUIRE_ROOT_TESTS forbids skipping");
    }
    eprintln!("SKIPPED {test}: needs root");
    false
}

/// Runs a command, returning its output (never panics on failure to spawn: that is an
/// error output with the reason in stderr).
pub fn sh(program: &str, args: &[&str]) -> Output {
    match Command::new(program).args(args).output() {
        Ok(o) => o,
        Err(e) => Output {
            status: std::process::ExitStatus::default(),
            stdout: Vec::new(),
            stderr: format!("spawn {program}: {e}").into_bytes(),
        },
    }
}

/// Runs a command and panics with its stderr if it fails.
pub fn must(program: &str, args: &[&str]) -> String {
    let o = sh(program, args);
    assert!(
        o.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A network namespace deleted (with every process in it killed) on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique(tag);
        must("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NS ARGS...`, panicking on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        must("ip", &full)
    }

    /// Gives `dev` the IPv6 address `cidr` without duplicate address detection (the
    /// tests' addresses are unique; a kernel peer would not use one for a second) and
    /// brings it up.
    pub fn up_v6(&self, dev: &str, cidr: &str) {
        self.ip(&["-6", "addr", "add", cidr, "dev", dev, "nodad"]);
        self.ip(&["link", "set", dev, "up"]);
    }

    /// `ip netns exec NS PROGRAM ARGS...`, returning the output.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// `ip netns exec NS PROGRAM ARGS...` in the background, stdout and stderr piped.
    pub fn spawn(&self, program: &str, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a command in a namespace")
    }

    /// `Tcp: InCsumErrors` of this namespace's kernel stack (`/proc/net/snmp`): the
    /// kernel peer's own verdict on the TCP checksums it received.
    pub fn tcp_in_csum_errors(&self) -> Option<u64> {
        let out = self.exec("cat", &["/proc/net/snmp"]);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
        let names: Vec<&str> = tcp.next()?.split_whitespace().collect();
        let values: Vec<&str> = tcp.next()?.split_whitespace().collect();
        let i = names.iter().position(|n| *n == "InCsumErrors")?;
        values.get(i)?.parse().ok()
    }

    /// Whether interface `ifname` exists in this namespace.
    pub fn has_link(&self, ifname: &str) -> bool {
        sh("ip", &["-n", &self.name, "link", "show", ifname])
            .status
            .success()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let pids = sh("ip", &["netns", "pids", &self.name]);
        for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = sh("kill", &["-9", pid]);
        }
        let _ = sh("ip", &["netns", "del", &self.name]);
    }
}

/// The head of a test configuration: JSON logs at info, one lcore (0) without hugepages,
/// 512 MiB, 32 767 mbufs. Tables for ports and services follow.
pub const ONE_LCORE: &str = r#"[log]
format = "json"
level = "info"

[dpdk]
lcores = [0]
memory_mode = "no-huge"
memory_mb = 512
mbufs = 32767
mbuf_cache = 256
"#;

/// A `strait` process; killed on drop if still running.
pub struct Strait {
    pub child: Child,
    pub log: PathBuf,
    pub config: PathBuf,
}

impl Strait {
    /// Writes `toml` to a temporary file and starts `strait run` inside `ns`.
    pub fn start(ns: &Netns, toml: &str) -> Strait {
        Strait::start_with_env(ns, toml, &[])
    }

    /// As [`Strait::start`], with extra environment variables.
    pub fn start_with_env(ns: &Netns, toml: &str, env: &[(&str, &str)]) -> Strait {
        let base = std::env::temp_dir().join(unique("strait-test-"));
        let log = base.with_extension("log");
        let out = fs::File::create(&log).expect("create log");
        let err = out.try_clone().expect("dup log");
        Strait::spawn(ns, toml, env, &[], &base, out.into(), err.into())
    }

    /// As [`Strait::start`], with extra arguments to `strait run` (test-only flags).
    pub fn start_with_args(ns: &Netns, toml: &str, args: &[&str]) -> Strait {
        let base = std::env::temp_dir().join(unique("strait-test-"));
        let out = fs::File::create(base.with_extension("log")).expect("create log");
        let err = out.try_clone().expect("dup log");
        Strait::spawn(ns, toml, &[], args, &base, out.into(), err.into())
    }

    /// As [`Strait::start`], with stdout and stderr going through a `tee` process (the
    /// second value) that writes the log file: stopping it (SIGSTOP) makes strait's
    /// stderr a full pipe, as journald back-pressure does.
    pub fn start_through_tee(ns: &Netns, toml: &str) -> (Strait, Killed) {
        let base = std::env::temp_dir().join(unique("strait-test-"));
        let mut tee = Command::new("tee")
            .arg(base.with_extension("log"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn tee");
        let pipe = tee.stdin.take().expect("tee stdin");
        let fd = std::os::fd::OwnedFd::from(pipe);
        let err = fd.try_clone().expect("dup pipe");
        (Strait::spawn(ns, toml, &[], &[], &base, Stdio::from(fd), Stdio::from(err)), Killed(tee))
    }

    /// `strait run ARGS` in `ns` with the config `toml` at `base.toml`, its log at `base.log`.
    fn spawn(ns: &Netns, toml: &str, env: &[(&str, &str)], args: &[&str], base: &Path, out: Stdio, err: Stdio) -> Strait {
        let config = base.with_extension("toml");
        let log = base.with_extension("log");
        fs::write(&config, toml).expect("write test config");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &ns.name,
                env!("CARGO_BIN_EXE_strait"),
                "run",
            ])
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn strait");
        Strait { child, log, config }
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until a log line contains every one of `needles`; panics with the log if
    /// the process exits or `timeout` passes first.
    pub fn wait_for_log(&mut self, needles: &[&str], timeout: Duration) -> String {
        let start = Instant::now();
        loop {
            let text = self.log_text();
            if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("strait exited ({status}) before logging {needles:?}:\n{text}");
            }
            if start.elapsed() > timeout {
                panic!("no log line with {needles:?} after {timeout:?}:\n{text}");
            }
            sleep(Duration::from_millis(100));
        }
    }

    /// Sends SIGTERM and waits for the exit status (panics after `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        must("kill", &["-TERM", &self.child.id().to_string()]);
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if start.elapsed() > timeout {
                let _ = self.child.kill();
                panic!(
                    "strait did not exit within {timeout:?} of SIGTERM:\n{}",
                    self.log_text()
                );
            }
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Strait {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !std::thread::panicking() {
            let _ = fs::remove_file(&self.log);
        } else {
            eprintln!("strait log kept at {}", self.log.display());
        }
        let _ = fs::remove_file(&self.config);
    }
}

/// Pings `addr` from `ns` until one reply arrives (ARP resolution included) or
/// `timeout` passes; returns whether it answered.
pub fn ping_until_reply(ns: &Netns, addr: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ns
            .exec("ping", &["-c", "1", "-W", "1", addr])
            .status
            .success()
        {
            return true;
        }
    }
    false
}

/// A child process killed on drop.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A child's exit status and output, waiting at most `timeout` (killed after).
pub fn finish(mut child: Child, timeout: Duration) -> (Option<i32>, String, String) {
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            break;
        }
        sleep(Duration::from_millis(50));
    }
    match child.wait_with_output() {
        Ok(o) => (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (None, String::new(), e.to_string()),
    }
}

/// A datagram socket posing as systemd's `NOTIFY_SOCKET`; removed on drop.
pub struct NotifySocket {
    pub sock: UnixDatagram,
    pub dir: PathBuf,
    pub path: String,
    pub seen: Vec<String>,
}

impl NotifySocket {
    pub fn new() -> NotifySocket {
        let dir = std::env::temp_dir().join(unique("strait-notify-"));
        fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&p).expect("bind NOTIFY_SOCKET");
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        NotifySocket {
            sock,
            dir,
            path: p.display().to_string(),
            seen: Vec::new(),
        }
    }

    /// Reads notifications until one contains `needle` (returns it) or `timeout` passes.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        if let Some(m) = self.seen.iter().find(|m| m.contains(needle)) {
            return Some(m.clone());
        }
        let start = Instant::now();
        let mut buf = [0u8; 1024];
        while start.elapsed() < timeout {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(msg.clone());
                if msg.contains(needle) {
                    return Some(msg);
                }
            }
        }
        None
    }

    /// Every notification that arrives within `d`.
    pub fn collect(&mut self, d: Duration) -> Vec<String> {
        let start = Instant::now();
        let mut buf = [0u8; 1024];
        let mut out = Vec::new();
        while start.elapsed() < d {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(msg.clone());
                out.push(msg);
            }
        }
        out
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A Python client (`python3 -c MANY_ECHOES addr port n [window]`): `n` echo connections,
/// each sending a different random message, half-closing, reading the echo to EOF and
/// comparing; prints `ok=N errors=M first=[...]`. Without `window` (or 0) all `n` are open
/// at once (a barrier holds every one until all are connected; messages up to 10 kB);
/// with it, `window` at a time (messages up to 61 kB).
pub const MANY_ECHOES: &str = r#"
import os, resource, socket, sys, threading
addr, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
window = int(sys.argv[4]) if len(sys.argv) > 4 else 0
resource.setrlimit(resource.RLIMIT_NOFILE, (n + 256, n + 256))
ok, errs, lock = [0], [], threading.Lock()
barrier = None if window else threading.Barrier(n)
sem = threading.Semaphore(window or n)
span = 60000 if window else 9000
def one(i):
    with sem:
        try:
            s = socket.create_connection((addr, port), timeout=60)
            s.settimeout(60)
            data = os.urandom(1000 + (i * 7919) % span)
            if barrier:
                barrier.wait(timeout=120)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                got += d
            s.close()
            with lock:
                if got == data:
                    ok[0] += 1
                else:
                    errs.append("%d: %d bytes back of %d" % (i, len(got), len(data)))
        except Exception as e:
            with lock:
                errs.append("%d: %r" % (i, e))
            if barrier:
                barrier.abort()
threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("ok=%d errors=%d first=%s" % (ok[0], len(errs), errs[:3]))
"#;

/// The client: sends `total` bytes (a random block, rotated per write so that no two
/// megabytes are equal) while a thread reads the echo until EOF; prints both digests.
/// Arguments: address, port, total, and optionally a write size: writes of that many bytes
/// with Nagle off (so most of them leave as segments of their own).
pub const ECHO_CLIENT: &str = r#"
import hashlib, os, socket, sys, threading
addr, port, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
size = int(sys.argv[4]) if len(sys.argv) > 4 else 0
s = socket.create_connection((addr, port), timeout=30)
if size:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.settimeout(120)
block = os.urandom(1 << 20)
hs, hr = hashlib.sha256(), hashlib.sha256()
got, err = [0], []
def reader():
    try:
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            hr.update(d)
            got[0] += len(d)
    except Exception as e:
        err.append(repr(e))
t = threading.Thread(target=reader)
t.start()
sent, i = 0, 0
try:
    while sent < total:
        r = (i * 7919) % len(block)
        if size:
            o = r % (len(block) - size)
            chunk = block[o:o + min(size, total - sent)]
        else:
            chunk = (block[r:] + block[:r])[: min(len(block), total - sent)]
        s.sendall(chunk)
        hs.update(chunk)
        sent += len(chunk)
        i += 1
    s.shutdown(socket.SHUT_WR)
except Exception as e:
    err.append(repr(e))
t.join()
s.close()
print("sent=%d got=%d sha_sent=%s sha_got=%s err=%s" % (sent, got[0], hs.hexdigest(), hr.hexdigest(), err))
"#;

/// `name=N` in the log line carrying `message` for lcore `lcore` (JSON log: `"lcore":N`).
pub fn lcore_counter(log: &str, message: &str, lcore: u32, name: &str) -> u64 {
    let tag = format!("\"lcore\":{lcore},");
    let Some(line) = log
        .lines()
        .find(|l| l.contains(message) && l.contains(&tag))
    else {
        return 0;
    };
    let pat = format!("{name}=");
    line.split([' ', '"'])
        .find_map(|w| w.strip_prefix(&pat))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Pings `addr` over IPv6 from `ns` until a reply comes (true) or 20 s pass.
pub fn ping6(ns: &Netns, addr: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        if ns.exec("ping", &["-6", "-c", "1", "-W", "1", addr]).status.success() {
            return true;
        }
    }
    false
}

/// The JSON value of `key` in the first log line carrying `message`.
pub fn log_field(log: &str, message: &str, key: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(message))?;
    let pat = format!("\"{key}\":");
    let rest = line.split(&pat).nth(1)?;
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// The counter `name` (`name=value` in its `counters` field) in the first log line
/// carrying `message`, e.g. a port's "final counters".
pub fn log_counter(log: &str, message: &str, name: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains(message))?;
    let pat = format!("{name}=");
    let rest = line.split([' ', '"']).find_map(|w| w.strip_prefix(pat.as_str()))?;
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// Which ends of a veth put finished frames on the wire (no GSO super-frames, no TX
/// checksum left to the device, no GRO): what af_packet and AF_XDP ports must receive.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Neither end changed.
    Neither,
    /// The peer's end only (AF_XDP: strait's end is the driver's).
    Peer,
    /// Both ends.
    Both,
}

/// A veth from `strait_ns` (strait's port, returned first) into `peer` (the kernel peer's
/// end, second, down and unaddressed), named from `tag`; strait's end is up with the
/// kernel's IPv6 off on it (the kernel would answer neighbour discovery for it otherwise).
pub fn strait_veth(strait_ns: &Netns, peer: &Netns, tag: &str, finished: Finished) -> (String, String) {
    let (va, vb) = (unique(&format!("{tag}a")), unique(&format!("{tag}b")));
    strait_ns.ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", &peer.name]);
    strait_ns.exec("sysctl", &["-w", &format!("net.ipv6.conf.{va}.disable_ipv6=1")]);
    let ends: &[(&Netns, &str)] = match finished {
        Finished::Neither => &[],
        Finished::Peer => &[(peer, &vb)],
        Finished::Both => &[(strait_ns, &va), (peer, &vb)],
    };
    for (ns, dev) in ends {
        let o = ns.exec("ethtool", &["-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]);
        assert!(o.status.success(), "ethtool: {}", String::from_utf8_lossy(&o.stderr));
    }
    strait_ns.ip(&["link", "set", &va, "up"]);
    (va, vb)
}
