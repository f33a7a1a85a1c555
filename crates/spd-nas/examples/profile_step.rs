//! Runs RADAR-shaped supernet search steps in a loop, for profilers:
//! `cargo run --release -p spd-nas --example profile_step -- [spd|darts|fairdarts] [first|second] [steps]`.

use spd_data::gaussian::{GaussianConfig, generate_gaussian};
use spd_nas::NetworkConfig;
use spd_nas::darts::DartsConfig;
use spd_nas::search::{Order, Search, SearchConfig, batch};
use spd_nas::supernet::Supernet;

/// The allocator of the `spdnas` binary, so the profile shows what the CLI runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn run<N: Supernet>(mut search: Search<N>, steps: usize) {
    let data = generate_gaussian(
        &GaussianConfig {
            n: 20,
            classes: 3,
            per_class: 20,
            ..Default::default()
        },
        2,
    )
    .unwrap();
    let (tx, ty) = batch(&data, &(0..30).collect::<Vec<_>>()).unwrap();
    let (vx, vy) = batch(&data, &(30..60).collect::<Vec<_>>()).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..steps {
        search.step((&tx, &ty), (&vx, &vy)).unwrap();
    }
    println!(
        "{:.1} ms per step",
        start.elapsed().as_secs_f64() * 1e3 / steps as f64
    );
}

fn main() {
    faer::set_global_parallelism(faer::Par::Seq);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let order = if args.get(1).map(String::as_str) == Some("second") {
        Order::Second
    } else {
        Order::First
    };
    let steps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20);
    let config = SearchConfig {
        order,
        ..Default::default()
    };
    let darts = DartsConfig::small(20, 3);
    match args.first().map(String::as_str).unwrap_or("spd") {
        "darts" => run(Search::darts(&darts, config, 1).unwrap(), steps),
        "fairdarts" => run(Search::darts(&darts.fair(), config, 1).unwrap(), steps),
        _ => run(
            Search::supernet(&NetworkConfig::radar(), config, 1).unwrap(),
            steps,
        ),
    }
}
