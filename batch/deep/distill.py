"""Distil the item tower's content path onto given item features (the hybrid model's tower).

The tower sees only an item's attributes (every item on the unseen id row 0) and learns to
output the raw `[z, y, b]` whose published features `[z, s y, mean + b, 1]` are the targets
(batch/deep/hybrid.py: the same job's ALS features of the items with training events). The loss
is the score error averaged over users, `(o - t)ᵀ G (o - t)` with `G = Wᵀ W / n_users` over the
users' weight rows W (DropoutNet's "reproduce the preference scores", in closed form over every
user instead of sampled pairs), each item weighted (`item_weights`: the hybrid model gives
sqrt(training events), as ALS's factors of rarely rated items are mostly regularisation).
Cross-fitted: on each of `FOLDS` seeded folds of the target items a tower trains on the other
folds and stops `PATIENCE` epochs after the fold's loss last improved; each item's output from
the tower that did not fit it is returned (the calibration measures new items' spread on these),
and the published tower trains on every item for the folds' mean best number of epochs. Each
training is `towers` towers from different initialisations, averaged (batch/deep/averaged.py:
published as one wider tower): one initialisation's ordering of new items varied widely with
its seed, 3 averaged fit the out-of-fold targets 0.7-2 % better on three ml-100k splits'
training items, and the cold-start bench's held-out items then beat the content-only ridge on
all seven splits tried (one tower: four of seven; BENCHMARKS.md, issue 20). CUDA when
available, else the CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from batch.deep.averaged import averaged_tower
from batch.deep.train_torch import pick_device
from feature_store.tower.encode import EncodedItems
from feature_store.tower.network import ItemTower, tensors
from feature_store.tower.spec import TowerSpec

FOLDS = 5
PATIENCE = 30
BATCH_ITEMS = 128
TOWERS = 3


@dataclass(frozen=True)
class DistillJob:
    """Encoded target items (id row 0), their raw targets (n, m) and the score metric's root
    (m, m; `metric_root`)."""

    spec: TowerSpec
    items: EncodedItems
    targets: NDArray[np.float64]
    root: NDArray[np.float64]
    item_weights: NDArray[np.float64] | None = None
    max_epochs: int = 400
    lr: float = 3e-3
    weight_decay: float = 1e-5
    device: str = "auto"
    seed: int = 42
    towers: int = TOWERS


@dataclass(frozen=True)
class DistillResult:
    """The final (averaged) tower's spec and state; the folds (target rows) and every target
    item's output from the fold's towers that did not fit it (zeros without folds); the epochs
    of the final towers (the folds' mean best); how training went."""

    spec: TowerSpec
    tower_state: dict[str, NDArray[np.float32]]
    folds: list[NDArray[np.int64]]
    out_of_fold: NDArray[np.float64]
    out_of_fold_loss: float
    epochs: int
    seconds: float
    samples_per_s: float
    device: str


def metric_root(weights: NDArray[np.float64], ridge: float = 1e-6) -> NDArray[np.float64]:
    """L with L Lᵀ = Wᵀ W / n (+ a tiny ridge): `||(o - t) L||²` is the mean squared score
    error of the rows of `weights` (n, m)."""
    gram = np.asarray(weights.T @ weights, dtype=np.float64) / max(len(weights), 1)
    floor = ridge * max(float(np.trace(gram)) / len(gram), 1e-12)
    return np.asarray(np.linalg.cholesky(gram + floor * np.eye(len(gram))), dtype=np.float64)


def _train(
    job: DistillJob,
    device: torch.device,
    fitted: NDArray[np.int64],
    held: NDArray[np.int64],
    epochs: int,
    init: int = 0,
) -> tuple[ItemTower, int, float]:
    """A tower (initialisation `init`) trained on the `fitted` rows for at most `epochs`
    epochs; with `held` rows, it stops `PATIENCE` epochs after their loss last improved and
    keeps the best epoch's weights. Returns the tower, its number of epochs and the held rows'
    loss (NaN without)."""
    seed = job.seed + 1000 * init
    torch.manual_seed(seed + len(held))
    tower = ItemTower(job.spec, id_rows=1).to(device)
    root = torch.tensor(job.root, dtype=torch.float32, device=device)
    targets = torch.tensor(job.targets, dtype=torch.float32, device=device)
    given = job.item_weights if job.item_weights is not None else np.ones(job.items.n)
    weights = torch.tensor(given / given.mean(), dtype=torch.float32, device=device)
    inputs = tensors(job.items, device)
    optimizer = torch.optim.AdamW(tower.parameters(), lr=job.lr, weight_decay=job.weight_decay)
    generator = torch.Generator().manual_seed(seed)

    def loss_of(rows: torch.Tensor) -> torch.Tensor:
        error = tower(*(t[rows] for t in inputs)) - targets[rows]
        per_item = ((error @ root) ** 2).sum(dim=1)
        loss: torch.Tensor = (per_item * weights[rows]).sum() / weights[rows].sum()
        return loss

    train_rows = torch.from_numpy(fitted).to(device)
    held_rows = torch.from_numpy(held).to(device)
    best, best_state, best_epoch = np.inf, dict(tower.state_dict()), epochs
    for epoch in range(1, epochs + 1):
        tower.train()
        shuffled = train_rows[torch.randperm(len(train_rows), generator=generator).to(device)]
        for first in range(0, len(shuffled), BATCH_ITEMS):
            loss = loss_of(shuffled[first : first + BATCH_ITEMS])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        if not len(held):
            continue
        tower.eval()
        with torch.no_grad():
            score = float(loss_of(held_rows))
        if score < best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in tower.state_dict().items()}
        elif epoch - best_epoch >= PATIENCE:
            break
    if len(held):
        tower.load_state_dict(best_state)
    return tower.eval(), best_epoch, float(best) if len(held) else float("nan")


