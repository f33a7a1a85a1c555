//! One entry point for every on-disk format: `.npy` (+ labels), `.npz`, `.mat`, `.ts`, and the
//! per-sample folder layout, detected from the path or given explicitly.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::covariance::{CovarianceOptions, covariance};
use crate::dataset::{Dataset, Validation};
use crate::error::{DataError, Location, Problem, Result};
use crate::mat::{MatVariable, read_mat};
use crate::npy::{NpyArray, read_npy};
use crate::npz::read_npz;
use crate::ts::{MissingPolicy, TimeSeriesSet, read_ts};

/// A supported layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Format {
    /// `X.npy` of shape `(N, n, n)` with labels in a second `.npy` of shape `(N,)`.
    Npy,
    /// `.npz` with arrays `X` `(N, n, n)` and `y` `(N,)`.
    Npz,
    /// Level-5 `.mat` with `X` (`n × n × N`, or `N × n × n`) and `y` (`N` values).
    Mat,
    /// UEA/UCR `.ts` series, turned into covariances.
    Ts,
    /// A directory of per-sample `.npy` files named `…_<label>.npy`.
    Folder,
}

impl Format {
    /// The format a path's extension (or being a directory) implies.
    pub fn detect(path: &Path) -> Option<Format> {
        if path.is_dir() {
            return Some(Format::Folder);
        }
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "npy" => Some(Format::Npy),
            "npz" => Some(Format::Npz),
            "mat" => Some(Format::Mat),
            "ts" => Some(Format::Ts),
            _ => None,
        }
    }
}

/// How to read and validate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadOptions {
    /// Format; detected from the path when `None`.
    pub format: Option<Format>,
    /// Labels file for [`Format::Npy`] (default: `y.npy` or `labels.npy` beside the data).
    pub labels: Option<PathBuf>,
    /// Symmetry and regularisation policy.
    pub validation: Validation,
    /// Covariance estimator for series.
    pub covariance: CovarianceOptions,
    /// Missing values in series.
    pub missing: MissingPolicy,
    /// Window length for complex signals (paper: 20).
    pub window: usize,
    /// Window hop for complex signals (paper: 10).
    pub hop: usize,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            format: None,
            labels: None,
            validation: Validation::default(),
            covariance: CovarianceOptions::default(),
            missing: MissingPolicy::Error,
            window: 20,
            hop: 10,
        }
    }
}

/// Loads a dataset from `path`.
pub fn load(path: &Path, options: &LoadOptions) -> Result<Dataset> {
    if !path.exists() {
        return Err(DataError::file(
            path,
            Problem::Io("no such file or directory".into()),
        ));
    }
    let format = options
        .format
        .or_else(|| Format::detect(path))
        .ok_or_else(|| {
            DataError::file(
                path,
                Problem::Invalid(
                    "unknown format: use .npy, .npz, .mat, .ts or a folder, or name the format"
                        .into(),
                ),
            )
        })?;
    match format {
        Format::Npy => {
            let x = read_npy(path)?;
            let labels_path = match &options.labels {
                Some(p) => p.clone(),
                None => ["y.npy", "labels.npy"]
                    .iter()
                    .map(|n| path.with_file_name(n))
                    .find(|p| p.exists())
                    .ok_or_else(|| DataError::file(path, Problem::Invalid("no labels: pass a labels file (y.npy or labels.npy beside the data is used by default)".into())))?,
            };
            let y = read_npy(&labels_path)?;
            from_arrays(path, &x, &y, &labels_path, options)
        }
        Format::Npz => {
            let arrays = read_npz(path)?;
            let pick = |names: &[&str]| {
                arrays
                    .iter()
                    .find(|(n, _)| names.contains(&n.as_str()))
                    .map(|(_, a)| a)
            };
            let x = pick(&["X", "x", "data"]).ok_or_else(|| {
                DataError::file(path, Problem::Invalid("no array named X".into()))
            })?;
            let y = pick(&["y", "Y", "labels"]).ok_or_else(|| {
                DataError::file(path, Problem::Invalid("no array named y".into()))
            })?;
            from_arrays(path, x, y, path, options)
        }
        Format::Mat => from_mat(path, &read_mat(path)?, options),
        Format::Ts => series_to_dataset(
            &read_ts(path, options.missing)?,
            options.covariance,
            &path.display().to_string(),
            &options.validation,
        ),
        Format::Folder => {
            crate::folder::read_folder(path, options.window, options.hop, &options.validation)
        }
    }
}

