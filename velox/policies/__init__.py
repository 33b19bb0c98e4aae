"""Exploration policies behind one interface, and `make_policy` to build one from a spec.

Specs: ``greedy``, ``egreedy`` or ``egreedy:<epsilon>``, ``thompson`` or ``thompson:<scale>``
(the posterior-std scale; a bare ``thompson`` takes `thompson_scale`, a snapshot's calibrated
scale from `velox.policies.calibration`, or 1), ``linucb`` or ``linucb:<alpha>``, ``slate`` or
``slate:<pool>`` (`velox.policies.slate.SlatePolicy`).

>>> make_policy("egreedy:0.2", seed=7)
EpsilonGreedy(epsilon=0.2, seed=7)
"""

from __future__ import annotations

import math

from velox.errors import InvalidInputError
from velox.policies.base import Eligibility, Policy, Selection, SelectionRequest
from velox.policies.epsilon_greedy import EpsilonGreedy
from velox.policies.greedy import Greedy
from velox.policies.linucb import LinUCB
from velox.policies.slate import SlatePolicy
from velox.policies.thompson import ThompsonSampling

__all__ = [
    "Eligibility",
    "EpsilonGreedy",
    "Greedy",
    "LinUCB",
    "Policy",
    "Selection",
    "SelectionRequest",
    "ThompsonSampling",
    "make_policy",
]


def _number(spec: str, text: str) -> float:
    """The numeric argument of a spec, or InvalidInputError naming the spec."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"policy spec {spec!r}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidInputError(f"policy spec {spec!r}: the argument must be finite")
    return value


def make_policy(spec: str, seed: int | None = None, *, thompson_scale: float = 1.0) -> Policy:
    """Build the policy a spec names, e.g. "greedy", "egreedy:0.1", "thompson:0.5", "linucb:1".

    `thompson_scale` is the scale of a bare "thompson" (a snapshot's calibrated default);
    "thompson:<scale>" always uses its own.
    """
    name, sep, argument = spec.strip().partition(":")
    if sep and not argument:
        raise InvalidInputError(f"policy spec {spec!r} has an empty argument")
    if name == "greedy" and not sep:
        return Greedy(seed=seed)
    if name == "thompson":
        return ThompsonSampling(_number(spec, argument) if sep else thompson_scale, seed=seed)
    if name == "egreedy":
        return EpsilonGreedy(_number(spec, argument) if sep else 0.1, seed=seed)
    if name == "linucb":
        return LinUCB(_number(spec, argument) if sep else 1.0, seed=seed)
    if name == "slate":
        return SlatePolicy(_pool(spec, argument) if sep else None, seed=seed)
    raise InvalidInputError(
        f"unknown policy spec {spec!r}; expected greedy, egreedy[:eps], thompson[:scale], "
        "linucb[:alpha], slate[:pool]"
    )


def _pool(spec: str, text: str) -> int:
    """The pool size of a slate spec: a positive integer."""
    if not text.isdigit() or int(text) < 1:
        raise InvalidInputError(f"policy spec {spec!r}: the pool must be a positive integer")
    return int(text)
