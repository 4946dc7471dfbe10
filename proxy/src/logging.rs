//! Logging set-up: a `tracing-subscriber` fmt subscriber writing to stderr, human-readable
//! or JSON, filtered by the configured `EnvFilter` directive (`RUST_LOG` wins when set).

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Builds the filter: `rust_log` (the `RUST_LOG` value) when set and non-empty, else the
/// configured `level`.
pub fn filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, String> {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(env) => EnvFilter::try_new(env).map_err(|e| format!("RUST_LOG={env:?}: {e}")),
        None => EnvFilter::try_new(level).map_err(|e| format!("log.level={level:?}: {e}")),
    }
}

/// Installs the global subscriber for `cfg`. Fails if the filter is invalid or a
/// subscriber is already installed.
pub fn init(cfg: &LogConfig) -> Result<(), String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = filter(&cfg.level, rust_log.as_deref())?;
    // Colours only for a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match cfg.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    result.map_err(|e| format!("installing the log subscriber: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_the_configured_level() {
        let f = filter("info", Some("debug")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.to_string(), "debug");
        let f = filter("info", Some("  ")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.to_string(), "info");
        let f = filter("warn,dataplane=trace", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.to_string(), "dataplane=trace,warn");
    }

    #[test]
    fn invalid_directives_are_errors_naming_their_source() {
        let e = filter("info", Some("foo=bogus")).unwrap_err();
        assert!(e.starts_with("RUST_LOG="), "{e}");
        let e = filter("foo=bogus", None).unwrap_err();
        assert!(e.starts_with("log.level="), "{e}");
    }

    #[test]
    fn init_installs_once() {
        let cfg = LogConfig {
            format: LogFormat::Json,
            level: "info".to_string(),
            access: false,
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
