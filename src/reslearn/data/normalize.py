"""Input normalisation: the paper's per-pixel mean subtraction, or per-channel mean/std.

The paper (Sec. 4.2) subtracts the per-pixel mean of the training images. Every mode maps uint8
pixels to ``(x / 255 - mean) / std``; for ``per-pixel`` the mean is a C x H x W image and std is
1, for ``per-channel`` both are C x 1 x 1 statistics of the data, and ``imagenet`` uses
torchvision's fixed ImageNet mean and std, which its pretrained weights expect. The statistics
travel with the weights, so a trained network always sees inputs prepared the way it was
trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from reslearn.choices import NORMALIZATIONS
from reslearn.errors import SettingError

#: torchvision's ImageNet statistics, which its pretrained weights expect ("imagenet" mode).
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass
class Normalizer:
    """Maps uint8 images (N, C, H, W) to the float inputs a network was trained on."""

    mean: torch.Tensor  # (C, H, W) or (C, 1, 1), float32, on the [0, 1] pixel scale
    std: torch.Tensor  # broadcastable to mean

    @classmethod
    def fit(cls, images: torch.Tensor, mode: str = "per-pixel") -> Normalizer:
        """Statistics of uint8 training images (N, C, H, W), computed in float64 chunks."""
        if mode not in NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {', '.join(NORMALIZATIONS)}; got {mode!r}"
            )
        if images.dtype != torch.uint8 or images.dim() != 4 or len(images) == 0:
            raise ValueError("Normalizer.fit needs a non-empty uint8 tensor of shape (N, C, H, W)")
        if mode == "imagenet":
            if images.shape[1] != 3:
                raise SettingError(
                    f"<normalization> imagenet needs RGB images; these have {images.shape[1]} "
                    "channel(s)"
                )
            mean = torch.tensor(IMAGENET_MEAN, device=images.device)[:, None, None]
            return cls(mean, torch.tensor(IMAGENET_STD, device=images.device)[:, None, None])
        total = torch.zeros(images.shape[1:], dtype=torch.float64, device=images.device)
        squares = torch.zeros_like(total)
        for chunk in images.split(4096):
            chunk = chunk.to(torch.float64) / 255.0
            total += chunk.sum(0)
            squares += chunk.square().sum(0)
        count = len(images)
        if mode == "per-pixel":
            mean = total / count
            std = torch.ones(mean.shape[0], 1, 1, dtype=torch.float64, device=images.device)
        else:
            n = count * images.shape[2] * images.shape[3]
            mean = total.sum((1, 2)) / n
            var = squares.sum((1, 2)) / n - mean.square()
            mean, std = mean[:, None, None], var.clamp_min(1e-12).sqrt()[:, None, None]
        return cls(mean.float(), std.float())

    @property
    def mode(self) -> str:
        """``per-pixel`` when the mean is an image, else ``per-channel``."""
        return "per-pixel" if self.mean.shape[1:] != (1, 1) else "per-channel"

    def to(self, device: torch.device | str) -> Normalizer:
        """The same statistics on another device."""
        return Normalizer(self.mean.to(device), self.std.to(device))

    def resized(self, height: int, width: int) -> Normalizer:
        """The same statistics for inputs of another size: a per-pixel mean image is resized
        (bilinear), a per-channel mean is returned as is. For test views larger or smaller than
        the training crop, such as the multi-scale test."""
        if self.mode == "per-channel" or self.mean.shape[-2:] == (height, width):
            return self
        mean = torch.nn.functional.interpolate(
            self.mean[None], size=(height, width), mode="bilinear", align_corners=False
        )[0]
        return Normalizer(mean, self.std)

    def __call__(self, images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Normalise uint8 images (N, C, H, W) into ``dtype``."""
        if self.mean.shape[1:] != (1, 1) and images.shape[-2:] != self.mean.shape[-2:]:
            raise ValueError(
                f"per-pixel mean is {tuple(self.mean.shape[-2:])} but images are "
                f"{tuple(images.shape[-2:])}; resize the images to the training size first"
            )
        out = images.to(torch.float32).div_(255.0).sub_(self.mean).div_(self.std)
        return out.to(dtype)

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to store beside the weights."""
        return {"mean": self.mean.contiguous().cpu(), "std": self.std.contiguous().cpu()}
