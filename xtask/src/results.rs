//! `cargo xtask results [--paper] [--work DIR] [DATASET …]`: the results page
//! `docs/results.md`. The run directories live under `--work` (default `target/results`; a
//! directory outside the work tree keeps hours of paper-preset seeds across clean checkouts). For every
//! dataset it runs `spdnas run --seeds 0,1,2,3,4` (resumable: a killed page continues where it
//! stopped), copies the bar chart to `docs/results/`, and writes one section per dataset with
//! every method's mean ± std, parameters, wall time and the first seed's genotype. Data that is
//! not ours to redistribute is fetched from its Python package on PyPI; the EEG-like set is
//! generated.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use spd_data::sources::{SourcesConfig, generate_sources};
use spd_data::ts::ts_text;
use spdnas::app::{Summary, summary_table};

use crate::report::{workspace_root, write_atomic};

/// The seeds of every dataset.
const SEEDS: &str = "0,1,2,3,4";

/// One dataset of the page.
struct Entry {
    /// Section and directory name.
    name: &'static str,
    /// Where the data comes from and under which licence.
    provenance: &'static str,
    /// Whether it runs only with `--paper` (it takes hours).
    slow: bool,
}

const ENTRIES: [Entry; 5] = [
    Entry {
        name: "radar-quick",
        provenance: "synthetic micro-Doppler RADAR (our generator, `docs/data.md`), 3 × 1000 signals, 20×20; one stratified 50/25/25 split per seed; `--preset quick`",
        slow: false,
    },
    Entry {
        name: "radar-paper",
        provenance: "the same data with `--preset paper` (the paper's schedule: 100 second-order search epochs, 200 training epochs)",
        slow: true,
    },
    Entry {
        name: "basicmotions",
        provenance: "UEA BasicMotions (6-channel accelerometer/gyroscope, 4 classes), its own TRAIN (40) / TEST (40) split, 6×6 Ledoit–Wolf covariances; embedded in `crates/spd-data/data/basicmotions` (BSD-3-Clause, from sktime 1.2.0)",
        slow: false,
    },
    Entry {
        name: "japanese-vowels",
        provenance: "UCI/UEA JapaneseVowels (12 LPC coefficients, 9 speakers), its own TRAIN (270) / TEST (370) split, 12×12 Ledoit–Wolf covariances of series of 7–29 frames; fetched from the sktime 1.2.0 wheel on PyPI (the data set is CC BY 4.0 at UCI; not stored in this repository)",
        slow: false,
    },
    Entry {
        name: "mixed-sources",
        provenance: "EEG-like mixed sources (`spd_data::sources`, defaults): 32 channels, 24 samples per trial (sample covariances of rank 24: Ledoit–Wolf makes them SPD), source gains decaying as j^-1.5, 8 classes differing in the power of 8 sources, per-trial power jitter; 1280 trials generated with seed 1, the first 640 (80 per class) as TRAIN, the others as TEST",
        slow: false,
    },
];

