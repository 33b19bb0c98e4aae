"""A new virtualenv that sees this environment's dependencies but not Velox itself.

Installing numpy, pyarrow, pyspark, ... afresh would take minutes; instead the new venv gets
a `.pth` file naming this environment's site-packages. A directory named in a `.pth` file is
added to `sys.path`, but the `.pth` files inside it are not run, so this environment's
editable install of Velox (a `.pth` import hook) does not reach the new venv.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

PTH_NAME = "velox-test-dependencies.pth"


def site_packages(venv: Path) -> Path:
    """The site-packages directory of the virtualenv at `venv`."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / version / "site-packages"


def make_bare_venv(venv: Path, *, dependencies: bool = True) -> Path:
    """Create a virtualenv at `venv` (no pip; with `dependencies`, this environment's); its
    python. Without them it is an interpreter of the same version that lacks Velox and numpy.
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    if dependencies:
        purelib = sysconfig.get_paths()["purelib"]
        (site_packages(venv) / PTH_NAME).write_text(purelib + "\n")
    return venv / "bin" / "python"


def imports_velox(python: Path, cwd: Path) -> bool:
    """Whether `python`, run in `cwd`, can import Velox."""
    command = [str(python), "-c", "import velox"]
    found = subprocess.run(command, cwd=cwd, capture_output=True, check=False)
    return found.returncode == 0
