//! Numerical robustness of whole networks on the spectra real covariances have: a cluster of
//! equal smallest eigenvalues (low rank plus a ridge) and condition numbers up to 1e8, at every
//! size from 3 to 100, odd and even, with default and other reductions, in both search spaces.

use proptest::prelude::*;
use spd_autograd::layers::ForwardCtx;
use spd_autograd::ops::loss::cross_entropy;
use spd_autograd::{Graph, ParamStore, Tensor};
use spd_linalg::random::{seeded_rng, spd_with_spectrum};
use spd_nas::search::{Order, Search, SearchConfig};
use spd_nas::space::SpaceVersion;
use spd_nas::{ArchParams, Network, NetworkConfig};

/// `count` matrices of size `n`: `rank` eigenvalues log-uniform in `[1, 10]`, the other
/// `n − rank` all equal to `10/κ` (a repeated smallest eigenvalue), random eigenvectors.
fn low_rank_batch(n: usize, rank: usize, kappa: f64, count: usize, seed: u64) -> Tensor {
    let mut rng = seeded_rng(seed);
    let mats: Vec<_> = (0..count)
        .map(|_| {
            let mut spectrum: Vec<f64> = (0..n)
                .map(|i| {
                    if i < n - rank {
                        10.0 / kappa
                    } else {
                        10f64.powf(rand::Rng::random::<f64>(&mut rng))
                    }
                })
                .collect();
            spectrum.sort_by(f64::total_cmp);
            spd_with_spectrum(&spectrum, &mut rng)
        })
        .collect();
    let views: Vec<_> = mats.iter().map(|m| m.as_ref()).collect();
    Tensor::from_matrices(1, &views).unwrap()
}

fn all_spd(t: &Tensor) -> Result<(), TestCaseError> {
    for k in 0..t.count() {
        spd_linalg::check_spd(t.mat(k))
            .map_err(|e| TestCaseError::fail(format!("matrix {k}: {e}")))?;
    }
    Ok(())
}

fn case() -> impl Strategy<Value = (usize, usize, usize, f64, bool, u64)> {
    (
        3usize..=100,
        0.0f64..1.0,
        0.05f64..0.95,
        2.0f64..8.0,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(n, reduce, rank, log_kappa, v1, seed)| {
            // half the cases reduce to ⌈n/2⌉ (the default), the others anywhere in 2..=n
            let m = if seed % 2 == 0 {
                n.div_ceil(2)
            } else {
                2 + ((n - 2) as f64 * reduce) as usize
            };
            let r = ((n as f64 * rank) as usize).clamp(1, n);
            (n, m, r, 10f64.powf(log_kappa), v1, seed)
        })
}

proptest! {
    // 16 cases from the gradient checks' fixed seed: each case is a whole supernet
    #![proptest_config(ProptestConfig { cases: 16, ..spd_autograd::gradcheck::config() })]

    /// Forward, backward and one first-order search step of a random supernet on low-rank,
    /// ill-conditioned inputs: every node SPD, logits, loss and gradients finite, and the
    /// stepped weights and α finite.
    #[test]
    fn supernet_stays_spd_and_finite_on_low_rank_inputs((n, m, rank, kappa, v1, seed) in case()) {
        let mut config = NetworkConfig::paper(n, m, 3);
        config.spec.space = if v1 { SpaceVersion::V1 } else { SpaceVersion::V0 };
        let mut rng = seeded_rng(seed);
        let mut store = ParamStore::new();
        let net = Network::supernet(&config, &mut store, &mut rng).unwrap();
        let arch = ArchParams::new(
            config.edges(),
            config.search_space().width(),
            config.spec.arch_normalization,
            &mut rng,
        )
        .unwrap();
        let x = low_rank_batch(n, rank, kappa, 3, seed ^ 1);
        let y = vec![0, 1, 2];
        let mut g = Graph::new();
        let xv = g.constant(x.clone());
        let trace = net
            .forward_traced(&mut g, &store, Some(&arch), &mut ForwardCtx::train(), xv)
            .map_err(|e| TestCaseError::fail(format!("forward: {e}")))?;
        for node in &trace.nodes {
            all_spd(g.value(*node))?;
        }
        prop_assert!(g.value(trace.logits).is_finite());
        let loss = cross_entropy(&mut g, trace.logits, &y).unwrap();
        prop_assert!(g.value(loss).is_finite());
        let grads = g.backward(loss).map_err(|e| TestCaseError::fail(format!("backward: {e}")))?;
        for (id, t) in grads.params() {
            prop_assert!(t.is_finite(), "gradient of parameter {id:?}");
        }
        let mut search = Search::new(
            net,
            store,
            arch,
            SearchConfig {
                order: Order::First,
                ..SearchConfig::default()
            },
        );
        let val = low_rank_batch(n, rank, kappa, 3, seed ^ 2);
        search
            .step((&x, &y), (&val, &y))
            .map_err(|e| TestCaseError::fail(format!("search step: {e}")))?;
        for id in search.weights.ids() {
            prop_assert!(search.weights.get(id).unwrap().value.is_finite());
        }
        for id in search.arch.store.ids() {
            prop_assert!(search.arch.store.get(id).unwrap().value.is_finite());
        }
    }
}
