//! Real-data shapes end to end: low-rank covariances of odd size through a full search epoch
//! and training on default settings, and a dataset's own train/test protocol.

use std::path::{Path, PathBuf};

use faer::Mat;
use spdnas::app::{self, DataSource, Never, Outcome, Preset, RunConfig, Silent};
use spdnas::data::{Dataset, Validation};
use spdnas::linalg::random::{gaussian, seeded_rng};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("spdnas-real-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The low-rank recipe: class `k` has a fixed `M_k ∈ R^{n×r}` from N(0, 1); a sample is
/// `A Aᵀ / r` with `A = M_k + 0.5·N(0, 1)`, scaled to trace `n`, plus `1e-3·I` (rank `r`
/// plus a cluster of `n − r` equal smallest eigenvalues).
fn low_rank_recipe(n: usize, r: usize, classes: usize, per_class: usize, seed: u64) -> Dataset {
    let mut rng = seeded_rng(seed);
    let means: Vec<Mat<f64>> = (0..classes).map(|_| gaussian(n, r, &mut rng)).collect();
    let mut matrices = Vec::with_capacity(classes * per_class * n * n);
    let mut labels = Vec::new();
    for i in 0..classes * per_class {
        let k = i % classes;
        let a = &means[k] + faer::Scale(0.5) * gaussian(n, r, &mut rng);
        let c = faer::Scale(1.0 / r as f64) * (&a * a.transpose());
        let trace: f64 = (0..n).map(|j| c[(j, j)]).sum();
        for col in 0..n {
            for row in 0..n {
                let ridge = if row == col { 1e-3 } else { 0.0 };
                matrices.push(c[(row, col)] * n as f64 / trace + ridge);
            }
        }
        labels.push(k);
    }
    let names = (0..classes).map(|k| k.to_string()).collect();
    Dataset::new(n, matrices, labels, names, "recipe", &Validation::default()).unwrap()
}

fn finish(outcome: Outcome) -> app::Report {
    match outcome {
        Outcome::Done(report, _) => *report,
        Outcome::Stopped(why) => panic!("stopped: {why}"),
    }
}

/// 51×51 covariances of rank 30 (the shape that made the supernet's log-domain pooling
/// overflow), 10 classes: one full search epoch and the default training and baselines run to
/// the end with finite, better-than-chance results.
#[test]
fn low_rank_odd_size_recipe_runs_a_search_epoch_and_the_quick_training_epochs() {
    let dir = TempDir::new("recipe");
    let data_dir = dir.0.join("data");
    let d = low_rank_recipe(51, 30, 10, 8, 4);
    spdnas::data::folder::write_matrix_folder(&data_dir, "recipe", &d).unwrap();
    let mut config = RunConfig::preset(Preset::Quick, DataSource::path(data_dir, None, None), 0);
    config.search.epochs = 1;
    config.search.min_steps = 0;
    config.train.min_steps = 0;
    let prepared = config.prepare().unwrap();
    let report = finish(
        app::run(
            &config,
            &prepared,
            &dir.0.join("run"),
            false,
            &Never,
            &mut Silent,
        )
        .unwrap(),
    );
    assert_eq!((report.n, report.classes.len()), (51, 10));
    assert!(report.test_accuracy.is_finite() && report.test_accuracy > 0.1);
    for (name, acc) in &report.baselines {
        assert!(acc.is_finite(), "{name}");
    }
}

/// `--test-data`: BasicMotions' own TRAIN/TEST files. The test part is exactly the 40 series
/// of the test file, training and validation come from the training file only, and the
/// report says which protocol was used.
#[test]
fn given_test_set_is_the_whole_test_part_and_the_report_says_so() {
    let dir = TempDir::new("given");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/spd-data/data/basicmotions");
    let train = DataSource::path(root.join("BasicMotions_TRAIN.ts"), None, None);
    let mut config = RunConfig::preset(Preset::Quick, train, 0);
    config.test_data = Some(DataSource::path(
        root.join("BasicMotions_TEST.ts"),
        None,
        None,
    ));
    config.search.epochs = 1;
    config.search.min_steps = 0;
    config.train.epochs = 2;
    config.train.min_steps = 0;
    let prepared = config.prepare().unwrap();
    assert_eq!(prepared.data.len(), 80);
    assert_eq!(prepared.split.test, (40..80).collect::<Vec<_>>());
    assert!(
        prepared
            .split
            .train
            .iter()
            .chain(&prepared.split.val)
            .all(|&i| i < 40)
    );
    assert_eq!(prepared.split.train.len() + prepared.split.val.len(), 40);
    let report = finish(app::run(&config, &prepared, &dir.0, false, &Never, &mut Silent).unwrap());
    assert_eq!(report.split_sizes.2, 40);
    assert!(
        report.protocol.starts_with("given test set"),
        "{}",
        report.protocol
    );
    assert!(
        report.protocol.contains("BasicMotions_TEST.ts"),
        "{}",
        report.protocol
    );
}
