"""Masks of filter expressions over one catalog, compiled and evaluated once each (LRU)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from numpy.typing import NDArray

from velox.filters.columns import ItemColumns
from velox.filters.compiler import compile_filter

__all__ = ["FilterCache"]


class FilterCache:
    """LRU of expression -> read-only boolean mask over the items of `columns`."""

    def __init__(self, columns: ItemColumns, maxsize: int = 256) -> None:
        """Cache masks over `columns`, keeping at most `maxsize` expressions."""
        self.columns = columns
        self.maxsize = maxsize
        self._masks: OrderedDict[str, NDArray[np.bool_]] = OrderedDict()
        self._lock = threading.Lock()

    def mask(self, expr: str) -> NDArray[np.bool_]:
        """The mask of items matching `expr` (read-only); FilterError if it cannot be used."""
        with self._lock:
            cached = self._masks.get(expr)
            if cached is not None:
                self._masks.move_to_end(expr)
                return cached
        # Compiled outside the lock: a slow expression must not block the hits of others.
        mask = np.array(compile_filter(expr, self.columns.kinds).mask(self.columns), copy=True)
        mask.flags.writeable = False
        with self._lock:
            self._masks[expr] = mask
            self._masks.move_to_end(expr)
            while len(self._masks) > self.maxsize:
                self._masks.popitem(last=False)
        return mask

    def __len__(self) -> int:
        """Number of expressions cached."""
        return len(self._masks)
