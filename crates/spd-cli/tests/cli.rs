//! The `spdnas` binary: exit codes, one-line errors, nothing written on bad input, and a tiny
//! real run.

use std::path::PathBuf;
use std::process::{Command, Output};

use spdnas::data::npy::{npy_f64, npy_i64};
use spdnas::data::npz::npz_bytes;

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("spdnas-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spdnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spdnas"))
        .args(args)
        .output()
        .unwrap()
}

/// Exit code 2, exactly one line on stderr naming `needle`, and no output directory.
fn fails_cleanly(args: &[&str], out: &std::path::Path, needle: &str) {
    let o = spdnas(args);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
    assert!(!out.exists(), "{args:?} created {}", out.display());
}

#[test]
fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let dir = TempDir::new("bad");
    let out = dir.0.join("out");
    let out_s = out.to_str().unwrap();
    let eye: Vec<f64> = (0..2).flat_map(|_| [1.0, 0.0, 0.0, 1.0]).collect();

    let truncated = dir.0.join("truncated.npy");
    let bytes = npy_f64(&[2, 2, 2], &eye);
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    std::fs::write(dir.0.join("y.npy"), npy_i64(&[2], &[0, 1])).unwrap();
    fails_cleanly(
        &["run", "--data", truncated.to_str().unwrap(), "--out", out_s],
        &out,
        "truncated.npy",
    );

    let indefinite = dir.0.join("indefinite.npz");
    let bad = [1.0, 0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 1.0];
    std::fs::write(
        &indefinite,
        npz_bytes(&[
            ("X", npy_f64(&[2, 2, 2], &bad)),
            ("y", npy_i64(&[2], &[0, 1])),
        ]),
    )
    .unwrap();
    fails_cleanly(
        &[
            "run",
            "--data",
            indefinite.to_str().unwrap(),
            "--out",
            out_s,
        ],
        &out,
        "not positive definite",
    );

    let mismatch = dir.0.join("mismatch.npz");
    std::fs::write(
        &mismatch,
        npz_bytes(&[
            ("X", npy_f64(&[2, 2, 2], &eye)),
            ("y", npy_i64(&[3], &[0, 1, 1])),
        ]),
    )
    .unwrap();
    fails_cleanly(
        &["run", "--data", mismatch.to_str().unwrap(), "--out", out_s],
        &out,
        "2 matrices but 3 labels",
    );

    let missing = dir.0.join("nowhere.npz");
    fails_cleanly(
        &["run", "--data", missing.to_str().unwrap(), "--out", out_s],
        &out,
        "nowhere.npz",
    );
    fails_cleanly(
        &["train", "--genotype", "no_such_genotype", "--out", out_s],
        &out,
        "no_such_genotype",
    );
    fails_cleanly(
        &["run", "--reduced-dim", "30", "--out", out_s],
        &out,
        "--reduced-dim [30]: cannot reduce 20×20 matrices to 30×30",
    );
    assert_eq!(spdnas(&["run", "--no-such-flag"]).status.code(), Some(2));
}

