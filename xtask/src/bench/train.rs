//! `cargo xtask bench train`: one optimiser step of the network derived from the published
//! `radar_sparsemax` (20→10, 3 classes) and `hdm05_sparsemax` (93→30, 117 classes) genotypes at
//! batch 30, with its EVD count and EVD floor.

use spd_autograd::ParamStore;
use spd_linalg::random::seeded_rng;
use spd_nas::search::batch;
use spd_nas::train::{TrainConfig, TrainState, train_step};
use spd_nas::{Genotype, Network, NetworkConfig};

use super::floor::{EvdCounts, EvdTimer, evd_times_line};
use super::search::{StepRow, TABLE_HEADER, two_batches};
use super::{REPETITIONS, median_seconds};
use crate::report::{machine_line, update_docs_section, workspace_root, write_atomic};

fn step_time(config: &NetworkConfig, genotype: &str) -> Result<(f64, EvdCounts), String> {
    let e = |e: spd_nas::NasError| e.to_string();
    let genotype = Genotype::published(genotype).ok_or("unknown genotype")?;
    let mut rng = seeded_rng(1);
    let mut weights = ParamStore::new();
    let network = Network::derived(config, &genotype, &mut weights, &mut rng).map_err(e)?;
    let train = TrainConfig::default();
    let ids = weights.ids();
    let mut state = TrainState::new(weights, &train);
    let data = two_batches(config)?;
    let (x, y) = batch(&data, &(0..30).collect::<Vec<_>>()).map_err(e)?;
    let step = |state: &mut TrainState| {
        train_step(&network, state, x.clone(), &y, &ids, train.grad_clip).map_err(e)
    };
    let (r, counts) = EvdCounts::of(|| step(&mut state));
    r?;
    let t = median_seconds(|| {
        step(&mut state).expect("train step");
    });
    Ok((t * 1e3, counts))
}

/// Runs the benchmark, writes `target/bench/train.json` and the `train` docs section.
pub fn run() -> Result<(), String> {
    faer::set_global_parallelism(faer::Par::Seq);
    let threads = rayon::current_num_threads();
    let mut timer = EvdTimer::default();
    let mut rows = Vec::new();
    // Targets: performance round two (issue 16) for RADAR; none set for HDM05.
    for (name, config, genotype, target) in [
        (
            "RADAR 20→10, radar_sparsemax",
            NetworkConfig::radar(),
            "radar_sparsemax",
            Some(10.0),
        ),
        (
            "HDM05 93→30, hdm05_sparsemax",
            NetworkConfig::hdm05(),
            "hdm05_sparsemax",
            None,
        ),
    ] {
        let (ms, counts) = step_time(&config, genotype)?;
        let row = StepRow::new(name, ms, &counts, &mut timer, threads, target);
        eprintln!(
            "{name}: {ms:.2} ms ({} EVDs, floor {:.2} ms)",
            row.evds, row.floor_ms
        );
        rows.push(row);
    }
    let path = workspace_root().join("target/bench/train.json");
    write_atomic(
        &path,
        &serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?,
    )?;
    let body: String = rows.iter().map(StepRow::markdown).collect();
    let evd_line = evd_times_line(&timer);
    eprintln!("{evd_line}");
    let md = format!(
        "## spd-nas: one training step of a derived network, batch 30\n\n\
         {}; {threads} rayon threads. Median of {REPETITIONS} steps after a warm-up; floor as \
         above.\n\n{TABLE_HEADER}{body}\n{evd_line}\n",
        machine_line()
    );
    println!("{md}");
    let docs = update_docs_section("train", &md)?;
    eprintln!("wrote {} and {}", path.display(), docs.display());
    Ok(())
}
