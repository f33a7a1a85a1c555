//! End-to-end checks of the linear-algebra layer through the `spdnas` facade.

use spdnas::linalg::batch::matrix;
use spdnas::linalg::random::{random_spd, seeded_rng};
use spdnas::linalg::{Exp, Log, distance, spectral_batch};

/// A batch goes through log then exp and comes back; each matrix sits at distance
/// `‖log X‖_F` from the identity.
#[test]
fn batched_log_exp_round_trip_through_the_facade() {
    let (n, count) = (8, 25);
    let mut rng = seeded_rng(1);
    let mats: Vec<_> = (0..count).map(|_| random_spd(n, &mut rng)).collect();
    let data: Vec<f64> = mats
        .iter()
        .flat_map(|m| (0..n).flat_map(move |j| (0..n).map(move |i| m[(i, j)])))
        .collect();
    let (logs, _) = spectral_batch(&Log, &data, n).unwrap();
    let (back, _) = spectral_batch(&Exp, &logs, n).unwrap();
    let id = spdnas::linalg::faer::Mat::<f64>::identity(n, n);
    for (k, m) in mats.iter().enumerate() {
        let err = (matrix(&back, n, k).to_owned() - m).norm_l2();
        assert!(err <= 1e-12 * m.norm_l2(), "matrix {k}: {err}");
        let d = distance(id.as_ref(), m.as_ref()).unwrap();
        assert!((d - matrix(&logs, n, k).norm_l2()).abs() <= 1e-10 * d);
    }
}
