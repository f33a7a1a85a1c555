//! `cargo xtask bench linalg`: batched EVD and batched matrix log, sequential and over a
//! 2-thread rayon pool (spdnas dispatches batches of `n ≤ 16` to the batched Jacobi solver,
//! `n ≤ 96` to its tridiagonal QR, larger `n` to faer), each solver alone for reference, and
//! `numpy.linalg.eigh` on the identical matrices when numpy is importable.

use std::path::Path;
use std::process::Command;

use serde::Serialize;
use spd_linalg::jacobi::{JacobiBatch, JacobiWork, LANES};
use spd_linalg::random::{random_spd, seeded_rng};
use spd_linalg::{EighWorkspace, Log, eigh_batch, eigh_batch_seq, spectral_batch};

use super::median_seconds;
use crate::report::{machine_line, update_docs_section, workspace_root, write_atomic};

/// `(n, batch)` pairs: batches sized so each measurement takes milliseconds, not microseconds.
const CASES: [(usize, usize); 6] = [
    (10, 3000),
    (20, 1500),
    (30, 800),
    (93, 120),
    (200, 30),
    (400, 8),
];

#[derive(Serialize)]
struct Row {
    op: &'static str,
    n: usize,
    batch: usize,
    threads: usize,
    spdnas_us_per_matrix: f64,
    faer_us_per_matrix: Option<f64>,
    tridiag_us_per_matrix: Option<f64>,
    jacobi_us_per_matrix: Option<f64>,
    numpy_us_per_matrix: Option<f64>,
}

/// The batched Jacobi solver's work on one case, to relate its time to its arithmetic.
#[derive(Serialize)]
struct JacobiRow {
    n: usize,
    us_per_matrix: f64,
    sweeps_per_group: f64,
    rotations_per_group: f64,
    lane_rotations_per_matrix: f64,
    ns_per_group_rotation: f64,
}

/// Sequential batched-Jacobi decompositions of every matrix of `data`, `LANES` at a time:
/// seconds for all, and the work summed over the groups.
fn jacobi_seconds(data: &[f64], n: usize) -> (f64, JacobiWork) {
    let nn = n * n;
    let mut solver = JacobiBatch::new(n);
    let mut values = vec![0.0; LANES * n];
    let mut vectors = vec![0.0; LANES * nn];
    let mut work = JacobiWork::default();
    let seconds = median_seconds(|| {
        work = JacobiWork::default();
        for group in data.chunks(LANES * nn) {
            let count = group.len() / nn;
            solver
                .decompose_group(group, &mut values[..count * n], &mut vectors[..count * nn])
                .expect("benchmark matrices are SPD");
            let w = solver.last_work();
            work.sweeps += w.sweeps;
            work.rotations += w.rotations;
            work.lane_rotations += w.lane_rotations;
        }
    });
    (seconds, work)
}

/// Seconds for sequential EVDs of every matrix of `data`, one at a time through `ws`.
fn single_seconds(mut ws: EighWorkspace, data: &[f64], n: usize) -> f64 {
    let mut values = vec![0.0; n];
    let mut vectors = faer::Mat::<f64>::zeros(n, n);
    median_seconds(|| {
        for x in data.chunks(n * n) {
            let x = faer::MatRef::from_column_major_slice(x, n, n);
            ws.decompose_into(x, &mut values, Some(vectors.as_mut()))
                .expect("benchmark matrices are SPD");
        }
    })
}

fn pool(threads: usize) -> Result<rayon::ThreadPool, String> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())
}

fn batch_data(n: usize, batch: usize) -> Vec<f64> {
    let mut rng = seeded_rng(2026 + n as u64);
    let mut data = Vec::with_capacity(batch * n * n);
    for _ in 0..batch {
        let x = random_spd(n, &mut rng);
        for j in 0..n {
            for i in 0..n {
                data.push(x[(i, j)]);
            }
        }
    }
    data
}

