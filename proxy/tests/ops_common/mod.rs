//! Shared set-up of the operating tests (`ops_*.rs`): strait in a client namespace with a
//! `net_tap` port towards kernel clients there and a `net_af_packet` port over a veth
//! pair towards a backend namespace, where nginx instances (one per backend address, own
//! temporary files, `daemon off`) serve a small page and optionally a large file.
//! Everything is a guard that cleans up on drop, also when a test fails.
#![allow(dead_code)]

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::{must, ping_until_reply, unique, Netns, Strait};

/// An nginx serving `dir/www` on one address; killed (its files removed) on drop.
pub struct Nginx {
    pub child: Child,
    pub dir: PathBuf,
    pub listen: String,
}

impl Nginx {
    /// Starts nginx in `ns` on `listen`; `big` bytes of random data as `/big.bin` when
    /// non-zero (generated into the temporary directory).
    pub fn start(ns: &Netns, listen: &str, big: u64) -> Nginx {
        let dir = std::env::temp_dir().join(unique("strait-ops-nginx-"));
        let www = dir.join("www");
        fs::create_dir_all(&www).expect("nginx dirs");
        fs::write(www.join("index.html"), format!("{listen}\n").repeat(64)).expect("index");
        if big > 0 {
            let out =
                must("sh", &["-c", &format!("head -c {big} /dev/urandom > {}/big.bin && echo ok", www.display())]);
            assert!(out.contains("ok"));
        }
        let d = dir.display();
        let conf = format!(
            r#"
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    server {{
        listen {listen};
        root {d}/www;
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("nginx.conf");
        let log = fs::File::create(dir.join("stderr.log")).expect("nginx stderr");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "nginx", "-p"])
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nginx");
        let mut n = Nginx { child, dir, listen: listen.to_string() };
        let start = Instant::now();
        loop {
            let ss = ns.exec("ss", &["-ltn"]);
            if String::from_utf8_lossy(&ss.stdout).contains(listen) {
                break;
            }
            if let Ok(Some(status)) = n.child.try_wait() {
                panic!("nginx exited ({status}): {}", n.logs());
            }
            assert!(start.elapsed() < Duration::from_secs(10), "nginx does not listen on {listen}: {}", n.logs());
            sleep(Duration::from_millis(50));
        }
        n
    }

    pub fn logs(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }

    /// Kills nginx at once (SIGKILL to its workers, found by parent id, and the master):
    /// established connections die without FIN, the address refuses new ones.
    pub fn kill(&mut self) {
        let master = self.child.id().to_string();
        // `ip netns exec` execs nginx: the child is the master itself.
        let workers = Command::new("pgrep").args(["-P", &master]).output();
        if let Ok(o) = workers {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    /// [`Nginx::kill`], then kills by pid whatever still listens on its address in `ns`
    /// (a worker the master's death left behind), until nothing does (at most 5 s).
    pub fn kill_in(&mut self, ns: &Netns) {
        self.kill();
        let start = Instant::now();
        loop {
            let ss = ns
                .exec("ss", &["-ltnpH", "sport", "=", &format!(":{}", self.listen.rsplit(':').next().unwrap_or("0"))]);
            let text = String::from_utf8_lossy(&ss.stdout).into_owned();
            let mine: Vec<&str> = text.lines().filter(|l| l.contains(&self.listen)).collect();
            if mine.is_empty() {
                return;
            }
            for l in mine {
                for part in l.split("pid=").skip(1) {
                    let pid: String = part.chars().take_while(char::is_ascii_digit).collect();
                    let _ = Command::new("kill").args(["-9", &pid]).status();
                }
            }
            assert!(start.elapsed() < Duration::from_secs(5), "{} still listens:\n{text}", self.listen);
            sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
        let _ = fs::remove_dir_all(&self.dir);
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
        let dir = std::env::temp_dir().join(unique("strait-ops-notify-"));
        fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&p).expect("bind NOTIFY_SOCKET");
        sock.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        NotifySocket { sock, dir, path: p.display().to_string(), seen: Vec::new() }
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

/// A test's addresses: the client side is `{front}.0/24` (kernel `.1`, strait `.2`),
/// the backend side `{back}.0/24` (strait `.2`, backends `.10`, `.11`, ...).
#[derive(Debug, Clone, Copy)]
pub struct Subnets {
    pub front: &'static str,
    pub back: &'static str,
}

impl Subnets {
    /// Backend `i`'s address and port.
    pub fn backend(&self, i: u8) -> String {
        format!("{}.{}:8080", self.back, 10 + u16::from(i))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}.2:80/{path}", self.front)
    }
}

/// The configuration: one listener `web` on `{front}.2:80` to pool `web` with `servers`
/// (backend indices), plus `extra` TOML (e.g. `[shutdown]`), with `pool_extra` appended
/// inside the pool (e.g. `[pool.health_check]`).
pub fn config(net: Subnets, tap: &str, veth: &str, servers: &[u8], extra: &str, pool_extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|&i| format!("{{ addr = \"{}\" }}", net.backend(i))).collect();
    format!(
        r#"
[log]
format = "json"
level = "info"
{extra}

[dpdk]
lcores = [0]
memory_mode = "no-huge"
memory_mb = 512
mbufs = 32767
mbuf_cache = 256

[[port]]
name = "front"
device = "net_tap0,iface={tap}"
ipv4 = "{front}.2/24"

[[port]]
name = "back"
device = "net_af_packet0,iface={veth}"
ipv4 = "{back}.2/24"

[[listener]]
name = "web"
listen = "{front}.2:80"
pool = "web"
connect_timeout_ms = 1000

[[pool]]
name = "web"
servers = [{servers}]
{pool_extra}
"#,
        front = net.front,
        back = net.back,
        servers = list.join(", "),
    )
}

/// Strait between a client namespace and a backend namespace. Field order is drop order.
pub struct Setup {
    pub strait: Strait,
    pub nginx: Vec<Nginx>,
    pub client: Netns,
    pub backend: Netns,
    pub net: Subnets,
    pub tap: String,
    pub veth: String,
}

impl Setup {
    /// Namespaces, `backends` nginx instances (`big` bytes of `/big.bin` each), then
    /// strait with `toml(tap, veth)` and `env`; waits until both sides answer ping.
    pub fn start(
        net: Subnets,
        backends: u8,
        big: u64,
        toml: impl Fn(&str, &str) -> String,
        env: &[(&str, &str)],
    ) -> Setup {
        let client = Netns::new("sopa");
        let backend = Netns::new("sopb");
        let (va, vb, tap) = (unique("soa"), unique("sob"), unique("sot"));
        client.ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", &backend.name]);
        client.ip(&["link", "set", &va, "up"]);
        // af_packet hands strait what the veth carries: finished frames only.
        for (ns, dev) in [(&client, &va), (&backend, &vb)] {
            let o = ns.exec("ethtool", &["-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]);
            assert!(o.status.success(), "ethtool: {}", String::from_utf8_lossy(&o.stderr));
        }
        for i in 0..backends.max(1) {
            backend.ip(&["addr", "add", &format!("{}.{}/24", net.back, 10 + u16::from(i)), "dev", &vb]);
        }
        backend.ip(&["link", "set", &vb, "up"]);
        let nginx: Vec<Nginx> = (0..backends).map(|i| Nginx::start(&backend, &net.backend(i), big)).collect();
        let mut strait = Strait::start_with_env(&client, &toml(&tap, &va), env);
        strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
        client.ip(&["addr", "add", &format!("{}.1/24", net.front), "dev", &tap]);
        client.ip(&["link", "set", &tap, "up"]);
        assert!(
            ping_until_reply(&client, &format!("{}.2", net.front), Duration::from_secs(20)),
            "no ping reply (client side):\n{}",
            strait.log_text()
        );
        assert!(
            ping_until_reply(&backend, &format!("{}.2", net.back), Duration::from_secs(20)),
            "no ping reply (backend side):\n{}",
            strait.log_text()
        );
        Setup { strait, nginx, client, backend, net, tap, veth: va }
    }

    pub fn diagnostics(&self) -> String {
        let nginx: Vec<String> = self.nginx.iter().map(Nginx::logs).collect();
        format!("strait log:\n{}\nnginx logs:\n{}", self.strait.log_text(), nginx.join("\n"))
    }

    /// A command run in the client namespace, in the background.
    pub fn spawn_client(&self, program: &str, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.client.name, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn client")
    }

    /// Sends `signal` to strait.
    pub fn signal(&self, signal: &str) {
        must("kill", &[&format!("-{signal}"), &self.strait.child.id().to_string()]);
    }

    /// Waits for strait to exit (panics after `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.strait.child.try_wait() {
                return status;
            }
            assert!(start.elapsed() < timeout, "strait did not exit within {timeout:?}:\n{}", self.diagnostics());
            sleep(Duration::from_millis(50));
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
