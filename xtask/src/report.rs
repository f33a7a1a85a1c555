//! Where benchmark results go: `target/bench/<name>.json` and a section of
//! `docs/benchmarks.md` delimited by `<!-- bench:<name> -->` markers, both written atomically.

use std::fs;
use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Writes `contents` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Replaces (or appends) the section `name` of `docs/benchmarks.md`.
pub fn update_docs_section(name: &str, body: &str) -> Result<PathBuf, String> {
    let path = workspace_root().join("docs").join("benchmarks.md");
    let existing = fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".to_string());
    let (open, close) = (
        format!("<!-- bench:{name} -->"),
        format!("<!-- /bench:{name} -->"),
    );
    let section = format!("{open}\n{body}\n{close}");
    let updated = match (existing.find(&open), existing.find(&close)) {
        (Some(a), Some(b)) if a < b => {
            format!(
                "{}{}{}",
                &existing[..a],
                section,
                &existing[b + close.len()..]
            )
        }
        _ => format!("{}\n{}\n", existing.trim_end(), section),
    };
    write_atomic(&path, &updated)?;
    Ok(path)
}

/// One line describing the machine, compiler and date of a run.
pub fn machine_line() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rustc = command_line("rustc", &["--version"]).unwrap_or_else(|| "rustc ?".into());
    let date = command_line("date", &["-u", "+%Y-%m-%d"]).unwrap_or_else(|| "?".into());
    format!("{cpu}, {cores} cores; {rustc}; faer 0.24; measured {date}")
}

fn command_line(cmd: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
