"""Item attributes → the item tower's input arrays (numpy only), and the checks on new items.

Every item becomes: a bag of categorical tokens, a bag of hashed text words (both padded with
0 to the longest bag of the batch), standardized numbers with missing flags, and an id row
(0 for an item the tower never saw).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from feature_store.errors import InvalidAttributesError
from feature_store.tower.spec import MAX_LIST_VALUES, MAX_TEXT_CHARS, TowerSpec

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class EncodedItems:
    """The tower inputs of n items."""

    tokens: NDArray[np.int64]
    words: NDArray[np.int64]
    numbers: NDArray[np.float32]
    ids: NDArray[np.int64]

    @property
    def n(self) -> int:
        """Number of items."""
        return int(self.ids.shape[0])


def word_bucket(column: str, word: str, buckets: int) -> int:
    """The hashed row (1..buckets) of a word of a text column; stable across processes."""
    digest = hashlib.blake2b(f"{column}\x1f{word}".encode(), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "little") % buckets


def _words(
    spec: TowerSpec, column: str, text: str | None, kept: frozenset[int] | None = None
) -> list[int]:
    """The word buckets of `text` (those in `kept`, when given)."""
    if not text:
        return []
    found = _WORD.findall(text.lower())[: spec.max_text_tokens]
    buckets = [word_bucket(column, word, spec.text_buckets) for word in found]
    return buckets if kept is None else [b for b in buckets if b in kept]


def item_words(spec: TowerSpec, row: Mapping[str, Any]) -> set[int]:
    """Every word bucket of an attribute row's text columns (before `spec.text_kept`)."""
    return {w for name in spec.text for w in _words(spec, name, row.get(name))}


def _padded(rows: list[list[int]]) -> NDArray[np.int64]:
    width = max([1, *(len(row) for row in rows)])
    out = np.zeros((len(rows), width), dtype=np.int64)
    for k, row in enumerate(rows):
        out[k, : len(row)] = row
    return out


def encode_items(
    spec: TowerSpec,
    rows: Sequence[Mapping[str, Any]],
    ids: Sequence[int] | NDArray[np.int64] | None = None,
) -> EncodedItems:
    """Encode attribute rows (column → value; missing or None means unknown).

    `ids` are id-table rows (default 0: items the tower never saw). Values are assumed to be
    of the right types (`check_attributes` for untrusted input).
    """
    vocab = {
        name: {value: offset + k for k, value in enumerate(column.values)}
        for (name, column), offset in zip(
            spec.categorical.items(), spec.token_offsets().values(), strict=True
        )
    }
    tokens, words = [], []
    kept = None if spec.text_kept is None else frozenset(spec.text_kept)
    numbers = np.zeros((len(rows), 2 * len(spec.numeric)), dtype=np.float32)
    for k, row in enumerate(rows):
        bag: list[int] = []
        for name, column in spec.categorical.items():
            value = row.get(name)
            values = (value or []) if column.is_list else ([] if value is None else [value])
            bag.extend(vocab[name][v] for v in values if v in vocab[name])
        tokens.append(bag)
        words.append([w for name in spec.text for w in _words(spec, name, row.get(name), kept)])
        for j, (name, scale) in enumerate(spec.numeric.items()):
            value = row.get(name)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                numbers[k, 2 * j + 1] = 1.0
            else:
                numbers[k, 2 * j] = (float(value) - scale.mean) / scale.std
    id_rows = np.zeros(len(rows), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    return EncodedItems(_padded(tokens), _padded(words), numbers, id_rows)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_text(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise InvalidAttributesError(f"attribute {name!r} must be a string")
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidAttributesError(
            f"attribute {name!r} has {len(value)} characters; at most {MAX_TEXT_CHARS}"
        )


def check_attributes(spec: TowerSpec, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes of a new item, checked against `spec` (InvalidAttributesError, a 400:
    unknown names, wrong types, NaN or infinite numbers, oversized text or lists)."""
    unknown = sorted(set(attributes) - set(spec.columns))
    if unknown:
        raise InvalidAttributesError(
            f"unknown attribute(s) {unknown}; this model's items have {sorted(spec.columns)}"
        )
    checked: dict[str, Any] = {}
    for name, value in attributes.items():
        if value is None:
            checked[name] = None
            continue
        column = spec.categorical.get(name)
        if name in spec.numeric:
            if not _is_number(value) or not math.isfinite(value):
                raise InvalidAttributesError(f"attribute {name!r} must be a finite number")
        elif column is not None and column.is_list:
            if not isinstance(value, list) or len(value) > MAX_LIST_VALUES:
                raise InvalidAttributesError(
                    f"attribute {name!r} must be a list of at most {MAX_LIST_VALUES} strings"
                )
            for entry in value:
                _check_text(name, entry)
        else:
            _check_text(name, value)
        checked[name] = value
    return checked
