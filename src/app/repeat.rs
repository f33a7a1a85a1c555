//! Repetitions of a whole run over seeds: one run directory per seed, then the mean ± standard
//! deviation of every method's test accuracy (`summary.json`, `summary.md`, `summary.png`).
//! A finished seed is read back, an unfinished one resumes from its checkpoints, so a killed
//! repetition continues to the uninterrupted result.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files::{io_err, read_json, write_json, write_text};
use super::plot::bar_chart;
use super::run::{Outcome, run};
use super::{AppError, Report, Result, RunConfig, Timings};
use spd_nas::runner::{Interrupter, Observer};

/// What changes from one seed to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SeedScope {
    /// The split (train/validation, and the test part unless a test set is given) and every
    /// initialisation and batch order.
    #[default]
    SplitAndInit,
    /// Only the initialisations and batch orders; every seed uses the split of the base
    /// configuration's seed.
    InitOnly,
}

impl SeedScope {
    /// A sentence for the output.
    pub fn describe(self, given_test: bool) -> &'static str {
        match (self, given_test) {
            (SeedScope::SplitAndInit, false) => {
                "each seed draws its own train/validation/test split and initialisation"
            }
            (SeedScope::SplitAndInit, true) => {
                "each seed draws its own train/validation split and initialisation; the given test set is the same for all"
            }
            (SeedScope::InitOnly, _) => {
                "one split for all seeds; only the initialisation and batch order change"
            }
        }
    }
}

/// Which seeds a repetition runs and what they vary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repetition {
    /// The seeds, in run order (each once).
    pub seeds: Vec<u64>,
    /// What a seed changes.
    pub scope: SeedScope,
}

/// One method's test accuracies over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodSummary {
    /// Display name.
    pub method: String,
    /// Mean test accuracy.
    pub mean: f64,
    /// Sample standard deviation (`n − 1`; 0 for one seed).
    pub std: f64,
    /// Test accuracy per seed, in seed order.
    pub per_seed: Vec<f64>,
    /// Trainable parameters (of the first seed's model).
    pub params: usize,
}

/// The result of a repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Data description.
    pub dataset: String,
    /// The seeds, in run order.
    pub seeds: Vec<u64>,
    /// What the seeds vary.
    pub scope: SeedScope,
    /// The same as a sentence.
    pub variation: String,
    /// `(train, val, test)` sizes (of the first seed).
    pub split_sizes: (usize, usize, usize),
    /// SPDNetNAS first, then the baselines in the configured order.
    pub methods: Vec<MethodSummary>,
    /// Each seed's report.
    pub reports: Vec<Report>,
    /// Each seed's wall times (kept apart: they vary between runs and after a resume).
    pub timings: Vec<Timings>,
}

/// What a repetition ended with.
pub enum RepeatOutcome {
    /// Every seed finished.
    Done(Box<Summary>),
    /// A seed stopped at the requested limit; `--resume` continues.
    Stopped(String),
}

/// The configuration of seed `seed` under `scope`.
pub fn seed_config(base: &RunConfig, seed: u64, scope: SeedScope) -> RunConfig {
    let mut c = base.clone();
    c.set_seed(seed);
    c.split_seed = match scope {
        SeedScope::SplitAndInit => base.split_seed,
        SeedScope::InitOnly => Some(base.split_seed.unwrap_or(base.seed)),
    };
    c
}

/// The run directory of one seed.
pub fn seed_dir(dir: &Path, seed: u64) -> PathBuf {
    dir.join(format!("seed-{seed}"))
}

