//! `cargo xtask bench search`: one supernet search step (architecture step + network step) at
//! batch 30 on RADAR shapes (20→10, 3 classes; first and second order) and HDM05 shapes
//! (93→30, 117 classes; first order), with the number of EVDs per step.

use serde::Serialize;
use spd_autograd::ParamStore;
use spd_data::gaussian::{GaussianConfig, generate_gaussian};
use spd_linalg::evd_count;
use spd_linalg::random::seeded_rng;
use spd_nas::search::{Order, Search, SearchConfig, batch};
use spd_nas::{ArchParams, Network, NetworkConfig};

use super::median_seconds;
use crate::report::{machine_line, update_docs_section, workspace_root, write_atomic};

#[derive(Serialize)]
struct Report {
    radar_first_order_ms: f64,
    radar_second_order_ms: f64,
    hdm05_first_order_ms: f64,
    evds_per_radar_first_order_step: u64,
    evds_per_radar_second_order_step: u64,
    evds_per_hdm05_first_order_step: u64,
    threads: usize,
}

/// Median step time (ms) and EVDs of one step.
fn step_time(config: &NetworkConfig, order: Order) -> Result<(f64, u64), String> {
    let e = |e: spd_nas::NasError| e.to_string();
    let mut rng = seeded_rng(1);
    let mut weights = ParamStore::new();
    let network = Network::supernet(config, &mut weights, &mut rng).map_err(e)?;
    let arch = ArchParams::new(
        config.edges(),
        config.search_space().width(),
        config.arch_normalization,
        &mut rng,
    )
    .map_err(e)?;
    let mut search = Search::new(
        network,
        weights,
        arch,
        SearchConfig {
            order,
            ..Default::default()
        },
    );
    let per_class = 60usize.div_ceil(config.num_classes);
    let data = generate_gaussian(
        &GaussianConfig {
            n: config.input_dim,
            classes: config.num_classes,
            per_class,
            ..Default::default()
        },
        2,
    )
    .map_err(|e| e.to_string())?;
    let (tx, ty) = batch(&data, &(0..30).collect::<Vec<_>>()).map_err(e)?;
    let (vx, vy) = batch(&data, &(30..60).collect::<Vec<_>>()).map_err(e)?;
    let before = evd_count();
    search.step((&tx, &ty), (&vx, &vy)).map_err(e)?;
    let evds = evd_count() - before;
    let t = median_seconds(|| {
        search.step((&tx, &ty), (&vx, &vy)).expect("search step");
    });
    Ok((t * 1e3, evds))
}

/// Runs the benchmark, writes `target/bench/search.json` and the `search` docs section.
pub fn run() -> Result<(), String> {
    faer::set_global_parallelism(faer::Par::Seq);
    let threads = rayon::current_num_threads();
    let (r1, e1) = step_time(&NetworkConfig::radar(), Order::First)?;
    eprintln!("RADAR first order: {r1:.1} ms");
    let (r2, e2) = step_time(&NetworkConfig::radar(), Order::Second)?;
    eprintln!("RADAR second order: {r2:.1} ms");
    let (h1, e3) = step_time(&NetworkConfig::hdm05(), Order::First)?;
    eprintln!("HDM05 first order: {h1:.1} ms");
    let report = Report {
        radar_first_order_ms: r1,
        radar_second_order_ms: r2,
        hdm05_first_order_ms: h1,
        evds_per_radar_first_order_step: e1,
        evds_per_radar_second_order_step: e2,
        evds_per_hdm05_first_order_step: e3,
        threads,
    };
    let path = workspace_root().join("target/bench/search.json");
    write_atomic(
        &path,
        &serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
    )?;
    let md = format!(
        "## spd-nas: one search step (architecture step + network step), batch 30\n\n{}; {threads} rayon threads. Median of 7 steps after a warm-up.\n\n\
         | step | time (ms) | EVDs per step | official code (spec, same cores) | target |\n|---|---:|---:|---:|---:|\n\
         | RADAR 20→10, first order | {r1:.1} | {e1} | ~5 300 | ≤ 50 |\n\
         | RADAR 20→10, second order | {r2:.1} | {e2} | ~12 000 | ≤ 120 |\n\
         | HDM05 93→30, first order | {h1:.1} | {e3} | ~24 000 | ≤ 500 |\n",
        machine_line()
    );
    println!("{md}");
    let docs = update_docs_section("search", &md)?;
    eprintln!("wrote {} and {}", path.display(), docs.display());
    Ok(())
}
