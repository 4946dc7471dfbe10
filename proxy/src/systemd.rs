//! systemd integration: `sd_notify` over the `NOTIFY_SOCKET` datagram socket (READY,
//! RELOADING, STOPPING, STATUS, WATCHDOG), and the watchdog gate that only lets WATCHDOG=1
//! out while every lcore loop is making progress.
//!
//! The protocol is a newline-separated `KEY=VALUE` datagram to the socket named by
//! `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace); see sd_notify(3). No
//! libsystemd: it is a few lines of std.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where notifications go.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Path(PathBuf),
    Abstract(Vec<u8>),
}

/// A connection to systemd's notification socket; a no-op when not started by systemd.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    sock: Option<UnixDatagram>,
}

impl Notifier {
    /// From `NOTIFY_SOCKET` (unset or empty: notifications are dropped silently, as
    /// `sd_notify` does outside systemd).
    pub fn from_env() -> Notifier {
        Notifier::for_socket(std::env::var_os("NOTIFY_SOCKET").map(|s| s.to_string_lossy().into_owned()))
    }

    /// For an explicit socket name (`/path` or `@abstract`).
    pub fn for_socket(name: Option<String>) -> Notifier {
        let target = match name {
            None => None,
            Some(s) if s.is_empty() => None,
            Some(s) => match s.strip_prefix('@') {
                Some(abs) => Some(Target::Abstract(abs.as_bytes().to_vec())),
                None => Some(Target::Path(PathBuf::from(s))),
            },
        };
        // Non-blocking: a receiver that does not read (a full queue; Linux holds only
        // `net.unix.max_dgram_qlen`, 10 by default, datagrams) costs a notification,
        // never a stuck watchdog or shutdown.
        let sock = target
            .as_ref()
            .and_then(|_| UnixDatagram::unbound().ok())
            .filter(|s| s.set_nonblocking(true).is_ok());
        Notifier { target, sock }
    }

