"""Many processes through PyTorch's own engine: torchrun starts them, this joins them.

Under ``torchrun`` (WORLD_SIZE, RANK and LOCAL_RANK in the environment) ``setup`` joins the
process group -- NCCL with one GPU per process, gloo on CPUs -- and the trainer wraps the
network in DistributedDataParallel. Without torchrun everything here is a no-op, so the same
code trains on one device.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from reslearn.device import resolve_device
from reslearn.evaluate import Evaluation

#: How long a process waits for the others at a collective (rank 0 may be decoding a data set
#: into the cache meanwhile); a dead peer is noticed sooner, when its connection closes.
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Distributed:
    """This process's place in the job: rank ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    restart: int = 0  # torchrun's restart count: > 0 after a worker failed and all restarted

    @property
    def enabled(self) -> bool:
        """Whether there is more than one process."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process."""
        if self.enabled:
            dist.barrier()

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over processes (in place)."""
        if self.enabled:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, *flags: bool, device: torch.device) -> list[bool]:
        """For each flag, whether any process raised it (one collective for all)."""
        if not self.enabled:
            return list(flags)
        values = torch.tensor([float(f) for f in flags], device=device)
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
        return [bool(v) for v in values.tolist()]

    @contextlib.contextmanager
    def main_first(self) -> Iterator[None]:
        """Rank 0 runs the block before the others (so it fills caches the others then read)."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The network as DistributedDataParallel (the network itself on one process)."""
        if not self.enabled:
            return model
        ids = [device.index] if device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def close(self) -> None:
        """Leave the process group."""
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def under_torchrun() -> bool:
    """Whether torchrun (or another launcher setting WORLD_SIZE) started this process."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def setup(device_name: str) -> tuple[Distributed, torch.device]:
    """Join torchrun's process group when there is one; returns this process's place and the
    device it trains on (GPU ``LOCAL_RANK`` with NCCL, else the CPU with gloo)."""
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) == 1:
        return Distributed(), resolve_device(device_name)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", 0))
    device = resolve_device(device_name)
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"process {local_rank} on this node has no GPU ({torch.cuda.device_count()} "
                "visible); start at most one process per GPU (--nproc_per_node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(
            backend, store=_attempt_store(rank, world, restart), rank=rank, world_size=world,
            timeout=TIMEOUT,
        )  # fmt: skip
    return Distributed(rank, world, local_rank, backend, restart), device


def _attempt_store(rank: int, world: int, restart: int) -> dist.Store:
    """torchrun's store, with keys of its own for each attempt of the job. Without the prefix
    a restarted process could read the address a process of the failed attempt published
    there, and fail to connect to it (seen with gloo after a killed worker)."""
    host, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
    agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(
        host, port, world, is_master=rank == 0 and not agent, timeout=TIMEOUT,
        multi_tenant=not agent,
    )  # fmt: skip
    return dist.PrefixStore(f"reslearn/attempt-{restart}", store)


def merge_evaluations(result: Evaluation, where: Distributed, device: torch.device) -> Evaluation:
    """One evaluation of the whole split from each process's evaluation of its shard."""
    if not where.enabled:
        return result
    k = len(result.per_class_accuracy)
    wrong5 = round(result.top5_error * result.count)
    packed = np.concatenate([result.confusion.ravel(), [wrong5, result.loss * result.count]])
    total = where.sum(torch.tensor(packed, dtype=torch.float64, device=device)).cpu().numpy()
    confusion = np.rint(total[: k * k]).astype(np.int64).reshape(k, k)
    return Evaluation.from_counts(confusion, np.rint(total[k * k]), total[k * k + 1])
