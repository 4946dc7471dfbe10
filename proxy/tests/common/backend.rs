//! Strait as a proxy between two namespaces, shared by the proxy (`proxy_*.rs`) and
//! operating (`ops_*.rs`) end-to-end tests: strait runs in a client namespace with a
//! `net_tap` port towards kernel clients there, and a `net_af_packet` port over a veth
//! pair towards a backend namespace, where nginx instances (Debian's nginx-light, one per
//! backend address, own temporary config, pid, logs and document root, `daemon off`)
//! serve files. Clients connect to strait's listener; strait connects to nginx from its
//! backend port and splices the two. Everything is a guard that cleans up on drop, also
//! when a test fails.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use super::{must, ping_until_reply, unique, Netns, Strait};

/// Size of `index.html` (its first line names the nginx instance's address).
pub const INDEX_BYTES: usize = 4096;
/// Size of the medium file (`medium.bin`).
pub const MEDIUM_BYTES: usize = 1 << 20;

/// A test's addresses: the client side is `{front}.0/24` (kernel `.1`, strait `.2`),
/// the backend side `{back}.0/24` (strait `.2`; the kernel peer `.1` in [`setup`], the
/// backends `.10`, `.11`, ... in [`Setup::start`]).
#[derive(Debug, Clone, Copy)]
pub struct Net {
    pub front: &'static str,
    pub back: &'static str,
    /// The port strait connects to on the backends (nginx: 8080).
    pub backend_port: u16,
}

impl Net {
    /// Backend `i`'s address and port ([`Setup::start`]).
    pub fn backend(&self, i: u8) -> String {
        format!("{}.{}:{}", self.back, 10 + u16::from(i), self.backend_port)
    }

    /// A URL on strait's listener `{front}.2:80`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}.2:80/{path}", self.front)
    }
}

/// An nginx serving `dir/www` (`index.html`, `medium.bin`) and, under `/shm/`, a tmpfs
/// directory (`/dev/shm`) for large files, on one address; killed (its files removed) on
/// drop.
pub struct Nginx {
    /// `None` until spawned (the guard exists first so that its files go on any failure).
    child: Option<Child>,
    dir: PathBuf,
    shm: PathBuf,
    pub listen: String,
}

impl Nginx {
    /// Starts nginx in `ns` on `listen`; `big_bytes` of random data as `/shm/big.bin`
    /// when non-zero.
    pub fn start(ns: &Netns, listen: &str, big_bytes: u64) -> Nginx {
        Nginx::spawn(ns, listen, big_bytes, false)
    }

    /// nginx expecting a PROXY protocol header (v1 or v2) on every connection, logging
    /// `$proxy_protocol_addr $remote_addr` per request ([`Nginx::access_log`]).
    pub fn start_proxy_protocol(ns: &Netns, listen: &str) -> Nginx {
        Nginx::spawn(ns, listen, 0, true)
    }

