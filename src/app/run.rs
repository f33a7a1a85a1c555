use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use spd_autograd::{ParamStore, StiefelMetric};
use spd_data::Dataset;
use spd_data::split::{Split, SplitFractions, stratified_split};
use spd_linalg::random::seeded_rng;
use spd_nas::baselines::{Mdm, SpdNet, SpdNetConfig, Tslr, accuracy, random_genotype};
use spd_nas::schedule::{LrSchedule, WeightOptimizer};
use spd_nas::search::{EpochLog, Order, Search, SearchConfig, SelectedGenotype};
use spd_nas::train::{Classifier, TrainConfig, TrainLog, TrainState, evaluate_model, train_epoch};
use spd_nas::{ArchParams, Genotype, Network, NetworkConfig};

use super::plot::{Canvas, Series, alpha_heatmap, panel};
use super::{AppError, DataSource, Preparation, Progress, Result};

/// Every setting of a run, written to `config.json` so it can be reproduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The data.
    pub data: DataSource,
    /// How the samples are prepared (estimator, regularisation, trace normalisation).
    #[serde(default)]
    pub preparation: Preparation,
    /// A separate test set used as given (a dataset's own train/test protocol): then `data`
    /// is split into training and validation only, and the test set is never seen by
    /// search, training or model selection.
    #[serde(default)]
    pub test_data: Option<DataSource>,
    /// Seed of all initialisations and batch orders, and of the split unless `split_seed` is set.
    pub seed: u64,
    /// Seed of the split when it differs from `seed` (repetitions that vary only the
    /// initialisation keep one split).
    #[serde(default)]
    pub split_seed: Option<u64>,
    /// Validation and test fractions (the test fraction is unused with `test_data`).
    pub split: SplitFractions,
    /// Reduced matrix size of the reduction cell (default `⌈n/2⌉`).
    pub reduced_dim: Option<usize>,
    /// Search settings.
    pub search: SearchConfig,
    /// Training settings (derived net and network baselines).
    pub train: TrainConfig,
    /// Which baselines to run.
    pub baselines: Vec<Baseline>,
}

/// A baseline method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Baseline {
    /// SPDNet.
    SpdNet,
    /// SPDNet with Riemannian batch norm.
    SpdNetBn,
    /// A random architecture of the search space, trained like the searched one.
    Random,
    /// Minimum distance to the Riemannian class mean.
    Mdm,
    /// Tangent-space logistic regression.
    Tslr,
}

impl Baseline {
    /// Every baseline.
    pub const ALL: [Baseline; 5] = [
        Baseline::SpdNet,
        Baseline::SpdNetBn,
        Baseline::Random,
        Baseline::Mdm,
        Baseline::Tslr,
    ];

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Baseline::SpdNet => "SPDNet",
            Baseline::SpdNetBn => "SPDNetBN",
            Baseline::Random => "SPDNetNAS (R)",
            Baseline::Mdm => "MDM",
            Baseline::Tslr => "TSLR",
        }
    }
}

/// Schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Preset {
    /// Minutes on a laptop CPU, and enough optimisation on small sets
    /// (`docs/experiments.md` records the experiments behind each choice): a first-order search
    /// of at least 3 epochs and 300 steps (α learning rate ×10 to make up for the shorter
    /// search), the first 30 % a warm-up of the weights with α frozen, at most 2 skip
    /// connections per derived cell, the genotype of the best validated epoch; training of at
    /// least 30 epochs and 1500 steps; Riemannian Adam (learning rate 0.01) with a 5 % linear
    /// warm-up and cosine annealing for the weights in both.
    Quick,
    /// The paper's schedule exactly (spec §8.4, §10): 100 second-order search epochs and 200
    /// training epochs, Riemannian SGD at a constant 0.025 along the canonical-metric Stiefel
    /// gradient `G − W Gᵀ W` of the official optimiser, no warm-up, no cap on skips.
    Paper,
}

