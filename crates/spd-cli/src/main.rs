//! The `spdnas` command: argument parsing, progress bars and printing; every computation is in
//! `spdnas::app` and the library crates.

mod cli;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spdnas: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
