//! Logging set-up: a `tracing-subscriber` fmt subscriber writing to stderr, human-readable
//! or JSON, filtered by the configured `EnvFilter` directive (`RUST_LOG` wins when set).

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