/// The quick preset's weight optimiser, learning rate, schedule and Stiefel metric (Adam's
/// per-matrix second moment makes the metric's factor 2 on square weights irrelevant).
const QUICK_WEIGHTS: (WeightOptimizer, f64, LrSchedule, StiefelMetric) = (
    WeightOptimizer::Adam,
    0.01,
    LrSchedule::COSINE,
    StiefelMetric::Embedded,
);

impl RunConfig {
    /// A configuration with the preset's schedule.
    pub fn preset(preset: Preset, data: DataSource, seed: u64) -> Self {
        let (search, train) = match preset {
            Preset::Quick => {
                let (optimizer, lr, schedule, stiefel_metric) = QUICK_WEIGHTS;
                (
                    SearchConfig {
                        epochs: 3,
                        min_steps: 300,
                        warmup: 0.3,
                        optimizer,
                        stiefel_metric,
                        lr,
                        schedule,
                        max_skips: Some(2),
                        order: Order::First,
                        arch_lr: 3e-3,
                        seed,
                        ..Default::default()
                    },
                    TrainConfig {
                        epochs: 30,
                        min_steps: 1500,
                        optimizer,
                        stiefel_metric,
                        lr,
                        schedule,
                        seed,
                        ..Default::default()
                    },
                )
            }
            Preset::Paper => (
                SearchConfig {
                    epochs: 100,
                    seed,
                    ..Default::default()
                },
                TrainConfig {
                    epochs: 200,
                    seed,
                    ..Default::default()
                },
            ),
        };
        Self {
            data,
            preparation: Preparation::default(),
            test_data: None,
            seed,
            split_seed: None,
            split: SplitFractions::default(),
            reduced_dim: None,
            search,
            train,
            baselines: Baseline::ALL.to_vec(),
        }
    }

    /// Rejects settings no run can use, naming the `spdnas` flag that sets them.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(AppError::Input(m));
        if self.search.epochs == 0 && self.search.min_steps == 0 {
            return bad("--search-epochs 0: the search needs at least one epoch".into());
        }
        if self.train.epochs == 0 && self.train.min_steps == 0 {
            return bad("--train-epochs 0: training needs at least one epoch".into());
        }
        for lr in [self.search.lr, self.train.lr] {
            if !(lr.is_finite() && lr > 0.0) {
                return bad(format!("--lr {lr}: must be positive"));
            }
        }
        if !(0.0..1.0).contains(&self.search.warmup) {
            return bad(format!(
                "--warmup {}: must be in [0, 1)",
                self.search.warmup
            ));
        }
        Ok(())
    }

    /// Loads and prepares the data (and the given test set, appended after it) and splits it
    /// by the run's protocol.
    pub fn prepare(&self) -> Result<Prepared> {
        let data = self.data.load_prepared(&self.preparation)?;
        let split_seed = self.split_seed.unwrap_or(self.seed);
        let Some(test_source) = &self.test_data else {
            let split = stratified_split(data.labels(), self.split, split_seed);
            let protocol = format!(
                "one stratified split of {}: {:.0} % train / {:.0} % validation / {:.0} % test (seed {})",
                self.data.label(),
                100.0 * (1.0 - self.split.val - self.split.test),
                100.0 * self.split.val,
                100.0 * self.split.test,
                split_seed
            );
            return Ok(Prepared {
                data,
                split,
                protocol,
            });
        };
        let test = test_source.load_prepared(&self.preparation)?;
        let train_count = data.len();
        let joined = data.concat(&test)?;
        let fractions = SplitFractions {
            val: self.split.val,
            test: 0.0,
        };
        let mut split = stratified_split(data.labels(), fractions, split_seed);
        split.test = (train_count..joined.len()).collect();
        let protocol = format!(
            "given test set {} ({} samples, used only for the final test); training and validation from {} ({:.0} % of it stratified to validation, seed {})",
            test_source.label(),
            test.len(),
            self.data.label(),
            100.0 * self.split.val,
            split_seed
        );
        Ok(Prepared {
            data: joined,
            split,
            protocol,
        })
    }

    /// The network configuration for data of size `n` with `classes` classes.
    pub fn network(&self, n: usize, classes: usize) -> NetworkConfig {
        NetworkConfig::paper(n, self.reduced_dim.unwrap_or(n.div_ceil(2)), classes)
    }
}

