"""The estimators: parameters are stored as given (scikit-learn's rule); ``fit`` converts the
arrays and hands everything to the Rust engine, which checks the settings and raises
``ValueError`` with the same message as the ``spdnas`` command."""

import json

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from . import _spdnas

# Parameters passed to the engine as overrides of the preset (None: the preset's value).
_OVERRIDES = (
    "search_epochs",
    "train_epochs",
    "order",
    "optimizer",
    "lr",
    "stiefel_metric",
    "schedule",
    "min_steps",
    "search_min_steps",
    "patience",
    "weight_decay",
    "warmup",
    "max_skips",
    "selection",
    "mixing",
    "space",
    "naming",
    "karcher_steps",
    "cells",
    "channels",
    "val_fraction",
    "darts_layout",
)


def _samples(X):
    """``X`` as C-order float64 bytes of shape (n_samples, n, n), and n."""
    X = np.asarray(X)
    if X.ndim != 3 or X.shape[1] != X.shape[2] or X.shape[0] == 0:
        raise ValueError(
            f"X: expected an array of shape (n_samples, n, n), got {X.shape}"
        )
    return np.ascontiguousarray(X, dtype=np.float64).tobytes(), X.shape[1]


class _SPDNetwork(ClassifierMixin, BaseEstimator):
    """Fitting, scoring, saving and pickling shared by the network classifiers."""

    _method = None

    def _overrides(self):
        values = {}
        for name in _OVERRIDES:
            value = getattr(self, name, None)
            if value is None:
                continue
            if name == "max_skips":
                value = str(value)
            values[name] = value
        reduced = getattr(self, "reduced_dim", None)
        if reduced is not None:
            values["reduced_dim"] = [int(r) for r in np.atleast_1d(reduced)]
        return json.dumps(values)

    def fit(self, X, y):
        """Fits on every sample: ``val_fraction`` of each class (0.25 by default) selects the
        genotype and the epoch, the rest trains."""
        x, n = _samples(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValueError(f"y: expected {len(X)} labels, got shape {y.shape}")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        genotype = getattr(self, "genotype", None)
        if isinstance(genotype, dict):
            genotype = json.dumps(genotype)
        model, history, cells, n_params = _spdnas.fit(
            self._method,
            genotype,
            self.preset,
            self._overrides(),
            int(self.seed),
            x,
            n,
            [int(c) for c in encoded],
            [str(c) for c in self.classes_],
            self.n_threads,
            bool(self.verbose),
        )
        self.model_ = model
        self.history_ = json.loads(history)
        self.n_params_ = n_params
        self.n_features_in_ = n
        if cells is not None:
            self.genotype_ = json.loads(cells[0])
            self.genotype_dot_ = cells[1]
        return self

    def _scores(self, X, proba):
        check_is_fitted(self, "model_")
        x, n = _samples(X)
        return np.asarray(_spdnas.scores(self.model_, x, n, proba, self.n_threads))

    def decision_function(self, X):
        """The logits, one row per sample."""
        return self._scores(X, False)

    def predict_proba(self, X):
        """Class probabilities (softmax of the logits), one row per sample."""
        return self._scores(X, True)

    def predict(self, X):
        """The most likely class of each sample (the first on ties)."""
        return self.classes_[np.argmax(self.decision_function(X), axis=1)]

    def save(self, path):
        """Writes the model file, the format of the CLI's ``model.json`` (``spdnas eval``
        reads it with ``--data``)."""
        check_is_fitted(self, "model_")
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.model_)


