//! `strait ctl capture`: packet capture of a live appliance to a pcapng file (issue 16).
//!
//! A NIC DPDK drives is invisible to tcpdump, so the lcores copy frames to a writer
//! thread here ([`dataplane::capture`]: bounded in rate per lcore, in frames, never
//! blocking or allocating on the lcore). The writer ends the session at the first of:
//! `capture stop`, the frame count, the time limit or the file size limit; then it takes
//! the taps back from the lcores and says why it ended.
//!
//! The file is pcapng: one interface per port (named as in the configuration, nanosecond
//! timestamps), each frame with its direction (`epb_flags` inbound/outbound) so
//! `tshark -Y 'frame.p2p_dir'`-style filters and Wireshark's direction column work.
//! It is created new (never overwriting a file) with mode 0600: captures hold payloads.
//!
//! | request | what |
//! | --- | --- |
//! | `capture start FILE [port NAME] [queue N] [frames N] [seconds N] [snaplen N] [rate N] [max-mb N]` | start a session |
//! | `capture stop` | end it; prints what was written |
//! | `capture status` | the running session's progress, or the last one's result |

use std::borrow::Cow;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dataplane::capture::{self, Direction, Filter, Sink, Spec, TapCounters};
use dataplane::app::proxy::admin::ProxyHandle as Handle;
use dataplane::command::Command;
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::DataLink;

/// Frames captured by default.
pub const DEFAULT_FRAMES: u64 = 10_000;
/// Frames captured at most.
pub const MAX_FRAMES: u64 = 10_000_000;
/// Seconds a session lasts by default.
pub const DEFAULT_SECONDS: u64 = 60;
/// Seconds a session lasts at most.
pub const MAX_SECONDS: u64 = 3600;
/// Frames per second and lcore by default.
pub const DEFAULT_RATE: u32 = 10_000;
/// Frames per second and lcore at most.
pub const MAX_RATE: u32 = 1_000_000;
/// File size limit by default, MiB.
pub const DEFAULT_MAX_MB: u64 = 256;
/// File size limit at most, MiB.
pub const MAX_MB: u64 = 65_536;
/// How often the writer looks at its limits when no frame comes.
const TICK: Duration = Duration::from_millis(50);
/// How long taking the taps back may try when an lcore's command queue is full.
const DETACH_PATIENCE: Duration = Duration::from_secs(2);

/// The usage line, for `help` and errors.
pub const USAGE: &str =
    "capture start FILE [port NAME] [queue N] [frames N] [seconds N] [snaplen N] [rate N] [max-mb N] | capture stop | capture status";

/// A parsed `capture start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The file to create (absolute).
    pub path: PathBuf,
    /// Filter, snap length, rate and frame count.
    pub spec: Spec,
    /// Time limit.
    pub seconds: u64,
    /// File size limit, bytes.
    pub max_bytes: u64,
}

/// Parses the words after `capture start`; `ports` are the configured port names (the
/// filter names one).
pub fn parse(words: &[&str], ports: &[String]) -> Result<Request, String> {
    let Some((file, mut rest)) = words.split_first() else {
        return Err(format!("capture start needs a FILE ({USAGE})"));
    };
    let path = PathBuf::from(file);
    if !path.is_absolute() {
        return Err(format!("{file:?}: the capture file must be an absolute path (strait ctl makes it one)"));
    }
    let mut spec = Spec {
        filter: Filter::default(),
        snaplen: capture::MAX_SNAPLEN,
        rate: DEFAULT_RATE,
        max_frames: DEFAULT_FRAMES,
    };
    let mut seconds = DEFAULT_SECONDS;
    let mut max_mb = DEFAULT_MAX_MB;
    while let [key, value, tail @ ..] = rest {
        rest = tail;
        let number = |lo: u64, hi: u64| -> Result<u64, String> {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| format!("capture {key}: {value:?} is not a number in {lo}..={hi}"))
        };
        match *key {
            "port" => {
                let i = ports.iter().position(|p| p == value).ok_or_else(|| {
                    format!("capture port: no port named {value:?} (ports: {})", ports.join(", "))
                })?;
                spec.filter.port = Some(i);
            }
            "queue" => spec.filter.queue = Some(u16::try_from(number(0, 1023)?).unwrap_or(0)),
            "frames" => spec.max_frames = number(1, MAX_FRAMES)?,
            "seconds" => seconds = number(1, MAX_SECONDS)?,
            "snaplen" => spec.snaplen = u32::try_from(number(14, u64::from(capture::MAX_SNAPLEN))?).unwrap_or(0),
            "rate" => spec.rate = u32::try_from(number(1, u64::from(MAX_RATE))?).unwrap_or(0),
            "max-mb" => max_mb = number(1, MAX_MB)?,
            _ => return Err(format!("capture: unknown option {key:?} ({USAGE})")),
        }
    }
    if let [dangling] = rest {
        return Err(format!("capture: {dangling:?} needs a value ({USAGE})"));
    }
    Ok(Request { path, spec, seconds, max_bytes: max_mb * 1024 * 1024 })
}