#[test]
fn tiny_run_and_data_round_trip_through_the_binary() {
    let dir = TempDir::new("ok");
    let out = dir.0.join("run");
    let o = spdnas(&[
        "run",
        "--per-class",
        "15",
        "--search-epochs",
        "1",
        "--train-epochs",
        "2",
        "--min-steps",
        "0",
        "--search-min-steps",
        "0",
        "--baselines",
        "mdm,spdnet",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["baselines"].as_object().unwrap().len(), 2);
    let eval = spdnas(&[
        "eval",
        "--checkpoint",
        out.join("model.json").to_str().unwrap(),
        "--json",
    ]);
    let e: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(e["accuracy"], report["test_accuracy"]);

    let data = dir.0.join("gaussian");
    assert!(
        spdnas(&[
            "data",
            "generate",
            "gaussian",
            "--out",
            data.to_str().unwrap(),
            "--per-class",
            "4",
            "--n",
            "5"
        ])
        .status
        .success()
    );
    let inspect = spdnas(&["data", "inspect", data.to_str().unwrap(), "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(
        (s["samples"].as_u64(), s["n"].as_u64()),
        (Some(12), Some(5))
    );
    let params = spdnas(&["genotype", "params", "radar_sparsemax"]);
    let printed = String::from_utf8_lossy(&params.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines[0], "15203 trainable parameters");
    assert!(
        lines[1].starts_with("17603 as the paper counts them (+2400 "),
        "{printed}"
    );
}

/// An exactly singular sample is refused with exit code 2 and a message naming `--ridge`; the
/// same file with `--ridge 1e-6` runs a baseline, inspects, and records the ridge in
/// `config.json`.
#[test]
fn singular_samples_are_accepted_with_the_flag_the_error_names() {
    let dir = TempDir::new("singular");
    let out = dir.0.join("out");
    let out_s = out.to_str().unwrap();
    // sample 0 is [[1, 1], [1, 1]] (rank 1), sample 1 the identity
    let x = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0];
    let path = dir.0.join("singular.npz");
    std::fs::write(
        &path,
        npz_bytes(&[
            ("X", npy_f64(&[2, 2, 2], &x)),
            ("y", npy_i64(&[2], &[0, 1])),
        ]),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    fails_cleanly(
        &["baseline", "mdm", "--data", p, "--out", out_s],
        &out,
        "--ridge",
    );
    fails_cleanly(&["data", "inspect", p], &out, "--ridge");
    let o = spdnas(&["--quiet", "data", "inspect", p, "--ridge", "1e-6"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = spdnas(&[
        "--quiet", "baseline", "mdm", "--data", p, "--ridge", "1e-6", "--out", out_s,
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let config = std::fs::read_to_string(out.join("config.json")).unwrap();
    assert!(config.contains("\"TraceShift\": 1e-6"), "{config}");
    std::fs::remove_dir_all(&out).unwrap();
    let o = spdnas(&[
        "--quiet",
        "baseline",
        "mdm",
        "--data",
        p,
        "--ridge=-1",
        "--out",
        out_s,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--ridge -1"));
}

/// `--seeds` runs one directory per seed and prints the mean ± std table; the summary's mean is
/// the mean of the seeds' reports.
#[test]
fn seeds_write_a_directory_per_seed_and_a_summary() {
    let dir = TempDir::new("seeds");
    let out = dir.0.join("rep");
    let args = [
        "run",
        "--per-class",
        "12",
        "--search-epochs",
        "1",
        "--train-epochs",
        "1",
        "--min-steps",
        "0",
        "--search-min-steps",
        "0",
        "--baselines",
        "mdm",
        "--seeds",
        "3,4",
        "--vary",
        "init",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = spdnas(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("| SPDNetNAS |"), "{text}");
    assert!(text.contains("only the initialisation"), "{text}");
    for f in ["summary.json", "summary.md", "summary.png"] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let per_seed: Vec<f64> = ["seed-3", "seed-4"]
        .iter()
        .map(|s| {
            let r: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(out.join(s).join("report.json")).unwrap(),
            )
            .unwrap();
            r["test_accuracy"].as_f64().unwrap()
        })
        .collect();
    let nas = &summary["methods"][0];
    assert_eq!(nas["method"], "SPDNetNAS");
    assert_eq!(
        nas["mean"].as_f64().unwrap(),
        (per_seed[0] + per_seed[1]) / 2.0
    );
    let split = |s: &str| std::fs::read_to_string(out.join(s).join("split.json")).unwrap();
    assert_eq!(
        split("seed-3"),
        split("seed-4"),
        "--vary init keeps the split"
    );
}

#[test]
fn a_bad_schedule_flag_is_an_input_error_naming_it() {
    for (args, message) in [
        (
            vec!["run", "--max-skips", "two"],
            "--max-skips two: must be",
        ),
        (
            vec!["run", "--warmup", "1.5"],
            "--warmup 1.5: must be in [0, 1)",
        ),
        (vec!["run", "--lr=-1"], "--lr -1: must be positive"),
        (
            vec!["run", "--search-epochs", "0", "--search-min-steps", "0"],
            "--search-epochs",
        ),
        (vec!["run", "--seeds", "1,1"], "--seeds"),
        (
            vec!["run", "--baselines", "mdm,dart"],
            "possible values: spdnet, spdnetbn, random, mdm, tslr, darts, fairdarts",
        ),
        (vec!["baseline", "nas"], "fairdarts"),
        (
            vec!["run", "--darts-layout", "large"],
            "possible values: small, paper",
        ),
    ] {
        let o = spdnas(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(message),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// The flags of the tiny runs below: a small RADAR, short schedules.
const TINY: [&str; 10] = [
    "--per-class",
    "15",
    "--search-epochs",
    "1",
    "--min-steps",
    "0",
    "--search-min-steps",
    "0",
    "--baselines",
    "mdm,spdnet",
];

fn report_of(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_run_directory_config_reproduces_the_run_and_flags_override_it() {
    let dir = TempDir::new("config");
    let first = dir.0.join("first");
    let mut args = vec!["run", "--train-epochs", "2", "--json", "--out"];
    args.push(first.to_str().unwrap());
    args.extend(TINY);
    let original = report_of(&spdnas(&args));
    let config = first.join("config.json");
    let again = dir.0.join("again");
    let replayed = report_of(&spdnas(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--json",
        "--out",
        again.to_str().unwrap(),
    ]));
    assert_eq!(original, replayed);

    // network flags are recorded; a flag given with --config overrides the file
    let other = dir.0.join("other");
    let o = spdnas(&[
        "baseline",
        "mdm",
        "--config",
        config.to_str().unwrap(),
        "--mixing",
        "softmax",
        "--karcher-steps",
        "2",
        "--seed",
        "4",
        "--out",
        other.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(other.join("config.json")).unwrap()).unwrap();
    assert_eq!(written["network"]["arch_normalization"], "Softmax");
    assert_eq!(written["network"]["ops"]["karcher_steps"], 2);
    assert_eq!(written["seed"], 4);
    assert_eq!(written["train"]["epochs"], 2, "the file's setting is kept");

    // plain sigmoid weights cannot feed a Fréchet mean: refused, naming the flag
    let mut bad = written.clone();
    bad["network"]["arch_normalization"] = "Sigmoid".into();
    let bad_path = dir.0.join("sigmoid.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    let out = dir.0.join("never");
    fails_cleanly(
        &[
            "run",
            "--config",
            bad_path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &out,
        "--mixing",
    );
}

/// Ctrl-C (SIGINT) stops a run at the end of an epoch with exit code 130 and a message naming
/// `--resume`; resumed, the run ends with the uninterrupted run's report.
#[test]
fn ctrl_c_stops_at_an_epoch_boundary_and_resume_gives_the_uninterrupted_report() {
    let dir = TempDir::new("ctrl-c");
    let run = |out: &std::path::Path, extra: &[&str]| {
        let mut args = vec!["run", "--train-epochs", "100", "--json", "--out"];
        args.push(out.to_str().unwrap());
        args.extend(TINY);
        args.extend(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let straight = dir.0.join("straight");
    let expected = report_of(&spdnas(
        &run(&straight, &[])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));

    let interrupted = dir.0.join("interrupted");
    let child = Command::new(env!("CARGO_BIN_EXE_spdnas"))
        .args(run(&interrupted, &[]))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = interrupted.join("train.jsonl");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 2 {
        assert!(started.elapsed().as_secs() < 120, "training never started");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume --out"), "{stderr}");
    assert!(!interrupted.join("report.json").exists());

    let resumed = report_of(&spdnas(
        &run(&interrupted, &["--resume"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    ));
    assert_eq!(resumed, expected);
}
