"""Exploration policies by spec, built once and reused (policies hold their own generators)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from velox.policies import Policy, make_policy


class PolicyBook:
    """An LRU of `make_policy(spec, seed, thompson_scale=...)` results, safe to use from the
    watcher thread; a bare "thompson" is kept per calibrated scale (one per served snapshot)."""

    def __init__(self, seed: int | None = None, maxsize: int = 64) -> None:
        self.seed = seed
        self.maxsize = maxsize
        self._policies: OrderedDict[tuple[str, float], Policy] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: str, thompson_scale: float = 1.0) -> Policy:
        """The policy `spec` names (InvalidInputError, a 400, for a spec that names none);
        `thompson_scale` is the scale a bare "thompson" explores at."""
        key = (spec, thompson_scale)
        with self._lock:
            policy = self._policies.get(key)
            if policy is not None:
                self._policies.move_to_end(key)
                return policy
        policy = make_policy(spec, seed=self.seed, thompson_scale=thompson_scale)
        with self._lock:
            self._policies[key] = policy
            if len(self._policies) > self.maxsize:
                self._policies.popitem(last=False)
        return policy
