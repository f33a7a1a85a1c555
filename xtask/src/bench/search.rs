//! `cargo xtask bench search`: one supernet search step (architecture step + network step) at
//! batch 30 on RADAR shapes (20→10, 3 classes; first and second order) and HDM05 shapes
//! (93→30, 117 classes; first order), the DARTS and FairDARTS baselines' search steps on the
//! same RADAR batches (small layout, log-matrix images), and one full first-order search epoch
//! on the synthetic RADAR (1500 training / 750 validation samples), each with its EVD count
//! and EVD floor.

use serde::Serialize;
use spd_data::Dataset;
use spd_data::gaussian::{GaussianConfig, generate_gaussian};
use spd_data::radar::{RadarConfig, radar_dataset};
use spd_data::split::{SplitFractions, stratified_split};
use spd_nas::NetworkConfig;
use spd_nas::darts::DartsConfig;
use spd_nas::search::{Order, Search, SearchConfig, batch};
use spd_nas::supernet::Supernet;

use super::floor::{EvdCounts, EvdTimer, evd_times_line};
use super::{REPETITIONS, median_seconds};
use crate::report::{machine_line, update_docs_section, workspace_root, write_atomic};

/// One measured step: median time, EVDs, floor and ratio.
#[derive(Serialize, Clone)]
pub struct StepRow {
    /// What was timed.
    pub case: String,
    /// Median milliseconds.
    pub ms: f64,
    /// EVDs per step.
    pub evds: u64,
    /// EVD floor in milliseconds.
    pub floor_ms: f64,
    /// `ms / floor_ms`.
    pub ratio: f64,
    /// Target in milliseconds, if the issue sets one.
    pub target_ms: Option<f64>,
}

impl StepRow {
    /// A row from a time, the step's EVD counts and the timer of this run.
    pub fn new(
        case: &str,
        ms: f64,
        counts: &EvdCounts,
        timer: &mut EvdTimer,
        threads: usize,
        target_ms: Option<f64>,
    ) -> Self {
        let floor_ms = timer.floor_ms(counts, threads);
        Self {
            case: case.into(),
            ms,
            evds: counts.total(),
            floor_ms,
            ratio: ms / floor_ms,
            target_ms,
        }
    }

    /// A Markdown table row.
    pub fn markdown(&self) -> String {
        let target = self.target_ms.map_or("—".into(), |t| format!("≤ {t:.0}"));
        format!(
            "| {} | {:.1} | {} | {:.1} | {:.2} | {target} |\n",
            self.case, self.ms, self.evds, self.floor_ms, self.ratio
        )
    }
}

/// Header of a step table.
pub const TABLE_HEADER: &str = "| step | time (ms) | EVDs | EVD floor (ms) | time / floor | target (ms) |\n|---|---:|---:|---:|---:|---:|\n";

#[derive(Serialize)]
struct Report {
    radar_first_order_ms: f64,
    radar_second_order_ms: f64,
    hdm05_first_order_ms: f64,
    evds_per_radar_first_order_step: u64,
    evds_per_radar_second_order_step: u64,
    evds_per_hdm05_first_order_step: u64,
    darts_first_order_ms: f64,
    fairdarts_first_order_ms: f64,
    radar_epoch_first_order_s: f64,
    threads: usize,
    rows: Vec<StepRow>,
}

fn search_config(order: Order) -> SearchConfig {
    SearchConfig {
        order,
        ..Default::default()
    }
}

fn new_search(config: &NetworkConfig, order: Order) -> Result<Search, String> {
    Search::supernet(config, search_config(order), 1).map_err(|e| e.to_string())
}

/// Sixty seeded samples of `config`'s input shape: two batches of 30.
pub fn two_batches(config: &NetworkConfig) -> Result<Dataset, String> {
    let per_class = 60usize.div_ceil(config.num_classes);
    generate_gaussian(
        &GaussianConfig {
            n: config.input_dim,
            classes: config.num_classes,
            per_class,
            ..Default::default()
        },
        2,
    )
    .map_err(|e| e.to_string())
}

/// Median step time (ms) of `search` on two batches of `config`'s shape, and the EVDs of one
/// step.
fn step_time<N: Supernet>(
    mut search: Search<N>,
    config: &NetworkConfig,
) -> Result<(f64, EvdCounts), String> {
    let e = |e: spd_nas::NasError| e.to_string();
    let data = two_batches(config)?;
    let (tx, ty) = batch(&data, &(0..30).collect::<Vec<_>>()).map_err(e)?;
    let (vx, vy) = batch(&data, &(30..60).collect::<Vec<_>>()).map_err(e)?;
    let (r, counts) = EvdCounts::of(|| search.step((&tx, &ty), (&vx, &vy)));
    r.map_err(e)?;
    let t = median_seconds(|| {
        search.step((&tx, &ty), (&vx, &vy)).expect("search step");
    });
    Ok((t * 1e3, counts))
}

