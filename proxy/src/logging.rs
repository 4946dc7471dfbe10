//! Logging set-up: a `tracing-subscriber` fmt subscriber writing to stderr, human-readable
//! or JSON, filtered by the configured `EnvFilter` directive (`RUST_LOG` wins when set).
//!
//! Lines are formatted by the thread that logs (an lcore, for the access log) and handed to
//! a writer thread (`strait-log`) through a bounded queue of [`BUFFERED_LINES`]: when stderr
//! is slow (journald back-pressure, a full pipe) the queue fills and further lines are
//! dropped and counted ([`dropped_lines`], `strait_log_dropped_lines_total`) instead of
//! blocking the data plane until the watchdog restarts the service. [`flush`] writes what
//! is queued at exit.

use std::sync::{Mutex, OnceLock};

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Target of the access log (`[log] access`), one line per closed proxy session.
pub const ACCESS_TARGET: &str = "strait::access";

/// Builds the filter: `rust_log` (the `RUST_LOG` value) when set and non-empty, else the
/// configured `level`. The access log is switched by `[log] access` (also on reload), not
/// by the level: its target stays at info unless the directive names it itself.
pub fn filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, String> {
    let (source, directive) = match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(env) => ("RUST_LOG", env),
        None => ("log.level", level),
    };
    let f = EnvFilter::try_new(directive).map_err(|e| format!("{source}={directive:?}: {e}"))?;
    if directive.contains(ACCESS_TARGET) {
        return Ok(f);
    }
    let access = format!("{ACCESS_TARGET}=info").parse().map_err(|e| format!("{ACCESS_TARGET}: {e}"))?;
    Ok(f.add_directive(access))
}

/// Lines the writer thread's queue holds before new ones are dropped, by default
/// (`[log] queue_lines`).
pub const BUFFERED_LINES: usize = 65_536;

/// The writer thread's guard (dropping it writes what is queued) and its drop counter.
static WRITER: Mutex<Option<WorkerGuard>> = Mutex::new(None);
static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Installs the global subscriber for `cfg`. Fails if the filter is invalid or a
/// subscriber is already installed.
pub fn init(cfg: &LogConfig) -> Result<(), String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(&cfg.level, rust_log.as_deref())?;
    // Colours only for a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = lossy_writer(std::io::stderr(), cfg.queue_lines as usize);
    let dropped = writer.error_counter();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(writer);
    let result = match cfg.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| format!("installing the log subscriber: {e}"))?;
    let _ = DROPPED.set(dropped);
    if let Ok(mut w) = WRITER.lock() {
        *w = Some(guard);
    }
    Ok(())
}

/// A writer that queues up to `lines` lines for a `strait-log` thread writing to `out`,
/// and drops (and counts) what does not fit instead of waiting.
fn lossy_writer<W: std::io::Write + Send + 'static>(
    out: W,
    lines: usize,
) -> (tracing_appender::non_blocking::NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default().lossy(true).buffered_lines_limit(lines).thread_name("strait-log").finish(out)
}

