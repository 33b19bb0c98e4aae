"""Several item towers as one: the mean of their outputs, written as a single wider ItemTower.

The hybrid's tower is distilled onto ~1,500 known items (batch/deep/distill.py), and towers
trained from different initialisations order new items differently (on ml-100k splits the
same split's held-out items' NDCG@10 moved by up to 1.7x between distillation seeds,
BENCHMARKS.md, issue 20). Their mean output varies less and fits the targets better out of
fold. It is published as one `ItemTower` of the same architecture, so the snapshot format,
`PUT /items` and online/featurize do not change: bag means of concatenated embedding tables are
the concatenated bag means, each tower's hidden units read only its own slices of the joined
input (the numbers are shared), and the output layer averages the towers' output layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from feature_store.tower.spec import TowerSpec

State = dict[str, NDArray[np.float32]]


def averaged_tower(spec: TowerSpec, states: Sequence[State]) -> tuple[TowerSpec, State]:
    """One tower (its spec and weights) whose output is the mean of the `states`' outputs
    (towers of `spec`, any number of id rows, the same in each)."""
    count, e, hidden = len(states), spec.embed_dim, spec.hidden
    numbers = 2 * len(spec.numeric)
    wide = replace(spec, embed_dim=count * e, hidden=count * hidden)
    layer = np.zeros((count * hidden, 3 * count * e + numbers), dtype=np.float32)
    for k, own in enumerate(states):
        rows, weight = slice(k * hidden, (k + 1) * hidden), own["hidden.weight"]
        # Joined input, wide: [tokens (count e), words (count e), numbers, ids (count e)].
        layer[rows, k * e : (k + 1) * e] = weight[:, :e]
        layer[rows, (count + k) * e : (count + k + 1) * e] = weight[:, e : 2 * e]
        layer[rows, 2 * count * e : 2 * count * e + numbers] = weight[:, 2 * e : 2 * e + numbers]
        start = 2 * count * e + numbers + k * e
        layer[rows, start : start + e] = weight[:, 2 * e + numbers :]
    state: State = {
        "tokens.weight": np.hstack([s["tokens.weight"] for s in states]),
        "words.weight": np.hstack([s["words.weight"] for s in states]),
        "ids.weight": np.hstack([s["ids.weight"] for s in states]),
        "hidden.weight": layer,
        "hidden.bias": np.concatenate([s["hidden.bias"] for s in states]),
        "out.weight": np.hstack([s["out.weight"] for s in states]) / np.float32(count),
        "out.bias": np.mean([s["out.bias"] for s in states], axis=0, dtype=np.float32),
    }
    return wide, state
