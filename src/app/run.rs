//! Whole runs and their stages as the `spdnas` commands call them: every method is an
//! [`Estimator`] fitted under one observer, one checkpointer (`DIR/checkpoints`) and one
//! interrupter, then tested once on the test part; every file lands in the run directory.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use spd_data::Dataset;
use spd_nas::estimator::{
    Cells, Estimator, GenotypeChoice, GenotypeClassifier, SearchOutcome, SpdNetNasClassifier,
};
use spd_nas::runner::{DirCheckpoints, Ended, Hooks, Interrupter, Observer, Observers};
use spd_nas::saved::SavedModel;
use spd_nas::search::EpochLog;
use spd_nas::{Genotype, NasError};

use super::files::{LogFiles, io_err, write_cells, write_json, write_text};
use super::plot::write_plots;
use super::{AppError, Baseline, Prepared, Report, Result, RunConfig, Timings};

/// What a run ended with.
pub enum Outcome {
    /// Finished: the report and the timings.
    Done(Box<Report>, Timings),
    /// Stopped by the interrupter; `--resume` continues.
    Stopped(String),
}

/// The directory's checkpoints and logs, and the caller's observer and interrupter, for the
/// fits of one run.
struct RunHooks<'a> {
    checkpoints: DirCheckpoints,
    logs: LogFiles,
    observer: &'a mut dyn Observer,
    interrupter: &'a dyn Interrupter,
}

impl<'a> RunHooks<'a> {
    fn new(
        dir: &Path,
        resume: bool,
        observer: &'a mut dyn Observer,
        interrupter: &'a dyn Interrupter,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        Ok(Self {
            checkpoints: DirCheckpoints {
                dir: dir.join("checkpoints"),
                resume,
            },
            logs: LogFiles::new(dir),
            observer,
            interrupter,
        })
    }

    /// Runs `f` with hooks that log to the directory and report to the caller's observer.
    fn with<T>(&mut self, f: impl FnOnce(&mut Hooks) -> spd_nas::Result<T>) -> Result<T> {
        let mut observers = Observers(vec![&mut self.logs, &mut *self.observer]);
        let mut hooks = Hooks {
            observer: &mut observers,
            checkpointer: &self.checkpoints,
            interrupter: self.interrupter,
        };
        let out = f(&mut hooks);
        self.logs.finish()?;
        Ok(out?)
    }
}

fn stopped(ended: &Ended) -> Option<String> {
    match ended {
        Ended::Finished => None,
        Ended::Interrupted { stage, epoch } => {
            Some(format!("{stage} stopped after {epoch} epochs"))
        }
    }
}

/// Writes `genotype.json` and its drawing.
fn write_genotype(dir: &Path, genotype: &Genotype) -> Result<()> {
    write_cells(dir, "genotype", Cells::Spd(genotype))
}

/// Writes the cells a baseline searched or drew (`random_genotype.json`, `darts_genotype.json`,
/// with their drawings), if it has any.
fn write_baseline_cells(dir: &Path, b: Baseline, estimator: &dyn Estimator) -> Result<()> {
    match estimator.cells() {
        Some(cells) => write_cells(dir, &format!("{}_genotype", b.slug()), cells),
        None => Ok(()),
    }
}

/// Writes `model.json`: the derived network and its best-validation weights, with the run's
/// configuration as provenance.
fn write_model(
    dir: &Path,
    net: &GenotypeClassifier,
    config: &RunConfig,
    data: &Dataset,
) -> Result<()> {
    let provenance = serde_json::to_value(config).map_err(|e| AppError::Runtime(e.to_string()))?;
    let model = net.to_saved(data.class_names().to_vec(), Some(provenance))?;
    write_text(dir, "model.json", &model.to_json())
}

/// Writes `config.json` and `split.json`.
fn write_setup(dir: &Path, config: &RunConfig, prepared: &Prepared) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    write_json(dir, "config.json", config)?;
    write_json(dir, "split.json", &prepared.split)
}

