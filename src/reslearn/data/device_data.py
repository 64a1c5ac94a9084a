"""The training data path on the training device: no DataLoader, no per-image Python.

The whole data set lives on the device as one tensor, normalised once. A batch is a gather of
rows followed by the paper's augmentation (Sec. 4.2: pad 4 pixels on each side, take a random
crop of the original size, flip horizontally with probability 1/2), done for the whole batch at
once with index arithmetic. Random numbers come from a device-side generator seeded by
(seed, epoch) for the order and (seed, step) for the augmentation, so any step's batch is a pure
function of the seed and the step: that is what makes resuming exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from reslearn.data.normalize import Normalizer
from reslearn.data.sampling import StepRows, derive_seed, epoch_order
from reslearn.precision.setting import FP32_CHANNELS_LAST, Setting


def to_device_uint8(images: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """uint8 (N, H, W, C) numpy images -> uint8 (N, C, H, W) tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)


@dataclass
class EvalSet:
    """Normalised inputs and labels of one evaluation split, on the training device."""

    inputs: torch.Tensor
    labels: torch.Tensor


class DeviceData:
    """A labelled image set held on the device, normalised once into the dtype of ``setting``
    (the run's precision and layout, chosen before the data is normalised), served in augmented
    batches in the layout the step consumes."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        normalizer: Normalizer,
        *,
        setting: Setting = FP32_CHANNELS_LAST,
        pad: int = 4,
        flip: bool = True,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("DeviceData needs uint8 images of shape (N, C, H, W)")
        if pad < 0:
            raise ValueError(f"pad must be >= 0; got {pad}")
        self.device = images.device
        self.setting, self.pad, self.flip = setting, pad, flip
        dtype = setting.input_dtype
        self.labels = labels.to(self.device, torch.int64)
        normalizer = normalizer.to(self.device)
        # Stored as (N, H + 2 pad, W + 2 pad, C): padded once, with zeros that are the mean
        # pixel after normalisation, and channels last so a gathered batch is already in the
        # channels_last memory format (an NCHW setting copies each batch once, in ``batch``).
        chunks = [
            F.pad(normalizer(chunk, dtype), (pad, pad, pad, pad)).permute(0, 2, 3, 1)
            for chunk in images.split(8192)
        ]
        self.padded = torch.cat(chunks).contiguous()
        self.height, self.width = images.shape[2], images.shape[3]
        self._rows = torch.arange(self.height, device=self.device)
        self._cols = torch.arange(self.width, device=self.device)
        self._generator = torch.Generator(device=self.device)
        self._rows_of: StepRows | None = None  # the current epoch's order, kept

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one network input."""
        return (self.padded.shape[-1], self.height, self.width)

    def permutation(self, seed: int, epoch: int) -> torch.Tensor:
        """The order of the images in ``epoch``: a pure function of (seed, epoch)."""
        return epoch_order(len(self), seed, epoch, self.device)

    def micro_batches(
        self,
        step: int,
        *,
        batch_size: int,
        seed: int,
        parts: int = 1,
        mine: tuple[int, ...] = (0,),
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The parts ``mine`` of step ``step``'s augmented batch, when the batch of epoch
        ``step // (N // batch_size)``'s order is split into ``parts`` equal parts."""
        if self._rows_of is None or (self._rows_of.seed, self._rows_of.batch_size) != (
            seed,
            batch_size,
        ):
            self._rows_of = StepRows(len(self), batch_size, seed, self.device)
        return [
            self.batch(rows, seed=seed, step=step, part=part if parts > 1 else None)
            for part, rows in self._rows_of.parts(step, parts, mine)
        ]

    def batch(
        self,
        indices: torch.Tensor,
        *,
        augment: bool = True,
        seed: int = 0,
        step: int = 0,
        part: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W; in the setting's dtype and layout) and labels for ``indices``.

        With ``augment``, each image gets a random crop of the padded image and a random
        horizontal flip, drawn from a generator seeded by (seed, step) and the ``part`` of a
        split batch, so that a part's images are the same whichever process draws them.
        """
        count, pad = len(indices), self.pad
        batch = self.padded.index_select(0, indices)
        if augment and (pad or self.flip):
            key = ("augment", seed, step) if part is None else ("augment", seed, step, part)
            self._generator.manual_seed(derive_seed(*key))
            offsets = torch.randint(
                0, 2 * pad + 1, (2, count), generator=self._generator, device=self.device
            )
            rows = offsets[0, :, None] + self._rows
            cols = offsets[1, :, None] + self._cols
            if self.flip:
                flips = torch.rand(count, generator=self._generator, device=self.device) < 0.5
                cols = torch.where(flips[:, None], cols.flip(1), cols)
            picks = torch.arange(count, device=self.device)[:, None, None]
            batch = batch[picks, rows[:, :, None], cols[:, None, :]]
        else:
            batch = batch[:, pad : pad + self.height, pad : pad + self.width].contiguous()
        images = self.setting.inputs(batch.permute(0, 3, 1, 2))
        return images, self.labels.index_select(0, indices)

    def inputs(self) -> torch.Tensor:
        """All images, un-augmented, as (N, C, H, W) normalised inputs in channels_last memory
        (a view; no copy: evaluation batches them into its own layout)."""
        pad = self.pad
        return self.padded[:, pad : pad + self.height, pad : pad + self.width].permute(0, 3, 1, 2)