def _loss(job: DistillJob, outputs: NDArray[np.float64]) -> float:
    """The distillation loss of `outputs` (one row per target item), as `_train` weighs it."""
    per_item = (((outputs - job.targets) @ job.root) ** 2).sum(axis=1)
    weights = job.item_weights if job.item_weights is not None else np.ones(len(per_item))
    return float((per_item * weights).sum() / weights.sum())


def _state(tower: ItemTower) -> dict[str, NDArray[np.float32]]:
    return {k: v.detach().float().cpu().numpy() for k, v in tower.state_dict().items()}


def distill_tower(job: DistillJob) -> DistillResult:
    """Train `job.towers` `ItemTower`s (one id row) so that their mean output reproduces
    `job.targets`, published as one tower (module doc)."""
    device = pick_device(job.device)
    n = job.items.n
    order = np.random.default_rng(job.seed).permutation(n)
    folds = np.array_split(order, FOLDS) if n >= 2 * FOLDS else []
    inputs = tensors(job.items, device)
    out_of_fold = np.zeros_like(job.targets)
    epochs = []
    start = time.perf_counter()
    for held in folds:
        fitted = np.setdiff1d(order, held)
        for init in range(job.towers):
            tower, best, _ = _train(job, device, fitted, held, job.max_epochs, init)
            with torch.no_grad():
                output = tower(*(t[held] for t in inputs)).double().cpu().numpy()
            out_of_fold[held] += output / job.towers
            epochs.append(best)
    final = max(1, round(float(np.mean(epochs)))) if epochs else job.max_epochs
    states = [
        _state(_train(job, device, order, order[:0], final, init)[0]) for init in range(job.towers)
    ]
    spec, state = averaged_tower(job.spec, states)
    seconds = time.perf_counter() - start
    passes = sum(epochs) * n * (FOLDS - 1) / FOLDS + final * n * job.towers
    return DistillResult(
        spec=spec,
        tower_state=state,
        folds=[np.sort(held) for held in folds],
        out_of_fold=out_of_fold,
        out_of_fold_loss=_loss(job, out_of_fold) if folds else float("nan"),
        epochs=final,
        seconds=seconds,
        samples_per_s=passes / max(seconds, 1e-9),
        device=str(device),
    )
