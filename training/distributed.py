"""Where a training run executes: one device, and under torchrun one rank of a process group.

`edge-asc train` started by torchrun (WORLD_SIZE, RANK, LOCAL_RANK and the rendezvous in the
environment) joins a process group, NCCL on GPUs and gloo on CPUs; started any other way it is
one process with no group, the same as it always was. Everything here takes a `Run` rather
than asking torch.distributed, so that the single-process path never touches it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import nn

from edge_asc.errors import EdgeAscError

# Rank 0 computes the feature cache while the others wait at a barrier: on a large data set
# that takes far longer than torch's default 30-minute collective timeout.
COLLECTIVE_TIMEOUT = timedelta(hours=12)
# A rank that fails waits this long before it says so: when rank 0 failed the same way,
# torchrun ends the other ranks within its 0.1-s monitor interval, so one line is printed, not
# one per rank; a rank that fails alone still says why, and torchrun then stops the others.
FAILURE_GRACE_S = 3.0


@dataclass(frozen=True)
class Run:
    """One process of a training run: its device, rank and the number of processes."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    distributed: bool = False  # in a process group (torchrun), even one of size 1

    @property
    def main(self) -> bool:
        """Rank 0: the only process that writes caches, checkpoints, report and model."""
        return self.rank == 0

    @property
    def precision(self) -> str:
        """bf16 autocast on GPUs (tensor cores, no loss scaling needed), fp32 on CPUs."""
        return "bf16-autocast" if self.device.type == "cuda" else "fp32"

    @property
    def backend(self) -> str | None:
        if not self.distributed:
            return None
        return "nccl" if self.device.type == "cuda" else "gloo"

    def describe(self) -> dict[str, object]:
        """What the report and the card say about how the run was made."""
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        return {
            "device": self.device.type,
            "device_name": name,
            "world_size": self.world_size,
            "backend": self.backend,
            "precision": self.precision,
        }


def choose_device(spec: str, local_rank: int = 0) -> torch.device:
    """`auto` (a GPU when there is one), `cpu`, `cuda` (this process's GPU) or `cuda:N`."""
    spec = spec.strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec != "cuda" and not (spec.startswith("cuda:") and spec[5:].isdigit()):
        raise EdgeAscError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise EdgeAscError(f"--device {spec}: no CUDA GPU is available to torch here")
    index = int(spec[5:]) if ":" in spec else local_rank
    if index >= torch.cuda.device_count():
        raise EdgeAscError(
            f"--device {spec}: there is no GPU {index} (this machine has "
            f"{torch.cuda.device_count()})"
        )
    return torch.device("cuda", index)


def start(device_spec: str = "auto") -> Run:
    """This process's run: joins torchrun's process group when torchrun started it."""
    env = os.environ
    launched = "WORLD_SIZE" in env and "RANK" in env and "MASTER_ADDR" in env
    local_rank = int(env.get("LOCAL_RANK", "0")) if launched else 0
    device = choose_device(device_spec, local_rank)
    if device.type == "cuda":
        # cuBLAS is deterministic only with a fixed workspace; set before CUDA initialises.
        env.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.cuda.set_device(device)
    if not launched:
        return Run(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group(
            "nccl" if device.type == "cuda" else "gloo",
            timeout=COLLECTIVE_TIMEOUT,
            device_id=device if device.type == "cuda" else None,
        )
    return Run(
        device,
        rank=torch.distributed.get_rank(),
        world_size=torch.distributed.get_world_size(),
        distributed=True,
    )


def stop(run: Run) -> None:
    if run.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def barrier(run: Run) -> None:
    """Every rank waits here until all have arrived (rank 0 has written what the others read)."""
    if run.distributed:
        torch.distributed.barrier()


def agree(run: Run, flag: bool) -> bool:
    """Rank 0's answer, on every rank: ranks must take the same branch or they deadlock."""
    if not run.distributed:
        return flag
    box = [flag]
    torch.distributed.broadcast_object_list(box, src=0)
    return bool(box[0])


def share_model(run: Run, model: nn.Module) -> nn.Module:
    """Rank 0's weights and statistics on every rank, bit for bit (a kept step, or a trained
    one whose ranks differ in the last bit): every later choice is then the same everywhere."""
    if run.world_size > 1:
        for tensor in model.state_dict().values():
            moved = tensor.to(run.device) if run.backend == "nccl" else tensor
            torch.distributed.broadcast(moved, src=0)
            if moved is not tensor:
                tensor.copy_(moved)
    return model


def all_sum(run: Run, values: list[float]) -> list[float]:
    if run.world_size == 1:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=_comm_device(run))
    torch.distributed.all_reduce(tensor)
    return tensor.tolist()


