"""Binary encoding of one user's posterior, the value stored in Redis.

Layout (little-endian, format version 1), a 40-byte header then four float64 arrays::

    offset  size          field
    0       4             magic b"VXPS"
    4       1             format version (1)
    5       1             flags (0; reserved)
    6       2             d (uint16)
    8       8             count (uint64)
    16      8             lam (float64)
    24      8             noise_std (float64)
    32      8             precision floor (float64, a lower bound on λ_min(A))
    40      8·d(d+1)/2    A, upper triangle, BLAS packed column-major
    ...     8·d           b
    ...     8·d           mean
    ...     8·d·d         S (S Sᵀ = A⁻¹), column-major

Every array starts 8-byte aligned. Decoding validates the header and the exact length, then
wraps the bytes with `np.frombuffer` (no copy, no Python loop) and refuses a mean that is
not finite or beyond `MAX_MEAN_NORM` (it could only score inf or NaN); the arrays are
read-only views and `UserPosterior.update` copies them on first write. At d = 64 a state is
50,472 bytes (about 1.5·d² float64s).
"""

from __future__ import annotations

import math
import struct

import numpy as np
from scipy.linalg import blas  # type: ignore[import-untyped]

from velox.errors import StateEncodingError
from velox.posterior import UserPosterior

__all__ = ["FORMAT_VERSION", "MAGIC", "decode_state", "encode_state", "encoded_size"]

MAGIC = b"VXPS"
FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sBBHQddd")
_MAX_DIM = 0xFFFF
MAX_MEAN_NORM = 1e30
"""A decoded mean must be finite and smaller in norm (float32 scores stay finite)."""


def encoded_size(dim: int) -> int:
    """Length in bytes of an encoded state of dimension `dim`."""
    return _HEADER.size + 8 * (dim * (dim + 1) // 2 + 2 * dim + dim * dim)


def encode_state(p: UserPosterior) -> bytes:
    """Encode a posterior exactly (every float64 bit is kept)."""
    if p.dim > _MAX_DIM:
        raise StateEncodingError(f"dimension {p.dim} is larger than the format allows")
    a_packed, b, mean, sqrt_cov = p.packed_parts()
    header = _HEADER.pack(
        MAGIC, FORMAT_VERSION, 0, p.dim, p.count, p.lam, p.noise_std, p.precision_floor
    )
    return b"".join(
        (
            header,
            a_packed.tobytes(),
            b.tobytes(),
            mean.tobytes(),
            sqrt_cov.tobytes(order="F"),
        )
    )


def decode_state(data: bytes | bytearray | memoryview) -> UserPosterior:
    """Decode a state written by `encode_state`; StateEncodingError on anything else."""
    if len(data) < _HEADER.size:
        raise StateEncodingError(f"state is {len(data)} bytes, shorter than its header")
    magic, version, flags, dim, count, lam, noise_std, floor = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise StateEncodingError(f"state has magic {magic!r}, expected {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise StateEncodingError(
            f"state has format version {version}, this build reads {FORMAT_VERSION}"
        )
    if flags != 0 or dim == 0:
        raise StateEncodingError(f"state header is invalid (flags {flags}, d {dim})")
    if not (math.isfinite(lam) and lam > 0 and math.isfinite(noise_std) and noise_std > 0):
        raise StateEncodingError(f"state has invalid lam {lam} or noise_std {noise_std}")
    if not (math.isfinite(floor) and floor >= lam):
        raise StateEncodingError(f"state has invalid precision floor {floor} (lam {lam})")
    if len(data) != encoded_size(dim):
        raise StateEncodingError(
            f"state is {len(data)} bytes, expected {encoded_size(dim)} for d = {dim}"
        )
    n_packed = dim * (dim + 1) // 2
    values = np.frombuffer(data, dtype="<f8", offset=_HEADER.size)
    # A writable buffer (bytearray) must never be changed behind its owner's back.
    values.flags.writeable = False
    mean_end = n_packed + 2 * dim
    mean = values[n_packed + dim : mean_end]
    # Scores are float32: a mean this large (or NaN) could only answer inf or null scores.
    if not blas.ddot(mean, mean) < MAX_MEAN_NORM**2:
        raise StateEncodingError(
            f"state has a mean that is not finite or larger than {MAX_MEAN_NORM:g} in norm"
        )
    return UserPosterior(
        lam=lam,
        noise_std=noise_std,
        count=count,
        floor=floor,
        a_packed=values[:n_packed],
        b=values[n_packed : n_packed + dim],
        mean=mean,
        sqrt_cov=values[mean_end:].reshape((dim, dim), order="F"),
    )
