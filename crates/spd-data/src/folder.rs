//! The paper's per-sample folder layout (SPDNetBN's RADAR and HDM05 releases): one `.npy` per
//! sample, the class label the integer after the last `_` of the file stem
//! (`…_<label>.npy`). RADAR files hold a complex 1-D signal, which goes through the window
//! covariance front end; HDM05 files hold a real `n × n` matrix.

use std::path::{Path, PathBuf};

use crate::covariance::windowed_covariance;
use crate::dataset::{Dataset, Validation};
use crate::error::{DataError, Location, Problem, Result, write_atomic};
use crate::npy::{NpyData, npy_c128, npy_f64, read_npy};
use crate::radar::RadarSignals;

/// The label of `…_<label>.npy`.
pub fn label_from_name(path: &Path) -> Option<i64> {
    let stem = path.file_stem()?.to_str()?;
    stem.rsplit_once('_')?.1.parse().ok()
}

/// Reads a folder: files sorted by name, classes the distinct labels in increasing order (named
/// by their number), complex signals windowed with `window`/`hop`.
pub fn read_folder(
    dir: &Path,
    window: usize,
    hop: usize,
    validation: &Validation,
) -> Result<Dataset> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| DataError::file(dir, Problem::Io(e.to_string())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "npy"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(DataError::file(
            dir,
            Problem::Invalid("no .npy files".into()),
        ));
    }
    let mut raw_labels = Vec::with_capacity(files.len());
    let mut matrices = Vec::new();
    let mut n = None;
    for f in &files {
        let label = label_from_name(f).ok_or_else(|| {
            DataError::file(
                f,
                Problem::Invalid("no integer label after the last '_' of the name".into()),
            )
        })?;
        let a = read_npy(f)?;
        let (size, values) = match (&a.data, a.shape.as_slice()) {
            (NpyData::Complex(z), [_]) => {
                let c = windowed_covariance(z, window, hop).ok_or_else(|| {
                    DataError::file(
                        f,
                        Problem::Shape(format!(
                            "{} samples give fewer than 2 windows of {window} with hop {hop}",
                            z.len()
                        )),
                    )
                })?;
                (
                    window,
                    (0..window)
                        .flat_map(|j| (0..window).map(move |i| (i, j)))
                        .map(|(i, j)| c[(i, j)])
                        .collect::<Vec<_>>(),
                )
            }
            (_, [r, c]) if r == c => {
                let v = a
                    .to_real()
                    .ok_or_else(|| DataError::file(f, Problem::Dtype("complex matrix".into())))?;
                // C order: v[i·n + j] = a[i, j]; store column-major
                (
                    *r,
                    (0..*r)
                        .flat_map(|j| (0..*r).map(move |i| (i, j)))
                        .map(|(i, j)| v[i * r + j])
                        .collect(),
                )
            }
            _ => {
                return Err(DataError::file(
                    f,
                    Problem::Shape(format!(
                        "{:?}: expected a complex signal or a square matrix",
                        a.shape
                    )),
                ));
            }
        };
        match n {
            None => n = Some(size),
            Some(m) if m != size => {
                return Err(DataError::file(
                    f,
                    Problem::Shape(format!("{size}×{size}, earlier files give {m}×{m}")),
                ));
            }
            _ => {}
        }
        raw_labels.push(label);
        matrices.extend(values);
    }
    let mut classes: Vec<i64> = raw_labels.clone();
    classes.sort_unstable();
    classes.dedup();
    let labels = raw_labels
        .iter()
        .map(|l| {
            classes
                .binary_search(l)
                .expect("label is in the class list")
        })
        .collect();
    let names = classes.iter().map(i64::to_string).collect();
    Dataset::new(
        n.unwrap_or(0),
        matrices,
        labels,
        names,
        &dir.display().to_string(),
        validation,
    )
    .map_err(|e| match e.location {
        Location::Sample(i) => DataError::file(&files[i], e.problem),
        _ => e,
    })
}

/// Writes complex signals as `prefix_<index>_<label>.npy` files (each atomically).
pub fn write_signal_folder(dir: &Path, prefix: &str, s: &RadarSignals) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::file(dir, Problem::Io(e.to_string())))?;
    for (i, (sig, &l)) in s.signals.iter().zip(&s.labels).enumerate() {
        let path = dir.join(format!("{prefix}_{i:05}_{l}.npy"));
        write_atomic(&path, &npy_c128(&[sig.len()], sig))?;
    }
    Ok(())
}

/// Writes the matrices of a dataset as `prefix_<index>_<label>.npy` files.
pub fn write_matrix_folder(dir: &Path, prefix: &str, d: &Dataset) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::file(dir, Problem::Io(e.to_string())))?;
    let n = d.n();
    for i in 0..d.len() {
        let m = d.matrix(i);
        let c_order: Vec<f64> = (0..n)
            .flat_map(|r| (0..n).map(move |c| (r, c)))
            .map(|(r, c)| m[(r, c)])
            .collect();
        let path = dir.join(format!("{prefix}_{i:05}_{}.npy", d.labels()[i]));
        write_atomic(&path, &npy_f64(&[n, n], &c_order))?;
    }
    Ok(())
}
