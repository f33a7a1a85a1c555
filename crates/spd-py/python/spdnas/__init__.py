"""spdnas: SPD manifold networks and the differentiable search of their architectures
(SPDNetNAS, Sukthanker et al., IJCAI 2021) as scikit-learn estimators over a Rust engine."""

from . import datasets
from ._estimators import (
    DARTSClassifier,
    FairDARTSClassifier,
    SPDNetBNClassifier,
    SPDNetClassifier,
    SPDNetNASClassifier,
    load,
)
from ._spdnas import __version__

__all__ = [
    "SPDNetNASClassifier",
    "SPDNetClassifier",
    "SPDNetBNClassifier",
    "DARTSClassifier",
    "FairDARTSClassifier",
    "load",
    "datasets",
    "__version__",
]