/// How a session went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The file.
    pub path: PathBuf,
    /// Frames written to it.
    pub frames: u64,
    /// Its size, bytes.
    pub bytes: u64,
    /// Frames not captured: over the rate, no buffer (the writer behind), over the count.
    pub over_rate: u64,
    /// See `over_rate`.
    pub no_buffer: u64,
    /// See `over_rate`.
    pub over_limit: u64,
    /// Why it ended (`stopped`, `frames`, `seconds`, `max-mb`, or a write error).
    pub ended: String,
}

impl Summary {
    /// The admin protocol's text (key=value).
    pub fn render(&self, running: bool) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "capture={} file={} frames={} bytes={} skipped_rate={} skipped_no_buffer={} skipped_limit={}",
            if running { "running" } else { "done" },
            self.path.display(),
            self.frames,
            self.bytes,
            self.over_rate,
            self.no_buffer,
            self.over_limit
        );
        if !running {
            let _ = write!(out, " ended={}", self.ended);
        }
        out
    }
}

/// Progress the writer publishes while it runs.
#[derive(Debug, Default)]
struct Progress {
    frames: AtomicU64,
    bytes: AtomicU64,
}

/// A running session: its writer thread.
pub struct Session {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    progress: Arc<Progress>,
    counters: Arc<TapCounters>,
    writer: JoinHandle<Summary>,
}

impl Session {
    /// Creates the file, lends a tap to every lcore and starts the writer. Fails (nothing
    /// left running, the file removed) if the file cannot be created or an lcore cannot
    /// take its tap.
    pub fn start(req: Request, port_names: &[String], lcores: &[Handle]) -> Result<Session, String> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&req.path)
            .map_err(|e| format!("{}: {e}", req.path.display()))?;
        let mut out = PcapNgWriter::new(BufWriter::new(file)).map_err(|e| format!("{}: {e}", req.path.display()))?;
        for name in port_names {
            let idb = InterfaceDescriptionBlock {
                linktype: DataLink::ETHERNET,
                snaplen: req.spec.snaplen,
                options: vec![
                    InterfaceDescriptionOption::IfName(Cow::Owned(name.clone())),
                    // The timestamps of enhanced packet blocks are nanoseconds.
                    InterfaceDescriptionOption::IfTsResol(9),
                ],
            };
            out.write_pcapng_block(idb).map_err(|e| format!("{}: {e}", req.path.display()))?;
        }
        let ids: Vec<u32> = lcores.iter().map(Handle::lcore).collect();
        let (taps, sink) = capture::session(&ids, req.spec);
        let mut attached = Vec::new();
        for (h, tap) in lcores.iter().zip(taps) {
            if let Err(e) = h.send(Command::Capture(Some(tap))) {
                detach(&attached);
                let _ = std::fs::remove_file(&req.path);
                return Err(format!("capture not started: {e}"));
            }
            attached.push(h.clone());
        }
        tracing::info!(file = %req.path.display(), frames = req.spec.max_frames, seconds = req.seconds, "packet capture started");
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress::default());
        let counters = sink.counters();
        let path = req.path.clone();
        let writer = {
            let (stop, progress) = (Arc::clone(&stop), Arc::clone(&progress));
            let spawned = std::thread::Builder::new()
                .name("strait-capture".into())
                .spawn(move || write(out, &sink, &req, &stop, &progress, &attached));
            match spawned {
                Ok(w) => w,
                Err(e) => {
                    detach(lcores);
                    let _ = std::fs::remove_file(&path);
                    return Err(format!("capture writer thread: {e}"));
                }
            }
        };
        Ok(Session { path, stop, progress, counters, writer })
    }

    /// Whether the writer has ended on its own (a limit reached).
    pub fn finished(&self) -> bool {
        self.writer.is_finished()
    }

    /// Progress so far.
    pub fn status(&self) -> Summary {
        Summary {
            path: self.path.clone(),
            frames: self.progress.frames.load(Ordering::Relaxed),
            bytes: self.progress.bytes.load(Ordering::Relaxed),
            over_rate: self.counters.over_rate.load(Ordering::Relaxed),
            no_buffer: self.counters.no_buffer.load(Ordering::Relaxed),
            over_limit: self.counters.over_limit.load(Ordering::Relaxed),
            ended: String::new(),
        }
    }

    /// Ends the session (if a limit has not already) and returns how it went.
    pub fn stop(self) -> Summary {
        self.stop.store(true, Ordering::Relaxed);
        self.writer.join().unwrap_or_else(|_| Summary { path: self.path, ended: "writer panicked".into(), ..Summary::default() })
    }
}

