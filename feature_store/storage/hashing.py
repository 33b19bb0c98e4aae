"""sha256 computed while writing: each chunk is hashed in a helper thread during the write
of the next, so publishing costs about max(write, hash) instead of write + hash."""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

_CHUNK = 4 << 20  # bytes per write and per hash step: overlap granularity
_SMALL = 64 << 10  # writes below this are copied before hashing: their buffer may be reused


class RawSink(Protocol):
    """Anything bytes can be written to (a Python file, a pyarrow output stream)."""

    def write(self, data: Any, /) -> Any:
        """Write all of `data` (any object with the buffer protocol)."""


class HashingWriter:
    """Writes to a sink and computes the sha256 of everything written, in the same pass."""

    def __init__(self, raw: RawSink) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        # One worker, so chunks are hashed in the order they were written.
        self._hasher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        self._pending: list[Future[None]] = []
        self.closed = False

    def write(self, data: Any) -> int:
        """Write `data` and queue it for hashing; returns the number of bytes written."""
        view = memoryview(data).cast("B")
        for start in range(0, view.nbytes, _CHUNK):
            chunk = view[start : start + _CHUNK]
            queued = bytes(chunk) if chunk.nbytes < _SMALL else chunk
            self._pending.append(self._hasher.submit(self._hash.update, queued))
            self._raw.write(chunk)
        return view.nbytes

    def writable(self) -> bool:
        """Always True (pyarrow's `PythonFile` asks)."""
        return True

    def flush(self) -> None:
        """Nothing to do here: the storage flushes and syncs the sink when the write ends."""

    def close(self) -> None:
        """Mark closed (pyarrow's wrappers call this); the storage closes the real sink."""
        self.closed = True

    def finish(self) -> str:
        """Wait for the hashing thread, stop it, and return the digest (idempotent)."""
        self._hasher.shutdown(wait=True)
        for future in self._pending:
            future.result()  # re-raises a failure of the hashing thread here
        self._pending.clear()
        return self._hash.hexdigest()

    def hexdigest(self) -> str:
        """The sha256 of everything written, as 64 lowercase hex digits."""
        return self.finish()


def sha256_hex(data: Any) -> str:
    """The sha256 of a bytes-like object (a `pa.Buffer` works without copying)."""
    return hashlib.sha256(memoryview(data)).hexdigest()
