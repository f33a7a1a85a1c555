//! End-to-end runs of the whole stack through the application layer (the `spdnas` binary's
//! own tests, for exit codes and messages, are in `crates/spd-cli/tests`).

use std::path::{Path, PathBuf};

use spdnas::app::{
    self, DataSource, Never, Outcome, Preset, RepeatOutcome, RunConfig, SeedScope, Silent,
    StopAfter,
};
use spdnas::data::radar::RadarConfig;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("spdnas-e2e-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tiny() -> RunConfig {
    let data = DataSource::RadarSynthetic {
        config: RadarConfig {
            per_class: 24,
            ..Default::default()
        },
        seed: 3,
    };
    let mut c = RunConfig::preset(Preset::Quick, data, 5);
    c.search.epochs = 2;
    c.search.min_steps = 0;
    c.train.epochs = 3;
    c.train.min_steps = 0;
    c
}

fn finish(outcome: Outcome) -> app::Report {
    match outcome {
        Outcome::Done(report, _) => *report,
        Outcome::Stopped(why) => panic!("stopped: {why}"),
    }
}

const FILES: [&str; 13] = [
    "config.json",
    "split.json",
    "search.jsonl",
    "genotype.json",
    "genotype.dot",
    "train.jsonl",
    "report.json",
    "timings.json",
    "model.json",
    "curves.png",
    "alpha_normal.png",
    "alpha_reduce.png",
    "random_genotype.json",
];

