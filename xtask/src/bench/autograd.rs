//! `cargo xtask bench autograd`: forward and forward+backward time, and EVD counts, of a batch
//! of 30 through BiMap(20→20) → BN → ReEig and through a 6-way weighted Fréchet mean of 10×10
//! matrices (one Karcher step, as SPDNetNAS's mixed edge).

use serde::Serialize;
use spd_autograd::gradcheck::InputKind;
use spd_autograd::layers::{BatchNormSpd, BiMapLayer, ForwardCtx};
use spd_autograd::ops::arith::sum;
use spd_autograd::ops::eig::reeig_default;
use spd_autograd::ops::frechet::weighted_frechet_mean;
use spd_autograd::{Graph, ParamStore, Tensor, Var};
use spd_linalg::evd_count;
use spd_linalg::random::seeded_rng;

use super::median_seconds;
use crate::report::{machine_line, update_docs_section, workspace_root, write_atomic};

#[derive(Serialize)]
struct Row {
    case: &'static str,
    batch: usize,
    threads: usize,
    forward_ms: f64,
    forward_backward_ms: f64,
    evds_forward: u64,
    evds_backward: u64,
}

type Build<'a> = Box<dyn Fn(&mut Graph) -> Var + Sync + 'a>;

fn measure(case: &'static str, threads: usize, build: &Build<'_>) -> Result<Row, String> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    pool.install(|| {
        let before = evd_count();
        let mut g = Graph::new();
        let y = build(&mut g);
        let evds_forward = evd_count() - before;
        let loss = sum(&mut g, y).map_err(|e| e.to_string())?;
        let mid = evd_count();
        g.backward(loss).map_err(|e| e.to_string())?;
        let evds_backward = evd_count() - mid;
        let forward = median_seconds(|| {
            let mut g = Graph::new();
            build(&mut g);
        });
        let both = median_seconds(|| {
            let mut g = Graph::new();
            let y = build(&mut g);
            let loss = sum(&mut g, y).expect("scalar");
            g.backward(loss).expect("backward");
        });
        Ok(Row {
            case,
            batch: 30,
            threads,
            forward_ms: forward * 1e3,
            forward_backward_ms: both * 1e3,
            evds_forward,
            evds_backward,
        })
    })
}

/// Runs the benchmark, writes `target/bench/autograd.json` and the `autograd` docs section.
pub fn run() -> Result<(), String> {
    faer::set_global_parallelism(faer::Par::Seq);
    let mut store = ParamStore::new();
    let bimap = BiMapLayer::new(&mut store, "bimap", (1, 1), (20, 20), &mut seeded_rng(1))
        .map_err(|e| e.to_string())?;
    let bn = BatchNormSpd::new(&mut store, "bn", 20).map_err(|e| e.to_string())?;
    let x20 = InputKind::Spd.sample([30, 1, 20, 20], 2).value;
    let layer: Build<'_> = Box::new(|g: &mut Graph| {
        let x = g.constant(x20.clone());
        let h = bimap.forward(g, &store, x).expect("bimap");
        let h = bn
            .forward(g, &store, &mut ForwardCtx::train(), h)
            .expect("bn");
        reeig_default(g, h).expect("reeig")
    });
    let xs: Vec<Tensor> = (0..6)
        .map(|k| InputKind::Spd.sample([30, 1, 10, 10], 10 + k).value)
        .collect();
    let w = Tensor::from_vec([1, 1, 1, 6], vec![0.3, 0.2, 0.1, 0.15, 0.05, 0.2])
        .map_err(|e| e.to_string())?;
    let wfm: Build<'_> = Box::new(|g: &mut Graph| {
        let vars: Vec<Var> = xs.iter().map(|x| g.leaf(x.clone())).collect();
        let wv = g.leaf(w.clone());
        weighted_frechet_mean(g, &vars, wv, 1).expect("wfm")
    });
    let mut rows = Vec::new();
    for threads in [1, 2] {
        rows.push(measure("BiMap(20→20) → BN → ReEig", threads, &layer)?);
        rows.push(measure(
            "6-way wFM of 10×10 (1 Karcher step)",
            threads,
            &wfm,
        )?);
    }
    let json = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
    let path = workspace_root().join("target/bench/autograd.json");
    write_atomic(&path, &json)?;
    let mut md = String::from("## spd-autograd: layer forward and backward (batch 30)\n\n");
    md.push_str(&format!(
        "{}. Median of 7 runs after a warm-up.\n\n",
        machine_line()
    ));
    md.push_str("| case | threads | forward (ms) | forward + backward (ms) | EVDs forward | EVDs backward |\n|---|---:|---:|---:|---:|---:|\n");
    for r in &rows {
        md.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {} | {} |\n",
            r.case, r.threads, r.forward_ms, r.forward_backward_ms, r.evds_forward, r.evds_backward
        ));
    }
    println!("{md}");
    let docs = update_docs_section("autograd", &md)?;
    eprintln!("wrote {} and {}", path.display(), docs.display());
    Ok(())
}