/// The data of a run, prepared, with its split and a sentence saying which protocol made it.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Every sample (training file first, then a given test set).
    pub data: Dataset,
    /// Train, validation and test indices into `data`.
    pub split: Split,
    /// How the split was made.
    pub protocol: String,
}

/// The part of a run that is a function of its configuration: written to `report.json` and
/// identical between an uninterrupted and a resumed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Data description.
    pub dataset: String,
    /// Samples, matrix size, classes.
    pub samples: usize,
    /// Matrix size.
    pub n: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// `(train, val, test)` sizes.
    pub split_sizes: (usize, usize, usize),
    /// How the split was made (one file split, or a given test set).
    #[serde(default)]
    pub protocol: String,
    /// The searched genotype.
    pub genotype: Genotype,
    /// The search epoch the genotype was selected after.
    #[serde(default)]
    pub search_epoch: usize,
    /// The supernet's validation accuracy at that epoch.
    #[serde(default)]
    pub search_val_accuracy: f64,
    /// Test accuracy of the derived network at its best validation epoch.
    pub test_accuracy: f64,
    /// That epoch, and its validation accuracy.
    pub best_epoch: usize,
    /// Validation accuracy at the best epoch.
    pub val_accuracy: f64,
    /// Trainable parameters of the derived network.
    pub params: usize,
    /// Test accuracy of each baseline.
    pub baselines: BTreeMap<String, f64>,
    /// Trainable parameters of each baseline (0 for MDM, the class means for TSLR excluded).
    pub baseline_params: BTreeMap<String, usize>,
}

/// Wall times (s), kept apart from the report because they vary between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Search.
    pub search_s: f64,
    /// Training of the derived network.
    pub train_s: f64,
    /// Each baseline.
    pub baselines_s: BTreeMap<String, f64>,
    /// The whole run.
    pub total_s: f64,
}

/// What a run ended with.
pub enum Outcome {
    /// Finished: the report and the timings.
    Done(Box<Report>, Timings),
    /// Stopped at the requested epoch limit; `--resume` continues.
    Stopped(String),
}

/// Where to stop early (to simulate an interruption).
#[derive(Debug, Clone, Copy, Default)]
pub struct StopAt {
    /// After this many search epochs.
    pub search_epochs: Option<usize>,
    /// After this many training epochs of the derived network.
    pub train_epochs: Option<usize>,
}

/// A trained model file (`model.json`), read by `spdnas eval`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelFile {
    /// The network.
    pub network: Network,
    /// Its weights (best validation epoch), with batch-norm running means.
    pub weights: ParamStore,
    /// The run configuration it came from.
    pub config: RunConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SearchCheckpoint {
    search: Search,
    logs: Vec<EpochLog>,
}

pub(super) fn io_err(path: &Path, e: impl std::fmt::Display) -> AppError {
    AppError::Runtime(format!("{}: {e}", path.display()))
}

/// Writes `text` to `dir/name` atomically.
pub fn write_text(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    spd_data::write_atomic(&path, text.as_bytes()).map_err(|e| io_err(&path, e))
}

pub(super) fn write_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<()> {
    write_text(
        dir,
        name,
        &serde_json::to_string_pretty(value).map_err(|e| AppError::Runtime(e.to_string()))?,
    )
}

pub(super) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AppError::Input(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| AppError::Input(format!("{}: {e}", path.display())))
}

fn jsonl<T: Serialize>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| serde_json::to_string(i).expect("serialisable") + "\n")
        .collect()
}

