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
    /// Stopped by Ctrl-C at an epoch boundary, checkpoints written (exit code 130).
    #[error("{0}")]
    Interrupted(String),
}

impl AppError {
    /// The process exit code: 2 for input errors, 1 for runtime failures, 130 (128 + SIGINT)
    /// for an interruption.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Input(_) => 2,
            AppError::Runtime(_) => 1,
            AppError::Interrupted(_) => 130,
        }
    }
}

impl From<spd_data::DataError> for AppError {
    fn from(e: spd_data::DataError) -> Self {
        AppError::Input(e.to_string())
    }
}

/// The `spdnas` flag that sets a parameter field, if one does.
fn flag_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "search.epochs" => "--search-epochs",
        "train.epochs" => "--train-epochs",
        "train.weight_decay" => "--weight-decay",
        "search.lr" | "train.lr" => "--lr",
        "search.warmup" => "--warmup",
        "network.ops.karcher_steps" => "--karcher-steps",
        "network.layers" => "--cells",
        "network.init_channels" => "--channels",
        "network.reduced_dims" => "--reduced-dim",
        "network.arch_normalization" => "--mixing",
        _ => return None,
    })
}

impl From<spd_nas::NasError> for AppError {
    fn from(e: spd_nas::NasError) -> Self {
        use spd_nas::NasError;
        match e {
            NasError::Setting { field, value, rule } => AppError::Input(match flag_of(field) {
                Some(flag) => format!("{flag} {value}: {rule}"),
                None => format!("{field} = {value} (in --config): {rule}"),
            }),
            NasError::Genotype(_) | NasError::Config(_) => AppError::Input(e.to_string()),
            other => AppError::Runtime(other.to_string()),
        }
    }
}

/// Result alias of the application layer.
pub type Result<T, E = AppError> = std::result::Result<T, E>;
