//! `cargo xtask`: the whole test suite with the Python package (`test`), benchmarks
//! (`bench [linalg|autograd|search|train]`), the results page
//! (`results`) and the release (`release`) of spdnas. Run through the alias in `.cargo/config.toml`, which builds this tool
//! in release.

mod bench;
mod pytest;
mod release;
mod report;
mod results;

use std::process::ExitCode;

/// A tape allocates and frees thousands of tensors and small vectors per step; glibc's malloc
/// spends ~10 % of a search step consolidating them, mimalloc about none (measured: RADAR
/// first-order step 225 → 205 ms).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "usage: cargo xtask test | cargo xtask bench [all|linalg|autograd|search|train] | cargo xtask results [--paper] [--work DIR] [DATASET ...] | cargo xtask release";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["bench"] | ["bench", "all"] => bench::run_all(),
        ["bench", "linalg"] => bench::linalg::run(),
        ["bench", "autograd"] => bench::autograd::run(),
        ["bench", "search"] => bench::search::run(),
        ["bench", "train"] => bench::train::run(),
        ["release"] => release::run(),
        ["test"] => pytest::run_all(),
        ["results", rest @ ..] => results::run(rest),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}
