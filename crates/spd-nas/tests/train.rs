//! Training schedules: the epoch budget on small sets, the learning rate each epoch gets,
//! Riemannian Adam, selection of the best validation epoch and patience, and resumption from
//! a checkpoint to the uninterrupted run's bits.

use spd_autograd::ParamStore;
use spd_data::gaussian::{GaussianConfig, generate_gaussian};
use spd_data::split::{Split, SplitFractions, stratified_split};
use spd_linalg::random::seeded_rng;
use spd_nas::baselines::{SpdNet, SpdNetConfig};
use spd_nas::runner::{
    Checkpointer, DirCheckpoints, Hooks, NoCheckpoints, Silent, StopAfter, restore_or, run_epochs,
};
use spd_nas::schedule::{LrSchedule, WeightOptimizer};
use spd_nas::train::{TrainConfig, TrainState, Training};

fn problem() -> (spd_data::Dataset, Split) {
    let data = generate_gaussian(
        &GaussianConfig {
            n: 6,
            classes: 3,
            per_class: 20,
            ..Default::default()
        },
        4,
    )
    .unwrap();
    let split = stratified_split(data.labels(), SplitFractions::default(), 0);
    (data, split)
}

fn model() -> (SpdNet, ParamStore) {
    let mut store = ParamStore::new();
    let net = SpdNet::new(
        &SpdNetConfig {
            dims: vec![6, 4],
            batch_norm: true,
            num_classes: 3,
        },
        &mut store,
        &mut seeded_rng(2),
    )
    .unwrap();
    (net, store)
}

/// Trains from `state` until finished (or `stop_at` epochs) under the runner, checkpointing
/// into `checkpoints` when given.
fn run(
    state: TrainState,
    config: &TrainConfig,
    checkpoints: Option<&DirCheckpoints>,
    stop_at: Option<usize>,
) -> TrainState {
    let (data, split) = problem();
    run_on(&data, &split, state, config, checkpoints, stop_at)
}

/// [`run`] on a given data set and split.
fn run_on(
    data: &spd_data::Dataset,
    split: &Split,
    state: TrainState,
    config: &TrainConfig,
    checkpoints: Option<&DirCheckpoints>,
    stop_at: Option<usize>,
) -> TrainState {
    let (net, _) = model();
    let mut training = Training {
        model: &net,
        config: config.clone(),
        state,
    };
    let stop = StopAfter {
        stage: "train".into(),
        epochs: stop_at.unwrap_or(usize::MAX),
    };
    let mut hooks = Hooks {
        observer: &mut Silent,
        checkpointer: checkpoints.map_or(&NoCheckpoints as &dyn Checkpointer, |c| c),
        interrupter: &stop,
    };
    run_epochs("train", &mut training, data, split, &mut hooks).unwrap();
    training.state
}

fn adam_cosine(epochs: usize, min_steps: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        min_steps,
        optimizer: WeightOptimizer::Adam,
        lr: 0.01,
        schedule: LrSchedule::Cosine { warmup: 0.2 },
        batch_size: 10,
        seed: 3,
        ..Default::default()
    }
}

#[test]
fn small_training_sets_get_epochs_for_min_steps_and_each_epoch_its_scheduled_lr() {
    // 30 training samples in batches of 10: 3 steps per epoch, 40 steps → 14 epochs
    assert_eq!(problem().1.train.len(), 30);
    let config = adam_cosine(5, 40);
    let state = run(TrainState::new(model().1, &config), &config, None, None);
    assert_eq!(state.history.len(), 14);
    for log in &state.history {
        let expected = 0.01 * config.schedule.factor(log.epoch, 14);
        assert!(expected > 0.0 && expected <= 0.01);
        assert_eq!(log.lr, expected, "epoch {}", log.epoch);
    }
    assert!(state.history[13].train_loss < state.history[0].train_loss);
}

#[test]
fn best_epoch_has_the_best_validation_accuracy_then_loss_and_patience_stops_after_it() {
    let config = TrainConfig {
        patience: Some(3),
        ..adam_cosine(200, 0)
    };
    let state = run(TrainState::new(model().1, &config), &config, None, None);
    let best = state.best.as_ref().unwrap();
    for log in &state.history {
        assert!(
            log.val_accuracy < best.val_accuracy
                || (log.val_accuracy == best.val_accuracy && log.val_loss >= best.val_loss),
            "epoch {} beats the selected epoch {}",
            log.epoch,
            best.epoch
        );
    }
    let last = state.history.last().unwrap().epoch;
    assert_eq!(last, best.epoch + 3, "stopped after epoch {last}");
    assert!(last < 199, "patience never stopped the run");
}

#[test]
fn without_validation_samples_the_last_epoch_is_kept_and_patience_never_stops() {
    let (data, mut split) = problem();
    split.train.append(&mut split.val);
    let config = TrainConfig {
        patience: Some(2),
        ..adam_cosine(8, 0)
    };
    let state = run_on(
        &data,
        &split,
        TrainState::new(model().1, &config),
        &config,
        None,
        None,
    );
    assert_eq!(state.history.len(), 8, "patience stopped the run");
    let best = state.best.as_ref().unwrap();
    assert_eq!(best.epoch, 7);
    assert_eq!(
        best.weights, state.weights,
        "the kept weights are not the last epoch's"
    );
}

#[test]
fn adam_training_resumed_from_a_checkpoint_gives_the_uninterrupted_bits() {
    let config = adam_cosine(8, 0);
    let full = run(TrainState::new(model().1, &config), &config, None, None);
    let dir = std::env::temp_dir().join(format!("spdnas-train-resume-{}", std::process::id()));
    let mut checkpoints = DirCheckpoints {
        dir: dir.clone(),
        resume: false,
    };
    let half = run(
        TrainState::new(model().1, &config),
        &config,
        Some(&checkpoints),
        Some(3),
    );
    assert_eq!(half.epoch, 3);
    checkpoints.resume = true;
    let restored: TrainState =
        restore_or(&checkpoints, "train", || panic!("no checkpoint")).unwrap();
    assert_eq!(restored.epoch, 3);
    let resumed = run(restored, &config, None, None);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        serde_json::to_string(&resumed.weights).unwrap(),
        serde_json::to_string(&full.weights).unwrap()
    );
    assert_eq!(resumed.history, full.history);
}