/// Integer class labels from real or integer values; classes are the distinct values in
/// increasing order, named by their value.
fn classes_from_values(values: &[f64], source: &Path) -> Result<(Vec<usize>, Vec<String>)> {
    if let Some(i) = values
        .iter()
        .position(|v| !v.is_finite() || v.fract() != 0.0)
    {
        return Err(DataError::at(
            source,
            Location::Sample(i),
            Problem::Invalid(format!("label {} is not an integer", values[i])),
        ));
    }
    let mut classes: Vec<i64> = values.iter().map(|&v| v as i64).collect();
    classes.sort_unstable();
    classes.dedup();
    let labels = values
        .iter()
        .map(|&v| classes.binary_search(&(v as i64)).expect("present"))
        .collect();
    Ok((labels, classes.iter().map(i64::to_string).collect()))
}

fn from_arrays(
    path: &Path,
    x: &NpyArray,
    y: &NpyArray,
    y_path: &Path,
    options: &LoadOptions,
) -> Result<Dataset> {
    let [count, n, n2] = x.shape[..] else {
        return Err(DataError::file(
            path,
            Problem::Shape(format!("X has shape {:?}, expected (N, n, n)", x.shape)),
        ));
    };
    if n != n2 {
        return Err(DataError::file(
            path,
            Problem::Shape(format!(
                "X has shape {:?}: matrices are not square",
                x.shape
            )),
        ));
    }
    let values = x
        .to_real()
        .ok_or_else(|| DataError::file(path, Problem::Dtype("complex X".into())))?;
    let yv = y
        .to_real()
        .ok_or_else(|| DataError::file(y_path, Problem::Dtype("complex labels".into())))?;
    if y.shape.len() != 1 {
        return Err(DataError::file(
            y_path,
            Problem::Shape(format!("labels have shape {:?}, expected (N,)", y.shape)),
        ));
    }
    if yv.len() != count {
        return Err(DataError::file(
            path,
            Problem::CountMismatch {
                matrices: count,
                labels: yv.len(),
            },
        ));
    }
    let (labels, names) = classes_from_values(&yv, y_path)?;
    Dataset::from_c_order(
        n,
        &values,
        labels,
        names,
        &path.display().to_string(),
        &options.validation,
    )
}

/// Entry `(k, i, j)` of a stacked array.
type Entry3<'a> = Box<dyn Fn(usize, usize, usize) -> f64 + 'a>;

fn from_mat(path: &Path, vars: &[MatVariable], options: &LoadOptions) -> Result<Dataset> {
    let find = |names: &[&str]| vars.iter().find(|v| names.contains(&v.name.as_str()));
    let x = find(&["X", "x", "data"]).ok_or_else(|| {
        DataError::file(path, Problem::Invalid("no numeric variable named X".into()))
    })?;
    let y = find(&["y", "Y", "labels"]).ok_or_else(|| {
        DataError::file(path, Problem::Invalid("no numeric variable named y".into()))
    })?;
    let dims: Vec<usize> = x.dims.clone();
    // MATLAB stacks as n × n × N; N × n × n is accepted too when unambiguous.
    let (n, count, at): (usize, usize, Entry3<'_>) = match dims[..] {
        [a, b] if a == b => (a, 1, Box::new(move |_, i, j| x.data[i + j * a])),
        [a, b, c] if a == b => (a, c, Box::new(move |k, i, j| x.data[i + j * a + k * a * a])),
        [c, a, b] if a == b => (a, c, Box::new(move |k, i, j| x.data[k + i * c + j * c * a])),
        _ => {
            return Err(DataError::at(
                path,
                Location::Entry(x.name.clone()),
                Problem::Shape(format!("dimensions {dims:?}, expected n×n×N")),
            ));
        }
    };
    if y.data.len() != count {
        return Err(DataError::file(
            path,
            Problem::CountMismatch {
                matrices: count,
                labels: y.data.len(),
            },
        ));
    }
    let (labels, names) = classes_from_values(&y.data, path)?;
    let mut matrices = Vec::with_capacity(count * n * n);
    for k in 0..count {
        for j in 0..n {
            for i in 0..n {
                matrices.push(at(k, i, j));
            }
        }
    }
    Dataset::new(
        n,
        matrices,
        labels,
        names,
        &path.display().to_string(),
        &options.validation,
    )
}

/// Series → one covariance per series.
pub fn series_to_dataset(
    set: &TimeSeriesSet,
    cov: CovarianceOptions,
    source: &str,
    validation: &Validation,
) -> Result<Dataset> {
    let p = set.channels();
    let mut matrices = Vec::with_capacity(set.series.len() * p * p);
    for (i, s) in set.series.iter().enumerate() {
        let t = s.iter().map(Vec::len).min().unwrap_or(0);
        if s.iter().any(|ch| ch.len() != t) || t < 2 {
            return Err(DataError::at(
                source,
                Location::Sample(i),
                Problem::Shape("channels of one series need one common length ≥ 2".into()),
            ));
        }
        let c = covariance(s, cov);
        for j in 0..p {
            for r in 0..p {
                matrices.push(c[(r, j)]);
            }
        }
    }
    Dataset::new(
        p,
        matrices,
        set.labels.clone(),
        set.class_names.clone(),
        source,
        validation,
    )
}
