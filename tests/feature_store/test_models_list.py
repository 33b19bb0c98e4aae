"""`velox models list` shows one short row per version: the 64-partition training cutoff is
summarised as the time of the latest drained entry, not printed as JSON (issue 23, item 7)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from feature_store.log_cutoff import LOG_START, LogCutoff, LogId
from feature_store.registry import Registry
from tests.cli_support import run_velox
from tests.online.synthetic import synthetic_snapshot

PARTITIONS = 64
LATEST_MS = 1_764_000_000_000  # 2025-11-24 16:00:00 UTC


def test_models_list_summarises_the_log_cutoff(tmp_path: Path) -> None:
    """Three versions, two with a log cutoff: the table stays a few lines per version."""
    registry = Registry(str(tmp_path / "home" / "snapshots"))
    registry.publish("shop", replace(synthetic_snapshot(), training_cutoff="2025-11-01T08:30:00"))
    positions = [LogId(LATEST_MS - 1000 * (p // 2), 0) if p % 2 else LOG_START for p in range(64)]
    cutoff = LogCutoff.of(positions).to_json()
    for seed in (1, 2):
        data = replace(synthetic_snapshot(seed=seed), training_cutoff=cutoff)
        registry.publish("shop", data)
    done = run_velox(["models", "list", "--model", "shop"], tmp_path, env={"COLUMNS": "160"})
    assert done.returncode == 0, done.stderr
    assert "positions" not in done.stdout and "0-0" not in done.stdout
    assert done.stdout.count("log to 2025-11-24 16:00:00 (32/64 partitions drained)") == 2
    assert "2025-11-01 08:30:00" in done.stdout
    assert len(done.stdout.splitlines()) <= 16
