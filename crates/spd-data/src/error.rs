use std::fmt;
use std::path::Path;

use thiserror::Error;

/// Where in a file a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole.
    File,
    /// Sample `i` (0-based) of the file.
    Sample(usize),
    /// Line `l` (1-based) of a text file.
    Line(usize),
    /// A named entry of an archive or MAT file.
    Entry(String),
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Problem {
    /// Opening or reading failed.
    #[error("cannot read: {0}")]
    Io(String),
    /// The file ends before its header or payload says it should.
    #[error("truncated: {0}")]
    Truncated(String),
    /// A header or structure that does not parse.
    #[error("corrupt header: {0}")]
    CorruptHeader(String),
    /// A data type this reader does not handle or that does not fit.
    #[error("unsupported data type {0}")]
    Dtype(String),
    /// Array or matrix dimensions that do not fit.
    #[error("wrong shape: {0}")]
    Shape(String),
    /// Sample counts of matrices and labels differ.
    #[error("{matrices} matrices but {labels} labels")]
    CountMismatch {
        /// Matrices read.
        matrices: usize,
        /// Labels read.
        labels: usize,
    },
    /// A NaN or infinite entry.
    #[error("entry ({row}, {col}) is not finite ({value})")]
    NotFinite {
        /// Row (0-based).
        row: usize,
        /// Column (0-based).
        col: usize,
        /// The value found.
        value: f64,
    },
    /// A matrix that is not symmetric within tolerance.
    #[error(
        "not symmetric: |a[{row},{col}] − a[{col},{row}]| = {difference:e} (tolerance {tolerance:e}); accept it with --symmetrize"
    )]
    NotSymmetric {
        /// Row (0-based).
        row: usize,
        /// Column (0-based).
        col: usize,
        /// Their absolute difference.
        difference: f64,
        /// The tolerance exceeded.
        tolerance: f64,
    },
    /// A matrix that is not positive definite.
    #[error(
        "not positive definite (smallest eigenvalue {min_eigenvalue:e}); accept it with a regularisation: --ridge 1e-6 (adds 1e-6·tr(X)/n·I) or --shrinkage 0.01"
    )]
    NotPositiveDefinite {
        /// The smallest eigenvalue.
        min_eigenvalue: f64,
    },
    /// A class without any sample.
    #[error("class {0:?} has no sample")]
    EmptyClass(String),
    /// A label that is not in the class list.
    #[error("label {0:?} is not one of the declared classes")]
    UnknownLabel(String),
    /// A missing value in a series.
    #[error("missing value in channel {channel}; choose a missing-value policy to accept it")]
    Missing {
        /// The channel (0-based).
        channel: usize,
    },
    /// Anything else about the content.
    #[error("{0}")]
    Invalid(String),
}

/// A data error: the file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Error)]
pub struct DataError {
    /// The file (or directory, or a description for in-memory data).
    pub path: String,
    /// Where in the file.
    pub location: Location,
    /// The problem.
    pub problem: Problem,
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::File => write!(f, "{}: {}", self.path, self.problem),
            Location::Sample(i) => write!(f, "{}: sample {}: {}", self.path, i, self.problem),
            Location::Line(l) => write!(f, "{}: line {}: {}", self.path, l, self.problem),
            Location::Entry(e) => write!(f, "{}: entry {:?}: {}", self.path, e, self.problem),
        }
    }
}

impl DataError {
    /// A problem with the file as a whole.
    pub fn file(path: impl AsRef<Path>, problem: Problem) -> Self {
        Self {
            path: path.as_ref().display().to_string(),
            location: Location::File,
            problem,
        }
    }

    /// A problem at `location`.
    pub fn at(path: impl AsRef<Path>, location: Location, problem: Problem) -> Self {
        Self {
            path: path.as_ref().display().to_string(),
            location,
            problem,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;

/// Reads a whole file, mapping failures to [`Problem::Io`].
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::file(path, Problem::Io(e.to_string())))
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// failure never leaves a half-written file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |e: std::io::Error| DataError::file(path, Problem::Io(e.to_string()));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}
