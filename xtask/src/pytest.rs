//! `cargo xtask test`: the whole test suite, the README's test command and CI's. First
//! `cargo test --workspace`; then the Python package: a virtual environment under
//! `target/py-venv` (created by this command, nothing installed by hand), the wheel built by
//! maturin into `target/wheels`, installed with numpy, scikit-learn, pyRiemann, Dask and pytest,
//! and pytest over `crates/spd-py/tests` (with `SPDNAS_BIN`, the binary the CLI tests built, for
//! the CLI agreement test).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::report::workspace_root;

/// The Python packages the tests need besides the wheel.
const TEST_PACKAGES: [&str; 6] = [
    "maturin>=1.5,<2",
    "numpy",
    "scikit-learn",
    "pyriemann",
    "dask[distributed]",
    "pytest",
];

/// Runs `cmd` in the workspace root, failing with `what` if it does not succeed.
fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask test: {what}");
    let status = cmd
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

/// The virtual environment's program `name`.
fn venv_bin(venv: &Path, name: &str) -> PathBuf {
    venv.join("bin").join(name)
}

/// Builds the wheel of `crates/spd-py` into `target/wheels` with the environment's maturin and
/// returns its path.
pub fn build_wheel(venv: &Path) -> Result<PathBuf, String> {
    let root = workspace_root();
    let wheels = root.join("target/wheels");
    let _ = std::fs::remove_dir_all(&wheels);
    run(
        "building the Python wheel (maturin)",
        Command::new(venv_bin(venv, "maturin"))
            .args(["build", "--release", "--quiet", "--manifest-path"])
            .arg(root.join("crates/spd-py/Cargo.toml"))
            .arg("--out")
            .arg(&wheels)
            .env("CARGO_TARGET_DIR", root.join("target/spd-py")),
    )?;
    std::fs::read_dir(&wheels)
        .map_err(|e| format!("{}: {e}", wheels.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| "maturin wrote no wheel".to_string())
}

/// `python -m pip install --quiet` in `venv`, to be given what to install.
fn pip_install(venv: &Path) -> Command {
    let mut pip = Command::new(venv_bin(venv, "python"));
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]);
    pip
}

/// A virtual environment under `target/py-venv` with the test packages.
pub fn environment() -> Result<PathBuf, String> {
    let venv = workspace_root().join("target/py-venv");
    if !venv_bin(&venv, "python").exists() {
        run(
            "creating target/py-venv",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        )?;
    }
    run(
        "installing the Python test packages",
        pip_install(&venv).args(TEST_PACKAGES),
    )?;
    Ok(venv)
}

/// `cargo xtask test`.
pub fn run_all() -> Result<(), String> {
    run(
        "cargo test --workspace",
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["test", "--workspace"]),
    )?;
    let venv = environment()?;
    let wheel = build_wheel(&venv)?;
    run(
        "installing the wheel",
        pip_install(&venv)
            .args(["--force-reinstall", "--no-deps"])
            .arg(&wheel),
    )?;
    let root = workspace_root();
    run(
        "pytest crates/spd-py/tests",
        Command::new(venv_bin(&venv, "python"))
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(root.join("crates/spd-py/tests"))
            .env("SPDNAS_BIN", root.join("target/debug/spdnas")),
    )
}
