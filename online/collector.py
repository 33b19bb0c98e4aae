"""The service's settings for Python's garbage collector, applied once startup is done.

Freezing moves every object alive at that point (the snapshot, torch and an item tower when a
deep model is served, the libraries) out of the collector's reach: a full collection no longer
walks them. Without it, a full collection in a process that has imported torch took 80-110 ms
here (bench/bench_aimd_featurize.py: about one per 8 s of featurization load), all of it a
pause for every request in flight. A snapshot installed after startup can import a library
then (torch for the first deep model's tower, faiss for the first ANN index): the install
calls `freeze_late_imports`, which freezes again when modules were imported since.
"""

from __future__ import annotations

import gc
import sys

GC_YOUNG_THRESHOLD = 20_000


class _LastFreeze:
    """How many modules were imported when this process last froze its collector."""

    modules = 0


def quiet_collector() -> None:
    """Freeze what is alive now, and collect the youngest generation less often.

    A request allocates a few hundred objects and frees them by reference counting; collecting
    the youngest generation every 700 allocations (the default) cost 5-7 % of /predict's CPU
    in-process here, every 20,000 does not show.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    _LastFreeze.modules = len(sys.modules)


def freeze_late_imports() -> None:
    """After an install: if modules were imported since the last freeze, collect, then freeze.

    Only in a process that froze its collector (`quiet_collector`: a service); elsewhere
    (`velox train`, tests, notebooks) the collector stays as Python sets it. The collection
    first (one full pass over what is not frozen, about one of the pauses it prevents) keeps
    the garbage of that moment out of the permanent generation, where it would never be freed.
    """
    if gc.get_freeze_count() and len(sys.modules) > _LastFreeze.modules:
        gc.collect()
        gc.freeze()
        _LastFreeze.modules = len(sys.modules)
