//! End to end: a start-up that fails after the lcores were launched stops every lcore
//! before the error is reported (the teardown written once, `dataplane::runtime::Runtime`,
//! dropped on the early return). Here the admin socket is taken: another process answers
//! on it (as another strait would), which only the start of the admin API finds out,
//! after the lcores run. Strait on two lcores exits non-zero naming the socket, and the
//! remote lcore's loop logged that it stopped before the process ended.
//!
//! Subnet 198.18.186.0/24.

mod common;

use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{require_root, unique, Netns, Strait, ONE_LCORE};

#[test]
fn a_failed_admin_socket_stops_the_launched_lcores_and_names_the_reason() {
    if !require_root("a_failed_admin_socket_stops_the_launched_lcores_and_names_the_reason") {
        return;
    }
    let ns = Netns::new("sfail");
    let tap = unique("sft");
    let socket = std::env::temp_dir().join(unique("strait-taken-")).with_extension("sock").display().to_string();
    let _taken = std::os::unix::net::UnixListener::bind(&socket).expect("bind the socket first");
    let toml = format!(
        "{}\n[admin]\nsocket = \"{socket}\"\n\n[[port]]\nname = \"p0\"\ndevice = \"net_tap0,iface={tap}\"\nipv4 = \"198.18.186.2/24\"\n",
        ONE_LCORE.replace("lcores = [0]\n", "lcores = [0, 1]\n")
    );
    let mut strait = Strait::start(&ns, &toml);
    let start = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = strait.child.try_wait() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "strait did not exit:\n{}", strait.log_text());
        sleep(Duration::from_millis(50));
    };
    let log = strait.log_text();
    assert!(!status.success(), "exit status {status}:\n{log}");
    assert!(log.contains(&socket), "the error names the socket:\n{log}");
    let started = log.lines().any(|l| l.contains("lcore loop started") && l.contains("\"lcore\":1"));
    let stopped = log.lines().any(|l| l.contains("lcore loop stopped") && l.contains("\"lcore\":1"));
    assert!(started && stopped, "the remote lcore ran and was stopped before the exit:\n{log}");
    assert!(!log.contains("strait ready"), "{log}");
    let _ = std::fs::remove_file(&socket);
}
