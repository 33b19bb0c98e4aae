"""What the service holds per model: a loaded snapshot and everything precomputed from it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from feature_store.log_cutoff import LogCutoff, LogId
from feature_store.snapshot import Snapshot
from online.errors import NoSnapshotError, UnprocessableError
from online.redis_keys import LOG_PARTITIONS, partition_of
from online.retrieval.cascade import CascadeConfig
from online.retrieval.served_cascade import ServedCascade
from online.schemas import ModelInfo
from online.settings import RewardSettings
from velox.errors import NotFoundError
from velox.policies import Policy
from velox.posterior import UserPosterior
from velox.state_codec import decode_state

PRIOR_CACHE_USERS = 16_384
"""How many known users' re-centred priors a served model keeps (about 1 KB each at d = 18)."""
CARRIED_PRIOR_CACHE_BYTES = 64 << 20
"""Memory for cached carried priors (each owns its precision and square root: about 14 KB at
d = 34), which bounds how many a served model keeps when its snapshot has Gram matrices."""


def prior_cache_users(snapshot: Snapshot) -> int:
    """How many known users' priors to cache: PRIOR_CACHE_USERS re-centred ones (they share the
    population prior's arrays), or as many carried ones as fit CARRIED_PRIOR_CACHE_BYTES."""
    if snapshot.user_grams is None:
        return PRIOR_CACHE_USERS
    dim = snapshot.dim
    each = 8 * (dim * (dim + 1) // 2 + dim * dim + 2 * dim)
    return max(256, min(PRIOR_CACHE_USERS, CARRIED_PRIOR_CACHE_BYTES // each))


@dataclass(frozen=True, eq=False)
class ServedModel:
    """One snapshot version ready to serve; built off the request path, never mutated."""

    snapshot: Snapshot
    policy: Policy
    item_ids: list[str]
    population_prior: UserPosterior
    log_cutoff: LogCutoff
    rewards: RewardSettings
    cascade: ServedCascade | None = None
    """The retrieval cascade of a snapshot with an ANN index (None: exact scoring)."""
    thompson_scale: float = 1.0
    """The scale a bare "thompson" explores at on this snapshot (velox.policies.calibration)."""
    _known_prior: Callable[[str], UserPosterior] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # A known user's prior is its batch head's posterior (`_known_user_prior`): cached
        # because building it (copy, finiteness check; a factorisation for a carried one) was
        # ~7 % of /predict's CPU when most visitors have no stored state yet. Sharing is safe:
        # a known user's prior's arrays are read-only, so its first `update` copies every
        # buffer (UserPosterior._own_buffers).
        cached = lru_cache(maxsize=prior_cache_users(self.snapshot))(self._known_user_prior)
        object.__setattr__(self, "_known_prior", cached)

    @classmethod
    def build(
        cls,
        snapshot: Snapshot,
        policy: Policy,
        rewards: RewardSettings,
        cascade: CascadeConfig | None = None,
        seed: int | None = None,
        thompson_scale: float = 1.0,
    ) -> ServedModel:
        """Precompute what requests need: id lists, the shared prior, filter columns, and the
        retrieval cascade when the snapshot has an ANN index and `cascade` is given."""
        snapshot.filters  # noqa: B018  (built here, on the loading thread, not by a request)
        prior = UserPosterior.prior(snapshot.prior_mean, snapshot.lam, snapshot.noise_std)
        cutoff = LogCutoff.from_manifest(snapshot.manifest.training_cutoff, LOG_PARTITIONS)
        served_cascade = None if cascade is None else ServedCascade.of(snapshot, cascade, seed)
        ids = snapshot.item_ids.tolist()
        return cls(snapshot, policy, ids, prior, cutoff, rewards, served_cascade, thompson_scale)

    @property
    def name(self) -> str:
        """The model name."""
        return self.snapshot.model

    @property
    def version(self) -> int:
        """The snapshot version."""
        return self.snapshot.version

    def prior(self, user: str) -> UserPosterior:
        """The prior of `user`: its batch head's posterior if the snapshot knows the user, else
        the population prior.

        A known user's prior has mean w0 (its row of users.arrow) and, when the snapshot has
        Gram matrices, precision λI + Σ x xᵀ over the user's training events: the batch head's
        own, so later events continue that posterior (for a head without the exposure term,
        prior plus events is exactly the ridge over all of them) instead of outweighing a
        heavy user's history. Without them the precision is λI (snapshots before the Gram
        column, implicit models).

        Priors are shared (unknown users share one object, known ones a cached object each);
        callers that update one must `copy()` it.
        """
        if user not in self.snapshot.user_index:
            return self.population_prior
        return self._known_prior(user)

    def _known_user_prior(self, user: str) -> UserPosterior:
        if self.snapshot.user_grams is None:  # precision λI: share the population prior's
            return self.population_prior.recentred(self.snapshot.w0_for(user))
        prior = self.snapshot.prior_for(user)
        for array in prior.packed_parts():  # shared: an update must copy them first
            array.flags.writeable = False
        return prior

    def cutoff_for(self, user: str) -> LogId:
        """The last entry of the user's log partition that this snapshot's training saw."""
        return self.log_cutoff.positions[partition_of(user)]

    def posterior(self, user: str, state: bytes | None) -> UserPosterior:
        """The user's posterior from its stored state, or its prior when it has none."""
        return decode_state(state) if state is not None else self.prior(user)

    def row_of(self, item: str) -> int:
        """The row of `item` in the catalog (NotFoundError, a 404, if it has none)."""
        row = self.snapshot.item_index.get(item)
        if row is None:
            raise NotFoundError(f"unknown item {item!r} in {self.name} v{self.version}")
        return row

    def rows_of(self, items: Iterable[bytes]) -> NDArray[np.intp]:
        """Rows of the items that are in this catalog (others are ignored)."""
        index = self.snapshot.item_index
        rows = [index.get(item.decode()) for item in items]
        return np.array([row for row in rows if row is not None], dtype=np.intp)

    def info(self) -> ModelInfo:
        """Description for `GET /models`."""
        manifest = self.snapshot.manifest
        return ModelInfo(
            model=self.name,
            version=self.version,
            dim=self.snapshot.dim,
            items=self.snapshot.items.n,
            kind=manifest.kind,
            created_at=manifest.created_at,
            policy=self.policy.spec,
            metrics=dict(manifest.metrics),
        )


@dataclass(frozen=True)
class ModelSet:
    """The served models; replaced as a whole (one reference assignment) on every swap."""

    default_name: str
    models: Mapping[str, ServedModel] = field(default_factory=dict)

    @property
    def default(self) -> str | None:
        """The model a request without `model` gets: the configured one, or the only one."""
        if self.default_name in self.models or not self.models:
            return self.default_name
        return next(iter(self.models)) if len(self.models) == 1 else None

    def get(self, name: str | None) -> ServedModel:
        """The served model `name` (None: the default one)."""
        if name is None:
            name = self.default
            if name is None:
                raise UnprocessableError(
                    f"several models are served ({', '.join(sorted(self.models))}): give model="
                )
        served = self.models.get(name)
        if served is None:
            if name == self.default_name:
                raise NoSnapshotError(f"model {name!r} has no snapshot loaded yet")
            raise NotFoundError(f"model {name!r} is not served")
        return served

    def with_model(self, served: ServedModel) -> ModelSet:
        """A new set where `served` replaces the model of the same name."""
        return ModelSet(self.default_name, {**self.models, served.name: served})
