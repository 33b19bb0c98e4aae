"""The sha256 computed while writing equals the sha256 of the bytes that reached the sink."""

from __future__ import annotations

import hashlib
import io

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from feature_store.storage.hashing import HashingWriter, sha256_hex


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.sampled_from([0, 1, 7, 65535, 65536, 4 << 20, (4 << 20) + 3]), max_size=6))
def test_digest_matches_the_bytes_written(sizes: list[int]) -> None:
    rng = np.random.default_rng(len(sizes))
    chunks = [rng.integers(0, 256, size, dtype=np.uint8) for size in sizes]
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    for chunk in chunks:
        assert writer.write(chunk) == chunk.nbytes
    written = b"".join(chunk.tobytes() for chunk in chunks)
    assert sink.getvalue() == written
    assert writer.hexdigest() == hashlib.sha256(written).hexdigest() == sha256_hex(written)
    assert writer.finish() == writer.hexdigest()  # idempotent
