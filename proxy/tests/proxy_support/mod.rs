//! Shared set-up of the proxy end-to-end tests (`proxy_*.rs`): one strait process with two
//! ports — a `net_tap` port towards kernel clients in strait's namespace, and a
//! `net_af_packet` port over a veth pair towards a backend namespace where nginx (Debian's
//! nginx-light, own temporary config, pid, log and document root, `daemon off`) serves
//! files. Clients connect to strait's listener; strait connects to nginx from its backend
//! port and splices the two. nginx, the namespaces and strait are cleaned up by guards,
//! also when a test fails.
#![allow(dead_code)]

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::common::{must, ping_until_reply, unique, Netns, Strait};

/// Size of the small page wrk fetches.
pub const INDEX_BYTES: usize = 4096;
/// Size of the medium file (`medium.bin`).
pub const MEDIUM_BYTES: usize = 1 << 20;

/// Addresses of one test: client side `front.{1,2}`, backend side `back.{1,2}` (x.1 is
/// the kernel peer, x.2 is strait). Only 198.18.70.0/24 ..= 198.18.79.0/24.
pub struct Net {
    pub front: &'static str,
    pub back: &'static str,
    /// The backend server's TCP port (nginx: 8080).
    pub backend_port: u16,
}

/// What a test needs beyond the defaults.
#[derive(Default)]
pub struct Options {
    /// Extra TOML put in the client-side port's section (e.g. a `[port.impair]` table).
    pub front_port_extra: &'static str,
    /// `[metrics] listen` inside strait's namespace.
    pub metrics: Option<&'static str>,
    /// Size of `big.bin` (random bytes, in tmpfs) that nginx serves; 0 for none.
    pub big_bytes: u64,
}

pub fn config(n: &Net, tap: &str, veth: &str, o: &Options) -> String {
    let metrics = o.metrics.map(|m| format!("[metrics]\nlisten = \"{m}\"\n")).unwrap_or_default();
    format!(
        r#"
[log]
format = "json"
level = "info"

{metrics}
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
mtu = 1500
{extra}

[[port]]
name = "back"
device = "net_af_packet0,iface={veth}"
ipv4 = "{back}.2/24"
mtu = 1500

[[listener]]
name = "web"
listen = "{front}.2:80"
pool = "web"
max_connections = 10000
connect_timeout_ms = 3000
idle_timeout_ms = 60000

[[pool]]
name = "web"
algorithm = "round_robin"
servers = [{{ addr = "{back}.1:{port}", weight = 1 }}]
"#,
        front = n.front,
        back = n.back,
        port = n.backend_port,
        extra = o.front_port_extra,
    )
}

/// nginx in the backend namespace with its own files; killed (and its files removed) on
/// drop. Large files live in tmpfs (`/dev/shm`).
pub struct Nginx {
    /// `None` until spawned (the guard exists first so that its files go on any failure).
    child: Option<Child>,
    dir: PathBuf,
    shm: PathBuf,
}

impl Nginx {
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
        let www = dir.join("www");
        fs::create_dir_all(&www).expect("nginx dirs");
        fs::create_dir_all(&shm).expect("tmpfs dir");
        fs::write(www.join("index.html"), pattern(INDEX_BYTES)).expect("index");
        fs::write(www.join("medium.bin"), pattern(MEDIUM_BYTES)).expect("medium");
        let mut n = Nginx { child: None, dir, shm };
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
events {{ worker_connections 4096; }}
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
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
        let _ = fs::remove_dir_all(&self.shm);
    }
}

pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
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

/// Strait (client side in its namespace, on the tap), nginx behind a veth in a backend
/// namespace.
pub struct Setup {
    // Field order is drop order: strait and nginx before their namespaces.
    pub strait: Strait,
    pub nginx: Nginx,
    pub client: Netns,
    pub backend: Netns,
    pub net: Net,
}

pub fn setup(net: Net, o: &Options) -> Setup {
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
    backend.ip(&["addr", "add", &format!("{}.1/24", net.back), "dev", &vb]);
    backend.ip(&["link", "set", &vb, "up"]);
    let nginx = Nginx::start(&backend, &format!("{}.1:8080", net.back), o.big_bytes);
    let mut strait = Strait::start(&client, &config(&net, &tap, &va, o));
    strait.wait_for_log(&["strait ready"], Duration::from_secs(30));
    strait.wait_for_log(&["proxy listening"], Duration::from_secs(1));
    client.ip(&["addr", "add", &format!("{}.1/24", net.front), "dev", &tap]);
    client.ip(&["link", "set", &tap, "up"]);
    assert!(
        ping_until_reply(&client, &format!("{}.2", net.front), Duration::from_secs(20)),
        "no ping reply on the client side:\n{}",
        strait.log_text()
    );
    assert!(
        ping_until_reply(&backend, &format!("{}.2", net.back), Duration::from_secs(20)),
        "no ping reply on the backend side:\n{}",
        strait.log_text()
    );
    Setup { strait, nginx, client, backend, net }
}

impl Setup {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}.2:80/{path}", self.net.front)
    }

    pub fn diagnostics(&self) -> String {
        format!("strait log:\n{}\nnginx log:\n{}", self.strait.log_text(), self.nginx.logs())
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
