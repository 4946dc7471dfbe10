//! End to end: `strait ctl capture` on a live proxy (issue 16). Strait proxies a client
//! to nginx; the kernel captures the client's side of the tap at the same time (tshark
//! in the client namespace). Then:
//!
//! * strait's pcapng, filtered to port `front`, opens in tshark and holds every frame of
//!   the request's connection the kernel saw (same sequence numbers, lengths and flags,
//!   the direction reversed: what the client sent strait received), and nothing of port
//!   `back`;
//! * a session bounded to 5 frames ends by itself with exactly 5 written
//!   (`capture status`: `ended=frames`), and the proxy keeps serving;
//! * bad requests are refused with the reason (relative path from the server's view,
//!   unknown port, a second session while one runs).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::backend::{pool_config, Net, Setup};
use common::{require_root, unique};

fn ctl(sock: &str, req: &str) -> (bool, String) {
    let mut args = vec!["ctl", "--socket", sock];
    args.extend(req.split(' '));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_strait")).args(&args).output().expect("run strait ctl");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// The `key=` value in a `capture ...` answer.
fn field(answer: &str, key: &str) -> Option<String> {
    answer.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_string))
}

/// One GET through the proxy from the client namespace; the HTTP status.
fn get(s: &Setup) -> String {
    let o = s.client.exec("curl", &["-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}", &s.net.url("index.html")]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The TCP segments of `file` (read by tshark with `filter`): one line per frame,
/// `direction src_port dst_port seq len flags` (direction: pcapng's 0x1 inbound, 0x2
/// outbound; empty for the kernel's pcapng, which does not record it).
fn segments(file: &Path, filter: &str) -> Vec<String> {
    let o = std::process::Command::new("tshark")
        .args(["-r", &file.display().to_string(), "-o", "tcp.relative_sequence_numbers:FALSE", "-Y", filter, "-T", "fields"])
        .args(["-e", "frame.packet_flags_direction", "-e", "tcp.srcport", "-e", "tcp.dstport"])
        .args(["-e", "tcp.seq", "-e", "tcp.len", "-e", "tcp.flags"])
        .output()
        .expect("run tshark");
    assert!(o.status.success(), "tshark -r {}: {}", file.display(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect()
}

/// One TCP frame as tshark prints it ([`segments`]).
#[derive(Debug)]
struct Segment {
    /// pcapng direction: 1 inbound, 2 outbound (`None` in the kernel's file).
    dir: Option<u8>,
    ports: (u16, u16),
    seq: u64,
    len: u64,
    flags: String,
}

impl Segment {
    fn parse(line: &str) -> Option<Segment> {
        let f: Vec<&str> = line.split('\t').collect();
        let [dir, sport, dport, seq, len, flags] = f.as_slice() else { return None };
        Some(Segment {
            dir: dir.strip_prefix("0x").and_then(|h| u8::from_str_radix(h, 16).ok()),
            ports: (sport.parse().ok()?, dport.parse().ok()?),
            seq: seq.parse().ok()?,
            len: len.parse().ok()?,
            flags: flags.to_string(),
        })
    }
}

#[test]
fn a_live_capture_holds_every_frame_of_a_request() {
    if !require_root("a_live_capture_holds_every_frame_of_a_request") {
        return;
    }
    let net = Net { front: "198.18.150", back: "198.18.151", backend_port: 8080 };
    let sock = std::env::temp_dir().join(unique("strait-capture-admin-")).with_extension("sock").display().to_string();
    let admin = format!("[admin]\nsocket = \"{sock}\"\n");
    let mut s = Setup::start(net, 1, 0, |tap, veth| pool_config(net, tap, veth, &[0], &admin, ""), &[]);
    s.strait.wait_for_log(&["proxy listening"], Duration::from_secs(5));
    assert_eq!(get(&s), "200", "the proxy serves before any capture:\n{}", s.diagnostics());
    let dir = std::env::temp_dir().join(unique("strait-capture-"));
    std::fs::create_dir_all(&dir).expect("capture dir");
    let ours = dir.join("strait.pcapng");
    let kernel = dir.join("kernel.pcapng");

    // The kernel's view of the client side, for comparison.
    let kernel_path = kernel.display().to_string();
    let mut tshark = s.client.spawn("tshark", &["-i", &s.tap, "-f", "tcp port 80", "-w", &kernel_path, "-q"]);
    let t0 = Instant::now();
    while !kernel.exists() || std::fs::metadata(&kernel).map_or(0, |m| m.len()) == 0 {
        assert!(t0.elapsed() < Duration::from_secs(20), "tshark did not start capturing on {}", s.tap);
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));

    let (ok, out) = ctl(&sock, &format!("capture start {} port front frames 1000 seconds 60", ours.display()));
    assert!(ok && out.contains("capture started"), "{out}");
    let (ok, out) = ctl(&sock, &format!("capture start {} port front", dir.join("second.pcapng").display()));
    assert!(!ok && out.contains("a capture is running"), "one session at a time: {out}");
    assert_eq!(get(&s), "200", "the proxy serves while capturing:\n{}", s.diagnostics());
    // The last ACK of the close reaches strait within this.
    std::thread::sleep(Duration::from_millis(500));
    let (ok, out) = ctl(&sock, "capture status");
    assert!(ok && field(&out, "capture").as_deref() == Some("running"), "{out}");
    let (ok, out) = ctl(&sock, "capture stop");
    assert!(ok, "{out}");
    assert_eq!(field(&out, "ended").as_deref(), Some("stopped"), "{out}");
    assert_eq!(field(&out, "skipped_no_buffer").as_deref(), Some("0"), "{out}");
    let written: u64 = field(&out, "frames").and_then(|f| f.parse().ok()).unwrap_or(0);
    std::thread::sleep(Duration::from_millis(300));
    let _ = s.client.exec("kill", &["-INT", &tshark.id().to_string()]);
    let _ = tshark.wait();

    let mode = std::fs::metadata(&ours).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o600), "a capture holds payloads: owner-only");
    assert_eq!(segments(&ours, "frame").len() as u64, written, "tshark reads every frame written");
    let strait_side: Vec<Segment> = segments(&ours, "tcp").iter().filter_map(|l| Segment::parse(l)).collect();
    // Port filter: no backend traffic (the proxy's connection to nginx on 8080).
    assert!(strait_side.iter().all(|f| f.ports.0 != 8080 && f.ports.1 != 8080), "port back filtered out: {strait_side:#?}");
    let kernel_side: Vec<Segment> = segments(&kernel, "tcp").iter().filter_map(|l| Segment::parse(l)).collect();
    assert!(kernel_side.len() >= 8, "the kernel saw the request's connection: {kernel_side:#?}");
    // Every frame of the connection the kernel saw is in strait's capture, the direction
    // reversed (what the client sent to port 80 strait received). Strait's TSO
    // super-frames reach the kernel cut by net_tap: a data frame is covered by one of
    // strait's with the same sequence range or a wider one; frames without data match
    // exactly.
    for k in &kernel_side {
        let dir = if k.ports.1 == 80 { 1 } else { 2 };
        let found = strait_side.iter().any(|f| {
            f.dir == Some(dir)
                && f.ports == k.ports
                && if k.len == 0 {
                    f.len == 0 && f.seq == k.seq && f.flags == k.flags
                } else {
                    f.seq <= k.seq && k.seq + k.len <= f.seq + f.len
                }
        });
        assert!(found, "frame {k:?} of the kernel's capture missing from strait's:\n{strait_side:#?}");
    }
    // The request and its answer are readable as HTTP.
    let http = std::process::Command::new("tshark")
        .args(["-r", &ours.display().to_string(), "-Y", "http", "-T", "fields", "-e", "http.request.uri", "-e", "http.response.code"])
        .output()
        .expect("tshark http");
    let http = String::from_utf8_lossy(&http.stdout);
    assert!(http.contains("/index.html") && http.contains("200"), "HTTP request and response in the capture: {http}");

    // A bounded session ends by itself.
    let small = dir.join("small.pcapng");
    let (ok, out) = ctl(&sock, &format!("capture start {} frames 5", small.display()));
    assert!(ok, "{out}");
    assert_eq!(get(&s), "200");
    let t0 = Instant::now();
    let status = loop {
        let (_, st) = ctl(&sock, "capture status");
        if field(&st, "capture").as_deref() == Some("done") || t0.elapsed() > Duration::from_secs(10) {
            break st;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(field(&status, "ended").as_deref(), Some("frames"), "{status}");
    assert_eq!(field(&status, "frames").as_deref(), Some("5"), "{status}");
    assert_eq!(segments(&small, "frame").len(), 5);
    let (ok, out) = ctl(&sock, "capture stop");
    assert!(!ok && out.contains("no capture is running"), "{out}");

    // Refusals name the reason.
    let (ok, out) = ctl(&sock, &format!("capture start {} port dmz", dir.join("x.pcapng").display()));
    assert!(!ok && out.contains("no port named \"dmz\""), "{out}");
    let (ok, out) = ctl(&sock, &format!("capture start {}", small.display()));
    assert!(!ok && out.contains("File exists"), "never overwrites: {out}");
    assert_eq!(get(&s), "200", "the proxy serves after the captures:\n{}", s.diagnostics());
    let _ = std::fs::remove_dir_all(&dir);
}