/// Log lines dropped because the writer thread's queue was full.
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// Writes every queued line and stops the writer thread (at exit; later lines are lost).
pub fn flush() {
    let guard = WRITER.lock().ok().and_then(|mut w| w.take());
    drop(guard);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_configured_level() {
        let directives = |f: EnvFilter| {
            let mut d: Vec<String> = f.to_string().split(',').map(str::to_string).collect();
            d.sort();
            d.join(",")
        };
        let f = filter("info", Some("debug")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(directives(f), "debug,strait::access=info");
        let f = filter("info", Some("  ")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(directives(f), "info,strait::access=info");
        let f = filter("warn,dataplane=trace", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(directives(f), "dataplane=trace,strait::access=info,warn");
    }

    #[test]
    fn the_access_log_survives_a_stricter_level_unless_named() {
        use tracing::subscriber::with_default;
        use tracing_subscriber::layer::SubscriberExt;
        let enabled = |level: &str| {
            let f = filter(level, None).unwrap_or_else(|e| panic!("{e}"));
            let subscriber = tracing_subscriber::registry().with(f);
            with_default(subscriber, || tracing::enabled!(target: "strait::access", tracing::Level::INFO))
        };
        assert!(enabled("warn"), "log.level = warn keeps the access log");
        assert!(enabled("error,dataplane=debug"));
        assert!(!enabled("warn,strait::access=off"), "an explicit directive wins");
    }

    /// A writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Buf(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
        }
    }

    /// The access line in both formats (the subscriber `init` builds, on a buffer): HAProxy
    /// tcplog's facts, termination side and phase, connect time, server, retries, bytes both
    /// ways, and the reason; a refusal has no server and no connect time.
    #[test]
    fn access_lines_carry_the_tcplog_fields_in_text_and_json() {
        use dataplane::app::proxy::{log_access, AccessRecord, EndReason};
        use tracing::subscriber::with_default;
        let served = AccessRecord {
            listener: "web",
            client: "198.18.0.1:40000".parse().unwrap_or_else(|e| panic!("{e}")),
            server: Some("198.18.1.10:8080".parse().unwrap_or_else(|e| panic!("{e}"))),
            ended_by: "client",
            phase: "data",
            connect: Some(dataplane::time::Duration::from_micros(1250)),
            retries: 1,
            bytes_in: 78,
            bytes_out: 4096,
            duration: dataplane::time::Duration::from_millis(12),
            reason: EndReason::Closed,
        };
        let refused = AccessRecord {
            server: None,
            ended_by: "proxy",
            phase: "connect",
            connect: None,
            retries: 0,
            bytes_in: 0,
            bytes_out: 0,
            duration: dataplane::time::Duration::ZERO,
            reason: EndReason::RefusedMaxConnections,
            ..served.clone()
        };
        let text = Buf::default();
        let w = text.clone();
        with_default(tracing_subscriber::fmt().with_ansi(false).with_writer(move || w.clone()).finish(), || {
            log_access(&served);
            log_access(&refused);
        });
        let lines: Vec<String> = text.text().lines().map(str::to_string).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("strait::access: session closed listener=\"web\" client=198.18.0.1:40000 server=198.18.1.10:8080 \
                               ended_by=\"client\" phase=\"data\" connect_ms=1.250 retries=1 bytes_in=78 bytes_out=4096 \
                               duration_ms=12 reason=\"closed\""),
            "{}",
            lines[0]
        );
        assert!(lines[1].contains("server=- ended_by=\"proxy\" phase=\"connect\" connect_ms=- retries=0"), "{}", lines[1]);
        assert!(lines[1].ends_with("reason=\"refused_max_connections\""), "{}", lines[1]);

        let json = Buf::default();
        let w = json.clone();
        with_default(tracing_subscriber::fmt().json().with_writer(move || w.clone()).finish(), || {
            log_access(&served);
            log_access(&refused);
        });
        let out = json.text();
        let v: Vec<serde_json::Value> =
            out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
        assert_eq!(v.len(), 2, "{out}");
        assert_eq!(v[0]["target"], "strait::access");
        let f = &v[0]["fields"];
        assert_eq!((f["server"].as_str(), f["ended_by"].as_str(), f["phase"].as_str()), (Some("198.18.1.10:8080"), Some("client"), Some("data")), "{f}");
        assert_eq!((f["connect_ms"].as_str(), f["retries"].as_u64()), (Some("1.250"), Some(1)), "{f}");
        assert_eq!((f["bytes_in"].as_u64(), f["bytes_out"].as_u64(), f["reason"].as_str()), (Some(78), Some(4096), Some("closed")), "{f}");
        assert_eq!((v[1]["fields"]["reason"].as_str(), v[1]["fields"]["server"].as_str()), (Some("refused_max_connections"), Some("-")));
    }

    #[test]
    fn invalid_directives_are_errors_naming_their_source() {
        let e = filter("info", Some("foo=bogus")).unwrap_err();
        assert!(e.starts_with("RUST_LOG="), "{e}");
        let e = filter("foo=bogus", None).unwrap_err();
        assert!(e.starts_with("log.level="), "{e}");
    }

    /// A sink that blocks every write until released: stderr with journald stalled.
    struct Stalled(std::sync::Arc<(Mutex<bool>, std::sync::Condvar)>);

    impl std::io::Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let (lock, cv) = &*self.0;
            let mut released = lock.lock().map_err(|_| std::io::Error::other("poisoned"))?;
            while !*released {
                released = cv.wait(released).map_err(|_| std::io::Error::other("poisoned"))?;
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_stderr_drops_and_counts_lines_instead_of_blocking_the_logger() {
        use std::io::Write;
        let gate = std::sync::Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let (mut writer, guard) = lossy_writer(Stalled(std::sync::Arc::clone(&gate)), 16);
        let dropped = writer.error_counter();
        let start = std::time::Instant::now();
        for i in 0..10_000 {
            writer.write_all(format!("access line {i}\n").as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        }
        // 10 000 lines against a sink that takes none: the caller never waited for it ...
        assert!(start.elapsed() < std::time::Duration::from_secs(2), "the logging thread was blocked");
        // ... and all but the queue (16) and the one line the writer thread holds were dropped.
        assert!(dropped.dropped_lines() >= 10_000 - 17, "dropped {}", dropped.dropped_lines());
        let (lock, cv) = &*gate;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        drop(guard);
    }

    #[test]
    fn init_installs_once() {
        let cfg = LogConfig {
            format: LogFormat::Json,
            level: "info".to_string(),
            access: false,
            queue_lines: 1024,
        };
        // Whether or not RUST_LOG is set in the test environment, a second install fails.
        let first = init(&cfg);
        let second = init(&cfg);
        assert!(
            first.is_ok() || std::env::var("RUST_LOG").is_ok_and(|v| !v.is_empty()),
            "{first:?}"
        );
        assert!(second
            .unwrap_err()
            .contains("installing the log subscriber"));
    }
}
