//! `spdnas._spdnas`: the Rust side of the Python package. It converts arrays and settings,
//! calls `spdnas::app`, and raises: no logic of its own. A fit runs on a rayon pool of the
//! requested size with the GIL released, while the calling thread checks Python's signals so
//! that Ctrl-C stops the fit at the next epoch boundary (`KeyboardInterrupt`).

use std::io::IsTerminal;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use spdnas::app::{
    self, AppError, DataSource, Method, Observer, Overrides, Preset, RunConfig, StopFlag,
};
use spdnas::data::{Dataset, Validation};
use spdnas::nas::darts::DartsMixing;
use spdnas::nas::saved::SavedModel;

/// An [`AppError`] as the Python exception a user expects: bad input is a `ValueError` with the
/// CLI's message, a failure while running a `RuntimeError`.
fn raise(e: AppError) -> PyErr {
    match e {
        AppError::Input(m) => PyValueError::new_err(m),
        AppError::Interrupted(m) => PyKeyboardInterrupt::new_err(m),
        AppError::Runtime(m) => PyRuntimeError::new_err(m),
    }
}

/// The samples of a C-order float64 buffer of shape `(count, n, n)`, validated like a file.
fn dataset(x: &[u8], n: usize, labels: Vec<usize>, class_names: Vec<String>) -> PyResult<Dataset> {
    if x.len() % 8 != 0 {
        return Err(PyValueError::new_err("X: not a float64 buffer"));
    }
    let values: Vec<f64> = x
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect();
    Dataset::from_c_order(n, &values, labels, class_names, "X", &Validation::default())
        .map_err(|e| raise(e.into()))
}

/// Prints one line per finished epoch on stderr (`verbose` where stderr is not a terminal).
struct EpochLines;

impl Observer for EpochLines {
    fn epoch_done(&mut self, stage: &str, log: &serde_json::Value) {
        let field = |k: &str| log.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        eprintln!(
            "{stage} epoch {}: train accuracy {:.3}, validation accuracy {:.3}",
            log.get("epoch").and_then(|v| v.as_u64()).unwrap_or(0) + 1,
            field("train_accuracy"),
            field("val_accuracy"),
        );
    }
}

/// The threads of a fit: `threads` if given, else `OMP_NUM_THREADS` when set (joblib's workers
/// and Dask's set it to share the cores among parallel fits), else all cores.
fn thread_count(threads: Option<usize>) -> Option<usize> {
    threads.or_else(|| {
        std::env::var("OMP_NUM_THREADS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .filter(|&t: &usize| t > 0)
    })
}

/// Runs `work` on a pool of [`thread_count`] workers with the GIL released,
/// checking Python's signals every 50 ms on this thread: a pending `KeyboardInterrupt` raises
/// `stop`, which the work's loops see at their next epoch boundary. Returns the work's result
/// and the signal's exception, if one came.
fn run_detached<T: Send>(
    py: Python<'_>,
    threads: Option<usize>,
    stop: &StopFlag,
    work: impl FnOnce() -> T + Send,
) -> PyResult<(T, Option<PyErr>)> {
    let mut builder = rayon::ThreadPoolBuilder::new();
    if let Some(t) = thread_count(threads) {
        builder = builder.num_threads(t.max(1));
    }
    let pool = builder
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("thread pool: {e}")))?;
    let mut interrupt = None;
    let out = py.detach(|| {
        std::thread::scope(|s| {
            let handle = s.spawn(|| pool.install(work));
            while !handle.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
                if interrupt.is_none() {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        stop.0.store(true, Ordering::SeqCst);
                        interrupt = Some(e);
                    }
                }
            }
            handle.join().expect("the fit does not panic")
        })
    });
    Ok((out, interrupt))
}

