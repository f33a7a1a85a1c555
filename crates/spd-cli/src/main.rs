//! The `spdnas` command: argument parsing and printing; every computation is in `spdnas::app`
//! and the library crates.

mod cli;

use std::process::ExitCode;

/// A tape allocates and frees thousands of tensors and small vectors per step; glibc's malloc
/// spends ~10 % of a search step consolidating them, mimalloc about none (measured: RADAR
/// first-order step 225 → 205 ms).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
