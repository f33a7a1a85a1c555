//! The `spdnas` binary. Its subcommands arrive with the CLI issue; until then it says so.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "spdnas {}: the command-line interface is not built yet; \
         the library crates (spd-linalg, ...) are usable from Rust",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::FAILURE
}
