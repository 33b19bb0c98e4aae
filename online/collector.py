"""The service's settings for Python's garbage collector, applied once startup is done.

Freezing moves every object alive at that point (the snapshot, torch and an item tower when a
deep model is served, the libraries) out of the collector's reach: a full collection no longer
walks them. Without it, a full collection in a process that has imported torch took 80-110 ms
here (bench/bench_aimd_featurize.py: about one per 8 s of featurization load), all of it a
pause for every request in flight.
"""

from __future__ import annotations

import gc

GC_YOUNG_THRESHOLD = 20_000


def quiet_collector() -> None:
    """Freeze what is alive now, and collect the youngest generation less often.

    A request allocates a few hundred objects and frees them by reference counting; collecting
    the youngest generation every 700 allocations (the default) cost 5-7 % of /predict's CPU
    in-process here, every 20,000 does not show.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