    /// The access log (PROXY protocol nginx only).
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    fn spawn(ns: &Netns, listen: &str, big_bytes: u64, proxy_protocol: bool) -> Nginx {
        let dir = std::env::temp_dir().join(unique("strait-nginx-"));
        let shm = PathBuf::from("/dev/shm").join(unique("strait-www-"));
        let mut n = Nginx { child: None, dir, shm, listen: listen.to_string() };
        let www = n.dir.join("www");
        fs::create_dir_all(&www).expect("nginx dirs");
        fs::create_dir_all(&n.shm).expect("tmpfs dir");
        let index: Vec<u8> = format!("{listen}\n").bytes().cycle().take(INDEX_BYTES).collect();
        fs::write(www.join("index.html"), index).expect("index");
        fs::write(www.join("medium.bin"), pattern(MEDIUM_BYTES)).expect("medium");
        if big_bytes > 0 {
            let big = n.big_path();
            let out = must("sh", &["-c", &format!("head -c {big_bytes} /dev/urandom > {} && echo ok", big.display())]);
            assert!(out.contains("ok"));
        }
        let d = n.dir.display();
        let (pp_listen, pp_log) = if proxy_protocol {
            (
                " proxy_protocol",
                format!("log_format pp '$proxy_protocol_addr $remote_addr';\n    access_log {d}/access.log pp;"),
            )
        } else {
            ("", "access_log off;".to_string())
        };
        let conf = format!(
            r#"
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
worker_rlimit_nofile 19000;
events {{ worker_connections 16384; }}
http {{
    {pp_log}
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    keepalive_requests 1000000;
    sendfile on;
    server {{
        listen {listen}{pp_listen} reuseport;
        root {d}/www;
        location /shm/ {{
            alias {shm}/;
        }}
    }}
}}
"#,
            shm = n.shm.display()
        );
        let conf_path = n.dir.join("nginx.conf");
        fs::write(&conf_path, conf).expect("nginx.conf");
        let log = fs::File::create(n.dir.join("stderr.log")).expect("nginx stderr");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "nginx", "-p"])
            .arg(&n.dir)
            .arg("-e")
            .arg(n.dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nginx");
        n.child = Some(child);
        // Ready once it listens.
        let start = Instant::now();
        loop {
            let ss = ns.exec("ss", &["-ltn"]);
            if String::from_utf8_lossy(&ss.stdout).contains(listen) {
                break;
            }
            if let Some(Ok(Some(status))) = n.child.as_mut().map(Child::try_wait) {
                panic!("nginx exited ({status}): {}", n.logs());
            }
            assert!(start.elapsed() < Duration::from_secs(10), "nginx does not listen on {listen}: {}", n.logs());
            sleep(Duration::from_millis(50));
        }
        n
    }

    /// The large random file (`/shm/big.bin` on the server).
    pub fn big_path(&self) -> PathBuf {
        self.shm.join("big.bin")
    }

    pub fn logs(&self) -> String {
        let read = |f: &str| fs::read_to_string(self.dir.join(f)).unwrap_or_default();
        format!("{}{}", read("stderr.log"), read("error.log"))
    }

    /// Kills nginx at once (SIGKILL to its workers, found by parent id, and the master):
    /// established connections die without FIN, the address refuses new ones.
    pub fn kill(&mut self) {
        let Some(child) = self.child.as_mut() else {
            return;
        };
        // `ip netns exec` execs nginx: the child is the master itself.
        let workers = Command::new("pgrep").args(["-P", &child.id().to_string()]).output();
        if let Ok(o) = workers {
            for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }

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
        if let Some(Ok(None)) = self.child.as_mut().map(Child::try_wait) {
            self.kill();
        }
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_dir_all(&self.shm);
    }
}

/// `n` bytes of `abc...zabc...`.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

/// What a [`setup`] test needs beyond the defaults.
#[derive(Default)]
pub struct Options {
    /// Extra TOML put in the client-side port's section (e.g. a `[port.impair]` table).
    pub front_port_extra: &'static str,
    /// `[metrics] listen` inside strait's namespace.
    pub metrics: Option<&'static str>,
    /// Size of `/shm/big.bin` (random bytes, in tmpfs) that nginx serves; 0 for none.
    pub big_bytes: u64,
}

/// The proxy tests' configuration: listener `web` on `{front}.2:80` to pool `web` with
/// the one server `{back}.1:{backend_port}`. It ends inside the pool's table.
pub fn config(n: &Net, tap: &str, veth: &str, o: &Options) -> String {
    let metrics = o.metrics.map(|m| format!("[metrics]\nlisten = \"{m}\"\n")).unwrap_or_default();
    let server = format!("{}.1:{}", n.back, n.backend_port);
    let extra = Extra { tables: &metrics, front_port: o.front_port_extra, ..Extra::default() };
    strait_toml(n, tap, veth, &[server], &extra)
}

/// The operating tests' configuration: listener `web` on `{front}.2:80` (connect timeout
/// 1 s) to pool `web` with `servers` (backend indices, [`Net::backend`]), plus `extra`
/// TOML right after the `[log]` table (e.g. `[shutdown]`), with `pool_extra` appended
/// inside the pool (e.g. `[pool.health_check]`).
pub fn pool_config(net: Net, tap: &str, veth: &str, servers: &[u8], extra: &str, pool_extra: &str) -> String {
    let servers: Vec<String> = servers.iter().map(|&i| net.backend(i)).collect();
    let extra = Extra { tables: extra, listener: "connect_timeout_ms = 1000\n", pool: pool_extra, ..Extra::default() };
    strait_toml(&net, tap, veth, &servers, &extra)
}