/// A little-endian f64 `.npy` file of shape `(batch, n, n)`.
fn write_npy(path: &Path, data: &[f64], n: usize, batch: usize) -> Result<(), String> {
    let dict =
        format!("{{'descr': '<f8', 'fortran_order': False, 'shape': ({batch}, {n}, {n}), }}");
    let unpadded = 10 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let header = format!("{dict}{}\n", " ".repeat(padding));
    let mut bytes = Vec::with_capacity(10 + header.len() + data.len() * 8);
    bytes.extend_from_slice(b"\x93NUMPY\x01\x00");
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

const NUMPY_SCRIPT: &str = r#"
import json, sys, time
import numpy as np
X = np.load(sys.argv[1])
def median(f, reps=int(sys.argv[2])):
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    ts.sort()
    return ts[len(ts) // 2]
def logm(X):
    w, U = np.linalg.eigh(X)
    return (U * np.log(w)[..., None, :]) @ np.swapaxes(U, -1, -2)
kernel = "?"
try:
    import threadpoolctl
    info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    if info:
        kernel = "%s %s, %s, %d threads" % (info[0]["internal_api"], info[0]["version"], info[0]["architecture"], info[0]["num_threads"])
except Exception:
    pass
print(json.dumps({"eigh": median(lambda: np.linalg.eigh(X)), "log": median(lambda: logm(X)), "numpy": np.__version__, "kernel": kernel}))
"#;

struct Numpy {
    eigh: f64,
    log: f64,
    description: String,
}

/// Times numpy on the same matrices; `None` when python3 or numpy is missing. OpenBLAS
/// overrides set on this machine (`OPENBLAS_CORETYPE`, `OPENBLAS_L2_SIZE`) would slow numpy,
/// so they are removed for this command only.
fn numpy_times(data: &[f64], n: usize, batch: usize) -> Result<Option<Numpy>, String> {
    let probe = Command::new("python3")
        .args(["-c", "import numpy"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Ok(None);
    }
    let dir = workspace_root().join("target").join("bench");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("linalg-{n}.npy"));
    write_npy(&path, data, n, batch)?;
    let out = Command::new("python3")
        .args(["-c", NUMPY_SCRIPT])
        .arg(&path)
        .arg(super::REPETITIONS.to_string())
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&path);
    if !out.status.success() {
        return Err(format!(
            "numpy run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("numpy output: {e}"))?;
    let num = |k: &str| {
        v[k].as_f64()
            .ok_or_else(|| format!("numpy output lacks {k}"))
    };
    Ok(Some(Numpy {
        eigh: num("eigh")?,
        log: num("log")?,
        description: format!(
            "numpy {} ({})",
            v["numpy"].as_str().unwrap_or("?"),
            v["kernel"].as_str().unwrap_or("?")
        ),
    }))
}

/// Runs the benchmark, writes `target/bench/linalg.json` and the `linalg` section of
/// `docs/benchmarks.md`, and prints the table.
pub fn run() -> Result<(), String> {
    faer::set_global_parallelism(faer::Par::Seq);
    let (one, two) = (pool(1)?, pool(2)?);
    let mut rows = Vec::new();
    let mut jacobi_rows = Vec::new();
    let mut numpy_desc = None;
    for (n, batch) in CASES {
        let data = batch_data(n, batch);
        let us = |s: f64| s * 1e6 / batch as f64;
        let eigh_seq = us(median_seconds(|| {
            eigh_batch_seq(&data, n).expect("benchmark matrices are SPD");
        }));
        let eigh_faer = us(single_seconds(EighWorkspace::with_faer(n), &data, n));
        let tridiag = (n <= spd_linalg::tridiag_qr::SMALL_EIGH_MAX)
            .then(|| us(single_seconds(EighWorkspace::new(n), &data, n)));
        let jacobi = (n <= JACOBI_MAX).then(|| {
            let (seconds, work) = jacobi_seconds(&data, n);
            let groups = batch.div_ceil(LANES) as f64;
            jacobi_rows.push(JacobiRow {
                n,
                us_per_matrix: us(seconds),
                sweeps_per_group: work.sweeps as f64 / groups,
                rotations_per_group: work.rotations as f64 / groups,
                lane_rotations_per_matrix: work.lane_rotations as f64 / batch as f64,
                ns_per_group_rotation: seconds * 1e9 / work.rotations.max(1) as f64,
            });
            us(seconds)
        });
        let eigh_par = us(two.install(|| {
            median_seconds(|| {
                eigh_batch(&data, n).expect("benchmark matrices are SPD");
            })
        }));
        let log_seq = us(one.install(|| {
            median_seconds(|| {
                spectral_batch(&Log, &data, n).expect("benchmark matrices are SPD");
            })
        }));
        let log_par = us(two.install(|| {
            median_seconds(|| {
                spectral_batch(&Log, &data, n).expect("benchmark matrices are SPD");
            })
        }));
        let numpy = numpy_times(&data, n, batch)?;
        if let Some(np) = &numpy {
            numpy_desc.get_or_insert_with(|| np.description.clone());
        }
        let faer = Some(eigh_faer);
        let np_eigh = numpy.as_ref().map(|x| us(x.eigh));
        let np_log = numpy.as_ref().map(|x| us(x.log));
        for (op, threads, t, faer, tridiag, jacobi, np) in [
            ("eigh", 1, eigh_seq, faer, tridiag, jacobi, np_eigh),
            ("eigh", 2, eigh_par, faer, tridiag, jacobi, np_eigh),
            ("log", 1, log_seq, None, None, None, np_log),
            ("log", 2, log_par, None, None, None, np_log),
        ] {
            rows.push(Row {
                op,
                n,
                batch,
                threads,
                spdnas_us_per_matrix: t,
                faer_us_per_matrix: faer,
                tridiag_us_per_matrix: tridiag,
                jacobi_us_per_matrix: jacobi,
                numpy_us_per_matrix: np,
            });
        }
        eprintln!("n = {n}: done");
    }
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "rows": rows,
        "jacobi": jacobi_rows,
    }))
    .map_err(|e| e.to_string())?;
    let json_path = workspace_root().join("target/bench/linalg.json");
    write_atomic(&json_path, &json)?;
    let mut table = markdown(&rows, numpy_desc.as_deref());
    table.push_str(&jacobi_markdown(&jacobi_rows));
    println!("{table}");
    let docs = update_docs_section("linalg", &table)?;
    eprintln!("wrote {} and {}", json_path.display(), docs.display());
    Ok(())
}

/// Sizes timed with the batched Jacobi solver (its cost grows as `sweeps · n³`).
const JACOBI_MAX: usize = 96;

fn jacobi_markdown(rows: &[JacobiRow]) -> String {
    let mut s = String::from(
        "\nBatched Jacobi, what the time buys: sweeps per group of 8 (the last rotates \
         nothing), rotations per group (a pair rotated in any lane), rotations per matrix, and \
         the time of one group rotation (2 divisions and 2 square roots of 8 lanes, then \
         `O(n)` updates of two columns of A and V and a copy into two rows of A).\n\n\
         | n | µs per matrix | sweeps / group | rotations / group | rotations / matrix | ns per group rotation | ns per group rotation / n |\n\
         |---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {:.2} | {:.1} | {:.0} | {:.0} | {:.0} | {:.1} |\n",
            r.n,
            r.us_per_matrix,
            r.sweeps_per_group,
            r.rotations_per_group,
            r.lane_rotations_per_matrix,
            r.ns_per_group_rotation,
            r.ns_per_group_rotation / r.n as f64,
        ));
    }
    s
}

