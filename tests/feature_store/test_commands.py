"""`velox models list | promote | rollback` over a real snapshot root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from feature_store import commands
from feature_store.errors import NoRollbackTargetError, VersionNotFoundError
from feature_store.registry import Registry
from tests.feature_store.planted import planted_data
from velox.settings import VeloxSettings


@pytest.fixture
def settings(tmp_path: Path) -> VeloxSettings:
    """Settings whose snapshot root is a fresh temporary directory."""
    return VeloxSettings(home=tmp_path, model="movies")


def test_list_marks_the_current_version(
    settings: VeloxSettings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "250")  # rich reads it: no truncated cells
    commands.list_versions(settings)
    assert "no versions of model 'movies'" in capsys.readouterr().out

    registry = Registry(settings.resolved_snapshot_root())
    registry.publish("movies", planted_data(seed=1))
    registry.publish("movies", planted_data(seed=2), promote=False, parent=1)
    (Path(settings.resolved_snapshot_root()) / "movies" / "v2" / "manifest.json").write_text("{")
    commands.list_versions(settings)
    out = capsys.readouterr().out
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines()]
    rows = {row[0]: row for row in cells if row and row[0].startswith("v")}
    assert set(rows) == {"v1 *", "v2"}  # the current version is starred
    assert rows["v1 *"][1:3] == ["mf", "6"]
    assert rows["v1 *"][5] == planted_data(seed=1).training_cutoff
    assert rows["v2"][1] == "unreadable"
    assert "not valid JSON" in rows["v2"][-1]


def test_promote_and_rollback_report_what_changed(
    settings: VeloxSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = Registry(settings.resolved_snapshot_root())
    registry.publish("movies", planted_data(seed=1))
    registry.publish("movies", planted_data(seed=2), promote=False)

    commands.promote(settings, 2)
    assert "model movies: v2 is now current (was v1)" in capsys.readouterr().out
    commands.rollback(settings)
    assert "model movies: rolled back to v1 (was v2)" in capsys.readouterr().out
    with pytest.raises(NoRollbackTargetError):
        commands.rollback(settings)
    with pytest.raises(VersionNotFoundError):
        commands.promote(settings, 7)
    assert registry.current("movies") == 1


def test_velox_cli_runs_the_commands(settings: VeloxSettings) -> None:
    registry = Registry(settings.resolved_snapshot_root())
    registry.publish("movies", planted_data(seed=1))
    registry.publish("movies", planted_data(seed=2), promote=False)
    env = {**os.environ, "VELOX_HOME": str(settings.home), "VELOX_MODEL": "movies"}
    script = "from velox.cli import main; main()"

    def velox(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", script, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    promoted = velox("models", "promote", "2")
    assert promoted.returncode == 0 and "v2 is now current" in promoted.stdout
    missing = velox("models", "promote", "9")
    assert missing.returncode == 1 and "no version 9" in missing.stderr
    assert registry.current("movies") == 2