/// `toml` (one of these configurations) on lcores 0 and 1, with the back port (on
/// `veth`) given a queue pair per lcore (software flow steering: `net_tap` has one).
pub fn on_two_lcores(toml: &str, veth: &str) -> String {
    toml.replace("lcores = [0]\n", "lcores = [0, 1]\n").replace(&format!("iface={veth}\""), &format!("iface={veth},qpairs=2\""))
}

/// TOML added to [`strait_toml`]'s tables.
#[derive(Default)]
struct Extra<'a> {
    /// Right after the `[log]` table: keys of `[log]`, then tables of their own.
    tables: &'a str,
    /// In the client-side port's table (e.g. a `[port.impair]` table).
    front_port: &'a str,
    /// In the listener's table.
    listener: &'a str,
    /// At the end, inside the pool's table.
    pool: &'a str,
}

/// Strait on one lcore without hugepages: port `front` (`net_tap` on `tap`, `{front}.2`),
/// port `back` (`net_af_packet` on `veth`, `{back}.2`), listener `web` on `{front}.2:80`
/// to pool `web` with `servers` (`addr:port`). It ends inside the pool's table.
fn strait_toml(net: &Net, tap: &str, veth: &str, servers: &[String], extra: &Extra) -> String {
    let servers: Vec<String> = servers.iter().map(|s| format!("{{ addr = \"{s}\" }}")).collect();
    format!(
        r#"
[log]
format = "json"
level = "info"
{tables}

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
{front_port}

[[port]]
name = "back"
device = "net_af_packet0,iface={veth}"
ipv4 = "{back}.2/24"

[[listener]]
name = "web"
listen = "{front}.2:80"
pool = "web"
{listener}

[[pool]]
name = "web"
servers = [{servers}]
{pool}
"#,
        front = net.front,
        back = net.back,
        tables = extra.tables,
        front_port = extra.front_port,
        listener = extra.listener,
        servers = servers.join(", "),
        pool = extra.pool,
    )
}

/// Strait between a client namespace and a backend namespace. Field order is drop order:
/// strait and nginx before their namespaces.
pub struct Setup {
    pub strait: Strait,
    pub nginx: Vec<Nginx>,
    pub client: Netns,
    pub backend: Netns,
    pub net: Net,
    pub tap: String,
    pub veth: String,
}

/// The proxy tests' set-up: one nginx on `{back}.1:8080` (`big_bytes` of `/shm/big.bin`),
/// strait with [`config`]; waits until strait's listener is up.
pub fn setup(net: Net, o: &Options) -> Setup {
    let listen = format!("{}.1:8080", net.back);
    let mut s = Setup::with(
        net,
        &[listen],
        |ns, l| Nginx::start(ns, l, o.big_bytes),
        |tap, veth| config(&net, tap, veth, o),
        &[],
    );
    s.strait.wait_for_log(&["proxy listening"], Duration::from_secs(1));
    s
}

impl Setup {
    /// The operating tests' set-up: `backends` nginx instances on [`Net::backend`] (`big`
    /// bytes of `/shm/big.bin` each), then strait with `toml(tap, veth)` and `env`.
    pub fn start(
        net: Net,
        backends: u8,
        big: u64,
        toml: impl FnOnce(&str, &str) -> String,
        env: &[(&str, &str)],
    ) -> Setup {
        let listens: Vec<String> = (0..backends).map(|i| net.backend(i)).collect();
        Setup::with(net, &listens, |ns, l| Nginx::start(ns, l, big), toml, env)
    }

    /// Namespaces and links, the backend addresses of `listens` (`addr:port`) with
    /// `nginx(backend namespace, listen)` on each, then strait with `toml(tap, veth)` and
    /// `env`; waits until strait is ready and both sides answer ping.
    pub fn with(
        net: Net,
        listens: &[String],
        nginx: impl Fn(&Netns, &str) -> Nginx,
        toml: impl FnOnce(&str, &str) -> String,
        env: &[(&str, &str)],
    ) -> Setup {
        Setup::with_strait(net, listens, nginx, toml, |ns, toml| Strait::start_with_env(ns, toml, env))
    }

