"""Which images a step trains on, for both loaders: the order of each epoch and the rows of a
step's batch (and of its parts, one per process and accumulation micro-step), the validation
hold-out and random samples -- each a pure function of the seed, which is what makes a run
resumable bit for bit and its data split reproducible."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from reslearn.errors import SettingError


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (stable across runs and machines)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def validation_split(count: int, holdout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) holding out ``holdout`` of ``count`` images, a pure function of seed."""
    if not 0 <= holdout < count:
        raise SettingError(
            f"<val_split> must be between 0 and {count - 1} (the training images); got {holdout}"
        )
    generator = torch.Generator().manual_seed(derive_seed("val-split", seed))
    order = torch.randperm(count, generator=generator).numpy()
    return np.sort(order[holdout:]), np.sort(order[:holdout])


def sample_indices(count: int, size: int | None, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``size`` of ``count`` images drawn at random (a pure function of the
    seed), or all of them. Folders list images class by class, so the first N would not do."""
    if size is None or size >= count:
        return np.arange(count)
    generator = torch.Generator().manual_seed(derive_seed("sample", seed))
    return np.sort(torch.randperm(count, generator=generator)[:size].numpy())


def epoch_order(
    count: int, seed: int, epoch: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """The order of ``count`` training images in ``epoch``: a pure function of (seed, epoch)
    and the device whose generator draws it."""
    generator = torch.Generator(device=device).manual_seed(derive_seed("order", seed, epoch))
    return torch.randperm(count, generator=generator, device=device)


def part_slice(batch_size: int, part: int, parts: int) -> slice:
    """Rows of ``part`` when a batch is split into ``parts`` equal parts (one per process and
    accumulation micro-step: part = rank * accumulate + micro-step)."""
    if batch_size % parts:
        raise ValueError(f"a batch of {batch_size} does not split into {parts} equal parts")
    size = batch_size // parts
    return slice(part * size, (part + 1) * size)


class StepRows:
    """The image rows of any step's batch: step ``s`` takes the next ``batch_size`` images of
    epoch ``s // (count // batch_size)``'s order (the current epoch's order is kept)."""

    def __init__(self, count: int, batch_size: int, seed: int, device="cpu") -> None:
        self.count, self.batch_size, self.seed, self.device = count, batch_size, seed, device
        self.steps_per_epoch = count // batch_size
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.int64)

    def __call__(self, step: int) -> torch.Tensor:
        """Rows of ``step``'s whole batch, in batch order."""
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._order = epoch_order(self.count, self.seed, epoch, self.device)
            self._epoch = epoch
        return self._order[position * self.batch_size : (position + 1) * self.batch_size]

    def parts(self, step: int, parts: int, mine) -> list[tuple[int, torch.Tensor]]:
        """(part, rows) of this process's parts ``mine`` of ``step``'s batch."""
        rows = self(step)
        return [(part, rows[part_slice(self.batch_size, part, parts)]) for part in mine]
