//! Arguments (clap derive) and their translation into `spdnas::app` calls.

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::{Args, Parser, Subcommand, ValueEnum};
use spdnas::app::{
    self, AppError, Bars, Baseline, DataSource, Outcome, Overrides, Preparation, Preset,
    RepeatOutcome, RunConfig, SeedScope, StopFlag,
};
use spdnas::data::covariance::Estimator;
use spdnas::data::gaussian::{GaussianConfig, generate_gaussian};
use spdnas::data::radar::{RadarConfig, generate_radar};
use spdnas::data::sources::{SourcesConfig, generate_sources};
use spdnas::data::ts::ts_text;
use spdnas::data::{Format, Regularization, SymmetryPolicy, Validation};
use spdnas::nas::NetworkConfig;

/// Search SPD network architectures (SPDNetNAS), train them, and compare them with SPDNet,
/// SPDNetBN, a random architecture, MDM and tangent-space logistic regression.
#[derive(Parser)]
#[command(name = "spdnas", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bars.
    #[arg(long, global = true)]
    quiet: bool,
    /// Print the final result as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Subcommand)]
enum Command {
    /// The main job: search, derive, train, baselines, comparison table and run directory.
    Run {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Output directory (default runs/<UTC timestamp>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue from the checkpoints in --out.
        #[arg(long, requires = "out")]
        resume: bool,
        /// Baselines to run, comma-separated (default: spdnet,spdnetbn,random,mdm,tslr; darts and
        /// fairdarts take tens of minutes on a CPU and run when named).
        #[arg(long, value_delimiter = ',', value_parser = baseline_names())]
        baselines: Option<Vec<String>>,
        /// Repeat the run for each seed (comma-separated), one directory per seed under --out,
        /// and report the mean ± std of every method (summary.json, summary.md, summary.png).
        #[arg(long, value_delimiter = ',', conflicts_with = "seed")]
        seeds: Option<Vec<u64>>,
        /// With --seeds: what a seed changes.
        #[arg(long, value_enum, default_value_t = VaryArg::Split, requires = "seeds")]
        vary: VaryArg,
    },
    /// Architecture search only; writes search.jsonl and genotype.{json,dot}.
    Search {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Output directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue from the checkpoint in --out.
        #[arg(long, requires = "out")]
        resume: bool,
    },
    /// Train the network of a genotype (a published name or a JSON file) from scratch.
    Train {
        /// `radar_sparsemax`, `hdm05_sparsemax`, or a genotype.json.
        #[arg(long)]
        genotype: String,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Output directory.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Continue from the checkpoint in --out.
        #[arg(long, requires = "out")]
        resume: bool,
    },
    /// Accuracy of a saved model (model.json): on --data/--dataset if given, else on the test
    /// part of the data it was trained on.
    Eval {
        /// A model.json written by `run` or `train`.
        #[arg(long)]
        checkpoint: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Train and test one baseline.
    Baseline {
        /// Which baseline.
        #[arg(value_parser = baseline_names())]
        which: String,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Output directory (checkpoints).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show a genotype, print its Graphviz DOT, or count its parameters.
    Genotype {
        /// What to do.
        action: GenotypeAction,
        /// A published name or a genotype.json.
        genotype: String,
        /// Input size for `params` (default 20).
        #[arg(long, default_value_t = 20)]
        input_dim: usize,
        /// Reduced size for `params` (default ⌈n/2⌉).
        #[arg(long)]
        reduced_dim: Option<usize>,
        /// Classes for `params` (default 3).
        #[arg(long, default_value_t = 3)]
        classes: usize,
    },
    /// Generate or inspect data.
    #[command(subcommand)]
    Data(DataCommand),
}

#[derive(Subcommand)]
enum DataCommand {
    /// Write a generated dataset: radar and gaussian in the per-sample folder layout
    /// (`…_<label>.npy`), sources as `DIR/MixedSources.ts` (multichannel series).
    Generate {
        /// radar (complex signals), gaussian (SPD matrices) or sources (EEG-like series).
        kind: GenerateKind,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Samples per class.
        #[arg(long)]
        per_class: Option<usize>,
        /// RADAR signal-to-noise ratio (dB).
        #[arg(long)]
        snr: Option<f64>,
        /// Matrix size (gaussian: default 10) or channels (sources: default 32).
        #[arg(long)]
        n: Option<usize>,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Counts, shapes, class balance, eigenvalue range and validity of a dataset.
    Inspect {
        /// File or folder.
        path: PathBuf,
        /// Format (default: from the path).
        #[arg(long)]
        format: Option<FormatArg>,
        /// Labels file for .npy data.
        #[arg(long)]
        labels: Option<PathBuf>,
        /// Preparation applied before the summary.
        #[command(flatten)]
        prep: PrepArgs,
    },
}

#[derive(Args)]
struct DataArgs {
    /// A data file or folder (.npy, .npz, .mat, .ts, or a per-sample folder).
    #[arg(long, conflicts_with = "dataset")]
    data: Option<PathBuf>,
    /// Format of --data (default: from the path).
    #[arg(long, requires = "data")]
    format: Option<FormatArg>,
    /// Labels file for .npy data.
    #[arg(long, requires = "data")]
    labels: Option<PathBuf>,
    /// An embedded dataset (default radar-synthetic).
    #[arg(long)]
    dataset: Option<DatasetArg>,
    /// SNR (dB) of the synthetic RADAR.
    #[arg(long)]
    snr: Option<f64>,
    /// Signals per class of the synthetic RADAR.
    #[arg(long)]
    per_class: Option<usize>,
    /// A separate test set (same formats), used as given: --data is split into training and
    /// validation only, and the test set is seen only by the final test.
    #[arg(long, requires = "data")]
    test_data: Option<PathBuf>,
    /// Fraction of each class held out for validation (architecture and model selection).
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Fraction of each class held out for the test (without --test-data).
    #[arg(long, conflicts_with = "test_data")]
    test_fraction: Option<f64>,
    /// Preparation of the matrices.
    #[command(flatten)]
    prep: PrepArgs,
}

/// How matrices are prepared before use.
#[derive(Args)]
struct PrepArgs {
    /// Covariance estimator for time-series data: scm (sample), lwf (Ledoit–Wolf), oas.
    #[arg(long, value_enum)]
    estimator: Option<EstimatorArg>,
    /// Ridge regularisation: X + ε·(tr X / n)·I for every matrix.
    #[arg(long, value_name = "EPS", conflicts_with = "shrinkage")]
    ridge: Option<f64>,
    /// Shrinkage toward the scaled identity: (1 − α)·X + α·(tr X / n)·I.
    #[arg(long, value_name = "ALPHA")]
    shrinkage: Option<f64>,
    /// Scale every matrix to trace n (mean eigenvalue 1), after any regularisation.
    #[arg(long)]
    trace_normalize: bool,
    /// Replace every matrix by (A + Aᵀ)/2 instead of refusing a non-symmetric one.
    #[arg(long)]
    symmetrize: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum EstimatorArg {
    Scm,
    Lwf,
    Oas,
}

#[derive(Args)]
struct ScheduleArgs {
    /// Every setting from a run's config.json (reproduces that run); flags given with it
    /// override the settings they name.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// quick (minutes; the default), paper (the paper's RADAR schedule: its epochs and
    /// second-order search) or paper-hdm05 (the paper's HDM05 configuration: 93 → 30, its epochs,
    /// batch size and learning rates).
    #[arg(long, value_parser = preset_names(), conflicts_with = "config")]
    preset: Option<String>,
    /// Search epochs (overrides the preset).
    #[arg(long)]
    search_epochs: Option<usize>,
    /// Training epochs (overrides the preset).
    #[arg(long)]
    train_epochs: Option<usize>,
    /// First- or second-order architecture gradient (overrides the preset).
    #[arg(long)]
    order: Option<OrderArg>,
    /// Reduced matrix size of each reduction cell (comma-separated with --cells above 2;
    /// default: each reduction halves, ⌈n/2⌉).
    #[arg(long, value_delimiter = ',')]
    reduced_dim: Option<Vec<usize>>,
    /// Seed of split, initialisation and batch order (default 0).
    #[arg(long)]
    seed: Option<u64>,
    /// How α becomes mixing weights: sparsemax (the paper), softmax, or sigmoid renormalised
    /// onto the simplex (the paper's Table 5 ablation).
    #[arg(long, value_enum)]
    mixing: Option<MixingArg>,
    /// Candidate list: v0 (every published result) or v1.
    #[arg(long, value_enum)]
    space: Option<SpaceArg>,
    /// Reading of BiMap_1/2_reduced: the paper's table, or the official code's (swapped).
    #[arg(long, value_enum)]
    naming: Option<NamingArg>,
    /// Karcher steps of every Fréchet mean (1 in the paper).
    #[arg(long)]
    karcher_steps: Option<usize>,
    /// Cells of the network (2 in the paper; cells 0, 2, … reduce).
    #[arg(long)]
    cells: Option<usize>,
    /// Channels before the first cell (1 in the paper; doubled before every cell).
    #[arg(long)]
    channels: Option<usize>,
    /// Optimiser of the network weights, in the search and in training (overrides the preset).
    #[arg(long, value_enum)]
    optimizer: Option<OptimizerArg>,
    /// Learning rate of the network weights, in the search and in training (overrides the
    /// preset).
    #[arg(long)]
    lr: Option<f64>,
    /// Metric of the Riemannian gradient on BiMap (Stiefel) weights, in the search and in
    /// training (overrides the preset).
    #[arg(long, value_enum)]
    stiefel_metric: Option<StiefelMetricArg>,
    /// Learning-rate schedule of the weights, in the search and in training (overrides the
    /// preset).
    #[arg(long, value_enum)]
    schedule: Option<ScheduleArg>,
    /// At least this many training steps: small training sets get more epochs (0: none).
    #[arg(long)]
    min_steps: Option<usize>,
    /// At least this many search steps (0: none).
    #[arg(long)]
    search_min_steps: Option<usize>,
    /// Stop training after this many epochs without a better validation result.
    #[arg(long)]
    patience: Option<usize>,
    /// L2 decay of the trained network's Euclidean weights (the classifier; 0: none).
    #[arg(long, value_name = "LAMBDA")]
    weight_decay: Option<f64>,
    /// Fraction of the search epochs in which only the weights train (α frozen).
    #[arg(long, value_name = "FRACTION")]
    warmup: Option<f64>,
    /// At most this many skip connections per derived cell ("none": no cap).
    #[arg(long, value_name = "N|none")]
    max_skips: Option<String>,
    /// Which search epoch's genotype is kept.
    #[arg(long, value_enum)]
    selection: Option<SelectionArg>,
    /// The DARTS and FairDARTS baselines' networks: small (C = 8, 3 cells; minutes) or paper
    /// (C = 32, 20 cells; the paper's 2.6 M parameters).
    #[arg(long, value_enum)]
    darts_layout: Option<DartsLayoutArg>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DartsLayoutArg {
    Small,
    Paper,
}

#[derive(Clone, Copy, ValueEnum)]
enum MixingArg {
    Sparsemax,
    Softmax,
    SigmoidSimplex,
}

#[derive(Clone, Copy, ValueEnum)]
enum SpaceArg {
    V0,
    V1,
}

#[derive(Clone, Copy, ValueEnum)]
enum NamingArg {
    Paper,
    OfficialCode,
}

#[derive(Clone, Copy, ValueEnum)]
enum OptimizerArg {
    /// Riemannian SGD (the paper).
    Sgd,
    /// Riemannian Adam.
    Adam,
}

#[derive(Clone, Copy, ValueEnum)]
enum StiefelMetricArg {
    /// G − W sym(WᵀG): the projection of the Euclidean gradient (the quick preset).
    Embedded,
    /// G − W Gᵀ W: the official code's step, twice the embedded one on square weights (the
    /// paper preset).
    Canonical,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScheduleArg {
    /// Constant learning rate (the paper).
    Constant,
    /// Linear warm-up over 5 % of the epochs, then cosine annealing.
    Cosine,
}

#[derive(Clone, Copy, ValueEnum)]
enum VaryArg {
    /// The split and the initialisation.
    Split,
    /// Only the initialisation and batch order (one split for all seeds).
    Init,
}

#[derive(Clone, Copy, ValueEnum)]
enum SelectionArg {
    /// The epoch with the best supernet validation accuracy.
    Best,
    /// The last epoch.
    Last,
}

#[derive(Clone, Copy, ValueEnum)]
enum DatasetArg {
    RadarSynthetic,
    Basicmotions,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Npy,
    Npz,
    Mat,
    Ts,
    Folder,
}

/// The baseline names `--baselines` and `spdnas baseline` accept.
fn baseline_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Baseline::ALL.map(Baseline::slug))
}

/// The preset names `--preset` accepts.
fn preset_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(Preset::NAMED.map(|(name, _)| name))
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    First,
    Second,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenotypeAction {
    Show,
    Dot,
    Params,
}

#[derive(Clone, Copy, ValueEnum)]
enum GenerateKind {
    Radar,
    Gaussian,
    Sources,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::Npy => Format::Npy,
            FormatArg::Npz => Format::Npz,
            FormatArg::Mat => Format::Mat,
            FormatArg::Ts => Format::Ts,
            FormatArg::Folder => Format::Folder,
        }
    }
}

/// `v` if it is a fraction in `[0, 1)`, else an input error naming `flag`.
fn fraction(flag: &str, v: f64) -> Result<f64, AppError> {
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(AppError::Input(format!("{flag} {v}: must be in [0, 1)")))
    }
}

impl PrepArgs {
    /// Whether any preparation flag is given.
    fn given(&self) -> bool {
        self.estimator.is_some()
            || self.ridge.is_some()
            || self.shrinkage.is_some()
            || self.trace_normalize
            || self.symmetrize
    }

    /// The preparation flags; a value outside its range is an input error naming the flag.
    fn preparation(&self) -> Result<Preparation, AppError> {
        let regularization = match (self.ridge, self.shrinkage) {
            (Some(e), _) if !(e.is_finite() && e > 0.0) => {
                return Err(AppError::Input(format!("--ridge {e}: must be positive")));
            }
            (Some(e), _) => Regularization::TraceShift(e),
            (None, Some(a)) => Regularization::Shrink(fraction("--shrinkage", a)?),
            (None, None) => Regularization::None,
        };
        Ok(Preparation {
            estimator: match self.estimator {
                None | Some(EstimatorArg::Lwf) => Estimator::LedoitWolf,
                Some(EstimatorArg::Scm) => Estimator::Sample,
                Some(EstimatorArg::Oas) => Estimator::Oas,
            },
            validation: Validation {
                symmetry: if self.symmetrize {
                    SymmetryPolicy::Symmetrize
                } else {
                    SymmetryPolicy::default()
                },
                regularization,
                trace_normalize: self.trace_normalize,
            },
        })
    }
}

impl DataArgs {
    fn given(&self) -> bool {
        self.data.is_some()
            || self.dataset.is_some()
            || self.snr.is_some()
            || self.per_class.is_some()
    }

    /// Sets the data, its preparation, the test set and the split fractions of `config`.
    fn apply(&self, config: &mut RunConfig) -> Result<(), AppError> {
        if self.prep.given() {
            config.preparation = self.prep.preparation()?;
        }
        if let Some(p) = &self.test_data {
            config.test_data = Some(DataSource::path(
                p.clone(),
                self.format.map(Format::from),
                None,
            ));
        }
        if let Some(v) = self.val_fraction {
            config.split.val = fraction("--val-fraction", v)?;
        }
        if let Some(t) = self.test_fraction {
            config.split.test = fraction("--test-fraction", t)?;
        }
        if config.split.val + config.split.test >= 1.0 {
            return Err(AppError::Input(format!(
                "--val-fraction {} and --test-fraction {} leave no training data",
                config.split.val, config.split.test
            )));
        }
        Ok(())
    }

    fn source(&self, seed: u64) -> DataSource {
        match (&self.data, self.dataset) {
            (Some(path), _) => DataSource::path(
                path.clone(),
                self.format.map(Format::from),
                self.labels.clone(),
            ),
            (None, Some(DatasetArg::Basicmotions)) => DataSource::BasicMotions,
            _ => {
                let mut config = RadarConfig::default();
                if let Some(s) = self.snr {
                    config.snr_db = s;
                }
                if let Some(p) = self.per_class {
                    config.per_class = p;
                }
                DataSource::RadarSynthetic { config, seed }
            }
        }
    }
}

/// The run configuration of a command: `--config FILE` or the preset, then the data flags
/// and every schedule and network flag given; checked.
fn run_config(data: &DataArgs, schedule: &ScheduleArgs) -> Result<RunConfig, AppError> {
    let mut config = match &schedule.config {
        Some(path) => {
            let mut c = RunConfig::read(path)?;
            if let Some(seed) = schedule.seed {
                c.set_seed(seed);
            }
            if data.given() {
                c.data = data.source(c.seed);
            }
            c
        }
        None => {
            let preset = Preset::named(schedule.preset.as_deref().unwrap_or(Preset::NAMED[0].0))?;
            let seed = schedule.seed.unwrap_or(0);
            RunConfig::preset(preset, data.source(seed), seed)
        }
    };
    data.apply(&mut config)?;
    schedule.overrides().apply(&mut config)?;
    Ok(config)
}

/// The name of a flag's value, as the app reads it.
fn name<T: ValueEnum>(value: Option<T>) -> Option<String> {
    value.map(|v| {
        v.to_possible_value()
            .expect("no value is skipped")
            .get_name()
            .to_string()
    })
}

impl ScheduleArgs {
    /// The schedule and network settings given by flags.
    fn overrides(&self) -> Overrides {
        Overrides {
            search_epochs: self.search_epochs,
            train_epochs: self.train_epochs,
            order: name(self.order),
            reduced_dim: self.reduced_dim.clone(),
            optimizer: name(self.optimizer),
            lr: self.lr,
            stiefel_metric: name(self.stiefel_metric),
            schedule: name(self.schedule),
            min_steps: self.min_steps,
            search_min_steps: self.search_min_steps,
            patience: self.patience,
            weight_decay: self.weight_decay,
            warmup: self.warmup,
            max_skips: self.max_skips.clone(),
            selection: name(self.selection),
            mixing: name(self.mixing),
            space: name(self.space),
            naming: name(self.naming),
            karcher_steps: self.karcher_steps,
            cells: self.cells,
            channels: self.channels,
            val_fraction: None,
            darts_layout: name(self.darts_layout),
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("serialisable")
    );
}

/// Runs the parsed command.
pub fn execute(cli: Cli) -> Result<(), AppError> {
    faer::set_global_parallelism(faer::Par::Seq);
    if let Some(t) = cli.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(t.max(1))
            .build_global()
            .map_err(|e| AppError::Runtime(format!("thread pool: {e}")))?;
    }
    // Every op parallelises over matrices: run from a worker of the pool, each parallel loop
    // splits locally instead of waking this thread for every one of them.
    spdnas::autograd::on_worker(|| dispatch(cli))
}

/// An interrupter raised by Ctrl-C, installed only by the commands that run epoch loops: loops
/// stop at their next epoch boundary with their checkpoints written; a second Ctrl-C ends the
/// process at once.
fn ctrl_c() -> StopFlag {
    let flag = StopFlag::default();
    let raised = flag.0.clone();
    // Without a handler (one already installed) Ctrl-C simply ends the process.
    let _ = ctrlc::set_handler(move || {
        if raised.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nspdnas: stopping at the end of this epoch (Ctrl-C again to quit now)");
    });
    flag
}

/// The error of a command stopped by Ctrl-C: what stopped and how to continue.
fn interrupted(why: &str, dir: &std::path::Path) -> AppError {
    AppError::Interrupted(format!(
        "interrupted: {why}; continue with --resume --out {}",
        dir.display()
    ))
}

/// The error of `spdnas baseline` stopped by Ctrl-C (it has no `--resume`).
fn interrupted_baseline(why: &str) -> AppError {
    AppError::Interrupted(format!("interrupted: {why}"))
}

fn dispatch(cli: Cli) -> Result<(), AppError> {
    let mut bars = Bars::new(!cli.quiet && std::io::stdout().is_terminal());
    match cli.command {
        Command::Run {
            data,
            schedule,
            out,
            resume,
            baselines,
            seeds,
            vary,
        } => {
            let mut config = run_config(&data, &schedule)?;
            if let Some(b) = baselines {
                config.baselines = b
                    .iter()
                    .map(|name| Baseline::named(name))
                    .collect::<Result<_, _>>()?;
            }
            let dir = out.unwrap_or_else(app::default_run_dir);
            if let Some(seeds) = seeds {
                let scope = match vary {
                    VaryArg::Split => SeedScope::SplitAndInit,
                    VaryArg::Init => SeedScope::InitOnly,
                };
                let quiet = cli.quiet || cli.json;
                let outcome = app::run_seeds(
                    &config,
                    &app::Repetition { seeds, scope },
                    &dir,
                    resume,
                    &ctrl_c(),
                    &mut bars,
                    |seed, report, timings| {
                        if !quiet {
                            println!(
                                "seed {seed}: SPDNetNAS {:.2} % ({:.0} s)",
                                100.0 * report.test_accuracy,
                                timings.total_s
                            );
                        }
                    },
                )?;
                match outcome {
                    RepeatOutcome::Stopped(why) => return Err(interrupted(&why, &dir)),
                    RepeatOutcome::Done(summary) => {
                        if cli.json {
                            print_json(&summary);
                        } else {
                            print!("\n{}", app::summary_table(&summary));
                            println!("run directory: {}", dir.display());
                        }
                    }
                }
                return Ok(());
            }
            let dataset = config.prepare()?;
            match app::run(&config, &dataset, &dir, resume, &ctrl_c(), &mut bars)? {
                Outcome::Stopped(why) => return Err(interrupted(&why, &dir)),
                Outcome::Done(report, timings) => {
                    if cli.json {
                        print_json(&report);
                    } else {
                        print!("{}", app::table(&report, &timings));
                        println!("run directory: {}", dir.display());
                    }
                }
            }
        }
        Command::Search {
            data,
            schedule,
            out,
            resume,
        } => {
            let config = run_config(&data, &schedule)?;
            let dataset = config.prepare()?;
            let dir = out.unwrap_or_else(app::default_run_dir);
            let (genotype, logs) =
                match app::search_only(&config, &dataset, &dir, resume, &ctrl_c(), &mut bars)? {
                    ControlFlow::Break(why) => return Err(interrupted(&why, &dir)),
                    ControlFlow::Continue(found) => found,
                };
            if cli.json {
                print_json(&genotype);
            } else {
                for l in &logs {
                    println!(
                        "epoch {:>3}: train {:.3} / val {:.3} accuracy, {:.1} s",
                        l.epoch, l.train_accuracy, l.val_accuracy, l.elapsed_s
                    );
                }
                println!(
                    "genotype:\n  normal: {:?}\n  reduce: {:?}\nwritten to {}",
                    genotype.normal,
                    genotype.reduce,
                    dir.display()
                );
            }
        }
        Command::Train {
            genotype,
            data,
            schedule,
            out,
            resume,
        } => {
            let genotype = app::genotype_from(&genotype)?;
            let config = run_config(&data, &schedule)?;
            let dataset = config.prepare()?;
            let dir = out.unwrap_or_else(app::default_run_dir);
            let t = match app::train_only(
                &config,
                &genotype,
                &dataset,
                &dir,
                resume,
                &ctrl_c(),
                &mut bars,
            )? {
                ControlFlow::Break(why) => return Err(interrupted(&why, &dir)),
                ControlFlow::Continue(t) => t,
            };
            if cli.json {
                print_json(&t);
            } else {
                println!(
                    "test accuracy {:.2} % (best validation {:.2} % at epoch {}); {} parameters; model in {}",
                    100.0 * t.test_accuracy,
                    100.0 * t.val_accuracy,
                    t.best_epoch,
                    t.params,
                    dir.join("model.json").display()
                );
            }
        }
        Command::Eval { checkpoint, data } => {
            let dataset = if data.given() {
                Some(data.source(0).load_prepared(&data.prep.preparation()?)?)
            } else {
                None
            };
            let (acc, n) = app::evaluate_file(&checkpoint, dataset.as_ref())?;
            if cli.json {
                print_json(&serde_json::json!({"accuracy": acc, "samples": n}));
            } else {
                println!("accuracy {:.2} % on {n} samples", 100.0 * acc);
            }
        }
        Command::Baseline {
            which,
            data,
            schedule,
            out,
        } => {
            let config = run_config(&data, &schedule)?;
            let dataset = config.prepare()?;
            let dir = out.unwrap_or_else(app::default_run_dir);
            let b = Baseline::named(&which)?;
            let (acc, params) =
                match app::baseline_only(b, &config, &dataset, &dir, &ctrl_c(), &mut bars)? {
                    ControlFlow::Break(why) => return Err(interrupted_baseline(&why)),
                    ControlFlow::Continue(result) => result,
                };
            if cli.json {
                print_json(
                    &serde_json::json!({"baseline": b.name(), "test_accuracy": acc, "params": params}),
                );
            } else {
                println!(
                    "{}: test accuracy {:.2} %, {params} parameters",
                    b.name(),
                    100.0 * acc
                );
            }
        }
        Command::Genotype {
            action,
            genotype,
            input_dim,
            reduced_dim,
            classes,
        } => {
            let g = app::genotype_from(&genotype)?;
            match action {
                GenotypeAction::Show => println!("{}", g.to_json()),
                GenotypeAction::Dot => print!("{}", g.to_dot()),
                GenotypeAction::Params => {
                    let config = NetworkConfig::paper(
                        input_dim,
                        reduced_dim.unwrap_or(input_dim.div_ceil(2)),
                        classes,
                    );
                    println!("{}", app::genotype_params(&g, &config)?);
                }
            }
        }
        Command::Data(DataCommand::Generate {
            kind,
            out,
            per_class,
            snr,
            n,
            seed,
        }) => match kind {
            GenerateKind::Radar => {
                let mut config = RadarConfig::default();
                if let Some(p) = per_class {
                    config.per_class = p;
                }
                if let Some(s) = snr {
                    config.snr_db = s;
                }
                let signals = generate_radar(&config, seed);
                spdnas::data::folder::write_signal_folder(&out, "radar", &signals)?;
                println!("{} signals in {}", signals.signals.len(), out.display());
            }
            GenerateKind::Gaussian => {
                let config = GaussianConfig {
                    n: n.unwrap_or(10),
                    per_class: per_class.unwrap_or(100),
                    ..Default::default()
                };
                let d = generate_gaussian(&config, seed)?;
                spdnas::data::folder::write_matrix_folder(&out, "gaussian", &d)?;
                println!("{} matrices in {}", d.len(), out.display());
            }
            GenerateKind::Sources => {
                let defaults = SourcesConfig::default();
                let config = SourcesConfig {
                    channels: n.unwrap_or(defaults.channels),
                    per_class: per_class.unwrap_or(defaults.per_class),
                    ..defaults
                };
                if config.channels < 2 || config.per_class == 0 {
                    return Err(AppError::Input(format!(
                        "--n {} --per-class {}: sources need at least 2 channels and 1 trial per class",
                        config.channels, config.per_class
                    )));
                }
                let set = generate_sources(&config, seed);
                let path = out.join("MixedSources.ts");
                std::fs::create_dir_all(&out)
                    .map_err(|e| AppError::Runtime(format!("{}: {e}", out.display())))?;
                spdnas::data::write_atomic(&path, ts_text(&set).as_bytes())?;
                println!("{} series in {}", set.series.len(), path.display());
            }
        },
        Command::Data(DataCommand::Inspect {
            path,
            format,
            labels,
            prep,
        }) => {
            let source = DataSource::path(path, format.map(Format::from), labels);
            let d = source.load_prepared(&prep.preparation()?)?;
            let s = d.summary();
            if cli.json {
                print_json(&s);
            } else {
                println!(
                    "{}: {} samples of {}×{} SPD matrices (all valid)",
                    source.label(),
                    s.samples,
                    s.n,
                    s.n
                );
                for (name, count) in &s.classes {
                    println!("  class {name}: {count}");
                }
                println!(
                    "eigenvalues in [{:.3e}, {:.3e}]; condition number median {:.3e}, largest {:.3e}; {} numerically rank-deficient (κ > 1e8)",
                    s.min_eigenvalue,
                    s.max_eigenvalue,
                    s.median_condition,
                    s.max_condition,
                    s.rank_deficient
                );
                for hint in s.suggestions() {
                    println!("suggestion: {hint}");
                }
            }
        }
    }
    Ok(())
}
