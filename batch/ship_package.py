"""Velox's code on a Spark cluster: a zip of the installed packages, shipped with the job.

A local job's Python workers run the driver's interpreter (`batch.spark`), which has Velox
installed. A cluster's executors run the interpreter of their own hosts, which need Velox's
dependencies (numpy, scipy, pyarrow, pandas: an image requirement, README "A Spark
cluster") but not Velox itself: the driver zips the packages it imports from wherever they
are installed (editable or not) and adds the zip to the job (`SparkContext.addPyFile`). Then
one task per executor core imports them, so that a cluster that cannot run Velox fails at
start with one clear line instead of deep inside training.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import io
import sys
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from batch.errors import SparkClusterError

if TYPE_CHECKING:
    from pyspark import SparkContext

SHIPPED_PACKAGES = ("velox", "feature_store", "batch", "jobs")
"""The packages whose code runs on executors (`online` never does)."""
# A compiled extension cannot be imported from a zip; velox.kernels falls back to numpy.
_LEFT_OUT_SUFFIXES = (".pyc", ".so", ".pyd", ".c")
CHECK_TIMEOUT_S = 300.0  # a cluster may take minutes to start executors (YARN, Kubernetes)
_CHECK_GROUP = "velox-executor-check"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SparkClusterError(f"package {name!r} cannot be imported by {sys.executable}")
    return Path(next(iter(spec.submodule_search_locations)))


def package_zip_bytes(names: tuple[str, ...] = SHIPPED_PACKAGES) -> bytes:
    """A zip of the installed packages `names` (source and package data, no bytecode).

    Files are added in sorted order with a fixed timestamp, so the same code gives the same
    bytes (and the same name in `write_package_zip`).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            root = _package_dir(name)
            for path in sorted(root.rglob("*")):
                relative = path.relative_to(root.parent)
                if (
                    not path.is_file()
                    or "__pycache__" in relative.parts
                    or path.name.endswith(_LEFT_OUT_SUFFIXES)
                ):
                    continue
                info = zipfile.ZipInfo(relative.as_posix(), date_time=(2000, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes())
    return buffer.getvalue()


def write_package_zip(directory: Path) -> Path:
    """`package_zip_bytes()` written to `directory`, named after its content's digest.

    Spark refuses a second file of the same name with other content in one application, so
    the name changes whenever the code does.
    """
    data = package_zip_bytes()
    path = directory / f"velox-packages-{hashlib.sha256(data).hexdigest()[:16]}.zip"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(path)
    return path


def ship_packages(context: SparkContext) -> Path:
    """Add the zip of Velox's packages to `context`'s job; the zip's path on the driver."""
    directory = Path(tempfile.gettempdir()) / "velox-spark"
    directory.mkdir(exist_ok=True)
    path = write_package_zip(directory)
    context.addPyFile(str(path))
    return path


def _cause_line(error: BaseException) -> str:
    """The line of a failed check that names the cause (an import or interpreter error)."""
    lines = [" ".join(line.split()) for line in str(error).splitlines() if line.strip()]
    markers = ("ModuleNotFoundError", "ImportError", "Cannot run program", "PYTHON_VERSION")
    for marker in markers:
        found = [line for line in lines if marker in line]
        if found:
            return found[-1][:300]
    return (lines[0] if lines else type(error).__name__)[:300]


def check_executors(context: SparkContext, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Import `SHIPPED_PACKAGES` in one task per executor core; `SparkClusterError` if any fails.

    A cluster with no free cores or memory never runs the check: after `timeout_s` it is
    cancelled and reported as such.
    """
    slots = max(1, context.defaultParallelism)
    names = [name for _ in range(slots) for name in SHIPPED_PACKAGES]
    failure: list[BaseException] = []

    def run() -> None:
        context.setJobGroup(_CHECK_GROUP, "velox: can the executors import Velox?", True)
        try:
            # A builtin is pickled by reference: the task itself needs nothing of Velox.
            context.parallelize(names, slots).map(importlib.import_module).count()
        except Exception as error:
            failure.append(error)

    # Each failed task would log the worker's traceback; the one line raised here says it all.
    context.setLogLevel("OFF")
    thread = threading.Thread(target=run, name="velox-executor-check", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        context.cancelJobGroup(_CHECK_GROUP)
        thread.join(10.0)
        raise SparkClusterError(
            f"no executor of {context.master} ran Velox's start-up check within "
            f"{timeout_s:.0f} s: does the cluster have a worker with free cores and "
            "spark.executor.memory to spare?"
        )
    if failure:
        # Logging stays off: the failed tasks of other executors may still report, after this
        # line, while the job stops; the one line below is what the user needs.
        raise SparkClusterError(
            f"the executors of {context.master} cannot run Velox ({_cause_line(failure[0])}); "
            "their Python needs Velox's dependencies (numpy, scipy, pyarrow, pandas) and the "
            "driver's Python version: set PYSPARK_PYTHON to such an interpreter on the workers"
        )
    context.setLogLevel("WARN")
