//! Synthetic multichannel recordings in the manner of EEG/BCI trials: a fixed linear mixing of
//! latent sources with a power-law spectrum of gains (so covariances are ill-conditioned),
//! class-specific power of a few sources, per-trial power fluctuations of every source, AR(1)
//! temporal correlation and sensor noise. Short trials (`samples < channels`) give
//! rank-deficient sample covariances, as short EEG windows do.

use serde::{Deserialize, Serialize};
use spd_linalg::random::{gaussian, seeded_rng};

use crate::ts::TimeSeriesSet;

/// A mixed-source problem.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SourcesConfig {
    /// Sensor channels (= latent sources).
    pub channels: usize,
    /// Time samples per trial.
    pub samples: usize,
    /// Number of classes.
    pub classes: usize,
    /// Trials per class.
    pub per_class: usize,
    /// Exponent `p` of the source gains `g_j = (j + 1)^(−p)`.
    pub gain_decay: f64,
    /// Sources whose power depends on the class.
    pub discriminative: usize,
    /// Standard deviation of a class's log-power change of each discriminative source.
    pub class_effect: f64,
    /// Standard deviation of the per-trial log-power fluctuation of every source.
    pub trial_jitter: f64,
    /// AR(1) coefficient of every source.
    pub ar: f64,
    /// Sensor-noise standard deviation (relative to the strongest source).
    pub noise: f64,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            channels: 32,
            samples: 24,
            classes: 8,
            per_class: 80,
            gain_decay: 1.5,
            discriminative: 8,
            class_effect: 1.0,
            trial_jitter: 0.5,
            ar: 0.7,
            noise: 0.01,
        }
    }
}

/// Samples the problem: `per_class` trials of every class, classes cycling, as a time-series
/// set (`series[i][channel][t]`) with classes named `class0…`.
pub fn generate_sources(config: &SourcesConfig, seed: u64) -> TimeSeriesSet {
    let (c, t) = (config.channels, config.samples);
    let mut rng = seeded_rng(seed);
    let mixing = gaussian(c, c, &mut rng);
    let gains: Vec<f64> = (0..c)
        .map(|j| ((j + 1) as f64).powf(-config.gain_decay))
        .collect();
    let effects = gaussian(config.classes, config.discriminative.min(c), &mut rng);
    // the discriminative sources are spread over the spectrum: every (c / d)-th source
    let stride = (c / config.discriminative.max(1)).max(1);
    let total = config.classes * config.per_class;
    let mut series = Vec::with_capacity(total);
    let mut labels = Vec::with_capacity(total);
    for i in 0..total {
        let class = i % config.classes;
        let jitter = gaussian(c, 1, &mut rng);
        let scale: Vec<f64> = (0..c)
            .map(|j| {
                let mut log_power = config.trial_jitter * jitter[(j, 0)];
                if j % stride == 0 && j / stride < effects.ncols() {
                    log_power += config.class_effect * effects[(class, j / stride)];
                }
                (gains[j] * log_power.exp()).sqrt()
            })
            .collect();
        let innovations = gaussian(c, t, &mut rng);
        let noise = gaussian(c, t, &mut rng);
        let mut sources = vec![vec![0.0; t]; c];
        let stationary = (1.0 - config.ar * config.ar).sqrt();
        for (j, s) in sources.iter_mut().enumerate() {
            let mut prev = innovations[(j, 0)];
            for (k, v) in s.iter_mut().enumerate() {
                if k > 0 {
                    prev = config.ar * prev + stationary * innovations[(j, k)];
                }
                *v = scale[j] * prev;
            }
        }
        let trial: Vec<Vec<f64>> = (0..c)
            .map(|ch| {
                (0..t)
                    .map(|k| {
                        (0..c).map(|j| mixing[(ch, j)] * sources[j][k]).sum::<f64>()
                            + config.noise * noise[(ch, k)]
                    })
                    .collect()
            })
            .collect();
        series.push(trial);
        labels.push(class);
    }
    TimeSeriesSet {
        series,
        labels,
        class_names: (0..config.classes).map(|k| format!("class{k}")).collect(),
        name: Some("MixedSources".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_sources_is_seeded_with_the_configured_shape() {
        let config = SourcesConfig {
            per_class: 3,
            ..Default::default()
        };
        let a = generate_sources(&config, 5);
        assert_eq!(a, generate_sources(&config, 5));
        assert_ne!(a.series, generate_sources(&config, 6).series);
        assert_eq!(a.series.len(), 24);
        assert_eq!(a.channels(), 32);
        assert!(a.series.iter().flatten().all(|ch| ch.len() == 24));
        assert_eq!(&a.labels[..9], &[0, 1, 2, 3, 4, 5, 6, 7, 0]);
    }
}
