use thiserror::Error;

/// An error of the application layer, split by who can fix it.
#[derive(Debug, Error)]
pub enum AppError {
    /// Bad input: a file, a path, an argument (exit code 2).
    #[error("{0}")]
    Input(String),
    /// A failure while running (exit code 1).
    #[error("{0}")]
    Runtime(String),
}

impl AppError {
    /// The process exit code: 2 for input errors, 1 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Input(_) => 2,
            AppError::Runtime(_) => 1,
        }
    }
}

impl From<spd_data::DataError> for AppError {
    fn from(e: spd_data::DataError) -> Self {
        AppError::Input(e.to_string())
    }
}

impl From<spd_nas::NasError> for AppError {
    fn from(e: spd_nas::NasError) -> Self {
        match e {
            spd_nas::NasError::Genotype(_) | spd_nas::NasError::Config(_) => {
                AppError::Input(e.to_string())
            }
            other => AppError::Runtime(other.to_string()),
        }
    }
}

/// Result alias of the application layer.
pub type Result<T, E = AppError> = std::result::Result<T, E>;
