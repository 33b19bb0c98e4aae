"""The plan of one build: which snapshot, which users, how many rows each, split into parts.

The plan is written into the staging directory as `.plan.json` before the first part, with the
selected users and their weights as `.users.arrow` (both removed before publishing). A rerun
resumes a staging directory only when its plan is the one it would write itself: same model,
snapshot version, top-N and the very same users and weights (by sha256).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from itertools import pairwise
from typing import Any

PLAN = ".plan.json"
USERS = ".users.arrow"
ROWS_PER_PART = 1_000_000
GPU_PART_SCORES = 1 << 27
"""On a card parts are sized for about this many user x item scores (about 5 ms of an H100's
float64 product and top-k), so a call's fixed costs stay small beside its work: 10^5 users of a
10^4-item catalog make 8 parts of 12,500 users where ROWS_PER_PART alone gives 50 of 2,000 at
top-500."""
MAX_PARTS = 100_000  # part-NNNNN: five digits


@dataclass(frozen=True)
class Plan:
    """What a staging directory is being built from, and its parts' user ranges [start, stop)."""

    model: str
    snapshot_version: int
    top_n: int | None
    users_sha256: str
    parts: tuple[tuple[int, int], ...]

    def to_json(self) -> bytes:
        """The `.plan.json` bytes."""
        return json.dumps(asdict(self), indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Plan | None:
        """The plan in `data`, or None when it is not a plan this code wrote."""
        try:
            raw: Any = json.loads(data)
            return cls(
                model=str(raw["model"]),
                snapshot_version=int(raw["snapshot_version"]),
                top_n=None if raw["top_n"] is None else int(raw["top_n"]),
                users_sha256=str(raw["users_sha256"]),
                parts=tuple((int(a), int(b)) for a, b in raw["parts"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def same_build(self, other: Plan | None) -> bool:
        """Whether `other` builds the same table (the split into parts may differ)."""
        return other is not None and (
            (other.model, other.snapshot_version, other.top_n, other.users_sha256)
            == (self.model, self.snapshot_version, self.top_n, self.users_sha256)
        )


def split_users(
    n_users: int, per_user: int, min_parts: int, rows_per_part: int = ROWS_PER_PART
) -> tuple[tuple[int, int], ...]:
    """Contiguous user ranges of about `rows_per_part` rows, at least `min_parts` of them."""
    wanted = max(min_parts, math.ceil(n_users * per_user / max(rows_per_part, 1)))
    count = max(1, min(wanted, n_users, MAX_PARTS))
    bounds = [n_users * i // count for i in range(count + 1)]
    return tuple(pairwise(bounds))


def part_rows(rows_per_part: int, device: str, n_items: int, per_user: int) -> int:
    """The rows a part is sized for: `rows_per_part`, on a card at least GPU_PART_SCORES
    scores' worth (split_users then makes parts of about that many rows, none more)."""
    if device != "cuda":
        return rows_per_part
    return max(rows_per_part, -(-GPU_PART_SCORES // max(n_items, 1)) * per_user)
