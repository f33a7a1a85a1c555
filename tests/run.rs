//! End-to-end runs of the whole stack through the application layer (the `spdnas` binary's
//! own tests, for exit codes and messages, are in `crates/spd-cli/tests`).

use std::path::{Path, PathBuf};

use spdnas::app::{self, DataSource, Outcome, Preset, RunConfig, Silent, StopAt};
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
    c.train.epochs = 3;
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
    let report =
        finish(app::run(&config, &data, &dir.0, false, StopAt::default(), &Silent).unwrap());
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
    finish(
        app::run(
            &config,
            &data,
            &straight.0,
            false,
            StopAt::default(),
            &Silent,
        )
        .unwrap(),
    );
    let resumed = TempDir::new("resumed");
    let stop1 = StopAt {
        search_epochs: Some(1),
        train_epochs: None,
    };
    assert!(matches!(
        app::run(&config, &data, &resumed.0, false, stop1, &Silent).unwrap(),
        Outcome::Stopped(_)
    ));
    assert!(!resumed.0.join("report.json").exists());
    let stop2 = StopAt {
        search_epochs: None,
        train_epochs: Some(1),
    };
    assert!(matches!(
        app::run(&config, &data, &resumed.0, true, stop2, &Silent).unwrap(),
        Outcome::Stopped(_)
    ));
    finish(app::run(&config, &data, &resumed.0, true, StopAt::default(), &Silent).unwrap());
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
