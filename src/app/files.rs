//! A run directory's files: atomic JSON and text writes, the per-stage JSON-lines logs written
//! as epochs finish, genotype files and drawings, and the default directory name.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use spd_autograd::ParamStore;
use spd_nas::estimator::Cells;
use spd_nas::runner::Observer;
use spd_nas::{Genotype, Network, NetworkConfig};

use super::{AppError, Result};

/// A runtime error about `path`.
pub fn io_err(path: &Path, e: impl std::fmt::Display) -> AppError {
    AppError::Runtime(format!("{}: {e}", path.display()))
}

/// Writes `text` to `dir/name` atomically.
pub fn write_text(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    spd_data::write_atomic(&path, text.as_bytes()).map_err(|e| io_err(&path, e))
}

/// Writes `value` as pretty JSON to `dir/name` atomically.
pub fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<()> {
    write_text(
        dir,
        name,
        &serde_json::to_string_pretty(value).map_err(|e| AppError::Runtime(e.to_string()))?,
    )
}

/// Reads `path` as JSON of `T` (an input error naming the file otherwise).
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::Input(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| AppError::Input(format!("{}: {e}", path.display())))
}

/// One JSON line per item.
pub fn jsonl<T: Serialize>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| serde_json::to_string(i).expect("serialisable") + "\n")
        .collect()
}

/// An observer writing each stage's log lines to `dir/<stage>.jsonl` as its epochs finish
/// (`search.jsonl`, `train.jsonl`, `spdnet.jsonl`, …); a resumed stage's file is rewritten from
/// the checkpoint's history first. Observers cannot fail, so the first write error is kept for
/// [`LogFiles::finish`].
pub struct LogFiles {
    dir: PathBuf,
    error: Option<AppError>,
}

impl LogFiles {
    /// Logs into `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            error: None,
        }
    }

    /// The first write error, if any.
    pub fn finish(&mut self) -> Result<()> {
        self.error.take().map_or(Ok(()), Err)
    }

    fn keep(&mut self, r: Result<()>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    fn path(&self, stage: &str) -> PathBuf {
        self.dir.join(format!("{stage}.jsonl"))
    }
}

impl Observer for LogFiles {
    fn epoch_started(&mut self, stage: &str, epoch: usize, _: usize, _: usize) {
        if epoch == 0 {
            self.keep(write_text(&self.dir, &format!("{stage}.jsonl"), ""));
        }
    }

    fn epoch_done(&mut self, stage: &str, log: &serde_json::Value) {
        let path = self.path(stage);
        let appended = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{log}"));
        self.keep(appended.map_err(|e| io_err(&path, e)));
    }

    fn resumed(&mut self, stage: &str, history: &[serde_json::Value]) {
        self.keep(write_text(
            &self.dir,
            &format!("{stage}.jsonl"),
            &jsonl(history),
        ));
    }
}

/// Writes the cells as `{stem}.json`, `{stem}.dot` and, when Graphviz's `dot` is installed,
/// `{stem}.svg`.
pub fn write_cells(dir: &Path, stem: &str, cells: Cells<'_>) -> Result<()> {
    write_text(dir, &format!("{stem}.json"), &cells.to_json())?;
    let dot = cells.to_dot();
    write_text(dir, &format!("{stem}.dot"), &dot)?;
    let rendered = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take()?.write_all(dot.as_bytes()).ok()?;
            child.wait_with_output().ok().filter(|o| o.status.success())
        });
    if let Some(out) = rendered {
        write_text(
            dir,
            &format!("{stem}.svg"),
            &String::from_utf8_lossy(&out.stdout),
        )?;
    }
    Ok(())
}

/// A genotype by published name or from a JSON file.
pub fn genotype_from(name_or_file: &str) -> Result<Genotype> {
    if let Some(g) = Genotype::published(name_or_file) {
        return Ok(g);
    }
    let path = PathBuf::from(name_or_file);
    if !path.exists() {
        return Err(AppError::Input(format!(
            "{name_or_file}: neither a published genotype ({}) nor an existing file",
            Genotype::PUBLISHED.join(", ")
        )));
    }
    let text = std::fs::read_to_string(&path)
        .map_err(|e| AppError::Input(format!("{}: {e}", path.display())))?;
    Genotype::from_json(&text).map_err(|e| AppError::Input(format!("{}: {e}", path.display())))
}

/// The size of the network a genotype gives: our trainable values, and the values the official
/// derived network allocates on top (D18), whose sum is the paper's model size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParameterCount {
    /// Trainable values of our network.
    pub trainable: usize,
    /// Unused weight slices of the official derived network.
    pub official_dead: usize,
}

impl std::fmt::Display for ParameterCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{} trainable parameters", self.trainable)?;
        write!(
            f,
            "{} as the paper counts them (+{} weight slices the official derived network \
             allocates for a stem channel that does not exist; docs/architecture.md, D18)",
            self.trainable + self.official_dead,
            self.official_dead
        )
    }
}

/// The parameter count of the network a genotype gives for `config`.
pub fn genotype_params(genotype: &Genotype, config: &NetworkConfig) -> Result<ParameterCount> {
    let mut store = ParamStore::new();
    Network::derived(
        config,
        genotype,
        &mut store,
        &mut spd_linalg::random::seeded_rng(0),
    )?;
    Ok(ParameterCount {
        trainable: store.trainable_values(),
        official_dead: config.official_dead_weights(),
    })
}

/// `runs/<UTC timestamp>` (`YYYYMMDD-HHMMSS`).
pub fn default_run_dir() -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // civil date from days since 1970-01-01 (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    PathBuf::from("runs").join(format!(
        "{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}