/// The whole job: search, derive, train, baselines, report; every file in `dir`. With
/// `resume`, stages continue from the checkpoints in `dir`; `interrupter` may stop any loop
/// between epochs (then `--resume` continues).
pub fn run(
    config: &RunConfig,
    prepared: &Prepared,
    dir: &Path,
    resume: bool,
    interrupter: &dyn Interrupter,
    observer: &mut dyn Observer,
) -> Result<Outcome> {
    let total = Instant::now();
    let (data, split) = (&prepared.data, &prepared.split);
    write_setup(dir, config, prepared)?;
    let mut hooks = RunHooks::new(dir, resume, observer, interrupter)?;
    let mut nas = SpdNetNasClassifier::new(config.spdnetnas())?;
    let ended = hooks.with(|h| nas.fit(data, split, h))?;
    if let Some(why) = stopped(&ended) {
        if let Ok(searched) = nas.searched() {
            write_genotype(dir, &searched.selected.genotype)?;
        }
        return Ok(Outcome::Stopped(why));
    }
    let searched = nas.searched()?;
    let derived = nas.derived()?;
    let (_, genotype, trained) = derived.fitted()?;
    write_genotype(dir, genotype)?;
    write_model(dir, derived, config, data)?;
    let test_accuracy = nas.score(data, &split.test)?;
    let mut timings = Timings {
        search_s: searched.seconds,
        train_s: trained.seconds,
        ..Default::default()
    };
    let mut baselines = BTreeMap::new();
    let mut baseline_params = BTreeMap::new();
    for &b in &config.baselines {
        let t = Instant::now();
        let mut estimator = config.baseline(b)?;
        let ended = hooks.with(|h| estimator.fit(data, split, h))?;
        if let Some(why) = stopped(&ended) {
            return Ok(Outcome::Stopped(why));
        }
        write_baseline_cells(dir, b, &*estimator)?;
        let name = estimator.name().to_string();
        baselines.insert(name.clone(), estimator.score(data, &split.test)?);
        baseline_params.insert(name.clone(), estimator.n_params()?);
        timings.baselines_s.insert(name, t.elapsed().as_secs_f64());
    }
    let report = Report {
        dataset: config.data.label(),
        samples: data.len(),
        n: data.n(),
        classes: data.class_names().to_vec(),
        split_sizes: (split.train.len(), split.val.len(), split.test.len()),
        protocol: prepared.protocol.clone(),
        genotype: genotype.clone(),
        search_epoch: searched.selected.epoch,
        search_val_accuracy: searched.selected.val_accuracy,
        test_accuracy,
        best_epoch: trained.best_epoch,
        val_accuracy: trained.val_accuracy,
        params: trained.params,
        baselines,
        baseline_params,
    };
    write_json(dir, "report.json", &report)?;
    write_plots(dir, &searched.logs, &trained.history, &searched.network)?;
    timings.total_s = total.elapsed().as_secs_f64();
    write_json(dir, "timings.json", &timings)?;
    Ok(Outcome::Done(Box::new(report), timings))
}

/// `spdnas eval`: accuracy of a saved model on `data` (all samples), or on the test part of its
/// own run's data when `data` is `None`.
pub fn evaluate_file(model_path: &Path, data: Option<&Dataset>) -> Result<(f64, usize)> {
    let text = std::fs::read_to_string(model_path)
        .map_err(|e| AppError::Input(format!("{}: {e}", model_path.display())))?;
    let input = |e: NasError| AppError::Input(format!("{}: {e}", model_path.display()));
    let saved = SavedModel::from_json(&text).map_err(input)?;
    let model = saved.load().map_err(input)?;
    let own;
    let (data, indices) = match data {
        Some(d) => (d, (0..d.len()).collect::<Vec<_>>()),
        None => {
            let config: RunConfig = saved
                .provenance
                .clone()
                .ok_or_else(|| {
                    AppError::Input(format!(
                        "{}: the model records no run configuration; give the data with --data",
                        model_path.display()
                    ))
                })
                .and_then(|v| {
                    RunConfig::from_json(v)
                        .map_err(|e| AppError::Input(format!("{}: {e}", model_path.display())))
                })?;
            own = config.prepare()?;
            (&own.data, own.split.test.clone())
        }
    };
    let (n, classes) = saved.architecture.shape();
    if data.n() != n || data.num_classes() != classes {
        return Err(AppError::Input(format!(
            "the model takes {n}×{n} matrices in {classes} classes, the data has {}×{} in {}",
            data.n(),
            data.n(),
            data.num_classes()
        )));
    }
    let predicted: Vec<usize> = model
        .decision_function(data, &indices)?
        .iter()
        .map(|row| spd_autograd::ops::loss::argmax(row))
        .collect();
    Ok((
        spd_nas::baselines::accuracy(data, &indices, &predicted),
        indices.len(),
    ))
}

