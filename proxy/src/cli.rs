//! The `strait` command line: `strait run --config FILE`, `strait check-config FILE`,
//! `strait --version`.
//!
//! Exit codes: 0 success, 1 run-time failure, 2 usage or configuration error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strait::config::Config;

/// Strait: a TCP proxy appliance on a DPDK userspace stack.
#[derive(Debug, Parser)]
#[command(name = "strait", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load and validate the configuration, then run the data plane until SIGTERM/SIGINT.
    Run {
        /// The TOML configuration file (`STRAIT_*` environment variables override it).
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a configuration file: prints "config OK: <summary>" or every error.
    CheckConfig {
        /// The TOML configuration file (`STRAIT_*` environment variables override it).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Exit status for an invalid configuration.
const EXIT_CONFIG: u8 = 2;
/// Exit status for a run-time failure.
const EXIT_FAILURE: u8 = 1;

/// Loads `path`, printing every error to stderr on failure.
fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errs| {
        eprintln!("{errs}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Parses the command line and executes it; `run` starts the data plane.
pub fn main<E: std::fmt::Display>(run: impl FnOnce(Config) -> Result<(), E>) -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match load(&file) {
            Ok(cfg) => {
                println!("config OK: {}", cfg.summary());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run { config } => {
            let cfg = match load(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            if let Err(e) = strait::logging::init(&cfg.log) {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
            tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %config.display(), summary = %cfg.summary(), "strait starting");
            match run(cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "strait failed");
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_run_and_check_config() {
        let cli = Cli::try_parse_from(["strait", "run", "--config", "a.toml"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(cli.command, Command::Run { config } if config == std::path::Path::new("a.toml"))
        );
        let cli = Cli::try_parse_from(["strait", "check-config", "b.toml"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(cli.command, Command::CheckConfig { file } if file == std::path::Path::new("b.toml"))
        );
    }

    #[test]
    fn rejects_missing_arguments() {
        assert!(Cli::try_parse_from(["strait", "run"]).is_err());
        assert!(Cli::try_parse_from(["strait", "check-config"]).is_err());
        assert!(Cli::try_parse_from(["strait"]).is_err());
    }
}
