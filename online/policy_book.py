"""Exploration policies by spec, built once and reused (policies hold their own generators)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from velox.policies import Policy, make_policy


class PolicyBook:
    """An LRU of `make_policy(spec, seed)` results, safe to use from the watcher thread."""

    def __init__(self, seed: int | None = None, maxsize: int = 64) -> None:
        self.seed = seed
        self.maxsize = maxsize
        self._policies: OrderedDict[str, Policy] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: str) -> Policy:
        """The policy `spec` names (InvalidInputError, a 400, for a spec that names none)."""
        with self._lock:
            policy = self._policies.get(spec)
            if policy is not None:
                self._policies.move_to_end(spec)
                return policy
        policy = make_policy(spec, seed=self.seed)
        with self._lock:
            self._policies[spec] = policy
            if len(self._policies) > self.maxsize:
                self._policies.popitem(last=False)
        return policy
