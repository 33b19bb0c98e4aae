"""Settings shared by the CLI, the service and the jobs, read from `VELOX_*` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from velox.errors import InvalidInputError
from velox.redis_url import ClusterUrl, is_cluster_url


class VeloxSettings(BaseSettings):
    """Where Velox keeps its state and which servers it talks to."""

    model_config = SettingsConfigDict(env_prefix="VELOX_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".velox")
    redis_url: str | None = None
    snapshot_root: str | None = None
    model: str = "default"
    scores_url: str | None = None  # postgresql://... serves score tables from PostgreSQL
    scores_keep: int = Field(default=2, ge=1, le=100)  # table versions kept loaded there
    # Rewards outside [reward_min, reward_max] are refused by /observe (422) and skipped by
    # training; the default admits ratings, clicks and most amounts, not a typo like 1e50.
    reward_min: float = Field(default=-1e6, ge=-1e12, le=1e12)
    reward_max: float = Field(default=1e6, ge=-1e12, le=1e12)

    @field_validator("redis_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        """A URL the service and the jobs can use, refused here (one line naming the variable)
        rather than deep inside a job."""
        if value is not None and is_cluster_url(value):
            try:
                ClusterUrl.parse(value)
            except InvalidInputError as error:
                raise ValueError(error.message) from None
        elif value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "must start with redis://, rediss://, unix:// or (a cluster) redis+cluster://"
            )
        return value

    @model_validator(mode="after")
    def _ordered_reward_range(self) -> VeloxSettings:
        if not self.reward_min < self.reward_max:
            raise ValueError(
                f"VELOX_REWARD_MIN ({self.reward_min:g}) must be below VELOX_REWARD_MAX "
                f"({self.reward_max:g})"
            )
        return self

    def reward_range(self) -> tuple[float, float]:
        """The accepted rewards, `(VELOX_REWARD_MIN, VELOX_REWARD_MAX)`, both inclusive."""
        return self.reward_min, self.reward_max

    def resolved_snapshot_root(self) -> str:
        """The snapshot root: `VELOX_SNAPSHOT_ROOT` (a path or URI) or `<home>/snapshots`."""
        return self.snapshot_root or str(self.home / "snapshots")

    def dataset_cache(self) -> Path:
        """Directory where downloaded and generated datasets are kept."""
        return self.home / "datasets"

    def embedded_redis_dir(self) -> Path:
        """Directory of the embedded Redis (socket, AOF)."""
        return self.home / "redis"
