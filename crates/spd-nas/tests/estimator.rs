//! The estimator API: every method fits and scores through one trait, parameters are checked
//! before any work, unfitted estimators refuse to predict, and saved models rebuild to the same
//! logits — including the model file checked in with format version 1.

use spd_data::Dataset;
use spd_data::gaussian::{GaussianConfig, generate_gaussian};
use spd_data::split::{Split, SplitFractions, stratified_split};
use spd_nas::NasError;
use spd_nas::darts::DartsMixing;
use spd_nas::prelude::*;
use spd_nas::saved::{MODEL_FORMAT_VERSION, SavedModel};

fn problem() -> (Dataset, Split) {
    let data = generate_gaussian(
        &GaussianConfig {
            n: 4,
            classes: 3,
            per_class: 12,
            ..Default::default()
        },
        7,
    )
    .unwrap();
    let split = stratified_split(data.labels(), SplitFractions::default(), 0);
    (data, split)
}

fn short_training() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch_size: 8,
        seed: 1,
        ..Default::default()
    }
}

fn short_search() -> SearchConfig {
    SearchConfig {
        epochs: 2,
        order: Order::First,
        batch_size: 8,
        seed: 1,
        ..Default::default()
    }
}

/// One estimator of every method, unfitted.
fn every_method() -> Vec<Box<dyn Estimator>> {
    let spdnet = |batch_norm| SpdNetParams {
        layout: SpdNetLayout::Auto,
        batch_norm,
        train: short_training(),
        seed: 2,
    };
    let genotype = |genotype| GenotypeParams {
        network: NetworkSpec::default(),
        genotype,
        train: short_training(),
        seed: 2,
    };
    let darts = |mixing| DartsParams {
        mixing,
        layout: DartsLayout::Small,
        search: short_search(),
        train: short_training(),
        seed: 2,
    };
    vec![
        Box::new(
            SpdNetNasClassifier::new(SpdNetNasParams {
                network: NetworkSpec::default(),
                search: short_search(),
                train: short_training(),
                seed: 2,
            })
            .unwrap(),
        ),
        Box::new(GenotypeClassifier::new(genotype(GenotypeChoice::Random)).unwrap()),
        Box::new(SpdNetClassifier::new(spdnet(false)).unwrap()),
        Box::new(SpdNetClassifier::new(spdnet(true)).unwrap()),
        Box::new(MdmClassifier::new()),
        Box::new(TslrClassifier::new(TslrParams::default()).unwrap()),
        Box::new(DartsClassifier::new(darts(DartsMixing::Softmax)).unwrap()),
        Box::new(DartsClassifier::new(darts(DartsMixing::Sigmoid)).unwrap()),
    ]
}

#[test]
fn every_method_fits_then_predicts_the_argmax_of_probabilities_that_sum_to_one() {
    let (data, split) = problem();
    for mut e in every_method() {
        let name = e.name();
        assert!(
            matches!(e.predict(&data, &split.test), Err(NasError::NotFitted(_))),
            "{name} predicted before fit"
        );
        assert_eq!(
            e.fit(&data, &split, &mut Hooks::none()).unwrap(),
            Ended::Finished
        );
        let proba = e.predict_proba(&data, &split.test).unwrap();
        let predicted = e.predict(&data, &split.test).unwrap();
        assert_eq!(proba.len(), split.test.len(), "{name}");
        for (p, &c) in proba.iter().zip(&predicted) {
            assert_eq!(p.len(), 3, "{name}");
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{name}: {p:?}");
            assert!(
                p.iter().all(|&v| v <= p[c]),
                "{name}: {c} is not the likeliest"
            );
        }
        let score = e.score(&data, &split.test).unwrap();
        let hits = split
            .test
            .iter()
            .zip(&predicted)
            .filter(|(i, p)| data.labels()[**i] == **p)
            .count();
        assert_eq!(score, hits as f64 / split.test.len() as f64, "{name}");
        let params = e.n_params().unwrap();
        assert_eq!(params == 0, name == "MDM", "{name}: {params} parameters");
        assert_eq!(
            e.genotype().is_some(),
            name.starts_with("SPDNetNAS"),
            "{name}"
        );
        let searched = name.starts_with("SPDNetNAS") || name.contains("DARTS");
        assert_eq!(e.cells().is_some(), searched, "{name}");
        if let Some(cells) = e.cells() {
            assert!(cells.to_dot().starts_with("digraph"), "{name}");
        }
    }
}

#[test]
fn invalid_settings_are_refused_before_any_work_naming_the_field() {
    let field_of = |e: NasError| match e {
        NasError::Setting { field, .. } => field,
        other => panic!("not a setting error: {other}"),
    };
    let mut train = short_training();
    train.lr = -1.0;
    let e = SpdNetClassifier::new(SpdNetParams {
        layout: SpdNetLayout::Auto,
        batch_norm: false,
        train,
        seed: 0,
    })
    .unwrap_err();
    assert_eq!(field_of(e), "train.lr");
    let mut search = short_search();
    search.warmup = 1.0;
    let params = SpdNetNasParams {
        network: NetworkSpec::default(),
        search,
        train: short_training(),
        seed: 0,
    };
    assert_eq!(
        field_of(SpdNetNasClassifier::new(params).unwrap_err()),
        "search.warmup"
    );
    let network = NetworkSpec {
        arch_normalization: spd_autograd::ops::simplex::Normalization::Sigmoid,
        ..NetworkSpec::default()
    };
    assert_eq!(
        field_of(network.check().unwrap_err()),
        "network.arch_normalization"
    );
    let network = NetworkSpec {
        layers: 4,
        reduced_dims: vec![3],
        ..NetworkSpec::default()
    };
    assert_eq!(
        field_of(network.check().unwrap_err()),
        "network.reduced_dims"
    );
    let tslr = TslrParams {
        iterations: 0,
        ..TslrParams::default()
    };
    assert_eq!(
        field_of(TslrClassifier::new(tslr).unwrap_err()),
        "iterations"
    );
}

