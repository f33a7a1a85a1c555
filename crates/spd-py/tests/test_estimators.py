"""The Python estimators: scikit-learn's conventions, the ecosystem (pyRiemann pipelines,
cross-validation, grid search, Dask), errors, and agreement with the ``spdnas`` command."""

import json
import os
import pickle
import subprocess

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

import spdnas

FAST = dict(train_epochs=3, min_steps=0, seed=1)


def spd_data(n=6, classes=3, per_class=20, seed=0):
    """Covariances whose spectrum depends on the class."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in range(classes):
        scale = np.diag(np.linspace(1.0, 1.0 + 2.0 * c, n))
        for _ in range(per_class):
            a = rng.standard_normal((n, 4 * n))
            X.append(scale @ (a @ a.T / (4 * n)) @ scale + 0.1 * np.eye(n))
            y.append(f"class-{c}")
    return np.array(X), np.array(y)


def test_fit_predicts_known_labels_with_probabilities_and_fitted_attributes():
    X, y = spd_data()
    est = spdnas.SPDNetBNClassifier(**FAST).fit(X, y)
    assert list(est.classes_) == ["class-0", "class-1", "class-2"]
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    predicted = est.predict(X)
    assert set(predicted) <= set(est.classes_)
    np.testing.assert_array_equal(predicted, est.classes_[proba.argmax(axis=1)])
    assert est.n_params_ > 0
    assert len(est.history_["spdnetbn"]) == 3
    assert 0.0 <= est.score(X, y) <= 1.0


def test_a_given_genotype_trains_and_reports_its_cell():
    X, y = spd_data()
    est = spdnas.SPDNetNASClassifier(genotype="radar_sparsemax", **FAST).fit(X, y)
    assert len(est.genotype_["normal"]) == 4 and len(est.genotype_["reduce"]) == 4
    assert est.genotype_dot_.startswith("digraph")
    assert "train" in est.history_ and "search" not in est.history_
    # the same cell given as a dict trains the same network
    again = spdnas.SPDNetNASClassifier(genotype=est.genotype_, **FAST).fit(X, y)
    assert again.model_ == est.model_


def test_clone_get_set_params_and_pickle_follow_scikit_learn():
    X, y = spd_data()
    est = spdnas.SPDNetClassifier(lr=0.02, **FAST)
    assert est.get_params()["lr"] == 0.02
    twin = clone(est).set_params(lr=0.03)
    assert twin.lr == 0.03 and est.lr == 0.02
    est.fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.decision_function(X), est.decision_function(X))


def test_results_do_not_depend_on_the_thread_count():
    X, y = spd_data()
    one = spdnas.SPDNetBNClassifier(n_threads=1, **FAST).fit(X, y)
    two = spdnas.SPDNetBNClassifier(n_threads=2, **FAST).fit(X, y)
    assert one.model_ == two.model_


@pytest.mark.parametrize(
    "bad, message",
    [
        (lambda X: X[:, :, :-1], "shape"),
        (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 0, np.nan, X), "not finite"),
        (lambda X: X * np.where(np.arange(len(X)) == 3, -1.0, 1.0)[:, None, None], "sample 3"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(bad, message):
    X, y = spd_data()
    with pytest.raises(ValueError, match=message):
        spdnas.SPDNetClassifier(**FAST).fit(bad(X), y)


def test_bad_settings_raise_value_error_naming_the_setting():
    X, y = spd_data()
    with pytest.raises(ValueError, match="--lr -1"):
        spdnas.SPDNetClassifier(lr=-1.0, **FAST).fit(X, y)
    with pytest.raises(ValueError, match="--mixing"):
        spdnas.SPDNetNASClassifier(mixing="sigmoid", **FAST).fit(X, y)


def test_a_pyriemann_pipeline_on_multichannel_series_cross_validates_on_two_jobs():
    pyriemann = pytest.importorskip("pyriemann")
    rng = np.random.default_rng(3)
    series, labels = [], []
    for c in range(2):
        mixing = np.eye(5) + 0.8 * c * np.diag(np.ones(4), 1)
        for _ in range(24):
            series.append(mixing @ rng.standard_normal((5, 200)))
            labels.append(c)
    pipe = make_pipeline(
        pyriemann.estimation.Covariances("oas"), spdnas.SPDNetClassifier(**FAST)
    )
    scores = cross_val_score(pipe, np.array(series), np.array(labels), cv=3, n_jobs=2)
    # the two classes differ by a strong coupling of neighbouring channels: separable
    assert scores.shape == (3,) and scores.mean() >= 0.9, scores


def grid_search():
    X, y = spd_data(per_class=12)
    grid = GridSearchCV(
        spdnas.SPDNetNASClassifier(genotype="radar_sparsemax", n_threads=1, **FAST),
        {"lr": [0.005, 0.02]},
        cv=2,
    )
    return grid.fit(X, y)


def test_grid_search_over_a_parameter_of_spdnetnas():
    grid = grid_search()
    assert grid.best_params_["lr"] in (0.005, 0.02)
    assert len(grid.cv_results_["mean_test_score"]) == 2


def test_grid_search_on_a_dask_cluster_equals_the_sequential_one():
    distributed = pytest.importorskip("distributed")
    import joblib

    sequential = grid_search()
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster, distributed.Client(cluster):
        with joblib.parallel_backend("dask"):
            on_dask = grid_search()
    np.testing.assert_array_equal(
        sequential.cv_results_["mean_test_score"], on_dask.cv_results_["mean_test_score"]
    )
    assert sequential.best_estimator_.model_ == on_dask.best_estimator_.model_


def test_the_cli_and_python_give_the_same_model_and_read_each_others_files(tmp_path):
    binary = os.environ.get("SPDNAS_BIN")
    if not binary:
        pytest.skip("SPDNAS_BIN (the spdnas binary) is not set")
    X, y = spd_data()
    codes = np.unique(y, return_inverse=True)[1]
    data = tmp_path / "data.npz"
    np.savez(data, X=X, y=codes)
    out = tmp_path / "cli"
    subprocess.run(
        [binary, "train", "--genotype", "radar_sparsemax", "--data", str(data),
         "--test-fraction", "0", "--train-epochs", "3", "--min-steps", "0",
         "--seed", "1", "--quiet", "--out", str(out)],
        check=True,
    )
    cli = json.loads((out / "model.json").read_text())
    est = spdnas.SPDNetNASClassifier(genotype="radar_sparsemax", **FAST).fit(X, codes)
    python = json.loads(est.model_)
    assert python["parameters"] == cli["parameters"]
    assert python["buffers"] == cli["buffers"]
    saved = tmp_path / "python-model.json"
    est.save(saved)
    result = subprocess.run(
        [binary, "eval", "--checkpoint", str(saved), "--data", str(data), "--json"],
        check=True, capture_output=True, text=True,
    )
    assert json.loads(result.stdout)["accuracy"] == est.score(X, codes)
    loaded = spdnas.load(out / "model.json")
    np.testing.assert_array_equal(loaded.predict(X).astype(int), est.predict(X))


def test_a_search_fit_reports_its_searched_cell_and_both_stages():
    X, y = spd_data(per_class=12)
    est = spdnas.SPDNetNASClassifier(search_epochs=1, search_min_steps=0, **FAST).fit(X, y)
    assert set(est.history_) == {"search", "train"}
    assert len(est.history_["search"]) == 1
    assert est.genotype_ == json.loads(json.dumps(est.genotype_))
    assert est.predict(X).shape == (len(X),)


@pytest.mark.parametrize("cls,stage", [
    (spdnas.DARTSClassifier, "darts"),
    (spdnas.FairDARTSClassifier, "fairdarts"),
])
def test_darts_baselines_search_train_draw_their_cell_and_reload(tmp_path, cls, stage):
    X, y = spd_data(per_class=12)
    est = cls(search_epochs=1, search_min_steps=0, **FAST).fit(X, y)
    assert set(est.history_) == {f"{stage}-search", stage}
    assert {"normal", "reduce", "steps"} <= set(est.genotype_)
    assert est.genotype_dot_.startswith("digraph")
    assert est.n_params_ > 0
    assert clone(est).get_params() == est.get_params()
    path = tmp_path / "model.json"
    est.save(path)
    loaded = spdnas.load(path)
    assert type(loaded) is cls
    assert loaded.genotype_ == est.genotype_
    np.testing.assert_array_equal(loaded.decision_function(X), est.decision_function(X))


def test_ctrl_c_stops_a_fit_at_an_epoch_boundary_with_keyboard_interrupt():
    import signal
    import threading
    import time

    X, y = spd_data()
    timer = threading.Timer(1.0, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt, match="fit interrupted: spdnetbn stopped after"):
            spdnas.SPDNetBNClassifier(train_epochs=100000, min_steps=0).fit(X, y)
    finally:
        timer.cancel()
    assert time.monotonic() - start < 60


def test_basicmotions_loads_with_the_archives_split_and_a_pyriemann_pipeline_learns_it():
    pyriemann = pytest.importorskip("pyriemann")
    X_train, y_train, X_test, y_test = spdnas.datasets.load_basicmotions()
    assert X_train.shape == (40, 6, 100) and X_test.shape == (40, 6, 100)
    assert sorted(set(y_train)) == sorted(set(y_test)) and len(set(y_train)) == 4
    # default schedule (the quick preset's 1,500 steps; a few seconds on 6×6): pyRiemann's MDM
    # scores 0.95 on this split
    pipe = make_pipeline(
        pyriemann.estimation.Covariances("lwf"), spdnas.SPDNetBNClassifier(seed=0)
    )
    assert pipe.fit(X_train, y_train).score(X_test, y_test) >= 0.9
