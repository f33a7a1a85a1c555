//! A short search on a problem that only the BiMap family of reduction ops can solve moves α
//! towards that family; searches and derivations are deterministic.

use spd_autograd::{ParamStore, Tensor};
use spd_data::split::{SplitFractions, stratified_split};
use spd_data::{Dataset, Validation};
use spd_linalg::faer::Mat;
use spd_linalg::random::{random_symmetric, seeded_rng};
use spd_nas::schedule::{LrSchedule, WeightOptimizer};
use spd_nas::search::{EpochLog, GenotypeSelection, Order, Search, SearchConfig};
use spd_nas::{ArchParams, Genotype, Network, NetworkConfig};

/// `X = exp(σ S + a_c u uᵀ)` with `u_i = (−1)^i/√n` (a checkerboard direction) and
/// `a_c ∈ {−1.5, 0, 1.5}`. Log-domain 2×2 average pooling maps `u uᵀ` to exactly zero, max
/// pooling cannot tell `a` from `−a`, and `none` keeps nothing; BiMaps can keep the direction.
fn checkerboard(n: usize, per_class: usize, seed: u64) -> Dataset {
    let mut rng = seeded_rng(seed);
    let u: Vec<f64> = (0..n)
        .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 } / (n as f64).sqrt())
        .collect();
    let mut matrices = Vec::new();
    let mut labels = Vec::new();
    for i in 0..3 * per_class {
        let c = i % 3;
        let a = [-1.5, 0.0, 1.5][c];
        let s = random_symmetric(n, &mut rng);
        let l = Mat::from_fn(n, n, |r, q| {
            0.3 / (n as f64).sqrt() * s[(r, q)] + a * u[r] * u[q]
        });
        let x = spd_linalg::expm(l.as_ref()).unwrap();
        for q in 0..n {
            for r in 0..n {
                matrices.push(x[(r, q)]);
            }
        }
        labels.push(c);
    }
    Dataset::new(
        n,
        matrices,
        labels,
        vec!["neg".into(), "zero".into(), "pos".into()],
        "checkerboard",
        &Validation::default(),
    )
    .unwrap()
}

fn config() -> NetworkConfig {
    let mut config = NetworkConfig::paper(8, 4, 3);
    config.spec.layers = 1;
    config.spec.steps = 1;
    config
}

fn run(epochs: usize) -> (Search, Vec<Vec<f64>>) {
    run_logged(epochs).0
}

fn run_logged(epochs: usize) -> ((Search, Vec<Vec<f64>>), Vec<String>) {
    run_with(SearchConfig {
        epochs,
        order: Order::First,
        arch_lr: 3e-3,
        seed: 1,
        ..Default::default()
    })
}

/// The quick preset's departures from the paper: Riemannian Adam, warm-up and cosine schedule,
/// a step budget, a cap on skips.
fn quick_style(epochs: usize, warmup: f64) -> SearchConfig {
    SearchConfig {
        epochs,
        min_steps: 0,
        warmup,
        optimizer: WeightOptimizer::Adam,
        lr: 0.01,
        schedule: LrSchedule::Cosine { warmup: 0.05 },
        max_skips: Some(1),
        order: Order::First,
        arch_lr: 3e-3,
        seed: 1,
        ..Default::default()
    }
}

fn run_with(search_config: SearchConfig) -> ((Search, Vec<Vec<f64>>), Vec<String>) {
    let epochs = search_config.epochs;
    let config = config();
    let mut rng = seeded_rng(3);
    let mut weights = ParamStore::new();
    let network = Network::supernet(&config, &mut weights, &mut rng).unwrap();
    // square BiMaps (stem, preprocessing) start at the identity so the reduction edges see the
    // checkerboard in the input's own basis
    let ids: Vec<_> = weights
        .iter()
        .filter(|(_, p)| p.name.ends_with("bimap.w") && p.value.rows() == p.value.cols())
        .map(|(id, _)| id)
        .collect();
    for id in ids {
        let p = weights.get_mut(id).unwrap();
        let [a, b, n, _] = p.value.shape();
        p.value = Tensor::identities(a, b, n);
    }
    let arch = ArchParams::new(
        config.edges(),
        config.search_space().width(),
        config.spec.arch_normalization,
        &mut rng,
    )
    .unwrap();
    let initial = arch.weights(true);
    let mut search = Search::new(network, weights, arch, search_config);
    let data = checkerboard(8, 100, 9);
    let split = stratified_split(data.labels(), SplitFractions::default(), 0);
    let mut lines = Vec::new();
    for epoch in 0..epochs {
        let log = search.search_epoch(&data, &split, |_, _| {}).unwrap();
        eprintln!(
            "epoch {epoch}: train {:.3} val {:.3}",
            log.train_accuracy, log.val_accuracy
        );
        lines.push(log.to_json_line());
    }
    ((search, initial), lines)
}

fn mass(rows: &[Vec<f64>], columns: &[usize]) -> f64 {
    rows.iter()
        .map(|r| columns.iter().map(|&c| r[c]).sum::<f64>())
        .sum()
}

