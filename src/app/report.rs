//! What a run reports: the accuracies and sizes (`report.json`, a function of the
//! configuration), the wall times (`timings.json`), and the printed table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spd_nas::Genotype;

/// The part of a run that is a function of its configuration: written to `report.json` and
/// identical between an uninterrupted and a resumed run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Data description.
    pub dataset: String,
    /// Samples, matrix size, classes.
    pub samples: usize,
    /// Matrix size.
    pub n: usize,
    /// Class names.
    pub classes: Vec<String>,
    /// `(train, val, test)` sizes.
    pub split_sizes: (usize, usize, usize),
    /// How the split was made (one file split, or a given test set).
    #[serde(default)]
    pub protocol: String,
    /// The searched genotype.
    pub genotype: Genotype,
    /// The search epoch the genotype was selected after.
    #[serde(default)]
    pub search_epoch: usize,
    /// The supernet's validation accuracy at that epoch.
    #[serde(default)]
    pub search_val_accuracy: f64,
    /// Test accuracy of the derived network at its best validation epoch.
    pub test_accuracy: f64,
    /// That epoch, and its validation accuracy.
    pub best_epoch: usize,
    /// Validation accuracy at the best epoch.
    pub val_accuracy: f64,
    /// Trainable parameters of the derived network.
    pub params: usize,
    /// Test accuracy of each baseline.
    pub baselines: BTreeMap<String, f64>,
    /// Trainable parameters of each baseline (0 for MDM, the class means for TSLR excluded).
    pub baseline_params: BTreeMap<String, usize>,
}

/// Wall times (s), kept apart from the report because they vary between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Search.
    pub search_s: f64,
    /// Training of the derived network.
    pub train_s: f64,
    /// Each baseline.
    pub baselines_s: BTreeMap<String, f64>,
    /// The whole run.
    pub total_s: f64,
}

/// The comparison table printed at the end of a run.
pub fn table(report: &Report, timings: &Timings) -> String {
    let mut s = format!(
        "{} — {} samples, {}×{}, {} classes; split {}/{}/{}\nprotocol: {}\n\n",
        report.dataset,
        report.samples,
        report.n,
        report.n,
        report.classes.len(),
        report.split_sizes.0,
        report.split_sizes.1,
        report.split_sizes.2,
        report.protocol
    );
    s += &format!(
        "{:<16} {:>14} {:>12} {:>10}\n",
        "method", "test accuracy", "parameters", "time (s)"
    );
    s += &format!(
        "{:<16} {:>13.2}% {:>12} {:>10.1}\n",
        "SPDNetNAS",
        100.0 * report.test_accuracy,
        report.params,
        timings.search_s + timings.train_s
    );
    for (name, acc) in &report.baselines {
        s += &format!(
            "{:<16} {:>13.2}% {:>12} {:>10.1}\n",
            name,
            100.0 * acc,
            report.baseline_params[name],
            timings.baselines_s.get(name).copied().unwrap_or(0.0)
        );
    }
    s += &format!(
        "\nsearched genotype:\n  normal: {:?}\n  reduce: {:?}\n",
        report.genotype.normal, report.genotype.reduce
    );
    s += &format!(
        "SPDNetNAS time = search {:.1} s + training {:.1} s; total run {:.1} s\n",
        timings.search_s, timings.train_s, timings.total_s
    );
    s
}
