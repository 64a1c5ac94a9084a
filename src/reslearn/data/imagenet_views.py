"""The paper's ImageNet augmentation and test views (Sec. 3.4), on single uint8 images.

Training: the shorter side resized to a random size in [256, 480] (scale augmentation), a
random 224x224 crop of the image or its horizontal flip, and AlexNet's PCA colour ("lighting")
noise. Testing: the centre 224 crop of the image resized to shorter side 256, the standard
10 crops (4 corners and the centre, and their flips), or the fully convolutional multi-scale
test: the whole image at shorter sides {224, 256, 384, 480, 640}, scores averaged.

These operate on one (C, H, W) uint8 tensor at a time, as a DataLoader worker sees images of
different sizes; the per-pixel mean is subtracted later, on the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision.transforms.v2.functional as TF

from reslearn.choices import MULTISCALE_SIDES

#: AlexNet's PCA of ImageNet RGB pixels (values in [0, 1]), as used by fb.resnet.torch.
PCA_EIGENVALUES = torch.tensor([0.2175, 0.0188, 0.0045])
PCA_EIGENVECTORS = torch.tensor(
    [[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]]
)


def _resize_shorter(image: torch.Tensor, side: int) -> torch.Tensor:
    return TF.resize(image, side, antialias=True)  # an int resizes the shorter side


def scale_augment(
    image: torch.Tensor,
    generator: torch.Generator,
    *,
    shorter: tuple[int, int] = (256, 480),
    crop: int = 224,
) -> torch.Tensor:
    """Shorter side to a random size in ``shorter`` (inclusive), a random ``crop`` square, and
    a horizontal flip half of the time."""
    low, high = shorter
    if not 0 < crop <= low <= high:
        raise ValueError(f"need 0 < crop <= shorter side range; got crop {crop}, {shorter}")
    side = int(torch.randint(low, high + 1, (1,), generator=generator))
    image = _resize_shorter(image, side)
    height, width = image.shape[-2:]
    top = int(torch.randint(0, height - crop + 1, (1,), generator=generator))
    left = int(torch.randint(0, width - crop + 1, (1,), generator=generator))
    image = image[..., top : top + crop, left : left + crop]
    if bool(torch.rand((), generator=generator) < 0.5):
        image = image.flip(-1)
    return image


def lighting_offset(generator: torch.Generator, *, alpha_std: float = 0.1) -> torch.Tensor:
    """AlexNet's PCA colour noise: one random RGB offset (3,) in [0, 1] pixel units,
    ``eigenvectors @ (alpha * eigenvalues)`` with ``alpha ~ N(0, alpha_std)``, which the
    training loader adds to every pixel of one image (on the device, after normalising)."""
    alpha = torch.randn(3, generator=generator) * alpha_std
    return PCA_EIGENVECTORS @ (alpha * PCA_EIGENVALUES)


def center_view(image: torch.Tensor, *, shorter: int = 256, crop: int = 224) -> torch.Tensor:
    """The single-crop test view: shorter side ``shorter``, the centre ``crop`` square."""
    return TF.center_crop(_resize_shorter(image, shorter), [crop, crop])


def ten_crop_views(image: torch.Tensor, *, shorter: int = 256, crop: int = 224) -> torch.Tensor:
    """The standard 10-crop test: 4 corners and the centre, and the same of the flipped image,
    as a (10, C, crop, crop) tensor."""
    return torch.stack(TF.ten_crop(_resize_shorter(image, shorter), [crop, crop]))


def multiscale_views(
    image: torch.Tensor, sides: Sequence[int] = MULTISCALE_SIDES
) -> list[torch.Tensor]:
    """The whole image at each shorter side, for a fully convolutional network."""
    return [_resize_shorter(image, side) for side in sides]
