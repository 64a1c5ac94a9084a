"""What ``reslearn explore`` shows, computed ahead with reslearn's own analysis functions: for
one network, one image, each border mode and each shift (dy, dx) in [-m, m]^2, the top class
probabilities, the class map of the unshifted image's top class (CAM, or Grad-CAM for a network
without global average pooling), a few channels of every stage's output, and every stage's
equivariance error for that shift."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from reslearn.analysis.cam import cam_of_features, grad_cam
from reslearn.analysis.shift import (
    SHIFT_MODES,
    expected_shift,
    relative_error,
    shift_images,
    stage_outputs,
)
from reslearn.models import ResNet

TOPK = 5
_CHUNK = 64  # shifted copies per forward pass: bounds memory for ImageNet-sized inputs


def shift_grid(max_shift: int) -> list[tuple[int, int]]:
    """Every (dy, dx) in [-max_shift, max_shift]^2, dy-major: index ``(dy + m) * (2m + 1) +
    (dx + m)``, the order in which the page stores everything per shift."""
    span = range(-max_shift, max_shift + 1)
    return [(dy, dx) for dy in span for dx in span]


def uses_cam(model: ResNet) -> bool:
    """Whether CAM applies: global average pooling followed by one linear layer."""
    return isinstance(model.head_pool, torch.nn.AdaptiveAvgPool2d)


@dataclass
class ModeView:
    """One border mode's precomputed views of one image, per shift (``shift_grid`` order)."""

    top: np.ndarray  # (S, k) int: the k most probable classes at each shift
    probabilities: np.ndarray  # (S, k) float: their softmax probabilities
    maps: np.ndarray  # (S, h, w) float32: the unshifted top class's map at each shift
    features: dict[str, np.ndarray]  # stage -> (S, channels, hs, ws) float32, chosen channels
    errors: dict[str, np.ndarray]  # stage -> (S,) equivariance error


@dataclass
class ImageView:
    """All precomputed views of one image through one network."""

    label: int  # the unshifted image's top class
    channels: dict[str, list[int]]  # stage -> the channels shown (most active first)
    strides: dict[str, int]
    modes: dict[str, ModeView] = field(default_factory=dict)


def _chosen_channels(reference: dict[str, torch.Tensor], channels: int) -> dict[str, list[int]]:
    """Per stage, the ``channels`` channels with the largest mean response to the image."""
    chosen = {}
    for name, feature in reference.items():
        mean = feature[0].float().mean(dim=(1, 2))
        chosen[name] = mean.topk(min(channels, len(mean))).indices.tolist()
    return chosen


def _class_maps(
    model: ResNet, batch: torch.Tensor, features: torch.Tensor, logits: torch.Tensor, label: int
) -> torch.Tensor:
    """(n, h, w): CAM of class ``label`` when the network has GAP (from the forward pass
    made), else Grad-CAM at the last stage."""
    if uses_cam(model):
        return cam_of_features(model, features, logits, target=label).maps[:, 0]
    return grad_cam(model, batch, target=label).maps[:, 0]


@torch.no_grad()
def _forward(model: ResNet, batch: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    outputs = stage_outputs(model, batch)
    return outputs, model.forward_head(outputs[model.stage_names[-1]]).float()


def _mode_view(
    model: ResNet, image: torch.Tensor, mode: str, max_shift: int, view: ImageView, k: int
) -> ModeView:
    reference, _ = _forward(model, image)
    tops, probabilities, maps, errors = [], [], [], {name: [] for name in reference}
    features: dict[str, list] = {name: [] for name in reference}
    shifts = shift_grid(max_shift)
    for start in range(0, len(shifts), _CHUNK):
        chunk = shifts[start : start + _CHUNK]
        batch = torch.cat([shift_images(image, dy, dx, mode) for dy, dx in chunk])
        outputs, logits = _forward(model, batch)
        p, top = logits.softmax(1).topk(k, dim=1)
        tops.append(top)
        probabilities.append(p)
        last = outputs[model.stage_names[-1]]
        maps.append(_class_maps(model, batch, last, logits, view.label).float())
        for name, moved in outputs.items():
            features[name].append(moved[:, view.channels[name]].float())
            stride = view.strides[name]
            expected = torch.cat([
                expected_shift(reference[name], dy, dx, stride=stride, mode=mode)
                for dy, dx in chunk
            ])  # fmt: skip
            errors[name] += relative_error(moved, expected, reference[name]).tolist()
    return ModeView(
        top=torch.cat(tops).cpu().numpy(),
        probabilities=torch.cat(probabilities).cpu().numpy(),
        maps=torch.cat(maps).cpu().numpy(),
        features={name: torch.cat(f).cpu().numpy() for name, f in features.items()},
        errors={name: np.asarray(e) for name, e in errors.items()},
    )


def explore_image(
    model: ResNet, image: torch.Tensor, *, max_shift: int = 8, channels: int = 2
) -> ImageView:
    """Every view of one normalised image (1, C, H, W) for shifts up to ``max_shift`` pixels
    in both directions and both border modes."""
    was_training = model.training
    model.eval()
    try:
        reference, logits = _forward(model, image)
        height = image.shape[-2]
        view = ImageView(
            label=int(logits.argmax(1)),
            channels=_chosen_channels(reference, channels),
            strides={name: height // f.shape[-2] for name, f in reference.items()},
        )
        k = min(TOPK, logits.shape[1])
        for mode in SHIFT_MODES:
            view.modes[mode] = _mode_view(model, image, mode, max_shift, view, k)
    finally:
        model.train(was_training)
    return view
