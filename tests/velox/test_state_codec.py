"""The binary state encoding: exact round trips and clear errors on anything else."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velox.errors import StateEncodingError
from velox.posterior import UserPosterior
from velox.state_codec import FORMAT_VERSION, MAGIC, decode_state, encode_state, encoded_size


def _posterior(dim: int, n: int, seed: int) -> UserPosterior:
    rng = np.random.default_rng(seed)
    posterior = UserPosterior.prior(rng.normal(size=dim), 0.5 + rng.random(), 0.1 + rng.random())
    for _ in range(n):
        posterior.update(rng.normal(size=dim), rng.normal(), 0.5 + rng.random())
    return posterior


def _assert_same(a: UserPosterior, b: UserPosterior) -> None:
    assert (a.dim, a.lam, a.noise_std, a.count) == (b.dim, b.lam, b.noise_std, b.count)
    assert a.precision_floor == b.precision_floor
    np.testing.assert_array_equal(a.mean(), b.mean())
    np.testing.assert_array_equal(a.cov_factor(), b.cov_factor())
    np.testing.assert_array_equal(a.precision(), b.precision())
    np.testing.assert_array_equal(a.statistic_b(), b.statistic_b())


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.integers(1, 20), st.integers(0, 150), st.integers(0, 2**32 - 1))
def test_round_trip_is_exact(dim: int, n: int, seed: int) -> None:
    posterior = _posterior(dim, n, seed)
    data = encode_state(posterior)
    assert len(data) == encoded_size(dim)
    decoded = decode_state(data)
    _assert_same(decoded, posterior)
    assert encode_state(decoded) == data


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.integers(1, 10), st.integers(0, 200), st.integers(0, 2**32 - 1))
def test_decoded_state_continues_exactly_like_the_original(dim: int, n: int, seed: int) -> None:
    posterior = _posterior(dim, n, seed)
    decoded = decode_state(encode_state(posterior))
    rng = np.random.default_rng(seed + 1)
    for _ in range(70):
        x, r = rng.normal(size=dim), rng.normal()
        posterior.update(x, r)
        decoded.update(x, r)
    _assert_same(decoded, posterior)


def test_update_never_writes_into_the_decoded_buffer() -> None:
    buffer = bytearray(encode_state(_posterior(4, 10, 1)))
    original = bytes(buffer)
    decoded = decode_state(buffer)
    decoded.update(np.ones(4), 3.0)
    assert bytes(buffer) == original
    assert decoded.count == 11


NAN = float("nan")
ZEROS = b"\x00" * 8 * 24


def _header(dim: int, version: int = FORMAT_VERSION, magic: bytes = MAGIC) -> bytes:
    return struct.pack("<4sBBHQddd", magic, version, 0, dim, 0, 1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "shorter than its header"),
        (b"VXPS", "shorter than its header"),
        (b"\x00" * 100, "magic"),
        (_header(3, magic=b"JUNK") + b"\x00" * 8 * 24, "magic"),
        (_header(3, version=2) + b"\x00" * 8 * 24, "format version 2"),
        (_header(3), "expected"),
        (_header(3) + b"\x00" * (8 * 24 - 1), "expected"),
        (_header(3) + b"\x00" * (8 * 24 + 8), "expected"),
        (_header(0), "invalid"),
        (struct.pack("<4sBBHQddd", MAGIC, 1, 0, 3, 0, NAN, 1.0, 1.0) + ZEROS, "lam"),
        (struct.pack("<4sBBHQddd", MAGIC, 1, 0, 3, 0, 1.0, -1.0, 1.0) + ZEROS, "noise_std"),
        (struct.pack("<4sBBHQddd", MAGIC, 1, 0, 3, 0, 2.0, 1.0, 1.0) + ZEROS, "floor"),
        (struct.pack("<4sBBHQddd", MAGIC, 1, 0, 3, 0, 1.0, 1.0, NAN) + ZEROS, "floor"),
    ],
)
def test_garbage_is_rejected(data: bytes, message: str) -> None:
    with pytest.raises(StateEncodingError, match=message):
        decode_state(data)


def test_truncation_at_every_length_is_rejected() -> None:
    data = encode_state(_posterior(3, 5, 2))
    for length in range(len(data)):
        with pytest.raises(StateEncodingError):
            decode_state(data[:length])