def load(path):
    """A fitted classifier from a model file written by ``save`` or by the CLI."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    model = json.loads(text)
    architecture = model.get("architecture", {})
    if "SpdNet" in architecture:
        layout = architecture["SpdNet"]
        est = SPDNetBNClassifier() if layout.get("batch_norm") else SPDNetClassifier()
        n = layout["dims"][0]
    elif "Darts" in architecture:
        layout = architecture["Darts"]
        fair = layout["config"]["mixing"] == "Sigmoid"
        est = FairDARTSClassifier() if fair else DARTSClassifier()
        est.genotype_ = layout["genotype"]
        est.genotype_dot_ = _spdnas.genotype_dot(json.dumps(est.genotype_))
        n = layout["config"]["input_size"]
    else:
        layout = architecture.get("Genotype", {})
        est = SPDNetNASClassifier(genotype=layout.get("genotype"))
        est.genotype_ = layout.get("genotype")
        est.genotype_dot_ = _spdnas.genotype_dot(json.dumps(est.genotype_))
        n = layout.get("network", {}).get("input_dim")
    est.model_ = text
    est.classes_ = np.asarray(model["class_names"])
    est.n_features_in_ = n
    est.history_ = {}
    return est


class SPDNetNASClassifier(_SPDNetwork):
    """SPDNetNAS: a bilevel search of the cell, the derived network trained from scratch
    (with ``genotype``, a published name such as ``"radar_sparsemax"`` or a genotype dict,
    the given cell is trained without a search).

    Every parameter left ``None`` takes the value of ``preset`` (``"quick"``: minutes on a
    laptop, enough optimisation on small sets; ``"paper"``: the paper's RADAR schedule;
    ``"paper-hdm05"``: the paper's HDM05 configuration, 93 → 30). Fitted
    attributes: ``classes_``, ``genotype_`` (dict), ``genotype_dot_`` (Graphviz),
    ``history_`` (per-stage epoch logs), ``n_params_``, ``model_`` (the model file's JSON).
    """

    _method = "spdnetnas"

    def __init__(
        self,
        genotype=None,
        preset="quick",
        search_epochs=None,
        train_epochs=None,
        order=None,
        optimizer=None,
        lr=None,
        stiefel_metric=None,
        schedule=None,
        min_steps=None,
        search_min_steps=None,
        patience=None,
        weight_decay=None,
        warmup=None,
        max_skips=None,
        selection=None,
        mixing=None,
        space=None,
        naming=None,
        karcher_steps=None,
        cells=None,
        channels=None,
        reduced_dim=None,
        val_fraction=None,
        seed=0,
        n_threads=None,
        verbose=False,
    ):
        self.genotype = genotype
        self.preset = preset
        self.search_epochs = search_epochs
        self.train_epochs = train_epochs
        self.order = order
        self.optimizer = optimizer
        self.lr = lr
        self.stiefel_metric = stiefel_metric
        self.schedule = schedule
        self.min_steps = min_steps
        self.search_min_steps = search_min_steps
        self.patience = patience
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.max_skips = max_skips
        self.selection = selection
        self.mixing = mixing
        self.space = space
        self.naming = naming
        self.karcher_steps = karcher_steps
        self.cells = cells
        self.channels = channels
        self.reduced_dim = reduced_dim
        self.val_fraction = val_fraction
        self.seed = seed
        self.n_threads = n_threads
        self.verbose = verbose


class SPDNetClassifier(_SPDNetwork):
    """SPDNet (Huang & Van Gool 2017): BiMap → ReEig blocks, LogEig, linear, with the
    published RADAR/HDM05 layouts where the data has their shape, else the RADAR layout
    scaled to the input size. Parameters left ``None`` take the value of ``preset``."""

    _method = "spdnet"

    def __init__(
        self,
        preset="quick",
        train_epochs=None,
        optimizer=None,
        lr=None,
        stiefel_metric=None,
        schedule=None,
        min_steps=None,
        patience=None,
        weight_decay=None,
        val_fraction=None,
        seed=0,
        n_threads=None,
        verbose=False,
    ):
        self.preset = preset
        self.train_epochs = train_epochs
        self.optimizer = optimizer
        self.lr = lr
        self.stiefel_metric = stiefel_metric
        self.schedule = schedule
        self.min_steps = min_steps
        self.patience = patience
        self.weight_decay = weight_decay
        self.val_fraction = val_fraction
        self.seed = seed
        self.n_threads = n_threads
        self.verbose = verbose


class SPDNetBNClassifier(SPDNetClassifier):
    """SPDNetBN (Brooks et al. 2019): SPDNet with Riemannian batch norm after every BiMap."""

    _method = "spdnetbn"


class DARTSClassifier(_SPDNetwork):
    """DARTS (Liu et al., ICLR 2019) on the matrix logarithms of the samples, the Euclidean
    baseline of the SPDNetNAS paper: a bilevel search of a convolutional cell (softmax over
    the eight DARTS operations, top-2 derivation), the derived network trained from scratch,
    with the search and training settings of ``preset``. ``darts_layout`` is ``"small"``
    (C = 8, 3 cells, searched and trained; the default) or ``"paper"`` (DARTS's search network,
    C = 16 and 8 cells, then the derived network at C = 32 and 20 cells). Fitted attributes:
    ``classes_``, ``genotype_`` (dict), ``genotype_dot_``, ``history_``, ``n_params_``,
    ``model_``."""

    _method = "darts"

    def __init__(
        self,
        preset="quick",
        darts_layout=None,
        search_epochs=None,
        train_epochs=None,
        order=None,
        optimizer=None,
        lr=None,
        schedule=None,
        min_steps=None,
        search_min_steps=None,
        patience=None,
        weight_decay=None,
        warmup=None,
        selection=None,
        val_fraction=None,
        seed=0,
        n_threads=None,
        verbose=False,
    ):
        self.preset = preset
        self.darts_layout = darts_layout
        self.search_epochs = search_epochs
        self.train_epochs = train_epochs
        self.order = order
        self.optimizer = optimizer
        self.lr = lr
        self.schedule = schedule
        self.min_steps = min_steps
        self.search_min_steps = search_min_steps
        self.patience = patience
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.selection = selection
        self.val_fraction = val_fraction
        self.seed = seed
        self.n_threads = n_threads
        self.verbose = verbose


class FairDARTSClassifier(DARTSClassifier):
    """FairDARTS (Chu et al., ECCV 2020): DARTS with an independent sigmoid weight per
    operation, the zero-one loss on those weights, and derivation by threshold."""

    _method = "fairdarts"