def shard(run: Run, batch: torch.Tensor) -> torch.Tensor:
    """This rank's part of one global batch: every world_size-th index from its rank on.

    DistributedSampler deals out one shuffled order the same way (rank r takes positions
    r, r + W, ...); dealing each global batch rather than the whole epoch keeps every step's
    windows exactly those of the single-process step, so W processes of batch B/W take the
    same steps as one process of batch B.
    """
    return batch if run.world_size == 1 else batch[run.rank :: run.world_size]


@contextmanager
def synced_batchnorm(run: Run, model: nn.Module) -> Iterator[None]:
    """Batch norm over the global batch while training on several ranks, so that each step
    normalises with the statistics one process of the whole batch would use.

    The layers are swapped in place and back; the swapped ones share the originals' weights and
    running statistics, so what training changes stays in the model.
    """
    if run.world_size == 1:
        yield
        return
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                swapped.append((parent, name, child))
    for parent, name, child in swapped:
        if run.device.type == "cuda":
            replacement: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(child)
        else:
            replacement = GlooBatchNorm(child)
        setattr(parent, name, replacement)
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


class GlooBatchNorm(nn.Module):
    """Batch norm whose training statistics span every rank's part of the batch, on CPU.

    Written here because torch's SyncBatchNorm refuses CPU tensors; it is the same arithmetic
    (per-channel mean, then the biased variance about it, over all ranks' windows; the running
    variance unbiased), built from torch.distributed.nn's differentiable all_reduce so autograd
    carries the gradient back through the shared statistics to every rank.
    """

    def __init__(self, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        if bn.momentum is None or not bn.affine or not bn.track_running_stats:
            raise ValueError("GlooBatchNorm needs an affine, tracked batch norm with a momentum")
        self.bn = bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bn = self.bn
        if not self.training:
            return bn(x)
        from torch.distributed.nn.functional import all_reduce

        dims = (0, 2, 3)
        count = torch.full((1,), x.numel() / x.shape[1], dtype=x.dtype)
        summed = all_reduce(torch.cat([x.sum(dims), count]))
        n = summed[-1]
        mean = summed[:-1] / n
        centred = x - mean[None, :, None, None]
        var = all_reduce((centred * centred).sum(dims)) / n
        scale = torch.rsqrt(var + bn.eps) * bn.weight
        with torch.no_grad():
            m = bn.momentum
            bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            bn.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
            bn.num_batches_tracked.add_(1)
        return centred * scale[None, :, None, None] + bn.bias[None, :, None, None]


def failed(run: Run, err: BaseException) -> EdgeAscError | None:
    """What a rank that hit `err` should say, after a pause that lets torchrun end it first
    when another rank failed before it; None where `err` should propagate as it is."""
    if not run.distributed:
        return None
    if isinstance(err, EdgeAscError) and run.main:
        return err
    lost = isinstance(err, torch.distributed.DistError) or (
        isinstance(err, RuntimeError) and any(w in str(err).lower() for w in ("gloo", "nccl"))
    )
    if not (isinstance(err, EdgeAscError) or lost):
        return None
    time.sleep(FAILURE_GRACE_S)
    if lost:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return EdgeAscError(f"rank {run.rank}: training stopped, another rank ended ({first})")
    return EdgeAscError(f"rank {run.rank}: {err}")


def _comm_device(run: Run) -> torch.device:
    return run.device if run.backend == "nccl" else torch.device("cpu")
