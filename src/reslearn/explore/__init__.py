"""``reslearn explore``: an interactive page that shifts images and shows, for one network or
two side by side, what happens to the prediction, the class map and every stage's features.

``explore_page`` computes every view ahead (``compute``), packs it (``encode``) and writes the
self-contained page (``page``)."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from reslearn.errors import SettingError, UserError
from reslearn.evaluate import inference_model
from reslearn.explore.compute import explore_image, shift_grid, uses_cam
from reslearn.explore.page import PageImage, network_entry, render_page
from reslearn.weights import TrainedModel, class_mismatch

__all__ = [
    "PageImage",
    "check_comparable",
    "check_settings",
    "explore_image",
    "explore_page",
    "shift_grid",
    "uses_cam",
]


def check_comparable(first: TrainedModel, second: TrainedModel) -> None:
    """Refuse, in one line, a second network that cannot be shown beside the first."""
    difference = class_mismatch(first.classes, second.classes)
    if difference:
        raise UserError(f"--compare needs a network with the same classes: {difference}")
    if (second.image_size, second.in_channels) != (first.image_size, first.in_channels):
        raise UserError(
            f"--compare needs a network with the same input: {first.image_size[0]}x"
            f"{first.image_size[1]}x{first.in_channels} and {second.image_size[0]}x"
            f"{second.image_size[1]}x{second.in_channels} differ"
        )


def check_settings(trained: TrainedModel, *, max_shift: int, channels: int) -> None:
    """Refuse, in one line, a shift that does not fit the network's input or no channels."""
    height, width = trained.image_size
    if not 1 <= max_shift < min(height, width):
        raise SettingError(
            f"<max_shift> must be between 1 and {min(height, width) - 1} for {height}x{width} "
            f"inputs; got {max_shift}"
        )
    if channels < 1:
        raise SettingError(f"<channels> must be at least 1; got {channels}")


def _views(trained: TrainedModel, images: list[PageImage], label: str, **options) -> list:
    net = inference_model(trained.model)  # batch norm folded, channels_last: as eval runs it
    views = []
    for image in tqdm(images, desc=f"exploring {label}", unit="image", leave=False):
        x = trained.prepare(image.pixels[None])
        views.append(explore_image(net, x, **options))
    return views


def explore_page(
    networks: list[tuple[TrainedModel, str]],
    images: list[PageImage],
    *,
    max_shift: int = 8,
    channels: int = 2,
    command: str = "",
) -> str:
    """The explore page (HTML text) for ``images`` (uint8, fitted to the networks' input) seen
    by one or two ``(trained network, label)`` pairs, for shifts up to ``max_shift`` pixels."""
    if not images:
        raise UserError("explore needs at least one image")
    first = networks[0][0]
    for other, _ in networks[1:]:
        check_comparable(first, other)
    check_settings(first, max_shift=max_shift, channels=channels)
    height, width = first.image_size
    shapes = {np.asarray(i.pixels).shape for i in images}
    if shapes != {(height, width, first.in_channels)}:
        raise ValueError(f"images must be fitted to the network's input; got shapes {shapes}")
    entries = []
    for trained, label in networks:
        views = _views(trained, images, label, max_shift=max_shift, channels=channels)
        entries.append(network_entry(trained, label, views))
    return render_page(images, entries, max_shift=max_shift, command=command)