    /// Whether notifications go anywhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some() && self.sock.is_some()
    }

    /// Sends `state` (one or more `KEY=VALUE` lines). Returns `Ok(false)` when not under
    /// systemd.
    pub fn notify(&self, state: &str) -> io::Result<bool> {
        let (Some(target), Some(sock)) = (&self.target, &self.sock) else { return Ok(false) };
        match target {
            Target::Path(p) => sock.send_to(state.as_bytes(), p)?,
            Target::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr)?
            }
        };
        Ok(true)
    }

    /// `READY=1` with a status line.
    pub fn ready(&self, status: &str) -> io::Result<bool> {
        self.notify(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `RELOADING=1` with the `CLOCK_MONOTONIC` time (`MONOTONIC_USEC`, which
    /// `Type=notify-reload` requires) and a status line; `READY=1` follows when done.
    pub fn reloading(&self, status: &str) -> io::Result<bool> {
        self.notify(&format!("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}", monotonic_usec(), one_line(status)))
    }

    /// `STOPPING=1` with a status line.
    pub fn stopping(&self, status: &str) -> io::Result<bool> {
        self.notify(&format!("STOPPING=1\nSTATUS={}", one_line(status)))
    }

    /// `STATUS=...`.
    pub fn status(&self, status: &str) -> io::Result<bool> {
        self.notify(&format!("STATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`.
    pub fn watchdog(&self) -> io::Result<bool> {
        self.notify("WATCHDOG=1")
    }
}

/// `CLOCK_MONOTONIC` in microseconds (0 if the clock cannot be read).
pub fn monotonic_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => {
            let secs = u64::try_from(t.tv_sec()).unwrap_or(0);
            let usec = u64::try_from(t.tv_nsec() / 1000).unwrap_or(0);
            secs.saturating_mul(1_000_000).saturating_add(usec)
        }
        Err(_) => 0,
    }
}

fn one_line(s: &str) -> String {
    s.replace('\n', " ")
}

/// The watchdog interval systemd asks for (`WATCHDOG_USEC`, honoured only when
/// `WATCHDOG_PID` is unset or ours), halved as sd_watchdog_enabled(3) recommends.
pub fn watchdog_interval(usec: Option<&str>, pid: Option<&str>) -> Option<Duration> {
    if let Some(pid) = pid {
        if pid.trim().parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    let usec: u64 = usec?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    Some(Duration::from_micros(usec / 2))
}

/// Decides whether WATCHDOG=1 may be sent: only when every lcore's loop counter moved
/// since the previous check (a stuck lcore means systemd restarts the service).
#[derive(Debug, Default)]
pub struct WatchdogGate {
    last: Vec<u64>,
}

impl WatchdogGate {
    /// Takes the current iteration counters, one per lcore; true when all advanced since
    /// the previous call (the first call only records them and returns true).
    pub fn all_progressing(&mut self, iterations: &[u64]) -> bool {
        let first = self.last.len() != iterations.len();
        let ok = first || self.last.iter().zip(iterations).all(|(before, now)| now != before);
        self.last = iterations.to_vec();
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receiver() -> (UnixDatagram, PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("strait-notify-{}-{:?}", std::process::id(), std::thread::current().id()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let sock = UnixDatagram::bind(&path).expect("bind a datagram socket");
        sock.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        (sock, path, dir)
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = sock.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn notifications_reach_a_real_datagram_socket() {
        let (sock, path, dir) = receiver();
        let n = Notifier::for_socket(Some(path.display().to_string()));
        assert!(n.enabled());
        assert!(n.ready("1 port up\nlcores [0]").expect("send"));
        assert_eq!(recv(&sock), "READY=1\nSTATUS=1 port up lcores [0]");
        n.watchdog().expect("send");
        assert_eq!(recv(&sock), "WATCHDOG=1");
        n.stopping("draining").expect("send");
        assert_eq!(recv(&sock), "STOPPING=1\nSTATUS=draining");
        let before = monotonic_usec();
        n.reloading("reloading").expect("send");
        let msg = recv(&sock);
        let usec: u64 = msg
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {msg:?}"));
        assert!(msg.starts_with("RELOADING=1\n") && msg.ends_with("\nSTATUS=reloading"), "{msg:?}");
        assert!(usec >= before && usec <= monotonic_usec(), "CLOCK_MONOTONIC, microseconds");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn abstract_socket_names_work() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("strait-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        sock.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
        let n = Notifier::for_socket(Some(format!("@{name}")));
        n.status("hello").expect("send");
        assert_eq!(recv(&sock), "STATUS=hello");
    }

    #[test]
    fn a_full_receiver_queue_never_blocks_the_sender() {
        let (sock, path, dir) = receiver();
        let n = Notifier::for_socket(Some(path.display().to_string()));
        // Nobody reads: the queue fills, then sends fail at once instead of waiting.
        let start = std::time::Instant::now();
        let results: Vec<bool> = (0..100).map(|_| n.watchdog().is_ok()).collect();
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(results.first().copied().unwrap_or(false), "the first ones are queued");
        assert!(results.iter().any(|ok| !ok), "a full queue is an error, not a wait");
        assert_eq!(recv(&sock), "WATCHDOG=1");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn without_notify_socket_nothing_is_sent() {
        assert!(!Notifier::for_socket(None).ready("x").expect("no-op"));
        assert!(!Notifier::for_socket(Some(String::new())).watchdog().expect("no-op"));
    }

    #[test]
    fn watchdog_interval_is_half_of_watchdog_usec_and_respects_pid() {
        assert_eq!(watchdog_interval(Some("10000000"), None), Some(Duration::from_secs(5)));
        let me = std::process::id().to_string();
        assert_eq!(watchdog_interval(Some("2000000"), Some(&me)), Some(Duration::from_secs(1)));
        assert_eq!(watchdog_interval(Some("2000000"), Some("1")), None);
        assert_eq!(watchdog_interval(Some("0"), None), None);
        assert_eq!(watchdog_interval(Some("junk"), None), None);
        assert_eq!(watchdog_interval(None, None), None);
    }

    #[test]
    fn watchdog_gate_blocks_when_one_lcore_stalls() {
        let mut g = WatchdogGate::default();
        assert!(g.all_progressing(&[1, 1]));
        assert!(g.all_progressing(&[5, 9]));
        assert!(!g.all_progressing(&[7, 9]), "lcore 1 made no progress");
        assert!(g.all_progressing(&[8, 10]));
    }
}
