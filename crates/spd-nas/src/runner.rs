//! One runner for every epoch loop (the search and every training): an [`EpochLoop`] runs
//! epoch by epoch until it is finished, an [`Observer`] sees every epoch and batch (progress
//! bars, logs, a Python `history_`), a [`Checkpointer`] stores the loop's state after every
//! epoch and gives it back on resume, and an [`Interrupter`] may stop the loop at an epoch
//! boundary (Ctrl-C, a test's simulated kill). A loop resumed from its checkpoint continues to
//! the bits of the uninterrupted loop, because everything random in an epoch is a function of
//! the seed and the epoch number.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use spd_data::Dataset;
use spd_data::split::Split;

use crate::error::{NasError, Result};

/// An epoch loop: the search or one training.
pub trait EpochLoop {
    /// The next epoch to run (0 before the first).
    fn epoch(&self) -> usize;
    /// The epoch budget on this split.
    fn epochs(&self, split: &Split) -> usize;
    /// Optimiser steps in one epoch on this split.
    fn batches(&self, split: &Split) -> usize;
    /// Whether the loop is over (budget run, or stopped early by its own rule).
    fn finished(&self, split: &Split) -> bool;
    /// Runs the next epoch, calling `on_batch(done, total)` after each step; returns the epoch's
    /// log line.
    fn run_epoch(
        &mut self,
        data: &Dataset,
        split: &Split,
        on_batch: &mut dyn FnMut(usize, usize),
    ) -> Result<serde_json::Value>;
    /// The state a resumed loop continues from, as JSON.
    fn checkpoint(&self) -> Result<serde_json::Value>;
}

/// Sees a loop run. Every method defaults to doing nothing.
pub trait Observer {
    /// Epoch `epoch` of `epochs` of `stage` starts, with `batches` steps.
    fn epoch_started(&mut self, _stage: &str, _epoch: usize, _epochs: usize, _batches: usize) {}
    /// Step `done` of `total` of the current epoch is over.
    fn batch_done(&mut self, _stage: &str, _done: usize, _total: usize) {}
    /// An epoch is over (its checkpoint, if any, is written): its log line.
    fn epoch_done(&mut self, _stage: &str, _log: &serde_json::Value) {}
    /// A stage resumed from a checkpoint with this history already run.
    fn resumed(&mut self, _stage: &str, _history: &[serde_json::Value]) {}
}

/// An observer that does nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Observer for Silent {}

/// Keeps every epoch's log line by stage (a Python estimator's `history_`).
#[derive(Debug, Clone, Default)]
pub struct History(pub std::collections::BTreeMap<String, Vec<serde_json::Value>>);

impl Observer for History {
    fn epoch_done(&mut self, stage: &str, log: &serde_json::Value) {
        self.0
            .entry(stage.to_string())
            .or_default()
            .push(log.clone());
    }

    fn resumed(&mut self, stage: &str, history: &[serde_json::Value]) {
        self.0.insert(stage.to_string(), history.to_vec());
    }
}

/// Every observer of a list, in order.
pub struct Observers<'a>(pub Vec<&'a mut dyn Observer>);

impl Observer for Observers<'_> {
    fn epoch_started(&mut self, stage: &str, epoch: usize, epochs: usize, batches: usize) {
        for o in &mut self.0 {
            o.epoch_started(stage, epoch, epochs, batches);
        }
    }

    fn batch_done(&mut self, stage: &str, done: usize, total: usize) {
        for o in &mut self.0 {
            o.batch_done(stage, done, total);
        }
    }

    fn epoch_done(&mut self, stage: &str, log: &serde_json::Value) {
        for o in &mut self.0 {
            o.epoch_done(stage, log);
        }
    }

    fn resumed(&mut self, stage: &str, history: &[serde_json::Value]) {
        for o in &mut self.0 {
            o.resumed(stage, history);
        }
    }
}

/// Stores loop states by stage name.
pub trait Checkpointer {
    /// The state stored for `stage`, if any (and if resuming).
    fn load(&self, stage: &str) -> Result<Option<serde_json::Value>>;
    /// Stores `state` for `stage`, replacing the previous one atomically.
    fn save(&self, stage: &str, state: &serde_json::Value) -> Result<()>;
}

/// No checkpoints: every loop starts fresh and nothing is written.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoCheckpoints;

impl Checkpointer for NoCheckpoints {
    fn load(&self, _: &str) -> Result<Option<serde_json::Value>> {
        Ok(None)
    }