/// Fits a network on `x` (C-order float64 bytes of shape `(count, n, n)`) with labels `y` in
/// `0..len(class_names)`. `method` is `spdnetnas`, `genotype` (with `genotype`, a published
/// name or JSON text), `spdnet`, `spdnetbn`, `darts` or `fairdarts`; `preset` is a preset name;
/// `overrides` is the JSON of `spdnas::app::Overrides`. Returns `(model JSON, history JSON,
/// (genotype JSON, its Graphviz DOT) or None, trainable parameters)`.
#[pyfunction]
#[pyo3(signature = (method, genotype, preset, overrides, seed, x, n, y, class_names, n_threads, verbose))]
#[allow(clippy::too_many_arguments)]
fn fit(
    py: Python<'_>,
    method: &str,
    genotype: Option<&str>,
    preset: &str,
    overrides: &str,
    seed: u64,
    x: &[u8],
    n: usize,
    y: Vec<usize>,
    class_names: Vec<String>,
    n_threads: Option<usize>,
    verbose: bool,
) -> PyResult<(String, String, Option<(String, String)>, usize)> {
    let data = dataset(x, n, y, class_names)?;
    let preset = Preset::named(preset).map_err(|e| PyValueError::new_err(e.to_string()))?;
    let source = DataSource::Arrays {
        label: format!("arrays of {} {n}×{n} matrices", data.len()),
    };
    let mut config = RunConfig::preset(preset, source, seed);
    let overrides: Overrides = serde_json::from_str(overrides)
        .map_err(|e| PyValueError::new_err(format!("settings: {e}")))?;
    overrides.apply(&mut config).map_err(raise)?;
    let method = match (method, genotype) {
        ("spdnetnas", None) => Method::SpdNetNas,
        ("spdnetnas" | "genotype", Some(g)) => Method::Genotype(genotype_of(g)?),
        ("spdnet", _) => Method::SpdNet { batch_norm: false },
        ("spdnetbn", _) => Method::SpdNet { batch_norm: true },
        ("darts", _) => Method::Darts(DartsMixing::Softmax),
        ("fairdarts", _) => Method::Darts(DartsMixing::Sigmoid),
        (other, _) => return Err(PyValueError::new_err(format!("method {other:?}"))),
    };
    let stop = StopFlag::default();
    let (fitted, interrupt) = run_detached(py, n_threads, &stop, || {
        let on_terminal = std::io::stderr().is_terminal();
        let mut bars = app::Bars::new(verbose && on_terminal);
        let mut lines = EpochLines;
        let mut silent = app::Silent;
        let observer: &mut dyn Observer = match (verbose, on_terminal) {
            (true, true) => &mut bars,
            (true, false) => &mut lines,
            (false, _) => &mut silent,
        };
        app::fit_arrays(&config, &method, &data, &stop, observer)
    })?;
    let fitted = match (fitted.map_err(raise)?, interrupt) {
        (ControlFlow::Break(why), _) => {
            return Err(PyKeyboardInterrupt::new_err(format!(
                "fit interrupted: {why}"
            )));
        }
        (ControlFlow::Continue(_), Some(signal)) => return Err(signal),
        (ControlFlow::Continue(f), None) => f,
    };
    let history = serde_json::to_string(&fitted.history).expect("logs serialise");
    Ok((
        fitted.model.to_json(),
        history,
        fitted.cells,
        fitted.n_params,
    ))
}

/// A genotype from a published name or its JSON text.
fn genotype_of(text: &str) -> PyResult<spdnas::nas::Genotype> {
    if let Some(g) = spdnas::nas::Genotype::published(text) {
        return Ok(g);
    }
    spdnas::nas::Genotype::from_json(text).map_err(|e| {
        PyValueError::new_err(format!(
            "genotype: neither a published name ({}) nor genotype JSON: {e}",
            spdnas::nas::Genotype::PUBLISHED.join(", ")
        ))
    })
}

/// Class scores of `x` under a model file: logits, or probabilities with `proba`.
#[pyfunction]
fn scores(
    py: Python<'_>,
    model: &str,
    x: &[u8],
    n: usize,
    proba: bool,
    n_threads: Option<usize>,
) -> PyResult<Vec<Vec<f64>>> {
    let saved =
        SavedModel::from_json(model).map_err(|e| PyValueError::new_err(format!("model: {e}")))?;
    let count = x.len() / (8 * n * n).max(1);
    let data = dataset(x, n, vec![0; count], vec!["unlabelled".into()])?;
    let stop = StopFlag::default();
    match run_detached(py, n_threads, &stop, || {
        app::model_scores(&saved, &data, proba)
    })? {
        (_, Some(signal)) => Err(signal),
        (scores, None) => scores.map_err(raise),
    }
}

/// The Graphviz DOT text of a genotype: a published name, SPDNetNAS genotype JSON or DARTS
/// genotype JSON.
#[pyfunction]
fn genotype_dot(genotype: &str) -> PyResult<String> {
    match genotype_of(genotype) {
        Ok(g) => Ok(g.to_dot()),
        Err(spd_error) => spdnas::nas::darts::DartsGenotype::from_json(genotype)
            .map(|g| g.to_dot())
            .map_err(|e| PyValueError::new_err(format!("{spd_error}; nor DARTS genotype JSON: {e}"))),
    }
}

/// Time series `[sample][channel][step]`.
type Series = Vec<Vec<Vec<f64>>>;

/// The embedded BasicMotions recordings (UEA archive, BSD-3-Clause): 80 series of 6 channels
/// × 100 steps (the archive's 40 TRAIN series first, then its 40 TEST series) and their class
/// names.
#[pyfunction]
fn basicmotions() -> PyResult<(Series, Vec<String>)> {
    let set = spdnas::data::embedded::basicmotions_series()
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let labels = set
        .labels
        .iter()
        .map(|&l| set.class_names[l].clone())
        .collect();
    Ok((set.series, labels))
}

/// The module.
#[pymodule]
fn _spdnas(m: &Bound<'_, PyModule>) -> PyResult<()> {
    spdnas::linalg::faer::set_global_parallelism(spdnas::linalg::faer::Par::Seq);
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(scores, m)?)?;
    m.add_function(wrap_pyfunction!(genotype_dot, m)?)?;
    m.add_function(wrap_pyfunction!(basicmotions, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