/// Median seconds of one first-order search epoch (50 steps + validation) on the synthetic
/// RADAR, and its EVDs; fewer repetitions than a step, each epoch being seconds long.
fn epoch_time() -> Result<(f64, EvdCounts), String> {
    let data = radar_dataset(&RadarConfig::default(), 0).map_err(|e| e.to_string())?;
    let split = stratified_split(data.labels(), SplitFractions::default(), 0);
    let mut search = new_search(&NetworkConfig::radar(), Order::First)?;
    let run = |search: &mut Search| {
        let r = search.search_epoch(&data, &split, |_, _| {});
        r.map(|_| ()).map_err(|e| e.to_string())
    };
    let (r, counts) = EvdCounts::of(|| run(&mut search));
    r?;
    let mut times = Vec::new();
    for _ in 0..REPETITIONS.min(5) {
        let start = std::time::Instant::now();
        run(&mut search)?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], counts))
}

/// Runs the benchmark, writes `target/bench/search.json` and the `search` docs section.
pub fn run() -> Result<(), String> {
    faer::set_global_parallelism(faer::Par::Seq);
    let threads = rayon::current_num_threads();
    let mut timer = EvdTimer::default();
    let mut rows = Vec::new();
    let cases = [
        (
            "RADAR 20→10, first order",
            NetworkConfig::radar(),
            Order::First,
            80.0,
        ),
        (
            "RADAR 20→10, second order",
            NetworkConfig::radar(),
            Order::Second,
            200.0,
        ),
        (
            "HDM05 93→30, first order",
            NetworkConfig::hdm05(),
            Order::First,
            1200.0,
        ),
    ];
    for (name, config, order, target) in cases {
        let (ms, counts) = step_time(new_search(&config, order)?, &config)?;
        let row = StepRow::new(name, ms, &counts, &mut timer, threads, Some(target));
        eprintln!(
            "{name}: {ms:.1} ms ({} EVDs, floor {:.1} ms)",
            row.evds, row.floor_ms
        );
        rows.push(row);
    }
    let radar = NetworkConfig::radar();
    let darts = DartsConfig::small(radar.input_dim, radar.num_classes);
    let darts_cases = [
        (
            "DARTS, small layout on 20×20 log-matrices, first order",
            darts.clone(),
        ),
        (
            "FairDARTS, small layout on 20×20 log-matrices, first order",
            darts.fair(),
        ),
    ];
    for (name, config) in darts_cases {
        let search =
            Search::darts(&config, search_config(Order::First), 1).map_err(|e| e.to_string())?;
        let (ms, counts) = step_time(search, &radar)?;
        let row = StepRow::new(name, ms, &counts, &mut timer, threads, None);
        eprintln!("{name}: {ms:.1} ms");
        rows.push(row);
    }
    let (epoch_s, counts) = epoch_time()?;
    let epoch_row = StepRow::new(
        "RADAR search epoch, first order (50 steps + validation of 750)",
        epoch_s * 1e3,
        &counts,
        &mut timer,
        threads,
        Some(6000.0),
    );
    eprintln!("RADAR epoch: {epoch_s:.2} s");
    rows.push(epoch_row);
    let report = Report {
        radar_first_order_ms: rows[0].ms,
        radar_second_order_ms: rows[1].ms,
        hdm05_first_order_ms: rows[2].ms,
        evds_per_radar_first_order_step: rows[0].evds,
        evds_per_radar_second_order_step: rows[1].evds,
        evds_per_hdm05_first_order_step: rows[2].evds,
        darts_first_order_ms: rows[3].ms,
        fairdarts_first_order_ms: rows[4].ms,
        radar_epoch_first_order_s: epoch_s,
        threads,
        rows: rows.clone(),
    };
    let path = workspace_root().join("target/bench/search.json");
    write_atomic(
        &path,
        &serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
    )?;
    let body: String = rows.iter().map(StepRow::markdown).collect();
    let evd_line = evd_times_line(&timer);
    eprintln!("{evd_line}");
    let md = format!(
        "## spd-nas: search steps (architecture step + network step, batch 30) and a search epoch\n\n\
         {}; {threads} rayon threads. Median of {REPETITIONS} steps (5 epochs) after a warm-up. \
         EVD floor = Σₙ (EVDs of size n) × (one sequential n×n EVD, measured in this run) ÷ threads. \
         The official code takes ~5 300 ms (first order) and ~12 000 ms (second order) per RADAR step \
         and ~24 000 ms per HDM05 step on these cores (the figures of the project's first performance issue). The epoch target is the issue's \
         100-epoch search in 10 minutes. The DARTS rows time the Euclidean baselines' supernet \
         (C = 8, 3 cells, eight candidates per edge; its only EVDs are the log-matrix images) on \
         the same batches.\n\n{TABLE_HEADER}{body}\n\
         100 first-order RADAR search epochs at this rate: {:.1} min. {evd_line}\n",
        machine_line(),
        epoch_s * 100.0 / 60.0
    );
    println!("{md}");
    let docs = update_docs_section("search", &md)?;
    eprintln!("wrote {} and {}", path.display(), docs.display());
    Ok(())
}
