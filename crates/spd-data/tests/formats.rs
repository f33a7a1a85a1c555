//! Every on-disk format round-trips through `load`, the real BasicMotions file parses as the
//! archive describes it, and bad files give one error naming the file and the problem.

use std::path::{Path, PathBuf};

use spd_data::covariance::CovarianceOptions;
use spd_data::embedded::{basicmotions, basicmotions_series};
use spd_data::folder::{write_matrix_folder, write_signal_folder};
use spd_data::gaussian::{GaussianConfig, generate_gaussian};
use spd_data::mat::{MatVariable, mat_bytes, mat_bytes_compressed};
use spd_data::npy::{npy_f64, npy_i64};
use spd_data::npz::npz_bytes;
use spd_data::radar::{RadarConfig, generate_radar, signals_to_dataset};
use spd_data::ts::{MissingPolicy, read_ts, ts_text};
use spd_data::{Dataset, Format, LoadOptions, Problem, Validation, load, write_atomic};

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("spd-data-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn small() -> Dataset {
    generate_gaussian(
        &GaussianConfig {
            n: 4,
            classes: 3,
            per_class: 5,
            ..Default::default()
        },
        11,
    )
    .unwrap()
}

/// `X` in C order `(N, n, n)` and `y`.
fn c_order(d: &Dataset) -> (Vec<f64>, Vec<i64>) {
    let n = d.n();
    let x = (0..d.len())
        .flat_map(|k| (0..n).flat_map(move |i| (0..n).map(move |j| (k, i, j))))
        .map(|(k, i, j)| d.matrix(k)[(i, j)])
        .collect();
    (x, d.labels().iter().map(|&l| l as i64).collect())
}

fn same(a: &Dataset, b: &Dataset) {
    assert_eq!((a.len(), a.n(), a.labels()), (b.len(), b.n(), b.labels()));
    assert_eq!(a.matrices(), b.matrices());
}

#[test]
fn npz_npy_and_mat_round_trip() {
    let d = small();
    let dir = TempDir::new("roundtrip");
    let (x, y) = c_order(&d);
    let shape = [d.len(), d.n(), d.n()];
    write_atomic(
        &dir.path("d.npz"),
        &npz_bytes(&[("X", npy_f64(&shape, &x)), ("y", npy_i64(&[d.len()], &y))]),
    )
    .unwrap();
    same(
        &load(&dir.path("d.npz"), &LoadOptions::default()).unwrap(),
        &d,
    );
    write_atomic(&dir.path("X.npy"), &npy_f64(&shape, &x)).unwrap();
    write_atomic(&dir.path("y.npy"), &npy_i64(&[d.len()], &y)).unwrap();
    same(
        &load(&dir.path("X.npy"), &LoadOptions::default()).unwrap(),
        &d,
    );
    let mat = vec![
        MatVariable {
            name: "X".into(),
            dims: vec![d.n(), d.n(), d.len()],
            data: d.matrices().to_vec(),
        },
        MatVariable {
            name: "y".into(),
            dims: vec![d.len(), 1],
            data: y.iter().map(|&v| v as f64).collect(),
        },
    ];
    write_atomic(&dir.path("d.mat"), &mat_bytes(&mat)).unwrap();
    same(
        &load(&dir.path("d.mat"), &LoadOptions::default()).unwrap(),
        &d,
    );
    write_atomic(&dir.path("z.mat"), &mat_bytes_compressed(&mat)).unwrap();
    same(
        &load(&dir.path("z.mat"), &LoadOptions::default()).unwrap(),
        &d,
    );
    assert_eq!(Format::detect(&dir.path("z.mat")), Some(Format::Mat));
}

#[test]
fn folder_layouts_round_trip() {
    let dir = TempDir::new("folders");
    let d = small();
    write_matrix_folder(&dir.path("hdm05-like"), "sample", &d).unwrap();
    same(
        &load(&dir.path("hdm05-like"), &LoadOptions::default()).unwrap(),
        &d,
    );
    let signals = generate_radar(
        &RadarConfig {
            per_class: 3,
            ..Default::default()
        },
        5,
    );
    write_signal_folder(&dir.path("radar-like"), "radar", &signals).unwrap();
    let from_disk = load(&dir.path("radar-like"), &LoadOptions::default()).unwrap();
    let in_memory = signals_to_dataset(&signals, 20, 10, "mem", &Validation::default()).unwrap();
    same(&from_disk, &in_memory);
    assert_eq!(from_disk.n(), 20);
}

#[test]
fn ts_round_trips_and_becomes_covariances() {
    let dir = TempDir::new("ts");
    let set = basicmotions_series().unwrap();
    write_atomic(&dir.path("bm.ts"), ts_text(&set).as_bytes()).unwrap();
    let back = read_ts(&dir.path("bm.ts"), MissingPolicy::Error).unwrap();
    assert_eq!(back.series, set.series);
    assert_eq!(back.labels, set.labels);
    let d = load(&dir.path("bm.ts"), &LoadOptions::default()).unwrap();
    same(&d, &basicmotions(CovarianceOptions::default()).unwrap());
}