/// Runs `base` once per seed in `dir/seed-<k>` (with `resume`, finished seeds are read back and
/// the others continue from their checkpoints, after checking they were run with the same
/// settings), calling `on_seed` after each, then writes the summary files to `dir`.
pub fn run_seeds(
    base: &RunConfig,
    repetition: &Repetition,
    dir: &Path,
    resume: bool,
    interrupter: &dyn Interrupter,
    observer: &mut dyn Observer,
    mut on_seed: impl FnMut(u64, &Report, &Timings),
) -> Result<RepeatOutcome> {
    let (seeds, scope) = (&repetition.seeds, repetition.scope);
    if let Some(seed) = seeds
        .iter()
        .enumerate()
        .find_map(|(i, s)| seeds[..i].contains(s).then_some(s))
    {
        return Err(AppError::Input(format!(
            "--seeds: seed {seed} is given twice"
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut runs = Vec::with_capacity(seeds.len());
    for &seed in seeds {
        let config = seed_config(base, seed, scope);
        let sub = seed_dir(dir, seed);
        let config_path = sub.join("config.json");
        if resume && config_path.exists() && RunConfig::read(&config_path)? != config {
            return Err(AppError::Input(format!(
                "{}: seed {seed} was run with other settings; drop --resume or choose another --out",
                config_path.display()
            )));
        }
        let (report_path, timings_path) = (sub.join("report.json"), sub.join("timings.json"));
        let finished = resume && report_path.exists() && timings_path.exists();
        let (report, timings) = if finished {
            (read_json(&report_path)?, read_json(&timings_path)?)
        } else {
            let prepared = config.prepare()?;
            match run(&config, &prepared, &sub, resume, interrupter, observer)? {
                Outcome::Done(report, timings) => (*report, timings),
                Outcome::Stopped(why) => {
                    return Ok(RepeatOutcome::Stopped(format!("seed {seed}: {why}")));
                }
            }
        };
        on_seed(seed, &report, &timings);
        runs.push((report, timings));
    }
    let summary = summarize(base, seeds, scope, runs);
    write_summary(dir, &summary)?;
    Ok(RepeatOutcome::Done(Box::new(summary)))
}

/// Mean and sample standard deviation.
pub fn mean_std(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, var.sqrt())
}

/// The name SPDNetNAS is summarised under.
const SEARCHED: &str = "SPDNetNAS";

/// A method's test accuracy and parameters in one report.
fn result_of(name: &str, r: &Report) -> (f64, usize) {
    if name == SEARCHED {
        (r.test_accuracy, r.params)
    } else {
        (
            r.baselines.get(name).copied().unwrap_or(f64::NAN),
            r.baseline_params.get(name).copied().unwrap_or(0),
        )
    }
}

/// A method's wall time in one run (search + training for SPDNetNAS).
fn time_of(name: &str, t: &Timings) -> f64 {
    if name == SEARCHED {
        t.search_s + t.train_s
    } else {
        t.baselines_s.get(name).copied().unwrap_or(0.0)
    }
}

fn summarize(
    base: &RunConfig,
    seeds: &[u64],
    scope: SeedScope,
    runs: Vec<(Report, Timings)>,
) -> Summary {
    let names = std::iter::once(SEARCHED).chain(base.baselines.iter().map(|b| b.name()));
    let methods = names
        .map(|name| {
            let per_seed: Vec<f64> = runs.iter().map(|(r, _)| result_of(name, r).0).collect();
            let (mean, std) = mean_std(&per_seed);
            MethodSummary {
                method: name.to_string(),
                mean,
                std,
                per_seed,
                params: runs.first().map_or(0, |(r, _)| result_of(name, r).1),
            }
        })
        .collect();
    let first = runs.first().map(|(r, _)| r);
    Summary {
        dataset: first.map_or_else(String::new, |r| r.dataset.clone()),
        seeds: seeds.to_vec(),
        scope,
        variation: scope.describe(base.test_data.is_some()).to_string(),
        split_sizes: first.map_or((0, 0, 0), |r| r.split_sizes),
        methods,
        timings: runs.iter().map(|(_, t)| t.clone()).collect(),
        reports: runs.into_iter().map(|(r, _)| r).collect(),
    }
}

/// Mean wall time of a method over the seeds of a summary.
pub fn mean_time(s: &Summary, method: &str) -> f64 {
    let times: Vec<f64> = s.timings.iter().map(|t| time_of(method, t)).collect();
    mean_std(&times).0
}

/// The summary table (Markdown).
pub fn summary_table(s: &Summary) -> String {
    let mut out = format!(
        "{} — split {}/{}/{}; seeds {:?}: {}\n\n| method | test accuracy (mean ± std) | parameters | time (s) |\n|---|---:|---:|---:|\n",
        s.dataset, s.split_sizes.0, s.split_sizes.1, s.split_sizes.2, s.seeds, s.variation
    );
    for m in &s.methods {
        out += &format!(
            "| {} | {:.2} ± {:.2} % | {} | {:.1} |\n",
            m.method,
            100.0 * m.mean,
            100.0 * m.std,
            m.params,
            mean_time(s, &m.method)
        );
    }
    out
}

fn write_summary(dir: &Path, s: &Summary) -> Result<()> {
    write_json(dir, "summary.json", s)?;
    write_text(dir, "summary.md", &summary_table(s))?;
    let labels: Vec<String> = s.methods.iter().map(|m| m.method.clone()).collect();
    let means: Vec<f64> = s.methods.iter().map(|m| m.mean).collect();
    let stds: Vec<f64> = s.methods.iter().map(|m| m.std).collect();
    let name = s.dataset.rsplit('/').next().unwrap_or(&s.dataset);
    bar_chart(
        &format!("{name}: test accuracy over {} seeds", s.seeds.len()),
        &labels,
        &means,
        &stds,
    )
    .save(&dir.join("summary.png"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_std_is_the_sample_standard_deviation() {
        let (m, s) = mean_std(&[0.9, 0.8, 1.0]);
        assert!((m - 0.9).abs() < 1e-15);
        assert!((s - 0.1).abs() < 1e-15);
        assert_eq!(mean_std(&[0.7]), (0.7, 0.0));
    }
}