/// Bits of every logit.
fn logit_bits(rows: &[Vec<f64>]) -> Vec<u64> {
    rows.iter().flatten().map(|v| v.to_bits()).collect()
}

#[test]
fn saved_networks_rebuild_from_their_file_to_the_same_logits() {
    let (data, split) = problem();
    for mut e in every_method() {
        let name = e.name();
        e.fit(&data, &split, &mut Hooks::none()).unwrap();
        let Ok(saved) = e.to_saved(data.class_names().to_vec(), None) else {
            assert!(matches!(name, "MDM" | "TSLR"), "{name} has no model file");
            continue;
        };
        let text = saved.to_json();
        let loaded = SavedModel::from_json(&text).unwrap().load().unwrap();
        assert_eq!(loaded.class_names, data.class_names());
        assert_eq!(
            logit_bits(&loaded.decision_function(&data, &split.test).unwrap()),
            logit_bits(&e.decision_function(&data, &split.test).unwrap()),
            "{name}"
        );
    }
}

#[test]
fn model_files_of_another_format_version_or_architecture_are_refused_clearly() {
    let message = |text: &str| match SavedModel::from_json(text).and_then(|m| m.load()) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("loaded"),
    };
    let fixture: serde_json::Value = serde_json::from_str(FIXTURE).unwrap();
    assert!(message("{\"network\": {}}").contains("not an spdnas model file"));
    let mut newer = fixture.clone();
    newer["format_version"] = (MODEL_FORMAT_VERSION + 1).into();
    newer["spdnas_version"] = "9.9.9".into();
    let m = message(&newer.to_string());
    assert!(m.contains("version 2") && m.contains("9.9.9"), "{m}");
    let mut missing = fixture.clone();
    let name = missing["parameters"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    missing["parameters"].as_object_mut().unwrap().remove(&name);
    assert!(message(&missing.to_string()).contains(&format!("{name} is missing")));
}

/// A model file written by format version 1 (`tests/data/model-v1.json`: a network of the
/// published RADAR cell at 4×4 → 2×2, 3 classes, trained 3 epochs), with the inputs and logits
/// recorded when it was written. A change that breaks loading files already written fails here.
const FIXTURE: &str = include_str!("data/model-v1.json");

#[test]
fn the_checked_in_version_1_model_file_loads_and_gives_its_recorded_logits() {
    let saved = SavedModel::from_json(FIXTURE).unwrap();
    let recorded = saved
        .provenance
        .clone()
        .expect("the fixture records its check");
    let model = saved.load().unwrap();
    let inputs: Vec<Vec<f64>> = serde_json::from_value(recorded["inputs"].clone()).unwrap();
    let expected: Vec<Vec<f64>> = serde_json::from_value(recorded["logits"].clone()).unwrap();
    let labels = (0..inputs.len()).map(|i| i % 3).collect();
    let data = Dataset::new(
        4,
        inputs.concat(),
        labels,
        saved.class_names.clone(),
        "fixture",
        &spd_data::Validation::default(),
    )
    .unwrap();
    let indices: Vec<usize> = (0..data.len()).collect();
    let logits = model.decision_function(&data, &indices).unwrap();
    for (row, want) in logits.iter().zip(&expected) {
        for (a, b) in row.iter().zip(want) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
    }
}

/// Writes the fixture above; run by hand when the format version changes:
/// `cargo test -p spd-nas --test estimator write_model_fixture -- --ignored`.
#[test]
#[ignore = "writes tests/data/model-v1.json; run by hand when the model format changes"]
fn write_model_fixture() {
    let (data, split) = problem();
    let genotype = Genotype::published("radar_sparsemax").unwrap();
    let mut e = GenotypeClassifier::new(GenotypeParams {
        network: NetworkSpec::default(),
        genotype: GenotypeChoice::Given(genotype),
        train: short_training(),
        seed: 3,
    })
    .unwrap();
    e.fit(&data, &split, &mut Hooks::none()).unwrap();
    let inputs: Vec<Vec<f64>> = split.test[..4]
        .iter()
        .map(|&i| {
            let m = data.matrix(i);
            (0..16).map(|k| m[(k % 4, k / 4)]).collect()
        })
        .collect();
    let logits = e.decision_function(&data, &split.test[..4]).unwrap();
    let check = serde_json::json!({ "inputs": inputs, "logits": logits });
    let saved = e
        .to_saved(data.class_names().to_vec(), Some(check))
        .unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/model-v1.json");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, saved.to_json()).unwrap();
}
