//! The `strait` binary: see [`cli`] for the commands and `run` for the data plane.

#![deny(unsafe_code)]

mod cli;
mod monitor;
mod run;

fn main() -> std::process::ExitCode {
    cli::main(run::run)
}
