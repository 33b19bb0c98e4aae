"""The item tower f(x; theta) in torch (imported lazily by batch/deep and online/featurize).

    f(x) = MLP([mean token embedding, mean word embedding, numbers, id embedding]) = [z, b]

z (k numbers) meets the user's vector, b is the item's bias; the published features are
`[z, s * y, global_mean + b, 1]` (`feature_rows`; z the rating block, y the exposure block
when the spec has two) so that the score stays one dot product. With `spec.unseen_calibration`
the raw output of an item on the unseen id row (every item of a published tower) goes through
that affine map first (batch/deep/calibration.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from feature_store.errors import SnapshotCorruptError
from feature_store.tower.encode import EncodedItems
from feature_store.tower.spec import TowerSpec


def _bag_mean(table: nn.Embedding, rows: torch.Tensor) -> torch.Tensor:
    """Mean embedding of the non-zero rows of each line (zeros for an empty bag)."""
    mask = (rows > 0).unsqueeze(-1).to(table.weight.dtype)
    total = (table(rows) * mask).sum(dim=1)
    mean: torch.Tensor = total / mask.sum(dim=1).clamp(min=1.0)
    return mean


class ItemTower(nn.Module):
    """Attributes (+ an id row) → [z, bias]; see the module docstring."""

    calibration: torch.Tensor | None

    def __init__(self, spec: TowerSpec, id_rows: int) -> None:
        """Layers sized by `spec`; `id_rows` rows in the id table (row 0: unseen items)."""
        super().__init__()
        e = spec.embed_dim
        self.tokens = nn.Embedding(spec.n_tokens, e, padding_idx=0)
        self.words = nn.Embedding(spec.text_buckets + 1, e, padding_idx=0)
        self.ids = nn.Embedding(id_rows, e)
        self.hidden = nn.Linear(3 * e + 2 * len(spec.numeric), spec.hidden)
        self.out = nn.Linear(spec.hidden, spec.blocks * spec.out_dim + 1)
        for table in (self.tokens, self.words, self.ids):
            nn.init.normal_(table.weight, std=0.1)
        calibration = spec.unseen_calibration  # not a weight: it lives in the spec
        self.register_buffer(
            "calibration", None if calibration is None else torch.tensor(calibration), False
        )

    def forward(
        self, tokens: torch.Tensor, words: torch.Tensor, numbers: torch.Tensor, ids: torch.Tensor
    ) -> torch.Tensor:
        """(n, k + 1): z then the bias, for n encoded items."""
        joined = torch.cat(
            [_bag_mean(self.tokens, tokens), _bag_mean(self.words, words), numbers, self.ids(ids)],
            dim=1,
        )
        hidden: torch.Tensor = torch.relu(self.hidden(joined))
        result: torch.Tensor = self.out(hidden)
        if self.calibration is not None:  # items on the unseen id row (spec.unseen_calibration)
            calibrated = result @ self.calibration[:-1].T + self.calibration[-1]
            result = torch.where((ids == 0).unsqueeze(1), calibrated, result)
        return result


def tensors(encoded: EncodedItems, device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """The encoded inputs as tensors on `device`, in `ItemTower.forward`'s order."""
    arrays = (encoded.tokens, encoded.words, encoded.numbers, encoded.ids)
    return [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]


def feature_rows(output: torch.Tensor, spec: TowerSpec) -> torch.Tensor:
    """[z, (y,) b] → the published features [z, (s * y,) global_mean + b, 1]."""
    scales = torch.tensor(spec.block_scales, dtype=output.dtype, device=output.device)
    learned = output[:, :-1] * scales.repeat_interleave(spec.out_dim)
    ones = torch.ones_like(output[:, :1])
    rows = torch.cat([learned, output[:, -1:] + spec.global_mean, ones], dim=1)
    if spec.feature_transform is not None:
        matrix = torch.tensor(spec.feature_transform, dtype=torch.float64, device=output.device)
        rows = (rows.double() @ matrix.T).to(output.dtype)
    return rows


def published_weights(tower: ItemTower) -> dict[str, NDArray[np.float32]]:
    """The tower's weights for a snapshot: float32, the id table cut to row 0 (unseen)."""
    state = {name: t.detach().float().cpu().numpy() for name, t in tower.state_dict().items()}
    state["ids.weight"] = state["ids.weight"][:1].copy()
    return state


def load_tower(spec: TowerSpec, weights: dict[str, Any]) -> ItemTower:
    """The tower of a snapshot (eval mode, CPU) from its safetensors arrays."""
    tower = ItemTower(spec, id_rows=1)
    try:
        state = {name: torch.from_numpy(np.array(value)) for name, value in weights.items()}
        tower.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, ValueError) as error:
        raise SnapshotCorruptError(f"tower weights do not fit the tower spec: {error}") from error
    return tower.eval()


def featurize(tower: ItemTower, spec: TowerSpec, encoded: EncodedItems) -> NDArray[np.float32]:
    """Features `[z, mean + b, 1]` (n, d) of encoded items, float32, on the CPU."""
    with torch.inference_mode():
        output = tower(*tensors(encoded))
        rows = feature_rows(output, spec)
    features: NDArray[np.float32] = rows.numpy().astype(np.float32)
    return features