/// `spdnas search`: the search stage alone; writes `search.jsonl`, `genotype.json`, `.dot`.
pub fn search_only(
    config: &RunConfig,
    prepared: &Prepared,
    dir: &Path,
    resume: bool,
    interrupter: &dyn Interrupter,
    observer: &mut dyn Observer,
) -> Result<ControlFlow<String, (Genotype, Vec<EpochLog>)>> {
    write_setup(dir, config, prepared)?;
    let mut hooks = RunHooks::new(dir, resume, observer, interrupter)?;
    let mut nas = SpdNetNasClassifier::new(config.spdnetnas())?;
    let searched = hooks.with(|h| {
        Ok(match nas.search(&prepared.data, &prepared.split, h)? {
            ControlFlow::Break(ended) => ControlFlow::Break(ended),
            ControlFlow::Continue(s) => ControlFlow::Continue(s.clone()),
        })
    })?;
    let SearchOutcome { selected, logs, .. } = match searched {
        ControlFlow::Break(ended) => {
            return Ok(ControlFlow::Break(stopped(&ended).unwrap_or_default()));
        }
        ControlFlow::Continue(outcome) => outcome,
    };
    write_genotype(dir, &selected.genotype)?;
    Ok(ControlFlow::Continue((selected.genotype, logs)))
}

/// What `spdnas train` reports.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TrainReport {
    /// The best validation epoch.
    pub best_epoch: usize,
    /// Its validation accuracy.
    pub val_accuracy: f64,
    /// Test accuracy of its weights.
    pub test_accuracy: f64,
    /// Trainable parameters.
    pub params: usize,
}

/// `spdnas train`: trains the network of `genotype`; writes `train.jsonl` and `model.json`.
pub fn train_only(
    config: &RunConfig,
    genotype: &Genotype,
    prepared: &Prepared,
    dir: &Path,
    resume: bool,
    interrupter: &dyn Interrupter,
    observer: &mut dyn Observer,
) -> Result<ControlFlow<String, TrainReport>> {
    let (data, split) = (&prepared.data, &prepared.split);
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    write_json(dir, "config.json", config)?;
    let mut hooks = RunHooks::new(dir, resume, observer, interrupter)?;
    let mut net =
        GenotypeClassifier::new(config.genotype_net(GenotypeChoice::Given(genotype.clone())))?;
    if let Some(why) = stopped(&hooks.with(|h| net.fit(data, split, h))?) {
        return Ok(ControlFlow::Break(why));
    }
    write_model(dir, &net, config, data)?;
    let (_, _, trained) = net.fitted()?;
    Ok(ControlFlow::Continue(TrainReport {
        best_epoch: trained.best_epoch,
        val_accuracy: trained.val_accuracy,
        test_accuracy: net.score(data, &split.test)?,
        params: trained.params,
    }))
}

/// `spdnas baseline`: one baseline's test accuracy and parameter count.
pub fn baseline_only(
    b: Baseline,
    config: &RunConfig,
    prepared: &Prepared,
    dir: &Path,
    interrupter: &dyn Interrupter,
    observer: &mut dyn Observer,
) -> Result<ControlFlow<String, (f64, usize)>> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    write_json(dir, "config.json", config)?;
    let mut hooks = RunHooks::new(dir, false, observer, interrupter)?;
    let mut estimator = config.baseline(b)?;
    let (data, split) = (&prepared.data, &prepared.split);
    if let Some(why) = stopped(&hooks.with(|h| estimator.fit(data, split, h))?) {
        return Ok(ControlFlow::Break(why));
    }
    write_baseline_cells(dir, b, &*estimator)?;
    Ok(ControlFlow::Continue((
        estimator.score(data, &split.test)?,
        estimator.n_params()?,
    )))
}
