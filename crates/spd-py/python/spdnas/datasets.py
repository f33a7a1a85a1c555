"""Data shipped with spdnas."""

import numpy as np

from . import _spdnas


def load_basicmotions():
    """The BasicMotions recordings (UEA time-series archive, BSD-3-Clause): 3-D accelerometer
    and gyroscope, 6 channels × 100 steps, 4 classes (badminton, running, standing, walking).

    Returns ``(X_train, y_train, X_test, y_test)`` with the archive's own split: series arrays
    of shape (40, 6, 100) and arrays of class names.
    """
    series, labels = _spdnas.basicmotions()
    X = np.asarray(series, dtype=np.float64)
    y = np.asarray(labels)
    return X[:40], y[:40], X[40:], y[40:]
