"""The torch training function of the two-tower model: one process, or one DDP rank.

    score(u, i) = z_i · p_u + global_mean + b_i + b_u,   [z_i, b_i] = ItemTower(x_i)

trained on (u, i, r) rows read from Parquet: squared error for ratings, logistic loss for
implicit feedback (r in {0, 1}). The item's id row is replaced by row 0 (the unseen item)
with probability `id_dropout`, so the content path must carry the signal on its own. CUDA
when available (bfloat16 autocast), else the CPU; the rows live on the device when they fit
in `device_bytes`. Under TorchDistributor each rank trains on its share of the rows and DDP
averages the gradients; rank 0 returns the result.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from feature_store.tower.encode import EncodedItems
from feature_store.tower.network import ItemTower, feature_rows, tensors
from feature_store.tower.spec import TowerSpec


@dataclass(frozen=True)
class TowerJob:
    """Everything the training function needs (plain data: it travels to Spark executors)."""

    rows_path: str
    spec_json: str
    items: EncodedItems
    n_users: int
    implicit: bool
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-5
    id_dropout: float = 0.5
    device: str = "auto"
    seed: int = 42
    device_bytes: int = 1 << 30
    negatives: int = 4
    validation: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]] | None = None


@dataclass
class TowerResult:
    """The trained tower's state, the user vectors and biases, and how training went.

    `history` has one entry per epoch: seconds since the start and the validation RMSE
    (explicit) or log loss (implicit) when the job had validation rows. `processes`: how
    many DDP processes trained it (1: no DDP).
    """

    tower_state: dict[str, NDArray[np.float32]]
    user_vectors: NDArray[np.float64]
    user_bias: NDArray[np.float64]
    train_loss: float
    samples_per_s: float
    seconds: float
    device: str
    history: list[tuple[float, float]] = field(default_factory=list)
    processes: int = 1


class TwoTower(nn.Module):
    """The item tower plus the user side (an embedding per block and a bias), trained jointly.

    With two blocks the second is the exposure model: the logit that the user rated the item
    at all is `y_i · q_u + c`, trained against uniformly drawn items (as ALS's exposure block).
    """

    def __init__(self, spec: TowerSpec, id_rows: int, n_users: int) -> None:
        """Layers of both towers."""
        super().__init__()
        self.items = ItemTower(spec, id_rows)
        self.k = spec.out_dim
        self.users = nn.Embedding(n_users, spec.blocks * spec.out_dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.exposure_bias = nn.Parameter(torch.zeros(1))
        nn.init.normal_(self.users.weight, std=0.1)
        nn.init.zeros_(self.user_bias.weight)
        self.global_mean = spec.global_mean

    def forward(
        self, users: torch.Tensor, inputs: list[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rating scores and exposure logits of (user, item) pairs (`inputs`: encoded items)."""
        out = self.items(*inputs)
        vectors, k = self.users(users), self.k
        dot = (out[:, :k] * vectors[:, :k]).sum(dim=1)
        scores = dot + out[:, -1] + self.user_bias(users)[:, 0] + self.global_mean
        exposure = (out[:, k:-1] * vectors[:, k:]).sum(dim=1) + self.exposure_bias
        return scores, exposure


def pick_device(name: str) -> torch.device:
    """`auto`: CUDA when available, else the CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else (0, 1)


def read_rows(path: str) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any]]:
    """The u, i, r columns of training rows: Parquet (Spark's output) or `.npz` (u, i, r)."""
    if path.endswith(".npz"):
        with np.load(path) as data:
            return data["u"], data["i"], data["r"]
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["u", "i", "r"])
    u, i, r = (table.column(name).to_numpy() for name in ("u", "i", "r"))
    return u, i, r


class _Rows:
    """The (u, i, r) rows, on the device when small enough, served in shuffled batches."""

    def __init__(self, path: str, device: torch.device, budget: int, rank: int, world: int):
        arrays = [a.astype(t) for a, t in zip(read_rows(path), "qqf", strict=True)]
        arrays = [a[rank::world] for a in arrays]
        self.n = len(arrays[0])
        place = device if sum(a.nbytes for a in arrays) <= budget else torch.device("cpu")
        self.device = device
        self.u, self.i, self.r = (
            torch.from_numpy(np.ascontiguousarray(a)).to(place) for a in arrays
        )

    def batches(self, size: int, generator: torch.Generator) -> Any:
        order = torch.randperm(self.n, generator=generator).to(self.u.device)
        for start in range(0, self.n, size):
            pick = order[start : start + size]
            yield (t[pick].to(self.device, non_blocking=True) for t in (self.u, self.i, self.r))


def _loss(scores: torch.Tensor, targets: torch.Tensor, implicit: bool) -> torch.Tensor:
    if implicit:
        return nn.functional.binary_cross_entropy_with_logits(scores, targets)
    return nn.functional.mse_loss(scores, targets)


def _validate(
    model: TwoTower, job: TowerJob, items: list[torch.Tensor], device: torch.device
) -> float:
    assert job.validation is not None
    users, rows, rewards = (torch.from_numpy(np.asarray(a)).to(device) for a in job.validation)
    with torch.no_grad():
        scores = model(users, [t[rows] for t in items])[0].float()
        loss = _loss(scores, rewards.float(), job.implicit).item()
    return float(loss if job.implicit else np.sqrt(loss))


def _step(
    model: nn.Module,
    batch: Any,
    items: list[torch.Tensor],
    job: TowerJob,
    exposure: bool,
    device: torch.device,
) -> tuple[torch.Tensor, int]:
    """The loss of one batch of rows (and its drawn negatives) and its number of rows."""
    users, item_rows, rewards = batch
    n = len(users)
    if exposure:  # uniformly drawn items, which the user most likely did not rate
        drawn = torch.randint(0, items[0].shape[0], (n * job.negatives,), device=device)
        item_rows = torch.cat([item_rows, drawn])
        users = torch.cat([users, users.repeat(job.negatives)])
    inputs = [t[item_rows] for t in items]
    dropped = torch.rand(item_rows.shape, device=device) < job.id_dropout
    inputs[3] = torch.where(dropped, torch.zeros_like(inputs[3]), inputs[3])
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        scores, exposed = model(users, inputs)
    loss = _loss(scores[:n].float(), rewards, job.implicit)
    if exposure:
        labels = (torch.arange(len(users), device=device) < n).float()
        loss = loss + _loss(exposed.float(), labels, implicit=True)
    return loss, n


def train_two_tower(job: TowerJob) -> TowerResult | None:
    """Train the two towers on `job` and return them (None on DDP ranks other than 0)."""
    rank, world = _distributed()
    device = pick_device(job.device)
    if world > 1:
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.manual_seed(job.seed)
    spec = TowerSpec.from_json(job.spec_json)
    id_rows = int(job.items.ids.max()) + 1
    model: nn.Module = TwoTower(spec, id_rows, job.n_users).to(device)
    core: TwoTower = model  # type: ignore[assignment]
    exposure = spec.blocks == 2
    if world > 1:  # without the exposure block its bias takes no part in the loss
        model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=not exposure)
    items = tensors(job.items, device)
    rows = _Rows(job.rows_path, device, job.device_bytes, rank, world)
    optimizer = torch.optim.AdamW(model.parameters(), lr=job.lr, weight_decay=job.weight_decay)
    generator = torch.Generator().manual_seed(job.seed + rank)
    history: list[tuple[float, float]] = []
    start, seen, total = time.perf_counter(), 0, 0.0
    for _ in range(job.epochs):
        model.train()
        total, count = 0.0, 0
        for batch in rows.batches(job.batch_size, generator):
            loss, n = _step(model, batch, items, job, exposure, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            total += float(loss.detach()) * n
            count += n
        seen += count
        if job.validation is not None and rank == 0:
            model.eval()
            history.append((time.perf_counter() - start, _validate(core, job, items, device)))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    if world > 1:
        torch.distributed.destroy_process_group()
    if rank != 0:
        return None
    core.eval()
    return TowerResult(
        tower_state={
            k: v.detach().float().cpu().numpy() for k, v in core.items.state_dict().items()
        },
        user_vectors=core.users.weight.detach().double().cpu().numpy(),
        user_bias=core.user_bias.weight.detach().double().cpu().numpy()[:, 0],
        train_loss=total / max(count, 1),
        samples_per_s=seen * world / max(seconds, 1e-9),
        seconds=seconds,
        device=str(device),
        history=history,
        processes=world,
    )


def item_features(
    state: dict[str, NDArray[np.float32]], spec: TowerSpec, items: EncodedItems
) -> NDArray[np.float64]:
    """Features `[z, global_mean + b, 1]` of encoded items under a trained tower state."""
    tower = ItemTower(spec, id_rows=state["ids.weight"].shape[0])
    tower.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    with torch.inference_mode():
        rows = feature_rows(tower.eval()(*tensors(items)), spec)
    features: NDArray[np.float64] = rows.numpy().astype(np.float32).astype(np.float64)
    return features