/// The writer thread: frames to the file until a limit or `stop`, then the taps back.
fn write(
    mut out: PcapNgWriter<BufWriter<std::fs::File>>,
    sink: &Sink,
    req: &Request,
    stop: &AtomicBool,
    progress: &Progress,
    lcores: &[Handle],
) -> Summary {
    let deadline = Instant::now() + Duration::from_secs(req.seconds);
    // The section and interface blocks written so far (flushed first: the file's size is
    // what the summary reports and what `max-mb` bounds).
    let _ = out.get_mut().flush();
    let mut bytes = out.get_mut().get_ref().metadata().map_or(0, |m| m.len());
    let mut frames = 0u64;
    let ended = loop {
        if stop.load(Ordering::Relaxed) {
            break "stopped".to_string();
        }
        if Instant::now() >= deadline {
            break "seconds".to_string();
        }
        if frames >= req.spec.max_frames {
            break "frames".to_string();
        }
        let frame = match sink.recv_timeout(TICK) {
            Ok(f) => f,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break "lcores stopped".to_string(),
        };
        // pcapng epb_flags bits 0-1: 01 inbound, 10 outbound.
        let flags = match frame.direction {
            Direction::Rx => 0b01,
            Direction::Tx => 0b10,
        };
        let epb = EnhancedPacketBlock {
            interface_id: u32::try_from(frame.port).unwrap_or(u32::MAX),
            timestamp: Duration::from_nanos(frame.unix_nanos),
            original_len: frame.original_len,
            data: Cow::Borrowed(&frame.data),
            options: vec![EnhancedPacketOption::Flags(flags)],
        };
        let written = out.write_pcapng_block(epb);
        sink.recycle(frame);
        match written {
            Ok(n) => {
                bytes += n as u64;
                frames += 1;
                progress.frames.store(frames, Ordering::Relaxed);
                progress.bytes.store(bytes, Ordering::Relaxed);
            }
            Err(e) => break format!("write error: {e}"),
        }
        if bytes >= req.max_bytes {
            break "max-mb".to_string();
        }
    };
    detach(lcores);
    let flushed = out.get_mut().flush();
    let c = sink.counters();
    let summary = Summary {
        path: req.path.clone(),
        frames,
        bytes,
        over_rate: c.over_rate.load(Ordering::Relaxed),
        no_buffer: c.no_buffer.load(Ordering::Relaxed),
        over_limit: c.over_limit.load(Ordering::Relaxed),
        ended: match flushed {
            Ok(()) => ended,
            Err(e) => format!("write error: {e}"),
        },
    };
    tracing::info!(file = %summary.path.display(), frames, bytes, ended = %summary.ended, "packet capture ended");
    summary
}

/// Takes the taps back (retrying while an lcore's queue is full, up to
/// [`DETACH_PATIENCE`]).
fn detach(lcores: &[Handle]) {
    let give_up = Instant::now() + DETACH_PATIENCE;
    for h in lcores {
        while let Err(e) = h.send(Command::Capture(None)) {
            if matches!(e, dataplane::command::SendError::Gone(_)) || Instant::now() >= give_up {
                tracing::warn!(error = %e, "capture: tap not taken back");
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["wan".to_string(), "lan".to_string()]
    }

    #[test]
    fn parses_defaults_and_every_option() {
        let r = parse(&["/tmp/a.pcapng"], &names()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.spec.max_frames, DEFAULT_FRAMES);
        assert_eq!(r.spec.filter, Filter::default());
        assert_eq!((r.seconds, r.max_bytes), (DEFAULT_SECONDS, DEFAULT_MAX_MB << 20));
        let words = [
            "/tmp/a.pcapng", "port", "lan", "queue", "1", "frames", "50", "seconds", "5", "snaplen", "128", "rate", "100",
            "max-mb", "2",
        ];
        let r = parse(&words, &names()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.spec.filter, Filter { port: Some(1), queue: Some(1) });
        assert_eq!((r.spec.max_frames, r.spec.snaplen, r.spec.rate), (50, 128, 100));
        assert_eq!((r.seconds, r.max_bytes), (5, 2 << 20));
    }

    #[test]
    fn rejects_bad_requests_with_the_reason() {
        let err = |w: &[&str]| parse(w, &names()).err().unwrap_or_default();
        assert!(err(&[]).contains("needs a FILE"));
        assert!(err(&["a.pcapng"]).contains("absolute path"));
        assert!(err(&["/tmp/a", "port", "dmz"]).contains("no port named \"dmz\" (ports: wan, lan)"));
        assert!(err(&["/tmp/a", "frames", "0"]).contains("capture frames: \"0\" is not a number in 1..=10000000"));
        assert!(err(&["/tmp/a", "snaplen", "huge"]).contains("capture snaplen"));
        assert!(err(&["/tmp/a", "colour", "red"]).contains("unknown option \"colour\""));
        assert!(err(&["/tmp/a", "frames"]).contains("\"frames\" needs a value"));
    }

    #[test]
    fn the_summary_renders_as_key_values() {
        let s = Summary { path: "/tmp/x".into(), frames: 3, bytes: 400, ended: "frames".into(), ..Summary::default() };
        assert_eq!(
            s.render(false),
            "capture=done file=/tmp/x frames=3 bytes=400 skipped_rate=0 skipped_no_buffer=0 skipped_limit=0 ended=frames"
        );
    }
}
