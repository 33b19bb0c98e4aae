"""Item attribute columns as the filter engine sees them: numpy arrays, built once per snapshot.

feature_store converts Arrow columns into these at load time (zero copy for numbers);
`velox.filters` never imports pyarrow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np
from numpy.typing import NDArray


class ColumnKind(Enum):
    """The type of an attribute column, which decides the operators it accepts."""

    NUMBER = "number"  # int or float array; NaN means missing
    STRING = "string"  # object array of str, None means missing
    BOOL = "bool"  # bool array
    STRING_LIST = "string_list"  # ListColumn, e.g. genres


@dataclass(frozen=True)
class ListColumn:
    """A list<string> column: row i holds values[offsets[i]:offsets[i + 1]]."""

    offsets: NDArray[np.int64]
    values: NDArray[Any]


Column = NDArray[Any] | ListColumn


@dataclass(frozen=True)
class ItemColumns:
    """All filterable columns of a catalog of n items; `item` (the id) is always present."""

    kinds: Mapping[str, ColumnKind]
    data: Mapping[str, Column]
    n: int