/// Runs the page's datasets (all but the slow ones unless `--paper`; or those named) and writes
/// `docs/results.md`.
pub fn run(args: &[&str]) -> Result<(), String> {
    let mut paper = false;
    let mut work_arg = None;
    let mut named: Vec<&str> = Vec::new();
    let mut rest = args.iter().copied();
    while let Some(a) = rest.next() {
        match a {
            "--paper" => paper = true,
            "--work" => {
                work_arg = Some(PathBuf::from(
                    rest.next().ok_or("--work needs a directory")?,
                ))
            }
            _ => named.push(a),
        }
    }
    if let Some(unknown) = named
        .iter()
        .find(|n| !ENTRIES.iter().any(|e| e.name == **n))
    {
        return Err(format!(
            "unknown dataset {unknown}; the page has {}",
            ENTRIES.map(|e| e.name).join(", ")
        ));
    }
    let root = workspace_root();
    let work = work_arg.unwrap_or_else(|| root.join("target").join("results"));
    let status = Command::new("cargo")
        .args(["build", "--release", "-p", "spd-cli"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build --release -p spd-cli failed".into());
    }
    let binary = root.join("target").join("release").join("spdnas");
    for entry in &ENTRIES {
        let wanted = if named.is_empty() {
            paper || !entry.slow
        } else {
            named.contains(&entry.name)
        };
        if !wanted {
            continue;
        }
        let data = data_args(entry.name, &root, &work)?;
        let out = work.join(entry.name);
        eprintln!("xtask: {} → {}", entry.name, out.display());
        let status = Command::new(&binary)
            .arg("run")
            .args(&data)
            .args(["--seeds", SEEDS, "--quiet", "--resume", "--out"])
            .arg(&out)
            .status()
            .map_err(|e| format!("{}: {e}", binary.display()))?;
        if !status.success() {
            return Err(format!("spdnas run on {} failed", entry.name));
        }
        let figures = root.join("docs").join("results");
        fs::create_dir_all(&figures).map_err(|e| format!("{}: {e}", figures.display()))?;
        copy(
            &out.join("summary.png"),
            &figures.join(format!("{}.png", entry.name)),
        )?;
        let dot = figures.join(format!("{}-genotype.dot", entry.name));
        copy(&out.join("seed-0").join("genotype.dot"), &dot)?;
        render_svg(&dot);
    }
    let page = page(&work, &root)?;
    write_atomic(&root.join("docs").join("results.md"), &page)?;
    eprintln!("xtask: wrote docs/results.md");
    Ok(())
}

/// `<name>.svg` beside a `.dot` file when Graphviz's `dot` is installed (the page falls back to
/// the DOT file otherwise).
fn render_svg(dot: &Path) {
    let rendered = Command::new("dot")
        .arg("-Tsvg")
        .arg(dot)
        .arg("-o")
        .arg(dot.with_extension("svg"))
        .status();
    if !rendered.is_ok_and(|s| s.success()) {
        eprintln!(
            "xtask: Graphviz `dot` not found or failed; {} not rendered",
            dot.display()
        );
    }
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("{} → {}: {e}", from.display(), to.display()))
}

/// The `spdnas run` arguments of a dataset, fetching or generating its files first.
fn data_args(name: &str, root: &Path, work: &Path) -> Result<Vec<String>, String> {
    let given = |train: PathBuf, test: PathBuf| {
        vec![
            "--data".to_string(),
            train.display().to_string(),
            "--test-data".to_string(),
            test.display().to_string(),
        ]
    };
    Ok(match name {
        "radar-quick" => vec![],
        "radar-paper" => vec!["--preset".into(), "paper".into()],
        "basicmotions" => {
            let dir = root.join("crates/spd-data/data/basicmotions");
            given(
                dir.join("BasicMotions_TRAIN.ts"),
                dir.join("BasicMotions_TEST.ts"),
            )
        }
        "japanese-vowels" => {
            let dir = work.join("data").join("JapaneseVowels");
            fetch_sktime_dataset("JapaneseVowels", &dir, work)?;
            given(
                dir.join("JapaneseVowels_TRAIN.ts"),
                dir.join("JapaneseVowels_TEST.ts"),
            )
        }
        "mixed-sources" => {
            let dir = work.join("data").join("MixedSources");
            let config = SourcesConfig::default();
            let mut all = generate_sources(
                &SourcesConfig {
                    per_class: 2 * config.per_class,
                    ..config
                },
                1,
            );
            // classes cycle, so the first half holds `per_class` trials of every class
            let half = all.series.len() / 2;
            let mut test = all.clone();
            test.series = all.series.split_off(half);
            test.labels = all.labels.split_off(half);
            for (part, set) in [("TRAIN", &all), ("TEST", &test)] {
                write_atomic(&dir.join(format!("MixedSources_{part}.ts")), &ts_text(set))?;
            }
            given(
                dir.join("MixedSources_TRAIN.ts"),
                dir.join("MixedSources_TEST.ts"),
            )
        }
        other => return Err(format!("no data for {other}")),
    })
}

