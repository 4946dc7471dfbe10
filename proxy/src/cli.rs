//! The `strait` command line: `strait run --config FILE`, `strait check-config FILE`,
//! `strait ctl REQUEST...` (the admin API's client), `strait --version`.
//!
//! Exit codes: 0 success, 1 run-time failure, 2 usage or configuration error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strait::config::Config;

use crate::run::RunOptions;

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
        /// TEST ONLY: stall the first lcore for 10 s this many seconds after start (for
        /// watchdog tests). Never use in production.
        #[arg(long, value_name = "SECONDS", hide = true)]
        debug_stall_lcore_after: Option<f64>,
    },
    /// Talk to a running strait through its admin socket: `show`, `show info`,
    /// `show connections [limit N] [after LCORE:SESSION]`, `server drain|enable|maint POOL
    /// ADDR`, `server weight POOL ADDR N`, `server kill POOL ADDR`, `session kill LCORE ID`,
    /// `reload`, `capture start|stop|status`, `help`.
    Ctl {
        /// The admin socket (`[admin] socket`).
        #[arg(long, value_name = "PATH", default_value = strait::admin::ctl::DEFAULT_SOCKET)]
        socket: PathBuf,
        /// Print the answer as JSON (sections as lists of objects) for scripts.
        #[arg(long)]
        json: bool,
        /// The request, e.g. `show connections`.
        #[arg(required = true, trailing_var_arg = true, value_name = "REQUEST")]
        request: Vec<String>,
    },
    /// Validate a configuration file: prints "config OK: <summary>" or every error.
    CheckConfig {
        /// The TOML configuration file (`STRAIT_*` environment variables override it).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// PACKAGING: write the man page (`strait.1`) and shell completions (`strait.bash`,
    /// `_strait`, `strait.fish`) into DIR (used by deploy/package.sh).
    #[command(hide = true)]
    GenerateAssets {
        /// Where to write them (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Writes the man page and the bash, zsh and fish completions of the CLI into `dir`.
fn generate_assets(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    use clap::CommandFactory;
    use clap_complete::{generate_to, Shell};
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command();
    // strait.1 and one page per sub-command (strait-run.1, strait-ctl.1, ...).
    clap_mangen::generate_to(cmd.clone(), dir)?;
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .collect();
    out.sort();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        out.push(generate_to(shell, &mut cmd, "strait", dir)?);
    }
    Ok(out)
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

/// How long `strait ctl` waits for an answer.
const CTL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `--json` given after the request's first word (`strait ctl show connections --json`)
/// is taken as the flag, not as a word of the request.
fn json_flag(json: bool, mut request: Vec<String>) -> (bool, Vec<String>) {
    let before = request.len();
    request.retain(|w| w != "--json");
    (json || request.len() != before, request)
}

/// `strait ctl`: one request, its answer printed (as JSON with `json`).
fn ctl(socket: &std::path::Path, json: bool, request: &[String]) -> ExitCode {
    match strait::admin::ctl::request(socket, request, CTL_TIMEOUT) {
        Ok(out) if json => {
            println!("{}", strait::admin::ctl::to_json(&out));
            ExitCode::SUCCESS
        }
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Parses the command line and executes it; `run` starts the data plane.
pub fn main<E: std::fmt::Display>(run: impl FnOnce(Config, RunOptions) -> Result<(), E>) -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Ctl { socket, json, request } => {
            let (json, request) = json_flag(json, request);
            ctl(&socket, json, &request)
        }
        Command::GenerateAssets { dir } => match generate_assets(&dir) {
            Ok(files) => {
                for f in files {
                    println!("{}", f.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: writing to {}: {e}", dir.display());
                ExitCode::from(EXIT_FAILURE)
            }
        },
        Command::CheckConfig { file } => match Config::load_for_any_machine(&file).map_err(|errs| {
            eprintln!("{errs}");
            ExitCode::from(EXIT_CONFIG)
        }) {
            Ok(cfg) => {
                let missing = cfg.missing_lcores();
                if !missing.is_empty() {
                    let ids: Vec<String> = missing.iter().map(u32::to_string).collect();
                    eprintln!(
                        "warning: dpdk.lcores: lcore {} not online on this machine ({}); `strait run` refuses the configuration here",
                        ids.join(", "),
                        strait::config::CpuSet::online()
                    );
                }
                if let Some(w) = strait::config::pool::pool_warning(&cfg) {
                    eprintln!("warning: {w}");
                }
                println!("config OK: {}", cfg.summary());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Run { config, debug_stall_lcore_after } => {
            let stall = match debug_stall_lcore_after.map(std::time::Duration::try_from_secs_f64) {
                None => None,
                Some(Ok(d)) => Some(d),
                Some(Err(e)) => {
                    eprintln!("error: --debug-stall-lcore-after: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let cfg = match load(&config) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            if let Err(e) = strait::logging::init(&cfg.log) {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_CONFIG);
            }
            tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %config.display(), summary = %cfg.summary(), "strait starting");
            if let Some(w) = strait::config::pool::pool_warning(&cfg) {
                tracing::warn!("{w}");
            }
            let code = match run(cfg, RunOptions { config_path: config, debug_stall_lcore_after: stall }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "strait failed");
                    strait::logging::flush();
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            };
            // The log writer thread empties its queue before the process ends.
            strait::logging::flush();
            code
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
            matches!(cli.command, Command::Run { config, debug_stall_lcore_after: None } if config == std::path::Path::new("a.toml"))
        );
        let cli = Cli::try_parse_from(["strait", "check-config", "b.toml"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            matches!(cli.command, Command::CheckConfig { file } if file == std::path::Path::new("b.toml"))
        );
    }

    #[test]
    fn parses_ctl_requests_with_a_default_socket() {
        let cli = Cli::try_parse_from(["strait", "ctl", "server", "drain", "web", "1.2.3.4:80"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&cli.command, Command::Ctl { socket, request, json: false }
            if socket == std::path::Path::new("/run/strait/admin.sock") && request.join(" ") == "server drain web 1.2.3.4:80"));
        let cli = Cli::try_parse_from(["strait", "ctl", "--json", "show"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&cli.command, Command::Ctl { json: true, .. }));
        let cli = Cli::try_parse_from(["strait", "ctl", "--socket", "/tmp/a.sock", "show"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(&cli.command, Command::Ctl { socket, .. } if socket == std::path::Path::new("/tmp/a.sock")));
        assert!(Cli::try_parse_from(["strait", "ctl"]).is_err(), "a request is required");
        // Paging words and a late --json pass through to the request; --json is the flag.
        let cli = Cli::try_parse_from(["strait", "ctl", "show", "connections", "--limit", "5", "--json"])
            .unwrap_or_else(|e| panic!("{e}"));
        let Command::Ctl { json, request, .. } = cli.command else { panic!("not ctl") };
        assert_eq!(json_flag(json, request), (true, vec!["show".into(), "connections".into(), "--limit".into(), "5".into()]));
        assert_eq!(json_flag(false, vec!["show".into()]), (false, vec!["show".into()]));
    }

    #[test]
    fn rejects_missing_arguments() {
        assert!(Cli::try_parse_from(["strait", "run"]).is_err());
        assert!(Cli::try_parse_from(["strait", "check-config"]).is_err());
        assert!(Cli::try_parse_from(["strait"]).is_err());
    }
}