#[test]
fn search_moves_alpha_towards_the_bimap_family() {
    let (search, initial) = run(15);
    let space = config().search_space();
    let col = |name: &str| space.reduced.iter().position(|p| p.name == name).unwrap();
    let bimaps = [
        col("BiMap_1_reduced"),
        col("BiMap_2_reduced"),
        col("Skip_reduced"),
    ];
    let pools = [col("AvgPooling2_reduced"), col("MaxPooling_reduced")];
    let now = search.arch.weights(true);
    let (b0, b1) = (mass(&initial, &bimaps), mass(&now, &bimaps));
    let (p0, p1) = (mass(&initial, &pools), mass(&now, &pools));
    eprintln!("BiMap family {b0:.4} → {b1:.4}; pooling {p0:.4} → {p1:.4}");
    assert!(b1 > b0 + 0.05, "BiMap family weight {b0:.4} → {b1:.4}");
    assert!(p1 < p0, "pooling weight {p0:.4} → {p1:.4}");
    let genotype = search.genotype().unwrap();
    assert!(
        genotype.reduce.iter().all(|(op, _)| [
            "BiMap_1_reduced",
            "BiMap_2_reduced",
            "Skip_reduced"
        ]
        .contains(&op.as_str())),
        "{genotype:?}"
    );
}

#[test]
fn search_and_derivation_are_deterministic() {
    let on = |threads: usize| rayon_pool(threads).install(|| run_logged(1));
    let ((a, _), log_a) = on(1);
    let ((b, _), log_b) = on(2);
    let strip = |l: &str| {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        v.as_object_mut().unwrap().remove("elapsed_s");
        v
    };
    assert_eq!(
        strip(&log_a[0]),
        strip(&log_b[0]),
        "1 and 2 threads log the same epoch"
    );
    for key in [
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "genotype",
        "alpha_normal",
        "alpha_reduce",
        "elapsed_s",
    ] {
        assert!(
            strip(&log_a[0]).get(key).is_some() || key == "elapsed_s",
            "{key}"
        );
    }
    let bits = |s: &Search| {
        s.arch
            .weights(false)
            .into_iter()
            .chain(s.arch.weights(true))
            .flatten()
            .map(f64::to_bits)
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&a), bits(&b));
    assert_eq!(a.genotype().unwrap(), b.genotype().unwrap());
    assert_eq!(Genotype::derive(&a.arch, &config()), a.genotype().unwrap());
}

fn rayon_pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn logs(lines: &[String]) -> Vec<EpochLog> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn warmup_epochs_leave_alpha_unchanged_and_are_never_selected() {
    // 3 epochs, warm-up ⌈0.5 · 3⌉ = 2 epochs
    let ((search, initial), lines) = run_with(quick_style(3, 0.5));
    let logs = logs(&lines);
    assert_eq!(
        logs.iter().map(|l| l.arch_moved).collect::<Vec<_>>(),
        [false, false, true]
    );
    for l in &logs[..2] {
        assert_eq!(
            l.alpha_reduce, initial,
            "α moved in warm-up epoch {}",
            l.epoch
        );
    }
    assert_ne!(logs[2].alpha_reduce, initial);
    assert_eq!(search.selected().unwrap().epoch, 2);
    assert_eq!(
        logs.iter().map(|l| l.selected_epoch).collect::<Vec<_>>(),
        [None, None, Some(2)]
    );
}

#[test]
fn best_selection_keeps_the_epoch_with_the_best_validation_and_last_keeps_the_last() {
    let ((search, _), lines) = run_with(quick_style(5, 0.0));
    let logs = logs(&lines);
    let best = logs
        .iter()
        .fold(None::<&EpochLog>, |b, l| match b {
            Some(b)
                if b.val_accuracy > l.val_accuracy
                    || (b.val_accuracy == l.val_accuracy && b.val_loss <= l.val_loss) =>
            {
                Some(b)
            }
            _ => Some(l),
        })
        .unwrap();
    let selected = search.selected().unwrap();
    assert_eq!(selected.epoch, best.epoch);
    assert_eq!(selected.genotype, best.genotype);
    assert_eq!(selected.val_accuracy, best.val_accuracy);
    let mut last = search.clone();
    last.config.selection = GenotypeSelection::Last;
    assert_eq!(last.selected().unwrap().epoch, 4);
    assert_eq!(last.selected().unwrap().genotype, logs[4].genotype);
}

#[test]
fn quick_style_search_is_bit_identical_on_one_and_two_threads() {
    let on = |threads: usize| rayon_pool(threads).install(|| run_with(quick_style(2, 0.5)));
    let ((a, _), log_a) = on(1);
    let ((b, _), log_b) = on(2);
    let strip = |l: &str| {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        v.as_object_mut().unwrap().remove("elapsed_s");
        v
    };
    assert_eq!(log_a.len(), 2);
    assert_eq!(log_a.len(), log_b.len());
    for (x, y) in log_a.iter().zip(&log_b) {
        assert_eq!(strip(x), strip(y));
    }
    assert_eq!(
        serde_json::to_string(&a.weights).unwrap(),
        serde_json::to_string(&b.weights).unwrap()
    );
    assert_eq!(a.selected(), b.selected());
}