fn markdown(rows: &[Row], numpy: Option<&str>) -> String {
    let mut s = String::new();
    s.push_str("## spd-linalg: batched EVD and matrix log (µs per matrix)\n\n");
    s.push_str(&format!(
        "{}. Reference: {}.\n",
        machine_line(),
        numpy.unwrap_or("numpy not available")
    ));
    s.push_str(
        "Median of 7 runs after a warm-up; `ratio` = spdnas / numpy (below 1: spdnas faster).\n\n",
    );
    s.push_str(
        "One column per solver, each on one thread over the same matrices: `Jacobi` is the \
         batched cyclic Jacobi solver (`spd_linalg::jacobi`, 8 matrices per AVX-512 lane \
         group), `tridiag. QR` our one-matrix-at-a-time solver, `faer` faer's self-adjoint EVD. \
         `spdnas` is what a batch runs: Jacobi for n ≤ 16, the tridiagonal QR to 96, faer \
         above.\n\n",
    );
    s.push_str(
        "| op | n | batch | spdnas seq | Jacobi seq | tridiag. QR seq | faer seq | spdnas rayon ×2 | numpy | ratio (rayon ×2) |\n",
    );
    s.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for pair in rows.chunks(2) {
        let (seq, par) = (&pair[0], &pair[1]);
        let np = par.numpy_us_per_matrix;
        let cell = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} | {} | {} | {} | {:.1} | {} | {} |\n",
            par.op,
            par.n,
            par.batch,
            seq.spdnas_us_per_matrix,
            cell(seq.jacobi_us_per_matrix),
            cell(seq.tridiag_us_per_matrix),
            cell(seq.faer_us_per_matrix),
            par.spdnas_us_per_matrix,
            np.map_or("–".into(), |v| format!("{v:.1}")),
            np.map_or("–".into(), |v| format!(
                "{:.2}",
                par.spdnas_us_per_matrix / v
            )),
        ));
    }
    s
}