    fn save(&self, _: &str, _: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

/// The version of the checkpoint envelope; a checkpoint of another version is refused.
pub const CHECKPOINT_FORMAT: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Envelope {
    checkpoint_format: u32,
    stage: String,
    state: serde_json::Value,
}

/// Checkpoints as `dir/<stage>.json`, written atomically; read back only when `resume`.
#[derive(Debug, Clone)]
pub struct DirCheckpoints {
    /// The folder.
    pub dir: PathBuf,
    /// Whether existing checkpoints are continued (otherwise they are overwritten).
    pub resume: bool,
}

impl DirCheckpoints {
    fn path(&self, stage: &str) -> PathBuf {
        self.dir.join(format!("{stage}.json"))
    }
}

impl Checkpointer for DirCheckpoints {
    fn load(&self, stage: &str) -> Result<Option<serde_json::Value>> {
        let path = self.path(stage);
        if !self.resume || !path.exists() {
            return Ok(None);
        }
        let fail = |message: String| NasError::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
        let envelope: Envelope = serde_json::from_str(&text).map_err(|_| {
            fail(format!(
                "not a checkpoint of format {CHECKPOINT_FORMAT} (written by another spdnas \
                 version?); run again without --resume"
            ))
        })?;
        if envelope.checkpoint_format != CHECKPOINT_FORMAT || envelope.stage != stage {
            return Err(fail(format!(
                "checkpoint format {} of stage {:?}, expected format {CHECKPOINT_FORMAT} of {stage:?}; run again without --resume",
                envelope.checkpoint_format, envelope.stage
            )));
        }
        Ok(Some(envelope.state))
    }

    fn save(&self, stage: &str, state: &serde_json::Value) -> Result<()> {
        let path = self.path(stage);
        let fail = |message: String| NasError::Checkpoint {
            path: path.display().to_string(),
            message,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| fail(e.to_string()))?;
        let envelope = Envelope {
            checkpoint_format: CHECKPOINT_FORMAT,
            stage: stage.to_string(),
            state: state.clone(),
        };
        let json = serde_json::to_string(&envelope).map_err(|e| fail(e.to_string()))?;
        spd_data::write_atomic(&path, json.as_bytes()).map_err(|e| fail(e.problem.to_string()))
    }
}

/// Decides whether a loop stops before an epoch.
pub trait Interrupter {
    /// Whether `stage` stops before running epoch `epoch`.
    fn stop_before(&self, stage: &str, epoch: usize) -> bool;
}

/// Never interrupts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Never;

impl Interrupter for Never {
    fn stop_before(&self, _: &str, _: usize) -> bool {
        false
    }
}

/// Stops `stage` once it has run `epochs` epochs (a test's simulated kill).
#[derive(Debug, Clone)]
pub struct StopAfter {
    /// The stage.
    pub stage: String,
    /// Epochs it may run.
    pub epochs: usize,
}

impl Interrupter for StopAfter {
    fn stop_before(&self, stage: &str, epoch: usize) -> bool {
        stage == self.stage && epoch >= self.epochs
    }
}

/// Stops every loop at its next epoch boundary once the flag is raised (a Ctrl-C handler
/// raises it).
#[derive(Debug, Clone, Default)]
pub struct StopFlag(pub Arc<AtomicBool>);

impl Interrupter for StopFlag {
    fn stop_before(&self, _: &str, _: usize) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The observer, checkpointer and interrupter a fit runs with.
pub struct Hooks<'a> {
    /// Sees every epoch and batch.
    pub observer: &'a mut dyn Observer,
    /// Stores and restores loop states.
    pub checkpointer: &'a dyn Checkpointer,
    /// May stop a loop between epochs.
    pub interrupter: &'a dyn Interrupter,
}

impl Hooks<'_> {
    /// Hooks that observe nothing, store nothing and never interrupt.
    pub fn none() -> Hooks<'static> {
        // `Silent` has no state: a leaked box of it costs no memory.
        Hooks {
            observer: Box::leak(Box::new(Silent)),
            checkpointer: &NoCheckpoints,
            interrupter: &Never,
        }
    }

    /// The state of `stage` from its checkpoint, or `fresh()` when there is none.
    pub fn resume_or<T: DeserializeOwned>(
        &mut self,
        stage: &str,
        fresh: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        restore_or(self.checkpointer, stage, fresh)
    }
}

/// The state of `stage` from `checkpointer`, or `fresh()` when it holds none.
pub fn restore_or<T: DeserializeOwned>(
    checkpointer: &dyn Checkpointer,
    stage: &str,
    fresh: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match checkpointer.load(stage)? {
        Some(state) => serde_json::from_value(state).map_err(|e| NasError::Checkpoint {
            path: stage.to_string(),
            message: format!("does not hold a {stage} state ({e}); run again without --resume"),
        }),
        None => fresh(),
    }
}

/// How a loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It ran to its end.
    Finished,
    /// The interrupter stopped it before `epoch` of `stage`; its checkpoint continues it.
    Interrupted {
        /// The stage.
        stage: String,
        /// The epoch it would have run next.
        epoch: usize,
    },
}

/// Runs `task` as stage `stage` until it is finished or interrupted: before each epoch the
/// interrupter is asked, after each the checkpoint is saved, then the observer sees the log.
pub fn run_epochs(
    stage: &str,
    task: &mut dyn EpochLoop,
    data: &Dataset,
    split: &Split,
    hooks: &mut Hooks,
) -> Result<Ended> {
    let epochs = task.epochs(split);
    let batches = task.batches(split);
    while !task.finished(split) {
        let epoch = task.epoch();
        if hooks.interrupter.stop_before(stage, epoch) {
            return Ok(Ended::Interrupted {
                stage: stage.to_string(),
                epoch,
            });
        }
        hooks.observer.epoch_started(stage, epoch, epochs, batches);
        let observer = &mut *hooks.observer;
        let log = task.run_epoch(data, split, &mut |done, total| {
            observer.batch_done(stage, done, total)
        })?;
        hooks.checkpointer.save(stage, &task.checkpoint()?)?;
        hooks.observer.epoch_done(stage, &log);
    }
    Ok(Ended::Finished)
}

/// A log line as JSON.
pub(crate) fn log_value<T: Serialize>(log: &T) -> serde_json::Value {
    serde_json::to_value(log).expect("an epoch log serialises")
}
