"""`DeepFeatureModel`: a `FeatureModel` that also carries the item tower (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from batch.train_als import FeatureModel, exposure_whitening
from feature_store.tower.spec import TowerSpec

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

    def with_exposure_prior(self, kappa: float, target: float) -> FeatureModel:
        """As `FeatureModel.with_exposure_prior`, with the same change of basis applied to the
        catalog's other items and recorded in the tower spec, so that the tower's features of
        a new item stay in the published basis."""
        moved = super().with_exposure_prior(kappa, target)
        if moved is self:
            return self
        assert isinstance(moved, DeepFeatureModel)  # dataclasses.replace keeps the class
        inverse = exposure_whitening(self.item_features, kappa)
        spec = replace(TowerSpec.from_json(self.tower_spec), feature_transform=inverse.tolist())
        catalog = self.catalog_features
        if catalog is not None:
            catalog = (catalog @ inverse.T).astype(np.float32).astype(np.float64)
        return replace(moved, catalog_features=catalog, tower_spec=spec.to_json())
