"""The cumulative-reward figure of a simulation, as a PNG (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numpy.typing import NDArray


def plot_cumulative_reward(
    curves: Mapping[str, NDArray[np.float64]], path: Path, *, title: str
) -> Path:
    """Draw one line of cumulative reward against the step per label and save it to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7.0, 4.2), dpi=110)
    for label, rewards in curves.items():
        axes.plot(np.arange(1, rewards.shape[0] + 1), np.cumsum(rewards), label=label)
    axes.set_xlabel("interaction")
    axes.set_ylabel("cumulative reward")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
