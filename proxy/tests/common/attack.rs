//! The arena of the attack suite (`proxy/tests/attacks.rs`, issue 14): strait as a proxy
//! between a client namespace and nginx ([`Setup`]), with an echo service beside the
//! listener, metrics, a pool of [`POOL`] mbufs, a gateway (the client namespace's
//! kernel, which forwards nothing), and an attacker address on the client side whose
//! raw-socket peers ([`ATTACKER`]) are shielded from the kernel's RSTs. wrk is the
//! legitimate load; [`Wrk`] reads its outcome.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::sync::{Mutex, MutexGuard};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::backend::{pool_config, Net, Setup};
use super::{finish, must, Killed};

/// The attackers (`proxy/tests/attackers/attack.py`; its docstring lists the commands).
pub const ATTACKER: &str = include_str!("../attackers/attack.py");

/// Mbufs in strait's pool: every attack offers more than this.
pub const POOL: u32 = 16383;

/// Metrics inside the client namespace (its own loopback).
const METRICS: &str = "127.0.0.1:9100";

/// Slack on "back to the start" for mbufs: per-lcore caches and the port rings refill.
pub const MBUF_SLACK: f64 = 64.0;

static SERIAL: Mutex<()> = Mutex::new(());

/// One attack at a time: each strait polls a core, and the legitimate load's success
/// rate is part of every verdict.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct Arena {
    pub s: Setup,
    /// Strait's address on the client side (listener `:80`, echo `:7`).
    pub strait_ip: String,
    /// The attacker's address on the client side (`{front}.3`).
    pub attacker_ip: String,
}

impl Arena {
    /// Strait with `tcp` as the body of `[tcp]` and `echo` added to the echo service's
    /// `[[app]]` table; waits until the proxy listens.
    pub fn start(net: Net, tcp: &str, echo: &str) -> Arena {
        let strait_ip = format!("{}.2", net.front);
        let extra = format!(
            "\n[metrics]\nlisten = \"{METRICS}\"\n\n[tcp]\n{tcp}\n\n[[app]]\nkind = \"echo\"\nlisten = \"{strait_ip}:7\"\n{echo}\n"
        );
        let port = format!("ipv4 = \"{strait_ip}/24\"\n");
        let routed = format!("{port}gateway = \"{}.1\"\n", net.front);
        let toml = |tap: &str, veth: &str| {
            let t = pool_config(net, tap, veth, &[0], &extra, "")
                .replacen("mbufs = 32767", &format!("mbufs = {POOL}"), 1)
                .replacen(&port, &routed, 1);
            assert!(t.contains(&routed) && t.contains(&format!("mbufs = {POOL}")), "arena config:\n{t}");
            t
        };
        let mut s = Setup::start(net, 1, 0, toml, &[]);
        s.strait.wait_for_log(&["proxy listening"], Duration::from_secs(5));
        let attacker_ip = format!("{}.3", net.front);
        s.client.ip(&["addr", "add", &format!("{attacker_ip}/24"), "dev", &s.tap]);
        let a = Arena { s, strait_ip, attacker_ip };
        // The kernel knows no socket of the raw peers: its RSTs would end their connections.
        a.nft(&["add", "table", "inet", "attack"]);
        a.nft(&["add", "chain", "inet", "attack", "out", "{ type filter hook output priority 0 ; }"]);
        // Only the attacker's: wrk's ephemeral ports may fall in the same range.
        a.nft(&[
            "add", "rule", "inet", "attack", "out", "ip", "saddr", &a.attacker_ip, "tcp", "sport", "40000-40999", "tcp", "flags",
            "rst", "drop",
        ]);
        a.nft(&["add", "chain", "inet", "attack", "in", "{ type filter hook input priority 0 ; }"]);
        a
    }

    /// `nft ARGS` in the client namespace.
    pub fn nft(&self, args: &[&str]) {
        let mut a = vec!["netns", "exec", &self.s.client.name, "nft"];
        a.extend_from_slice(args);
        must("ip", &a);
    }

    /// From now on the client namespace drops everything strait sends the attacker
    /// address from `port`: the attacker's peers go silent.
    pub fn silence_attacker(&self, port: u16) {
        let port = port.to_string();
        self.nft(&[
            "add", "rule", "inet", "attack", "in", "ip", "saddr", &self.strait_ip, "ip", "daddr", &self.attacker_ip, "tcp",
            "sport", &port, "drop",
        ]);
    }

