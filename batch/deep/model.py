"""`DeepFeatureModel`: a `FeatureModel` that also carries the item tower (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from batch.train_als import FeatureModel

KIND = "deep"


@dataclass(frozen=True)
class DeepFeatureModel(FeatureModel):
    """Features of the items with events plus the tower that computes them for any item.

    `catalog_features` are the tower's features of the catalog's items without events (in
    catalog order, `batch.snapshot_builder.catalog_ids`); `tower_weights` (id table cut to the
    unseen row) and `tower_spec` (JSON) go into the snapshot; `training` records how the
    torch run went (device, samples/s, seconds).
    """

    catalog_features: NDArray[np.float64] | None = None
    tower_weights: dict[str, NDArray[np.float32]] = field(default_factory=dict)
    tower_spec: str = ""
    training: dict[str, float | str] = field(default_factory=dict)
