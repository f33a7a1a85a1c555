//! How hard the synthetic RADAR is at a range of SNRs: the held-out accuracy of a
//! log-Euclidean nearest-class-mean classifier on the 20×20 window covariances (stratified
//! 50/25/25 split, test part). Used to choose `DEFAULT_SNR_DB`; see docs/data.md.
//!
//! `cargo run --release -p spd-data --example radar_difficulty`

use spd_data::radar::{RadarConfig, radar_dataset};
use spd_data::split::{SplitFractions, stratified_split};
use spd_linalg::faer::Mat;
use spd_linalg::logm;

fn main() {
    for snr in [10.0, 5.0, 0.0, -3.0, -6.0, -10.0] {
        let per_class = std::env::args()
            .nth(1)
            .and_then(|a| a.parse().ok())
            .unwrap_or(1000);
        let gain = std::env::args()
            .nth(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(RadarConfig::default().blade_gain);
        let config = RadarConfig {
            snr_db: snr,
            per_class,
            blade_gain: gain,
            ..Default::default()
        };
        let d = radar_dataset(&config, 0).expect("generated data is valid");
        let split = stratified_split(d.labels(), SplitFractions::default(), 0);
        let logs: Vec<Mat<f64>> = (0..d.len())
            .map(|i| logm(d.matrix(i)).expect("SPD"))
            .collect();
        let k = d.num_classes();
        let mut means = vec![Mat::<f64>::zeros(d.n(), d.n()); k];
        let mut counts = vec![0usize; k];
        for &i in &split.train {
            means[d.labels()[i]] += &logs[i];
            counts[d.labels()[i]] += 1;
        }
        for (m, c) in means.iter_mut().zip(&counts) {
            *m = faer::Scale(1.0 / *c as f64) * &*m;
        }
        let hits = split
            .test
            .iter()
            .filter(|&&i| {
                let best = (0..k)
                    .min_by(|&a, &b| {
                        (&logs[i] - &means[a])
                            .norm_l2()
                            .total_cmp(&(&logs[i] - &means[b]).norm_l2())
                    })
                    .expect("classes");
                best == d.labels()[i]
            })
            .count();
        println!(
            "SNR {snr:>5.1} dB: nearest log-Euclidean mean {:.1} % on {} test samples",
            100.0 * hits as f64 / split.test.len() as f64,
            split.test.len()
        );
    }
}
