"""Settings shared by the CLI, the service and the jobs, read from `VELOX_*` variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class VeloxSettings(BaseSettings):
    """Where Velox keeps its state and which servers it talks to."""

    model_config = SettingsConfigDict(env_prefix="VELOX_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".velox")
    redis_url: str | None = None
    snapshot_root: str | None = None
    model: str = "default"

    def resolved_snapshot_root(self) -> str:
        """The snapshot root: `VELOX_SNAPSHOT_ROOT` (a path or URI) or `<home>/snapshots`."""
        return self.snapshot_root or str(self.home / "snapshots")

    def dataset_cache(self) -> Path:
        """Directory where downloaded and generated datasets are kept."""
        return self.home / "datasets"

    def embedded_redis_dir(self) -> Path:
        """Directory of the embedded Redis (socket, AOF)."""
        return self.home / "redis"