/// The real file: 40 + 40 series of 6 channels × 100 samples in 4 classes, 10 per class and
/// file.
#[test]
fn basicmotions_is_what_the_archive_says() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/basicmotions");
    for file in ["BasicMotions_TRAIN.ts", "BasicMotions_TEST.ts"] {
        let s = read_ts(&root.join(file), MissingPolicy::Error).unwrap();
        assert_eq!(s.series.len(), 40);
        assert_eq!(
            s.class_names,
            vec!["Standing", "Running", "Walking", "Badminton"]
        );
        assert!(
            s.series
                .iter()
                .all(|x| x.len() == 6 && x.iter().all(|c| c.len() == 100))
        );
        for c in 0..4 {
            assert_eq!(s.labels.iter().filter(|&&l| l == c).count(), 10);
        }
    }
    let d = basicmotions(CovarianceOptions::default()).unwrap();
    assert_eq!((d.len(), d.n(), d.num_classes()), (80, 6, 4));
    assert!(d.summary().min_eigenvalue > 0.0);
}

fn error_of(path: &Path, options: &LoadOptions) -> spd_data::DataError {
    let e = load(path, options).unwrap_err();
    assert!(
        e.to_string().starts_with(&path.display().to_string()),
        "message does not name the file: {e}"
    );
    e
}

#[test]
fn bad_files_name_file_and_problem() {
    let dir = TempDir::new("bad");
    let opts = LoadOptions::default();
    assert!(matches!(
        error_of(&dir.path("missing.npz"), &opts).problem,
        Problem::Io(_)
    ));

    let d = small();
    let (mut x, y) = c_order(&d);
    let shape = [d.len(), d.n(), d.n()];
    let npz = |x: &[f64], y: &[i64]| {
        npz_bytes(&[("X", npy_f64(&shape, x)), ("y", npy_i64(&[y.len()], y))])
    };

    write_atomic(&dir.path("count.npz"), &npz(&x, &y[1..])).unwrap();
    assert!(matches!(
        error_of(&dir.path("count.npz"), &opts).problem,
        Problem::CountMismatch { .. }
    ));

    x[17] = f64::INFINITY;
    write_atomic(&dir.path("inf.npz"), &npz(&x, &y)).unwrap();
    let e = error_of(&dir.path("inf.npz"), &opts);
    assert!(
        matches!(e.problem, Problem::NotFinite { .. }) && e.to_string().contains("sample 1"),
        "{e}"
    );

    let (mut x, _) = c_order(&d);
    x[1] += 0.5;
    write_atomic(&dir.path("asym.npz"), &npz(&x, &y)).unwrap();
    assert!(matches!(
        error_of(&dir.path("asym.npz"), &opts).problem,
        Problem::NotSymmetric { .. }
    ));

    let (mut x, _) = c_order(&d);
    for v in &mut x[..16] {
        *v = -*v;
    }
    write_atomic(&dir.path("neg.npz"), &npz(&x, &y)).unwrap();
    assert!(matches!(
        error_of(&dir.path("neg.npz"), &opts).problem,
        Problem::NotPositiveDefinite { .. }
    ));

    write_atomic(&dir.path("truncated.npz"), &npz(&x, &y)[..100]).unwrap();
    error_of(&dir.path("truncated.npz"), &opts);

    write_atomic(&dir.path("shape.npy"), &npy_f64(&[2, 3], &[0.0; 6])).unwrap();
    write_atomic(&dir.path("y.npy"), &npy_i64(&[2], &[0, 1])).unwrap();
    assert!(matches!(
        error_of(&dir.path("shape.npy"), &opts).problem,
        Problem::Shape(_)
    ));

    let ts = "@classLabel true a b\n@data\n1,2,3:a\n1,2,?:b\n4,5,6:c\n";
    write_atomic(&dir.path("bad.ts"), ts.as_bytes()).unwrap();
    let e = error_of(&dir.path("bad.ts"), &opts);
    assert!(
        matches!(e.problem, Problem::Missing { channel: 0 }) && e.to_string().contains("line 4"),
        "{e}"
    );
    let e = error_of(
        &dir.path("bad.ts"),
        &LoadOptions {
            missing: MissingPolicy::DropSeries,
            ..Default::default()
        },
    );
    assert!(matches!(e.problem, Problem::UnknownLabel(_)), "{e}");

    let ts = "@classLabel true a b\n@data\n1,2,3:2,1,0:a\n3,1,2:0,2,2:a\n";
    write_atomic(&dir.path("empty.ts"), ts.as_bytes()).unwrap();
    assert!(matches!(
        error_of(&dir.path("empty.ts"), &opts).problem,
        Problem::EmptyClass(_)
    ));

    write_atomic(&dir.path("notes.txt"), b"hello").unwrap();
    assert!(matches!(
        error_of(&dir.path("notes.txt"), &opts).problem,
        Problem::Invalid(_)
    ));
}