/// Builds the supernet and α for `data`, or restores them from `dir/checkpoints/search.json`.
fn search_stage(
    config: &RunConfig,
    data: &Dataset,
    split: &Split,
    dir: &Path,
    resume: bool,
    stop: Option<usize>,
    progress: &dyn Progress,
) -> Result<Option<(Search, Vec<EpochLog>, f64)>> {
    let ckpt = dir.join("checkpoints").join("search.json");
    let net_config = config.network(data.n(), data.num_classes());
    let mut state = if resume && ckpt.exists() {
        read_json::<SearchCheckpoint>(&ckpt)?
    } else {
        let mut rng = seeded_rng(config.seed);
        let mut weights = ParamStore::new();
        let network = Network::supernet(&net_config, &mut weights, &mut rng)?;
        let arch = ArchParams::new(
            net_config.edges(),
            net_config.search_space().width(),
            net_config.arch_normalization,
            &mut rng,
        )?;
        SearchCheckpoint {
            search: Search::new(network, weights, arch, config.search.clone()),
            logs: Vec::new(),
        }
    };
    let start = Instant::now();
    let batches = split.train.len().div_ceil(config.search.batch_size.max(1)) as u64;
    let epochs = config.search.epochs_for(split.train.len());
    while state.logs.len() < epochs {
        if stop.is_some_and(|s| state.logs.len() >= s) {
            return Ok(None);
        }
        let epoch = state.logs.len();
        progress.start(&format!("search epoch {}/{epochs}", epoch + 1), batches);
        let log = state
            .search
            .epoch(data, split, epoch, |_, _| progress.tick(""))?;
        progress.finish();
        state.logs.push(log);
        write_text(dir, "search.jsonl", &jsonl(&state.logs))?;
        let ckpt_dir = dir.join("checkpoints");
        std::fs::create_dir_all(&ckpt_dir).map_err(|e| io_err(&ckpt_dir, e))?;
        write_json(&ckpt_dir, "search.json", &state)?;
    }
    Ok(Some((
        state.search,
        state.logs,
        start.elapsed().as_secs_f64(),
    )))
}

/// The genotype the search's selection keeps.
fn selected_genotype(search: &Search) -> Result<SelectedGenotype> {
    search
        .selected()
        .cloned()
        .ok_or_else(|| AppError::Runtime("the search ran no epoch in which α moved".into()))
}

/// Trains `model` (weights in `weights`) with checkpoints `dir/checkpoints/<name>.json`.
#[allow(clippy::too_many_arguments)]
fn train_stage(
    model: &dyn Classifier,
    weights: ParamStore,
    name: &str,
    config: &TrainConfig,
    data: &Dataset,
    split: &Split,
    dir: &Path,
    resume: bool,
    stop: Option<usize>,
    progress: &dyn Progress,
) -> Result<Option<(TrainState, f64)>> {
    let ckpt_dir = dir.join("checkpoints");
    let ckpt = ckpt_dir.join(format!("{name}.json"));
    let mut state = if resume && ckpt.exists() {
        TrainState::load(&ckpt)?
    } else {
        TrainState::new(weights, config)
    };
    let start = Instant::now();
    let batches = split.train.len().div_ceil(config.batch_size.max(1)) as u64;
    let epochs = config.epochs_for(split.train.len());
    std::fs::create_dir_all(&ckpt_dir).map_err(|e| io_err(&ckpt_dir, e))?;
    while !state.finished(config, split.train.len()) {
        if stop.is_some_and(|s| state.epoch >= s) {
            return Ok(None);
        }
        progress.start(
            &format!("{name} epoch {}/{epochs}", state.epoch + 1),
            batches,
        );
        train_epoch(model, &mut state, data, split, config, |_, _| {
            progress.tick("")
        })?;
        progress.finish();
        state.save(&ckpt)?;
    }
    Ok(Some((state, start.elapsed().as_secs_f64())))
}

