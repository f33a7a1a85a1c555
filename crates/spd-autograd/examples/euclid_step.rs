//! Times the Euclidean image ops of the DARTS baselines (release build):
//!
//! ```text
//! cargo run --release -p spd-autograd --example euclid_step [runs]
//! ```
//!
//! 1. `conv2d` forward + backward (input and weight gradients) by each algorithm
//!    ([`ConvAlgorithm::Direct`], [`ConvAlgorithm::Im2colGemm`]) on the layer shapes of a DARTS
//!    cell over RADAR (20×20), HDM05 (93×93) and BasicMotions (6×6) inputs, batch 30;
//! 2. forward + backward of DARTS's composite ops on `[30, 16, 20, 20]` in training mode, with
//!    the default algorithm choice.
//!
//! Prints `median (min)` over `runs` (default 20) repetitions, each run on rayon's pool (as
//! training steps run, [`on_worker`]).

use std::time::{Duration, Instant};

use spd_autograd::euclid::{DilConv, FactorizedReduce, Layer2d, OpSpec, ReLUConvBN, SepConv};
use spd_autograd::gradcheck::InputKind;
use spd_autograd::layers::ForwardCtx;
use spd_autograd::ops::activation::relu;
use spd_autograd::ops::arith::dot_const;
use spd_autograd::ops::batchnorm2d::batch_norm2d_train;
use spd_autograd::ops::conv::{Conv2dConfig, ConvAlgorithm, conv2d_with};
use spd_autograd::{Graph, ParamStore, Tensor, on_worker};

/// Median and minimum of `runs` timings after one warm-up (the minimum is the steadier figure
/// on a machine shared with other jobs).
fn time(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    v.sort();
    (v[v.len() / 2], v[0])
}

fn ms((median, min): (Duration, Duration)) -> String {
    format!(
        "{:7.2} ({:7.2}) ms",
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3
    )
}