/// `dir/<name>_{TRAIN,TEST}.ts` from the sktime 1.2.0 wheel (downloaded with pip, opened with
/// Python's zipfile), unless already there.
fn fetch_sktime_dataset(name: &str, dir: &Path, work: &Path) -> Result<(), String> {
    let files = [
        dir.join(format!("{name}_TRAIN.ts")),
        dir.join(format!("{name}_TEST.ts")),
    ];
    if files.iter().all(|f| f.exists()) {
        return Ok(());
    }
    let wheels = work.join("downloads");
    let status = Command::new("python3")
        .args(["-m", "pip", "download", "--no-deps", "sktime==1.2.0", "-d"])
        .arg(&wheels)
        .status()
        .map_err(|e| format!("python3 -m pip download: {e} (needs Python 3 with pip)"))?;
    if !status.success() {
        return Err("pip download sktime==1.2.0 failed".into());
    }
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let script = format!(
        "import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1])\nfor part in ('TRAIN', 'TEST'):\n    member = 'sktime/datasets/data/{name}/{name}_' + part + '.ts'\n    open(sys.argv[2] + '/{name}_' + part + '.ts', 'wb').write(z.read(member))\n"
    );
    let wheel = wheels.join("sktime-1.2.0-py3-none-any.whl");
    let status = Command::new("python3")
        .args(["-c", &script])
        .arg(&wheel)
        .arg(dir)
        .status()
        .map_err(|e| format!("python3: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("could not extract {name} from {}", wheel.display()))
    }
}

/// `docs/results.md` from every `<work>/<name>/summary.json` there is.
fn page(work: &Path, root: &Path) -> Result<String, String> {
    let mut s = String::from(
        "# Results\n\n\
         Written by `cargo xtask results` (add `--paper` for the paper-preset RADAR, which takes \
         hours); every number below is read from the run directories under its work directory \
         (`target/results/` unless `--work DIR`). \
         Each dataset: `spdnas run --seeds 0,1,2,3,4` on defaults (`--preset quick` unless \
         said), test accuracy as mean ± sample standard deviation over the 5 seeds. With a \
         dataset's own TRAIN/TEST split, each seed draws its own train/validation split of \
         TRAIN and its own initialisation; the test set is the same for all. Parameters are \
         the first seed's (the searched network's count varies with its genotype); times are \
         means on this 2-core machine.\n\n\
         Targets (issue 11): on every dataset SPDNetNAS ≥ max(MDM, TSLR) − 1 point and > \
         SPDNetBN; on RADAR with the paper preset SPDNetNAS − SPDNetBN ≥ 2 points and SPDNetNAS \
         > SPDNetNAS (R). The experiments that chose the quick preset are in \
         `experiments.md`.\n",
    );
    for entry in &ENTRIES {
        let path = work.join(entry.name).join("summary.json");
        let Ok(text) = fs::read_to_string(&path) else {
            s += &format!(
                "\n## {}\n\n{}.\n\nNot run yet (`cargo xtask results {}`).\n",
                entry.name, entry.provenance, entry.name
            );
            continue;
        };
        let summary: Summary =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        s += &section(entry, &summary, root);
    }
    Ok(s)
}

fn section(entry: &Entry, summary: &Summary, root: &Path) -> String {
    let mean = |name: &str| {
        summary
            .methods
            .iter()
            .find(|m| m.method == name)
            .map(|m| m.mean)
    };
    let mut s = format!(
        "\n## {}\n\n{}.\n\n{}",
        entry.name,
        entry.provenance,
        summary_table(summary).replace(&format!("{}/", root.display()), "")
    );
    if let (Some(nas), Some(bn), Some(mdm), Some(tslr)) = (
        mean("SPDNetNAS"),
        mean("SPDNetBN"),
        mean("MDM"),
        mean("TSLR"),
    ) {
        let classical = mdm.max(tslr);
        let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
        s += &format!(
            "\nTargets: SPDNetNAS − max(MDM, TSLR) = {:+.2} points (≥ −1: {}); SPDNetNAS − SPDNetBN = {:+.2} points (> 0: {}).\n",
            100.0 * (nas - classical),
            verdict(nas >= classical - 0.01),
            100.0 * (nas - bn),
            verdict(nas > bn)
        );
        if entry.name == "radar-paper" {
            let random = mean("SPDNetNAS (R)").unwrap_or(f64::NAN);
            s += &format!(
                "Paper-preset targets: SPDNetNAS − SPDNetBN ≥ 2 points: {}; SPDNetNAS > SPDNetNAS (R): {}.\n",
                verdict(nas - bn >= 0.02),
                verdict(nas > random)
            );
        }
    }
    if let (Some(first), Some(seed)) = (summary.reports.first(), summary.seeds.first()) {
        let cell = |c: &[(String, usize)]| {
            c.iter()
                .map(|(op, source)| format!("{op}({source})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        s += &format!(
            "\nGenotype of seed {seed} (selected after search epoch {}; `docs/results/{}-genotype.dot`):\n\n```\nnormal: {}\nreduce: {}\n```\n",
            first.search_epoch,
            entry.name,
            cell(&first.genotype.normal),
            cell(&first.genotype.reduce)
        );
    }
    let svg = root
        .join("docs")
        .join("results")
        .join(format!("{}-genotype.svg", entry.name));
    if svg.exists() {
        s += &format!("\n![{0} genotype](results/{0}-genotype.svg)\n", entry.name);
    }
    s += &format!("\n![{0}](results/{0}.png)\n", entry.name);
    s
}