#[test]
fn tiny_run_writes_every_file_and_a_parsable_report() {
    let dir = TempDir::new("run");
    let config = tiny();
    let data = config.prepare().unwrap();
    let report = finish(app::run(&config, &data, &dir.0, false, &Never, &mut Silent).unwrap());
    for f in FILES {
        assert!(dir.0.join(f).is_file(), "{f} missing");
    }
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.0.join("report.json")).unwrap()).unwrap();
    assert!(
        parsed["test_accuracy"]
            .as_f64()
            .is_some_and(|a| (0.0..=1.0).contains(&a))
    );
    assert_eq!(parsed["baselines"].as_object().unwrap().len(), 5);
    assert!(parsed["params"].as_u64().unwrap() > 0);
    assert_eq!(
        std::fs::read_to_string(dir.0.join("search.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    assert_eq!(
        std::fs::read_to_string(dir.0.join("train.jsonl"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    assert!(
        std::fs::read(dir.0.join("curves.png"))
            .unwrap()
            .starts_with(b"\x89PNG")
    );
    assert!(app::table(&report, &Default::default()).contains("SPDNetNAS"));
    let (acc, n) = app::evaluate_file(&dir.0.join("model.json"), None).unwrap();
    assert_eq!((acc, n), (report.test_accuracy, report.split_sizes.2));
}

/// Interrupted in the search, resumed, interrupted in training, resumed: the report equals an
/// uninterrupted run's, byte for byte.
#[test]
fn resumed_runs_match_uninterrupted_ones() {
    let config = tiny();
    let data = config.prepare().unwrap();
    let straight = TempDir::new("straight");
    finish(app::run(&config, &data, &straight.0, false, &Never, &mut Silent).unwrap());
    let resumed = TempDir::new("resumed");
    let stop1 = StopAfter {
        stage: "search".into(),
        epochs: 1,
    };
    assert!(matches!(
        app::run(&config, &data, &resumed.0, false, &stop1, &mut Silent).unwrap(),
        Outcome::Stopped(_)
    ));
    assert!(!resumed.0.join("report.json").exists());
    let stop2 = StopAfter {
        stage: "train".into(),
        epochs: 1,
    };
    assert!(matches!(
        app::run(&config, &data, &resumed.0, true, &stop2, &mut Silent).unwrap(),
        Outcome::Stopped(_)
    ));
    finish(app::run(&config, &data, &resumed.0, true, &Never, &mut Silent).unwrap());
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(
        read(&straight.0, "report.json"),
        read(&resumed.0, "report.json")
    );
    assert_eq!(
        read(&straight.0, "train.jsonl"),
        read(&resumed.0, "train.jsonl")
    );
}

#[test]
fn generated_data_inspects_and_basicmotions_loads_from_its_path() {
    let dir = TempDir::new("data");
    let signals = spdnas::data::radar::generate_radar(
        &RadarConfig {
            per_class: 5,
            ..Default::default()
        },
        1,
    );
    spdnas::data::folder::write_signal_folder(&dir.0, "radar", &signals).unwrap();
    let d = DataSource::path(dir.0.clone(), None, None).load().unwrap();
    let s = d.summary();
    assert_eq!((s.samples, s.n, s.classes.len()), (15, 20, 3));
    assert!(s.min_eigenvalue > 0.0);
    let bm = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/spd-data/data/basicmotions/BasicMotions_TRAIN.ts");
    let d = DataSource::path(bm, None, None).load().unwrap();
    assert_eq!((d.len(), d.n(), d.num_classes()), (40, 6, 4));
}

/// A repetition killed in its first seed's training and resumed writes the summary of an
/// uninterrupted repetition; each seed draws its own split under `SplitAndInit`.
#[test]
fn resumed_seed_repetitions_match_uninterrupted_ones() {
    let mut config = tiny();
    config.baselines = vec![app::Baseline::Mdm];
    let repetition = app::Repetition {
        seeds: vec![1, 2],
        scope: SeedScope::SplitAndInit,
    };
    let repeat = |dir: &Path, resume: bool, stop: &dyn app::Interrupter| {
        app::run_seeds(
            &config,
            &repetition,
            dir,
            resume,
            stop,
            &mut Silent,
            |_, _, _| {},
        )
        .unwrap()
    };
    let straight = TempDir::new("seeds-straight");
    let RepeatOutcome::Done(summary) = repeat(&straight.0, false, &Never) else {
        panic!("stopped")
    };
    let resumed = TempDir::new("seeds-resumed");
    let stop = StopAfter {
        stage: "train".into(),
        epochs: 1,
    };
    assert!(matches!(
        repeat(&resumed.0, false, &stop),
        RepeatOutcome::Stopped(_)
    ));
    assert!(!resumed.0.join("seed-2").exists());
    let RepeatOutcome::Done(again) = repeat(&resumed.0, true, &Never) else {
        panic!("stopped")
    };
    assert_eq!(summary.methods, again.methods);
    assert_eq!(summary.reports, again.reports);
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_ne!(
        read(&straight.0.join("seed-1"), "split.json"),
        read(&straight.0.join("seed-2"), "split.json")
    );
    let nas = &summary.methods[0];
    let (mean, _) = app::mean_std(&[
        summary.reports[0].test_accuracy,
        summary.reports[1].test_accuracy,
    ]);
    assert_eq!(nas.mean, mean);
    // a resumed repetition must have been run with the same settings
    let mut other = config.clone();
    other.train.lr *= 2.0;
    let err = app::run_seeds(
        &other,
        &repetition,
        &resumed.0,
        true,
        &Never,
        &mut Silent,
        |_, _, _| {},
    );
    assert!(matches!(err, Err(app::AppError::Input(m)) if m.contains("other settings")));
}

/// `--baselines darts,fairdarts`: both rows in the report and the table, their genotypes
/// with drawings in the run directory; a run stopped in FairDARTS's search and resumed gives
/// the uninterrupted report byte for byte.
#[test]
fn darts_baselines_report_rows_write_genotypes_and_resume_exactly() {
    let mut config = tiny();
    // no warm-up, so the interrupted epoch has moved α and its Adam moments
    config.search.warmup = 0.0;
    config.baselines = vec![app::Baseline::Darts, app::Baseline::FairDarts];
    let data = config.prepare().unwrap();
    let straight = TempDir::new("darts-straight");
    let report = finish(app::run(&config, &data, &straight.0, false, &Never, &mut Silent).unwrap());
    for name in ["DARTS", "FairDARTS"] {
        let acc = report.baselines[name];
        assert!((0.0..=1.0).contains(&acc), "{name}: {acc}");
        assert!(report.baseline_params[name] > 0, "{name}");
    }
    let table = app::table(&report, &Default::default());
    for name in ["DARTS ", "FairDARTS "] {
        assert!(table.lines().any(|l| l.starts_with(name)), "{table}");
    }
    for file in [
        "darts_genotype.json",
        "darts_genotype.dot",
        "fairdarts_genotype.json",
        "fairdarts_genotype.dot",
        "darts-search.jsonl",
        "fairdarts.jsonl",
    ] {
        assert!(straight.0.join(file).is_file(), "{file} missing");
    }
    let genotype = std::fs::read_to_string(straight.0.join("darts_genotype.json")).unwrap();
    spdnas::nas::darts::DartsGenotype::from_json(&genotype)
        .unwrap()
        .check(4)
        .unwrap();

    let resumed = TempDir::new("darts-resumed");
    let stop = StopAfter {
        stage: "fairdarts-search".into(),
        epochs: 1,
    };
    assert!(matches!(
        app::run(&config, &data, &resumed.0, false, &stop, &mut Silent).unwrap(),
        Outcome::Stopped(_)
    ));
    finish(app::run(&config, &data, &resumed.0, true, &Never, &mut Silent).unwrap());
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    for file in ["report.json", "fairdarts_genotype.json", "fairdarts.jsonl"] {
        assert_eq!(read(&straight.0, file), read(&resumed.0, file), "{file}");
    }
}