    /// As [`Setup::with`], strait started by `start(client namespace, config)`.
    pub fn with_strait(
        net: Net,
        listens: &[String],
        nginx: impl Fn(&Netns, &str) -> Nginx,
        toml: impl FnOnce(&str, &str) -> String,
        start: impl FnOnce(&Netns, &str) -> Strait,
    ) -> Setup {
        let client = Netns::new("spxa");
        let backend = Netns::new("spxb");
        let (va, vb, tap) = (unique("spa"), unique("spb"), unique("spt"));
        client.ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb, "netns", &backend.name]);
        client.ip(&["link", "set", &va, "up"]);
        // af_packet hands strait what the veth carries: the kernel must put finished frames
        // on it (no GSO super-frames, no deferred checksums).
        for (ns, dev) in [(&client, &va), (&backend, &vb)] {
            let o = ns.exec("ethtool", &["-K", dev, "tx", "off", "tso", "off", "gso", "off", "gro", "off"]);
            assert!(o.status.success(), "ethtool: {}", String::from_utf8_lossy(&o.stderr));
        }
        for listen in listens {
            let host = listen.rsplit_once(':').map_or(listen.as_str(), |(h, _)| h);
            backend.ip(&["addr", "add", &format!("{host}/24"), "dev", &vb]);
        }
        backend.ip(&["link", "set", &vb, "up"]);
        let nginx: Vec<Nginx> = listens.iter().map(|l| nginx(&backend, l)).collect();
        let mut strait = start(&client, &toml(&tap, &va));
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

    /// Evidence for a stalled or failed transfer: the kernel peers' TCP counters and
    /// sockets on both sides, and strait's log (its counters).
    pub fn stall_evidence(&self) -> String {
        let run = |ns: &Netns, p: &str, a: &[&str]| {
            let o = ns.exec(p, a);
            format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
        };
        format!(
            "--- client ss -tmi\n{}\n--- backend ss -tmi\n{}\n--- client nstat -az (Tcp*)\n{}\n--- backend nstat -az (Tcp*)\n{}\n{}",
            run(&self.client, "ss", &["-tmni"]),
            run(&self.backend, "ss", &["-tmni"]),
            run(&self.client, "sh", &["-c", "nstat -asz | grep -E '^Tcp'"]),
            run(&self.backend, "sh", &["-c", "nstat -asz | grep -E '^Tcp'"]),
            self.diagnostics()
        )
    }

    /// Waits until `addr:port` listens in the backend namespace.
    pub fn wait_backend_listening(&self, addr: &str, port: u16) {
        let start = Instant::now();
        let want = format!("{addr}:{port}");
        while !String::from_utf8_lossy(&self.backend.exec("ss", &["-ltn"]).stdout).contains(&want) {
            assert!(start.elapsed() < Duration::from_secs(10), "the backend does not listen on {want}");
            sleep(Duration::from_millis(50));
        }
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

    /// Stops strait: clean exit, no connection left in the engine, the final proxy
    /// counters logged; returns that line.
    pub fn stop(&mut self) -> String {
        // Let the last FIN/ACK exchanges finish.
        sleep(Duration::from_millis(500));
        let status = self.strait.terminate(Duration::from_secs(30));
        let log = self.strait.log_text();
        assert!(status.success(), "strait exited with {status}:\n{log}");
        assert!(log.contains("strait stopped"), "no clean shutdown:\n{log}");
        let tcp = log.lines().find(|l| l.contains("final tcp counters")).unwrap_or_default().to_string();
        assert!(tcp.contains("\"connections\":0"), "connections left at shutdown: {tcp}\n{log}");
        let proxy = log.lines().find(|l| l.contains("final proxy counters")).unwrap_or_default().to_string();
        assert!(proxy.contains("proxy_listener_total{web}="), "no proxy counters: {log}");
        eprintln!("{proxy}");
        proxy
    }
}

/// The `proxy_listener_<counter>{web}` value in the final counters line.
pub fn counter(line: &str, name: &str) -> Option<u64> {
    let pat = format!("{name}{{web}}=");
    let rest = line.split(&pat).nth(1)?;
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

/// The kernel's absolute counters in `ns` (`nstat -asz`) as `(name, value)`.
pub fn nstat(ns: &Netns) -> Vec<(String, u64)> {
    let out = ns.exec("nstat", &["-asz"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?))
        })
        .collect()
}

/// `after - before` of the nstat counter `name` (0 when absent).
pub fn nstat_delta(before: &[(String, u64)], after: &[(String, u64)], name: &str) -> u64 {
    let get = |s: &[(String, u64)]| s.iter().find(|(k, _)| k == name).map(|(_, v)| *v).unwrap_or(0);
    get(after).saturating_sub(get(before))
}