/// Test accuracy of the best-validation weights of a finished state.
fn test_accuracy(
    model: &dyn Classifier,
    state: &TrainState,
    data: &Dataset,
    split: &Split,
    batch: usize,
) -> Result<(usize, f64, f64)> {
    let best = state
        .best
        .as_ref()
        .ok_or_else(|| AppError::Runtime("training ran no epoch".into()))?;
    let (_, test) = evaluate_model(model, &best.weights, data, &split.test, batch)?;
    Ok((best.epoch, best.val_accuracy, test))
}

/// Trains and tests one baseline; returns `(test accuracy, trainable parameters)`.
fn run_baseline(
    b: Baseline,
    config: &RunConfig,
    data: &Dataset,
    split: &Split,
    dir: &Path,
    resume: bool,
    progress: &dyn Progress,
) -> Result<(f64, usize)> {
    let mut rng = seeded_rng(config.seed ^ 0xba5e);
    let net_config = config.network(data.n(), data.num_classes());
    let trained = |model: &dyn Classifier, store: ParamStore, name: &str| -> Result<(f64, usize)> {
        let params = store.trainable_values();
        let (state, _) = train_stage(
            model,
            store,
            name,
            &config.train,
            data,
            split,
            dir,
            resume,
            None,
            progress,
        )?
        .expect("no stop");
        Ok((
            test_accuracy(model, &state, data, split, config.train.batch_size)?.2,
            params,
        ))
    };
    match b {
        Baseline::SpdNet | Baseline::SpdNetBn => {
            let bn = b == Baseline::SpdNetBn;
            let sconf = if data.n() == 20 && data.num_classes() == 3 {
                SpdNetConfig::radar(bn)
            } else {
                SpdNetConfig::scaled(data.n(), data.num_classes(), bn)
            };
            let mut store = ParamStore::new();
            let net = SpdNet::new(&sconf, &mut store, &mut rng)?;
            trained(&net, store, if bn { "spdnetbn" } else { "spdnet" })
        }
        Baseline::Random => {
            let genotype = random_genotype(&net_config, &mut rng);
            let mut store = ParamStore::new();
            let net = Network::derived(&net_config, &genotype, &mut store, &mut rng)?;
            write_json(dir, "random_genotype.json", &genotype)?;
            trained(&net, store, "random")
        }
        Baseline::Mdm => {
            let m = Mdm::fit(data, &split.train)?;
            Ok((
                accuracy(data, &split.test, &m.predict(data, &split.test)?),
                0,
            ))
        }
        Baseline::Tslr => {
            let mut train_val = split.train.clone();
            train_val.sort_unstable();
            let m = Tslr::fit(data, &train_val, 1e-3, 300, config.seed)?;
            let d = data.n() * (data.n() + 1) / 2;
            Ok((
                accuracy(data, &split.test, &m.predict(data, &split.test)?),
                d * data.num_classes() + data.num_classes(),
            ))
        }
    }
}

