//! `cargo xtask release`: the checks a release must pass (CHANGELOG entry, formatting, clippy
//! with warnings denied, the full test suite, warning-free docs, `cargo publish --dry-run` of
//! the publishable leaf crate), then the release binary packed as
//! `target/dist/spdnas-<version>-<target>.tar.gz` with its `SHA256SUMS`, and the Python wheel
//! (`cargo xtask test`'s build) beside it.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::report::{workspace_root, write_atomic};

/// The version being released: the workspace's.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Files and folders of the archive besides the binary, relative to the workspace root.
const PAYLOAD: [&str; 6] = [
    "README.md",
    "CHANGELOG.md",
    "LICENSE-MIT",
    "LICENSE-APACHE",
    "docs",
    "crates/spd-data/data/basicmotions/LICENSE",
];

/// One cargo invocation of the release.
struct Check {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
}

/// The checks, in order, before the release build.
const CHECKS: [Check; 5] = [
    Check {
        name: "formatting",
        args: &["fmt", "--all", "--", "--check"],
        env: &[],
    },
    Check {
        name: "clippy",
        args: &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        env: &[],
    },
    Check {
        name: "tests",
        args: &["test", "--workspace"],
        env: &[],
    },
    Check {
        name: "docs",
        args: &["doc", "--workspace", "--no-deps"],
        env: &[("RUSTDOCFLAGS", "-D warnings")],
    },
    Check {
        name: "publish dry run of spd-linalg",
        args: &["publish", "--dry-run", "-p", "spd-linalg"],
        env: &[],
    },
];

/// Runs every step; stops at the first failure with a message naming it.
pub fn run() -> Result<(), String> {
    let root = workspace_root();
    check_changelog(&root)?;
    for step in CHECKS {
        cargo(&root, step.name, step.args, step.env)?;
    }
    cargo(
        &root,
        "release build",
        &["build", "--release", "-p", "spd-cli"],
        &[],
    )?;
    let target = host_target()?;
    let archive = pack(&root, &target)?;
    eprintln!(
        "xtask: release {VERSION} for {target}: {}",
        archive.display()
    );
    let wheel = crate::pytest::build_wheel(&crate::pytest::environment()?)?;
    let name = wheel.file_name().ok_or("a wheel has a name")?;
    let dist = root.join("target/dist").join(name);
    fs::copy(&wheel, &dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    eprintln!("xtask: Python wheel: {}", dist.display());
    Ok(())
}

/// Fails unless `CHANGELOG.md` has a `## [VERSION]` (or `## VERSION`) heading.
fn check_changelog(root: &Path) -> Result<(), String> {
    let path = root.join("CHANGELOG.md");
    let text = fs::read_to_string(&path)
        .map_err(|e| format!("{}: cannot read ({e}); a release needs one", path.display()))?;
    let found = text.lines().any(|l| {
        l.strip_prefix("## ")
            .map(|h| h.trim_start().trim_start_matches('['))
            .and_then(|h| h.strip_prefix(VERSION))
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '.'))
    });
    if found {
        Ok(())
    } else {
        Err(format!(
            "{}: no entry for version {VERSION} (add a `## [{VERSION}] - YYYY-MM-DD` section)",
            path.display()
        ))
    }
}

fn cargo(root: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<(), String> {
    eprintln!("xtask: {name}: cargo {}", args.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root)
        .status()
        .map_err(|e| format!("{name}: cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{name} failed (cargo {})", args.join(" ")))
    }
}

/// The host target triple, from `rustc -vV`.
fn host_target() -> Result<String, String> {
    let out = Command::new("rustc")
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .ok_or_else(|| "rustc -vV names no host target".into())
}

/// Writes the archive (through a temporary file) and `SHA256SUMS`; returns the archive path.
fn pack(root: &Path, target: &str) -> Result<PathBuf, String> {
    let name = format!("spdnas-{VERSION}-{target}");
    let dist = root.join("target/dist");
    fs::create_dir_all(&dist).map_err(|e| format!("{}: {e}", dist.display()))?;
    let archive = dist.join(format!("{name}.tar.gz"));
    let tmp = dist.join(format!("{name}.tar.gz.tmp"));
    let io = |e: std::io::Error| format!("{}: {e}", tmp.display());
    {
        let file = File::create(&tmp).map_err(io)?;
        let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::best()));
        tar.mode(tar::HeaderMode::Deterministic);
        let binary = root.join("target/release/spdnas");
        tar.append_path_with_name(&binary, format!("{name}/spdnas"))
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        for item in PAYLOAD {
            let path = root.join(item);
            let inside = format!("{name}/{item}");
            let r = if path.is_dir() {
                tar.append_dir_all(&inside, &path)
            } else {
                tar.append_path_with_name(&path, &inside)
            };
            r.map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let gz = tar.into_inner().map_err(io)?;
        let mut file = gz.finish().map_err(io)?;
        file.flush().map_err(io)?;
        file.sync_all().map_err(io)?;
    }
    fs::rename(&tmp, &archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let bytes = fs::read(&archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let digest: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    write_atomic(
        &dist.join("SHA256SUMS"),
        &format!("{digest}  {name}.tar.gz\n"),
    )?;
    Ok(archive)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_changelog(text: Option<&str>) -> Result<(), String> {
        let dir = std::env::temp_dir().join(format!(
            "spdnas-xtask-changelog-{}-{}",
            std::process::id(),
            text.map_or(0, str::len)
        ));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("CHANGELOG.md");
        let _ = fs::remove_file(&path);
        if let Some(t) = text {
            fs::write(&path, t).unwrap();
        }
        let r = check_changelog(&dir);
        fs::remove_dir_all(&dir).unwrap();
        r
    }

    #[test]
    fn changelog_entry_is_required() {
        assert!(
            with_changelog(Some(&format!(
                "# Changelog\n\n## [{VERSION}] - 2026-12-01\n"
            )))
            .is_ok()
        );
        assert!(with_changelog(Some(&format!("## {VERSION}\n"))).is_ok());
        let longer = with_changelog(Some(&format!("## [{VERSION}.1] - x\n## [{VERSION}1]\n")));
        assert!(longer.unwrap_err().contains("no entry for version"));
        assert!(with_changelog(Some("# Changelog\n")).is_err());
        assert!(with_changelog(None).unwrap_err().contains("cannot read"));
    }
}
