"""Child process for the concurrency test: waits for a start signal, then publishes in a loop.

Usage: python -m tests.feature_store.publish_many ROOT TAG SEED COUNT; prints one JSON line
{"tag": TAG, "versions": [...]}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from feature_store.registry import Registry
from tests.feature_store.planted import planted_data


def main() -> None:
    """Signal ready, wait for `go`, publish COUNT versions tagged TAG and report them."""
    root, tag, seed, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    registry = Registry(root)
    signals = Path(root).parent
    (signals / f"ready-{tag}").touch()
    while not (signals / "go").exists():
        time.sleep(0.001)
    versions = [
        registry.publish("m", planted_data(seed=seed + k, tag=tag)).version for k in range(count)
    ]
    print(json.dumps({"tag": tag, "versions": versions}))


if __name__ == "__main__":
    main()