/// The whole job: search, derive, train, baselines, report; every file in `dir`. With
/// `resume`, stages continue from the checkpoints in `dir`.
pub fn run(
    config: &RunConfig,
    prepared: &Prepared,
    dir: &Path,
    resume: bool,
    stop: StopAt,
    progress: &dyn Progress,
) -> Result<Outcome> {
    let total = Instant::now();
    let (data, split) = (&prepared.data, &prepared.split);
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    write_json(dir, "config.json", config)?;
    write_json(dir, "split.json", split)?;
    let Some((search, search_logs, search_s)) = search_stage(
        config,
        data,
        split,
        dir,
        resume,
        stop.search_epochs,
        progress,
    )?
    else {
        return Ok(Outcome::Stopped(format!(
            "search stopped after {} epochs",
            stop.search_epochs.unwrap_or(0)
        )));
    };
    let selected = selected_genotype(&search)?;
    let genotype = selected.genotype.clone();
    write_json(dir, "genotype.json", &genotype)?;
    write_genotype_drawing(dir, &genotype)?;
    let net_config = search.network.config.clone();
    let mut rng = seeded_rng(config.seed ^ 0xde71);
    let mut store = ParamStore::new();
    let network = Network::derived(&net_config, &genotype, &mut store, &mut rng)?;
    let params = store.trainable_values();
    let Some((state, train_s)) = train_stage(
        &network,
        store,
        "train",
        &config.train,
        data,
        split,
        dir,
        resume,
        stop.train_epochs,
        progress,
    )?
    else {
        return Ok(Outcome::Stopped(format!(
            "training stopped after {} epochs",
            stop.train_epochs.unwrap_or(0)
        )));
    };
    write_text(dir, "train.jsonl", &jsonl(&state.history))?;
    let (best_epoch, val_accuracy, test) =
        test_accuracy(&network, &state, data, split, config.train.batch_size)?;
    let best = state.best.as_ref().expect("trained").weights.clone();
    write_json(
        dir,
        "model.json",
        &ModelFile {
            network,
            weights: best,
            config: config.clone(),
        },
    )?;
    let mut baselines = BTreeMap::new();
    let mut baseline_params = BTreeMap::new();
    let mut timings = Timings {
        search_s,
        train_s,
        ..Default::default()
    };
    for b in &config.baselines {
        let t = Instant::now();
        let (acc, p) = run_baseline(*b, config, data, split, dir, resume, progress)?;
        baselines.insert(b.name().to_string(), acc);
        baseline_params.insert(b.name().to_string(), p);
        timings
            .baselines_s
            .insert(b.name().to_string(), t.elapsed().as_secs_f64());
    }
    let report = Report {
        dataset: config.data.label(),
        samples: data.len(),
        n: data.n(),
        classes: data.class_names().to_vec(),
        split_sizes: (split.train.len(), split.val.len(), split.test.len()),
        protocol: prepared.protocol.clone(),
        genotype,
        search_epoch: selected.epoch,
        search_val_accuracy: selected.val_accuracy,
        test_accuracy: test,
        best_epoch,
        val_accuracy,
        params,
        baselines,
        baseline_params,
    };
    write_json(dir, "report.json", &report)?;
    write_plots(dir, &search_logs, &state.history, &net_config)?;
    timings.total_s = total.elapsed().as_secs_f64();
    write_json(dir, "timings.json", &timings)?;
    Ok(Outcome::Done(Box::new(report), timings))
}

/// `genotype.dot`, and `genotype.svg` when Graphviz's `dot` is installed.
pub fn write_genotype_drawing(dir: &Path, genotype: &Genotype) -> Result<()> {
    let dot = genotype.to_dot();
    write_text(dir, "genotype.dot", &dot)?;
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
        write_text(dir, "genotype.svg", &String::from_utf8_lossy(&out.stdout))?;
    }
    Ok(())
}

/// `curves.png` (search and training loss/accuracy), `alpha_normal.png`, `alpha_reduce.png`.
fn write_plots(
    dir: &Path,
    search: &[EpochLog],
    train: &[TrainLog],
    config: &NetworkConfig,
) -> Result<()> {
    let mut c = Canvas::new(900, 520);
    let s = |f: fn(&EpochLog) -> f64| search.iter().map(f).collect::<Vec<_>>();
    let t = |f: fn(&TrainLog) -> f64| train.iter().map(f).collect::<Vec<_>>();
    panel(
        &mut c,
        (10, 10, 420, 240),
        "search loss",
        &[
            Series {
                name: "train",
                values: s(|l| l.train_loss),
            },
            Series {
                name: "val",
                values: s(|l| l.val_loss),
            },
        ],
    );
    panel(
        &mut c,
        (460, 10, 420, 240),
        "search accuracy",
        &[
            Series {
                name: "train",
                values: s(|l| l.train_accuracy),
            },
            Series {
                name: "val",
                values: s(|l| l.val_accuracy),
            },
        ],
    );
    panel(
        &mut c,
        (10, 270, 420, 240),
        "training loss",
        &[
            Series {
                name: "train",
                values: t(|l| l.train_loss),
            },
            Series {
                name: "val",
                values: t(|l| l.val_loss),
            },
        ],
    );
    panel(
        &mut c,
        (460, 270, 420, 240),
        "training accuracy",
        &[
            Series {
                name: "train",
                values: t(|l| l.train_accuracy),
            },
            Series {
                name: "val",
                values: t(|l| l.val_accuracy),
            },
        ],
    );
    c.save(&dir.join("curves.png"))?;
    let space = config.search_space();
    for (name, reduce) in [("alpha_normal.png", false), ("alpha_reduce.png", true)] {
        let ops: Vec<Vec<&str>> = (0..config.steps)
            .flat_map(|node| 0..2 + node)
            .map(|source| {
                space
                    .list(reduce && source < 2)
                    .iter()
                    .map(|p| p.name)
                    .collect()
            })
            .collect();
        let rows: Vec<Vec<Vec<f64>>> = search
            .iter()
            .map(|l| {
                if reduce {
                    l.alpha_reduce.clone()
                } else {
                    l.alpha_normal.clone()
                }
            })
            .collect();
        alpha_heatmap(
            if reduce {
                "reduction cell weights by epoch"
            } else {
                "normal cell weights by epoch"
            },
            &ops,
            &rows,
        )
        .save(&dir.join(name))?;
    }
    Ok(())
}

