"""Hot swap: poll the registry's CURRENT pointers, load new versions off the request path.

A background thread reads each model's CURRENT every `interval_s` (a small file read). When
it names a version that is not being served, the thread loads it (every checksum verified),
precomputes what requests need, and hands it to `install`, which swaps it in with one
reference assignment. Requests take that reference once, at their start, so none mixes two
versions and none waits for a load. A version that fails to load is logged and skipped (the
old one keeps serving) until CURRENT names another version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from feature_store.registry import Registry
from feature_store.snapshot import Snapshot
from velox.errors import VeloxError

log = logging.getLogger("velox.online.snapshots")


class SnapshotWatcher:
    """Polls `registry` and calls `install(snapshot)` for every newly current version.

    `on_failure(model, version)` is told about every version that failed to load.
    """

    def __init__(
        self,
        registry: Registry,
        install: Callable[[Snapshot], object],
        served_version: Callable[[str], int | None],
        *,
        interval_s: float = 1.0,
        on_failure: Callable[[str, int], object] | None = None,
    ) -> None:
        self.registry = registry
        self.on_failure = on_failure
        self.install = install
        self.served_version = served_version
        self.interval_s = interval_s
        self._failed: set[tuple[str, int]] = set()
        self.after_poll: Callable[[], object] | None = None
        """Called after every poll (the service refreshes its items added online)."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> list[tuple[str, int]]:
        """Load and install every model whose current version changed; returns them."""
        installed: list[tuple[str, int]] = []
        try:
            models = self.registry.models()
        except (OSError, VeloxError) as error:
            log.warning("cannot list models in the registry: %s", error)
            return installed
        for model in models:
            try:
                current = self.registry.current(model)
            except (OSError, VeloxError) as error:
                log.warning("cannot read the current version of %s: %s", model, error)
                continue
            if current is None or current == self.served_version(model):
                continue
            if (model, current) in self._failed:
                continue
            try:
                snapshot = self.registry.load(model, current)
                self.install(snapshot)
            except (OSError, VeloxError) as error:
                self._failed.add((model, current))
                if self.on_failure is not None:
                    self.on_failure(model, current)
                log.error("not serving %s v%d, keeping the old version: %s", model, current, error)
                continue
            log.info("now serving %s v%d", model, current)
            installed.append((model, current))
        if self.after_poll is not None:
            self.after_poll()
        return installed

    def start(self) -> None:
        """Poll in a daemon thread until `stop`."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="snapshot-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for the thread (an install in progress completes)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll_once()
