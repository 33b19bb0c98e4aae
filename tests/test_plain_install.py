"""A plain `pip install .` (not editable) in a fresh venv, used the way a service manager would.

The venv gets this environment's dependencies through a `.pth` file (installing pyspark and
friends afresh would take minutes, see tests/support/bare_venv.py) and Velox itself from a
copy of the source with `pip install --no-deps`. Its `bin/velox quickstart --no-serve` then
runs from a directory outside the checkout, with no venv activated and a PATH whose first
`python3` has neither Velox nor numpy: Spark's workers must run Velox's own interpreter. The
`velox query` line it prints then answers from the score table it built (issue 19).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from feature_store.registry import Registry
from tests.feature_store.score_tables.planted_table import brute_force_top_k
from tests.support.bare_venv import imports_velox, make_bare_venv, site_packages

CHECKOUT = Path(__file__).resolve().parents[1]
PACKAGES = ("velox", "feature_store", "online", "batch", "jobs")
PROJECT_FILES = ("pyproject.toml", "setup.py", "README.md")
# Sources of the build, not files the installed packages read.
NOT_SHIPPED = (".pyc", ".so", ".c")


def _copy_source(target: Path) -> None:
    """The files `pip install .` reads, copied so that its build leaves the checkout alone."""
    target.mkdir()
    for name in PROJECT_FILES:
        shutil.copy2(CHECKOUT / name, target / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.egg-info")
    for package in PACKAGES:
        shutil.copytree(CHECKOUT / package, target / package, ignore=ignore)


def _package_files(root: Path) -> set[str]:
    """Every file of the packages under `root` that the installed code may read."""
    return {
        path.relative_to(root).as_posix()
        for package in PACKAGES
        for path in (root / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in NOT_SHIPPED
    }


@pytest.mark.slow
@pytest.mark.spark
def test_quickstart_from_a_plain_install_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "source"
    _copy_source(source)
    venv = tmp_path / "venv"
    python = make_bare_venv(venv)
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
               "--no-build-isolation", "--no-index", "--quiet", str(source)]  # fmt: skip
    done = subprocess.run(
        install, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]

    installed = site_packages(venv)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import velox, online, batch; print(velox.__file__)"],
        cwd=elsewhere, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()) == installed / "velox" / "__init__.py"
    # Package data ships: Lua scripts, type stubs, markers, the dashboard's static files.
    missing = _package_files(source) - _package_files(installed)
    assert not missing, f"not installed: {sorted(missing)}"

    other = make_bare_venv(tmp_path / "other", dependencies=False)  # python3 without Velox
    assert not imports_velox(other, elsewhere)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VELOX_", "PYSPARK_"))}
    for name in ("VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    home = tmp_path / "home"
    env.update(PATH=f"{other.parent}:/usr/bin:/bin", VELOX_HOME=str(home))
    quickstart = subprocess.run(
        [str(venv / "bin" / "velox"), "quickstart", "--no-serve"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    assert quickstart.returncode == 0, quickstart.stderr[-3000:]
    assert "Serve it with `velox serve`" in quickstart.stdout
    registry = Registry(str(home / "snapshots"))
    assert registry.current("default") == 1

    printed = [line.strip() for line in quickstart.stdout.splitlines()]
    query = shlex.split(next(line for line in printed if line.startswith("velox query ")))
    user = query[query.index("--user") + 1]
    assert query == ["velox", "query", "--user", user, "-k", "5"]
    assert f"curl 'http://127.0.0.1:8000/recommendations?user={user}&k=5'" in printed
    asked = subprocess.run(
        [str(venv / "bin" / "velox"), *query[1:], "--json"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr[-3000:]
    answer = json.loads(asked.stdout)
    assert (answer["user"], answer["source"], answer["complete"]) == (user, "table", True)
    assert (answer["table_version"], answer["snapshot_version"]) == (1, 1)
    expected = brute_force_top_k(registry.load("default"), user, 5, None)
    assert [row["item"] for row in answer["items"]] == [item for item, _ in expected]
    for row, (_, score) in zip(answer["items"], expected, strict=True):
        assert row["score"] == pytest.approx(score, rel=1e-5)
