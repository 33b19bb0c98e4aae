"""Child process for the crash tests: publishes v2 and SIGKILLs itself at a named point.

Usage: python -m tests.feature_store.crash_publish ROOT POINT. The faults are injected by
wrapping the os calls the real publish code makes, so the code under test is unchanged.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from feature_store.registry import Registry
from feature_store.storage.hashing import HashingWriter
from tests.feature_store.planted import planted_data

POINTS = (
    "mid-write",  # half of items.arrow written
    "first-fsync",  # items.arrow written, not yet synced
    "manifest-replace",  # data files synced, manifest about to be renamed into place
    "before-rename",  # everything written, the version directory not yet renamed
    "after-rename",  # version committed, CURRENT not yet switched
    "pointer-replace",  # the new CURRENT written to a temp file, not yet renamed
)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _install(point: str) -> None:
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace
    real_write = HashingWriter.write

    def write(self: HashingWriter, data: Any) -> int:
        view = memoryview(data).cast("B")
        if point == "mid-write" and view.nbytes > 1000:
            real_write(self, view[: view.nbytes // 2])
            _die()
        return real_write(self, data)

    def fsync(fd: int) -> None:
        if point == "first-fsync":
            _die()
        real_fsync(fd)

    def rename(source: Any, target: Any) -> None:
        if point == "before-rename":
            _die()
        real_rename(source, target)
        if point == "after-rename":
            _die()

    def replace(source: Any, target: Any) -> None:
        name = os.path.basename(target)
        if (point, name) in (("manifest-replace", "manifest.json"), ("pointer-replace", "CURRENT")):
            _die()
        real_replace(source, target)

    HashingWriter.write = write  # type: ignore[method-assign]
    os.fsync = fsync  # type: ignore[assignment]
    os.rename = rename  # type: ignore[assignment]
    os.replace = replace  # type: ignore[assignment]


def main() -> None:
    """Publish seed 2 as the next version of model `m`, crashing at the point given."""
    root, point = sys.argv[1], sys.argv[2]
    if point not in POINTS:
        raise SystemExit(f"unknown crash point {point!r}")
    _install(point)
    Registry(root).publish("m", planted_data(seed=2, n=400), promote=True)
    raise SystemExit("the publish finished: the crash point was never reached")


if __name__ == "__main__":
    main()
