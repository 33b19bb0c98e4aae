"""`velox query` as a user runs it: the table's answer, JSON, and one-line usage errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from feature_store.registry import Registry
from tests.feature_store.planted import planted_data
from tests.feature_store.score_tables.planted_table import (
    brute_force_top_k,
    publish_planted_table,
)
from velox.cli import app

MODEL = "movies"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A VELOX_HOME whose model `movies` has a snapshot and a top-10 table."""
    registry = Registry(str(tmp_path / "snapshots"))
    registry.publish(MODEL, planted_data(seed=5, n=30, m=6))
    publish_planted_table(registry, MODEL, top_n=10)
    return tmp_path


def velox(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `velox` command in a process, with VELOX_HOME=home and model `movies`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VELOX_")}
    env |= {"VELOX_HOME": str(home), "VELOX_MODEL": MODEL, "COLUMNS": "200"}
    command = [sys.executable, "-c", "from velox.cli import main; main()", *args]
    return subprocess.run(command, check=False, env=env, capture_output=True, text=True)


def velox_here(home: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """Run the `velox` app in this process (faster; errors other than usage ones propagate)."""
    monkeypatch.setenv("VELOX_HOME", str(home))
    monkeypatch.setenv("VELOX_MODEL", MODEL)
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner().invoke(app, list(args))


def test_json_answer_is_the_table_top_k(home: Path) -> None:
    """--json prints the table's filtered top-k with its versions and completeness."""
    where = "genres contains 'Drama' or price < 10"
    done = velox(home, "query", "--user", "user-2", "-k", "3", "--where", where, "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    snapshot = Registry(str(home / "snapshots")).load(MODEL)
    expected = brute_force_top_k(snapshot, "user-2", 3, where)
    assert [i["item"] for i in body["items"]] == [item for item, _ in expected]
    assert (body["table_version"], body["snapshot_version"], body["source"]) == (1, 1, "table")
    assert body["complete"] is True


def test_table_output_names_the_items_and_says_when_incomplete(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The human output lists the items; a user the table lacks is said to be missing."""
    done = velox_here(home, monkeypatch, "query", "--user", "user-0", "-k", "2")
    assert done.exit_code == 0, done.output
    snapshot = Registry(str(home / "snapshots")).load(MODEL)
    for item, _ in brute_force_top_k(snapshot, "user-0", 2, None):
        assert item in done.stdout
    missing = velox_here(home, monkeypatch, "query", "--user", "nobody")
    assert "is not in the table" in missing.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "price <"], "expected a string, number"),
        (["--where", "nope == 1"], "unknown column 'nope'"),
        (["--model", "x'; DROP TABLE t; --"], "invalid model name"),
        (["-k", "0"], "Invalid value"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    home: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    """Malformed filters, unsafe model names and a bad k: a one-line message, exit 2."""
    done = velox_here(home, monkeypatch, "query", "--user", "user-1", *args)
    assert done.exit_code == 2, done.output
    assert message in done.output


def test_a_model_without_a_table_is_one_error_line(home: Path) -> None:
    """No table for the model: `error: ...` on one line, exit 1, no traceback."""
    done = velox(home, "query", "--user", "user-1", "--model", "other")
    assert done.returncode == 1, done.stderr
    assert "has no score table" in done.stderr and "Traceback" not in done.stderr
