//! The search stage of the searching estimators (SPDNetNAS, DARTS, FairDARTS): a fresh
//! [`Search`] or the stage's checkpoint, run under the runner, and what it selected.

use std::ops::ControlFlow;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use spd_data::Dataset;
use spd_data::split::Split;

use crate::error::{NasError, Result};
use crate::genotype::Genotype;
use crate::network_config::NetworkConfig;
use crate::runner::{Ended, Hooks, log_value, run_epochs};
use crate::search::{EpochLog, Search, SelectedGenotype};
use crate::supernet::Supernet;

/// What a search ended with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchOutcome<C = NetworkConfig, G = Genotype> {
    /// The supernet's configuration for the data.
    pub network: C,
    /// The genotype the selection kept, its epoch and validation result.
    pub selected: SelectedGenotype<G>,
    /// One line per search epoch.
    pub logs: Vec<EpochLog<G>>,
    /// Seconds spent searching in this process.
    pub seconds: f64,
}

/// Runs the search of checkpoint stage `stage`: continues its checkpoint if there is one, else
/// starts `fresh()`; `Break` when the interrupter stopped it, else the selected genotype (an
/// error if α never moved).
pub(crate) fn run_search<N: Supernet, C>(
    stage: &str,
    network: C,
    (data, split): (&Dataset, &Split),
    hooks: &mut Hooks,
    fresh: impl FnOnce() -> Result<Search<N>>,
) -> Result<ControlFlow<Ended, SearchOutcome<C, N::Genotype>>> {
    let start = Instant::now();
    let mut search = hooks.resume_or(stage, fresh)?;
    if !search.logs().is_empty() {
        let history: Vec<_> = search.logs().iter().map(log_value).collect();
        hooks.observer.resumed(stage, &history);
    }
    if let ended @ Ended::Interrupted { .. } = run_epochs(stage, &mut search, data, split, hooks)? {
        return Ok(ControlFlow::Break(ended));
    }
    let selected = search
        .selected()
        .cloned()
        .ok_or_else(|| NasError::Run(format!("the {stage} ran no epoch in which α moved")))?;
    Ok(ControlFlow::Continue(SearchOutcome {
        network,
        selected,
        logs: search.logs().to_vec(),
        seconds: start.elapsed().as_secs_f64(),
    }))
}