/// One conv2d forward + backward (input and weight gradients) by `algorithm`.
fn conv_step(x: &Tensor, w: &Tensor, cfg: Conv2dConfig, algorithm: ConvAlgorithm) {
    let mut g = Graph::new();
    let (xv, wv) = (g.leaf(x.clone()), g.leaf(w.clone()));
    let y = conv2d_with(&mut g, xv, wv, None, cfg, algorithm).expect("shapes fit");
    let c = Tensor::zeros(g.value(y).shape());
    let loss = dot_const(&mut g, y, &c).expect("same shape");
    g.backward(loss).expect("scalar loss");
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    println!(
        "rayon threads: {}; median (min) of {runs} runs; forward + backward (dx, dW)",
        rayon::current_num_threads()
    );
    let conv = |stride, padding, dilation, groups| Conv2dConfig {
        stride,
        padding,
        dilation,
        groups,
    };
    // (label, input shape, C_out, kernel, config)
    let cases: Vec<(&str, [usize; 4], usize, usize, Conv2dConfig)> = vec![
        (
            "RADAR depthwise 3×3",
            [30, 16, 20, 20],
            16,
            3,
            conv(1, 1, 1, 16),
        ),
        (
            "RADAR depthwise 3×3 s2",
            [30, 16, 20, 20],
            16,
            3,
            conv(2, 1, 1, 16),
        ),
        (
            "RADAR depthwise 5×5",
            [30, 16, 20, 20],
            16,
            5,
            conv(1, 2, 1, 16),
        ),
        (
            "RADAR dilated dw 3×3 d2",
            [30, 16, 20, 20],
            16,
            3,
            conv(1, 2, 2, 16),
        ),
        (
            "RADAR pointwise 16→16",
            [30, 16, 20, 20],
            16,
            1,
            conv(1, 0, 1, 1),
        ),
        (
            "RADAR 1×1 s2 16→8 (FR)",
            [30, 16, 20, 20],
            8,
            1,
            conv(2, 0, 1, 1),
        ),
        (
            "RADAR dense 3×3 16→16",
            [30, 16, 20, 20],
            16,
            3,
            conv(1, 1, 1, 1),
        ),
        (
            "RADAR stem 3×3 1→48",
            [30, 1, 20, 20],
            48,
            3,
            conv(1, 1, 1, 1),
        ),
        (
            "HDM05 stem 3×3 1→48",
            [30, 1, 93, 93],
            48,
            3,
            conv(1, 1, 1, 1),
        ),
        (
            "HDM05 depthwise 3×3",
            [30, 16, 93, 93],
            16,
            3,
            conv(1, 1, 1, 16),
        ),
        (
            "HDM05 pointwise 16→16",
            [30, 16, 93, 93],
            16,
            1,
            conv(1, 0, 1, 1),
        ),
        (
            "BasicMotions dw 3×3",
            [30, 16, 6, 6],
            16,
            3,
            conv(1, 1, 1, 16),
        ),
        (
            "BasicMotions pw 16→16",
            [30, 16, 6, 6],
            16,
            1,
            conv(1, 0, 1, 1),
        ),
    ];
    println!("{:<26} {:>21} {:>21}", "conv2d", "direct", "im2col+gemm");
    for (label, shape, c_out, k, cfg) in cases {
        let x = InputKind::General.sample(shape, 1).value;
        let w = InputKind::General
            .sample([c_out, shape[1] / cfg.groups, k, k], 2)
            .value;
        let direct = time(runs, || {
            on_worker(|| conv_step(&x, &w, cfg, ConvAlgorithm::Direct))
        });
        let gemm = time(runs, || {
            on_worker(|| conv_step(&x, &w, cfg, ConvAlgorithm::Im2colGemm))
        });
        println!("{label:<26} {} {}", ms(direct), ms(gemm));
    }

    println!("\nDARTS ops on [30, 16, 20, 20], training mode, forward | forward + backward");
    let x = InputKind::General.sample([30, 16, 20, 20], 3).value;
    let mut rng = spd_linalg::random::seeded_rng(0);
    let mut store = ParamStore::new();
    let spec = |kernel, padding| OpSpec {
        c_in: 16,
        c_out: 16,
        kernel,
        stride: 1,
        padding,
        affine: false,
    };
    let ops: Vec<(&str, Box<dyn Layer2d + Sync>)> = vec![
        (
            "sep_conv_3x3",
            Box::new(SepConv::new(&mut store, "sep3", spec(3, 1), &mut rng).unwrap()),
        ),
        (
            "sep_conv_5x5",
            Box::new(SepConv::new(&mut store, "sep5", spec(5, 2), &mut rng).unwrap()),
        ),
        (
            "dil_conv_3x3",
            Box::new(DilConv::new(&mut store, "dil3", spec(3, 2), 2, &mut rng).unwrap()),
        ),
        (
            "relu_conv_bn 1×1",
            Box::new(ReLUConvBN::new(&mut store, "rcb", spec(1, 0), &mut rng).unwrap()),
        ),
        (
            "factorized_reduce",
            Box::new(FactorizedReduce::new(&mut store, "fr", (16, 16), false, &mut rng).unwrap()),
        ),
    ];
    for (label, op) in &ops {
        let run = |backward: bool| {
            on_worker(|| {
                let mut g = Graph::new();
                let xv = g.leaf(x.clone());
                let y = op
                    .forward(&mut g, &store, &mut ForwardCtx::train(), xv)
                    .expect("shapes fit");
                if backward {
                    let c = Tensor::zeros(g.value(y).shape());
                    let loss = dot_const(&mut g, y, &c).expect("same shape");
                    g.backward(loss).expect("scalar loss");
                }
            })
        };
        let fwd = time(runs, || run(false));
        let step = time(runs, || run(true));
        println!("{label:<26} {} | {}", ms(fwd), ms(step));
    }

    // The part dfdx 0.13 can run on stable (it has no conv2d there): twice ReLU → 1×1 conv →
    // batch norm (affine = false).
    let w1 = InputKind::General.sample([16, 16, 1, 1], 4).value;
    let w2 = InputKind::General.sample([16, 16, 1, 1], 5).value;
    let pointwise_half = time(runs, || {
        on_worker(|| {
            let mut g = Graph::new();
            let xv = g.leaf(x.clone());
            let (a, b) = (g.leaf(w1.clone()), g.leaf(w2.clone()));
            let mut h = xv;
            for w in [a, b] {
                let r = relu(&mut g, h);
                let c = conv2d_with(
                    &mut g,
                    r,
                    w,
                    None,
                    Conv2dConfig::default(),
                    ConvAlgorithm::Auto,
                )
                .expect("shapes fit");
                h = batch_norm2d_train(&mut g, c, None, 1e-5).expect("batch").0;
            }
            let c = Tensor::zeros(g.value(h).shape());
            let loss = dot_const(&mut g, h, &c).expect("same shape");
            g.backward(loss).expect("scalar loss");
        })
    });
    println!(
        "{:<26} {} (forward + backward)",
        "2 × (ReLU → 1×1 → BN)",
        ms(pointwise_half)
    );
}
