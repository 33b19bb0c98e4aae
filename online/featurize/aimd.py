"""Clipper's adaptive batch size: additive increase, multiplicative decrease (AIMD).

After each batch: while its latency stayed under the SLO the batch size grows by `step`;
above it the size is cut to `backoff` times itself (Clipper, NSDI 2017, section 4.3, backs
off by 10 %; the default here halves, which settles faster after a load step).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AimdController:
    """The batch size to use next, updated from each batch's measured latency."""

    slo_s: float
    step: int = 1
    backoff: float = 0.5
    max_size: int = 1024
    size: int = field(default=1)

    def record(self, batch: int, latency_s: float) -> int:
        """Account one batch of `batch` items that took `latency_s`; the next batch size."""
        if latency_s > self.slo_s:
            self.size = max(1, int(self.size * self.backoff))
        elif batch >= self.size:
            # Grow only when the batch was full: a small batch says nothing about a larger one.
            self.size = min(self.max_size, self.size + self.step)
        return self.size