/// The comparison table printed at the end of a run.
pub fn table(report: &Report, timings: &Timings) -> String {
    let mut s = format!(
        "{} — {} samples, {}×{}, {} classes; split {}/{}/{}\nprotocol: {}\n\n",
        report.dataset,
        report.samples,
        report.n,
        report.n,
        report.classes.len(),
        report.split_sizes.0,
        report.split_sizes.1,
        report.split_sizes.2,
        report.protocol
    );
    s += &format!(
        "{:<16} {:>14} {:>12} {:>10}\n",
        "method", "test accuracy", "parameters", "time (s)"
    );
    s += &format!(
        "{:<16} {:>13.2}% {:>12} {:>10.1}\n",
        "SPDNetNAS",
        100.0 * report.test_accuracy,
        report.params,
        timings.search_s + timings.train_s
    );
    for (name, acc) in &report.baselines {
        s += &format!(
            "{:<16} {:>13.2}% {:>12} {:>10.1}\n",
            name,
            100.0 * acc,
            report.baseline_params[name],
            timings.baselines_s.get(name).copied().unwrap_or(0.0)
        );
    }
    s += &format!(
        "\nsearched genotype:\n  normal: {:?}\n  reduce: {:?}\n",
        report.genotype.normal, report.genotype.reduce
    );
    s += &format!(
        "SPDNetNAS time = search {:.1} s + training {:.1} s; total run {:.1} s\n",
        timings.search_s, timings.train_s, timings.total_s
    );
    s
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

/// Trainable parameters of the network a genotype gives for `config`.
pub fn genotype_params(genotype: &Genotype, config: &NetworkConfig) -> Result<usize> {
    let mut store = ParamStore::new();
    Network::derived(config, genotype, &mut store, &mut seeded_rng(0))?;
    Ok(store.trainable_values())
}

/// `spdnas eval`: accuracy of a saved model on `data` (all samples), or on the test part of its
/// own run's data when `data` is `None`.
pub fn evaluate_file(model_path: &Path, data: Option<&Dataset>) -> Result<(f64, usize)> {
    let m: ModelFile = read_json(model_path)?;
    let own;
    let (data, indices) = match data {
        Some(d) => (d, (0..d.len()).collect::<Vec<_>>()),
        None => {
            own = m.config.prepare()?;
            (&own.data, own.split.test.clone())
        }
    };
    if data.n() != m.network.config.input_dim || data.num_classes() != m.network.config.num_classes
    {
        return Err(AppError::Input(format!(
            "the model takes {}×{} matrices in {} classes, the data has {}×{} in {}",
            m.network.config.input_dim,
            m.network.config.input_dim,
            m.network.config.num_classes,
            data.n(),
            data.n(),
            data.num_classes()
        )));
    }
    let (_, acc) = evaluate_model(&m.network, &m.weights, data, &indices, 30)?;
    Ok((acc, indices.len()))
}

/// `spdnas search`: the search stage alone; writes `search.jsonl`, `genotype.json`, `.dot`.
pub fn search_only(
    config: &RunConfig,
    prepared: &Prepared,
    dir: &Path,
    resume: bool,
    progress: &dyn Progress,
) -> Result<(Genotype, Vec<EpochLog>)> {
    let (data, split) = (&prepared.data, &prepared.split);
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    write_json(dir, "config.json", config)?;
    write_json(dir, "split.json", split)?;
    let (search, logs, _) =
        search_stage(config, data, split, dir, resume, None, progress)?.expect("no stop");
    let genotype = selected_genotype(&search)?.genotype;
    write_json(dir, "genotype.json", &genotype)?;
    write_genotype_drawing(dir, &genotype)?;
    Ok((genotype, logs))
}

/// `spdnas train`: trains the network of `genotype`; writes `train.jsonl` and `model.json`;
/// returns `(best epoch, validation accuracy, test accuracy, parameters)`.
pub fn train_only(
    config: &RunConfig,
    genotype: &Genotype,
    prepared: &Prepared,
    dir: &Path,
    resume: bool,
    progress: &dyn Progress,
) -> Result<(usize, f64, f64, usize)> {
    let (data, split) = (&prepared.data, &prepared.split);
    let net_config = config.network(data.n(), data.num_classes());
    let mut store = ParamStore::new();
    let network = Network::derived(
        &net_config,
        genotype,
        &mut store,
        &mut seeded_rng(config.seed ^ 0xde71),
    )?;
    let params = store.trainable_values();
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    write_json(dir, "config.json", config)?;
    let (state, _) = train_stage(
        &network,
        store,
        "train",
        &config.train,
        data,
        split,
        dir,
        resume,
        None,
        progress,
    )?
    .expect("no stop");
    write_text(dir, "train.jsonl", &jsonl(&state.history))?;
    let (epoch, val, test) = test_accuracy(&network, &state, data, split, config.train.batch_size)?;
    let best = state.best.as_ref().expect("trained").weights.clone();
    write_json(
        dir,
        "model.json",
        &ModelFile {
            network,
            weights: best,
            config: config.clone(),
        },
    )?;
    Ok((epoch, val, test, params))
}

/// `spdnas baseline`: one baseline's test accuracy and parameter count.
pub fn baseline_only(
    b: Baseline,
    config: &RunConfig,
    prepared: &Prepared,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<(f64, usize)> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    write_json(dir, "config.json", config)?;
    run_baseline(
        b,
        config,
        &prepared.data,
        &prepared.split,
        dir,
        false,
        progress,
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The paper preset steps along the official optimiser's canonical Stiefel gradient, the
    /// quick preset along the embedded one, and a configuration written before the setting
    /// existed reads back as embedded (what it ran with).
    #[test]
    fn presets_choose_their_stiefel_metric_and_old_configs_read_as_embedded() {
        let data = DataSource::BasicMotions;
        let paper = RunConfig::preset(Preset::Paper, data.clone(), 0);
        assert_eq!(paper.search.stiefel_metric, StiefelMetric::Canonical);
        assert_eq!(paper.train.stiefel_metric, StiefelMetric::Canonical);
        let quick = RunConfig::preset(Preset::Quick, data, 0);
        assert_eq!(quick.search.stiefel_metric, StiefelMetric::Embedded);
        assert_eq!(quick.train.stiefel_metric, StiefelMetric::Embedded);

        let mut old = serde_json::to_value(&paper).unwrap();
        for stage in ["search", "train"] {
            let removed = old[stage].as_object_mut().unwrap().remove("stiefel_metric");
            assert!(removed.is_some(), "{stage} has the field");
        }
        let old: RunConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.search.stiefel_metric, StiefelMetric::Embedded);
        assert_eq!(old.train.stiefel_metric, StiefelMetric::Embedded);
    }
}
