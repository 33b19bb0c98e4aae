"""Filter expressions over item attributes: parsed by hand, compiled once, masks cached.

>>> import numpy as np
>>> from velox.filters import ColumnKind, FilterCache, ItemColumns
>>> kinds = {"item": ColumnKind.STRING, "year": ColumnKind.NUMBER}
>>> item = np.array(["a", "b", "c"], dtype=object)
>>> year = np.array([1985.0, 1995.0, np.nan])
>>> columns = ItemColumns(kinds=kinds, data={"item": item, "year": year}, n=3)
>>> FilterCache(columns).mask("year >= 1990 or item == 'a'")
array([ True,  True, False])
"""

from velox.filters.cache import FilterCache
from velox.filters.columns import Column, ColumnKind, ItemColumns, ListColumn
from velox.filters.compiler import CompiledFilter, compile_filter
from velox.filters.lexer import MAX_LENGTH
from velox.filters.parser import MAX_DEPTH

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Column",
    "ColumnKind",
    "CompiledFilter",
    "FilterCache",
    "ItemColumns",
    "ListColumn",
    "compile_filter",
]