    /// The metrics page.
    pub fn scrape(&self) -> String {
        let o = self.s.client.exec("curl", &["-sS", "--max-time", "5", &format!("http://{METRICS}/metrics")]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// The sample `name` (with its labels, if any, as rendered), or -1 when absent.
    pub fn metric(&self, name: &str) -> f64 {
        sample(&self.scrape(), name)
    }

    /// The non-zero TCP, service, network and lcore counters (for failure messages).
    pub fn counters(&self) -> String {
        let page = self.scrape();
        let keep = ["strait_tcp_", "strait_app_", "strait_net_", "strait_lcore_", "strait_mempool_"];
        page.lines()
            .filter(|l| !l.starts_with('#') && keep.iter().any(|k| l.starts_with(k)) && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Mbufs taken from the pool.
    pub fn in_use(&self) -> f64 {
        self.metric("strait_mempool_mbufs{state=\"in_use\"}")
    }

    /// wrk through the proxy for `seconds`: 16 keep-alive connections, `index.html`.
    pub fn wrk(&self, seconds: u32) -> Child {
        let d = format!("{seconds}s");
        self.s.client.spawn("wrk", &["-t1", "-c16", &format!("-d{d}"), "--timeout", "3s", &self.s.net.url("index.html")])
    }

    /// Starts the attacker `args` (see [`ATTACKER`]); killed on drop.
    pub fn attack(&self, args: &[&str]) -> Attacker {
        let mut a = vec!["-u", "-c", ATTACKER];
        a.extend_from_slice(args);
        let mut child = self.s.client.spawn("python3", &a);
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Attacker { child: Killed(child), lines: rx, said: String::new() }
    }

    /// Runs the attacker `args` to its end (at most `timeout`); its stdout.
    pub fn attack_to_end(&self, args: &[&str], timeout: Duration) -> String {
        let mut a = vec!["-u", "-c", ATTACKER];
        a.extend_from_slice(args);
        let (code, out, err) = finish(self.s.client.spawn("python3", &a), timeout);
        assert_eq!(code, Some(0), "attacker {args:?}: {out}\n{err}");
        out
    }

    /// Samples the mbufs in use every 50 ms in a thread of its own until the sampler is
    /// stopped ([`Peak::stop`]).
    pub fn sample_peak(&self) -> Peak {
        let (ns, stop) = (self.s.client.name.clone(), Arc::new(AtomicBool::new(false)));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peak = -1.0f64;
            while !flag.load(Ordering::Relaxed) {
                let o = super::sh("ip", &["netns", "exec", &ns, "curl", "-sS", "--max-time", "2", &format!("http://{METRICS}/metrics")]);
                peak = peak.max(sample(&String::from_utf8_lossy(&o.stdout), "strait_mempool_mbufs{state=\"in_use\"}"));
                sleep(Duration::from_millis(50));
            }
            peak
        });
        Peak { stop, thread }
    }

    /// Waits until `child` exits (at most `timeout`).
    pub fn wait_exit(&self, child: &mut Child, timeout: Duration) {
        let start = Instant::now();
        while !matches!(child.try_wait(), Ok(Some(_))) && start.elapsed() < timeout {
            sleep(Duration::from_millis(100));
        }
    }

    /// Waits until no connection is left in the engine (TIME-WAIT entries aside) and the
    /// mbufs in use are back within [`MBUF_SLACK`] of `before`; how long that took.
    /// Panics after `within`.
    pub fn wait_reclaimed(&self, before: f64, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let (conns, in_use) = (self.metric("strait_tcp_connections"), self.in_use());
            if conns == 0.0 && in_use <= before + MBUF_SLACK {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "not reclaimed within {within:?}: {conns} connections, {in_use} mbufs in use ({before} at the start)\n{}",
                self.counters()
            );
            sleep(Duration::from_millis(200));
        }
    }

    /// Stops strait and checks it exits cleanly.
    pub fn stop(mut self) {
        let status = self.s.strait.terminate(Duration::from_secs(30));
        assert!(status.success(), "strait exited with {status}:\n{}", self.s.strait.log_text());
    }
}

/// A thread sampling the mbufs in use ([`Arena::sample_peak`]).
pub struct Peak {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl Peak {
    /// The highest value sampled.
    pub fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(f64::INFINITY)
    }
}

/// A running attacker and what it has printed so far.
pub struct Attacker {
    pub child: Killed,
    lines: mpsc::Receiver<String>,
    /// Every line so far.
    pub said: String,
}

impl Attacker {
    /// Waits until the attacker prints `key N`; returns N. Panics after `timeout`.
    pub fn wait_for(&mut self, key: &str, timeout: Duration) -> u64 {
        let start = Instant::now();
        loop {
            if let Some(line) = self.said.lines().find(|l| l.starts_with(key) && l[key.len()..].starts_with(' ')) {
                return said(line, key);
            }
            let left = timeout.saturating_sub(start.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.said.push_str(&line);
                    self.said.push('\n');
                }
                Err(_) => panic!("the attacker did not say {key:?} within {timeout:?}; it said:\n{}", self.said),
            }
        }
    }
}

/// The value of sample `name` in a metrics page, or -1 when absent.
pub fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(-1.0)
}

/// The value after `key ` on a line of an attacker's output (0 when absent).
pub fn said(out: &str, key: &str) -> u64 {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// What a wrk run reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Wrk {
    pub requests: u64,
    /// Socket errors of every kind (connect, read, write, timeout).
    pub errors: u64,
    pub non2xx: u64,
}

impl Wrk {
    /// Waits for `child` (at most `timeout`) and reads its report; panics if it failed.
    pub fn finish(child: Child, timeout: Duration) -> (Wrk, String) {
        let (code, out, err) = finish(child, timeout);
        assert_eq!(code, Some(0), "wrk: {out}\n{err}");
        (Wrk::parse(&out), out)
    }

    pub fn parse(out: &str) -> Wrk {
        let line = |needle: &str| out.lines().find(|l| l.contains(needle));
        let requests = line("requests in").and_then(|l| l.split_whitespace().next()).and_then(|n| n.parse().ok());
        let errors = line("Socket errors")
            .map(|l| l.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()).sum())
            .unwrap_or(0);
        let non2xx = line("Non-2xx").and_then(|l| l.rsplit(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
        Wrk { requests: requests.unwrap_or(0), errors, non2xx }
    }

    /// Successful requests over attempted ones (a socket error is a failed attempt).
    pub fn success(&self) -> f64 {
        self.requests.saturating_sub(self.non2xx) as f64 / (self.requests + self.errors).max(1) as f64
    }

    /// At least `min` requests, and at least 99 % of them successful.
    pub fn assert_served(&self, min: u64, out: &str) {
        assert!(self.requests >= min, "wrk made {} requests (at least {min} expected):\n{out}", self.requests);
        assert!(self.success() >= 0.99, "legitimate success {:.4} < 0.99: {self:?}\n{out}", self.success());
    }
}
