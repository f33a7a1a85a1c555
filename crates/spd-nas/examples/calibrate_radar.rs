//! Calibration of the synthetic RADAR's SNR against the SPDNet baseline (docs/data.md):
//! `cargo run --release -p spd-nas --example calibrate_radar -- EPOCHS SNR...`.

use spd_autograd::ParamStore;
use spd_data::radar::{RadarConfig, radar_dataset};
use spd_data::split::{SplitFractions, stratified_split};
use spd_linalg::random::seeded_rng;
use spd_nas::baselines::{Mdm, SpdNet, SpdNetConfig, Tslr, accuracy};
use spd_nas::runner::{Hooks, run_epochs};
use spd_nas::train::{TrainConfig, Training, evaluate_model};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let epochs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(20);
    let snrs: Vec<f64> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    for snr in if snrs.is_empty() {
        vec![spd_data::radar::DEFAULT_SNR_DB]
    } else {
        snrs
    } {
        let data = radar_dataset(
            &RadarConfig {
                snr_db: snr,
                ..Default::default()
            },
            0,
        )
        .unwrap();
        let split = stratified_split(data.labels(), SplitFractions::default(), 0);
        let mut line = format!("SNR {snr:>5.1} dB, {epochs} epochs:");
        for bn in [false, true] {
            let mut store = ParamStore::new();
            let net =
                SpdNet::new(&SpdNetConfig::radar(bn), &mut store, &mut seeded_rng(0)).unwrap();
            let config = TrainConfig {
                epochs,
                ..Default::default()
            };
            let start = std::time::Instant::now();
            let mut training = Training::new(&net, store, config);
            run_epochs("train", &mut training, &data, &split, &mut Hooks::none()).unwrap();
            let best = training.best().unwrap().clone();
            let (epoch, val) = (best.epoch, best.val_accuracy);
            let (_, test) = evaluate_model(&net, &best.weights, &data, &split.test, 30).unwrap();
            line += &format!(
                " SPDNet{} test {:.1} % (best val {:.1} % at epoch {epoch}, {:.1} s);",
                if bn { "BN" } else { "" },
                100.0 * test,
                100.0 * val,
                start.elapsed().as_secs_f64()
            );
        }
        let mdm = Mdm::fit(&data, &split.train).unwrap();
        line += &format!(
            " MDM {:.1} %;",
            100.0
                * accuracy(
                    &data,
                    &split.test,
                    &mdm.predict(&data, &split.test).unwrap()
                )
        );
        let tslr = Tslr::fit(&data, &split.train, 1e-3, 300, 0).unwrap();
        line += &format!(
            " TSLR {:.1} %",
            100.0
                * accuracy(
                    &data,
                    &split.test,
                    &tslr.predict(&data, &split.test).unwrap()
                )
        );
        println!("{line}");
    }
}
