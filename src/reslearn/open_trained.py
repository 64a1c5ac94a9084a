"""Trained weights and their data, opened for analysis: the one path from "a weights file, run
folder or name, and maybe a data set" to a network ready to run and its inputs on its device.

Every command, experiment and page that runs trained weights on images starts here
(``open_for_analysis``); what each does with the network afterwards is its own business.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reslearn.data.image_files import load_images
from reslearn.data.sources import ImageArrays, load_dataset, load_eval_sample
from reslearn.hub import load_trained
from reslearn.rundir import resolve_weights
from reslearn.weights import TrainedModel

SPLITS = ("sample", "test", "train")
_CHUNK = 8192  # images normalised on the device at a time


@dataclass
class Opened:
    """A trained network, where its weights came from, and (when data was found) its images."""

    trained: TrainedModel  # on the device, eval mode
    weights: Path  # the weights file (a run folder's model.safetensors, or the file given)
    run_dir: Path | None  # the run folder, when one was given
    settings: dict[str, Any] = field(default_factory=dict)  # what the run saved ({} for a file)
    data: str | None = None  # the data spec the images came from
    data_name: str | None = None  # that data set's own name (e.g. "cifar10")
    images: ImageArrays | None = None  # uint8 (N, H, W, C) on the host, checked against the net
    files: list[str] | None = None  # the image files the images were read from (no labels)

    @property
    def device(self) -> torch.device:
        """The device the network and its normaliser live on."""
        return self.trained.normalizer.mean.device

    def inputs(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        """Images ``start:stop`` normalised on the device, as the network takes them."""
        return self.trained.prepare(self._pixels()[start:stop])

    def batches(self, size: int = _CHUNK) -> Iterator[torch.Tensor]:
        """All images, normalised on the device ``size`` at a time (bounded memory)."""
        for start in range(0, len(self._pixels()), size):
            yield self.inputs(start, start + size)

    def labels(self) -> torch.Tensor:
        """The images' int64 labels on the device."""
        if self.images is None or self.files is not None:
            raise ValueError("no labelled data was opened with these weights")
        return torch.as_tensor(self.images.labels, dtype=torch.int64, device=self.device)

    def _pixels(self) -> np.ndarray:
        if self.images is None:
            raise ValueError("no data was opened with these weights")
        return self.images.images


def open_weights(target: str | os.PathLike, device: torch.device | str = "cpu") -> Opened:
    """The network ``target`` names (weights file, run folder or name) on ``device``, no data."""
    weights, run_dir, settings = resolve_weights(target)
    return Opened(load_trained(weights, device=device), weights, run_dir, settings)


def open_for_analysis(
    target: str | os.PathLike | Opened,
    *,
    data: str | None = None,
    split: str = "sample",
    count: int | None = None,
    device: torch.device | str = "cpu",
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    skip_bad_images: bool = False,
    progress: bool = False,
    check_size: bool = False,
    sample: ImageArrays | None = None,
    files: list[str | os.PathLike] | None = None,
) -> Opened:
    """Open ``target`` (weights file, run folder or name; or weights already opened) on
    ``device`` with its data.

    The data is ``data``, else the data the run was trained on, else none (``images`` is None;
    the caller says what it needs). ``split`` "sample" draws a seeded random ``count`` (all when
    None) from the test split, or the training split when there is none; "test" / "train" take
    that whole split in order. A ``sample`` already loaded (for another network on the same
    data) is checked and reused instead. ``cache_dir``, ``workers`` and ``skip_bad_images``
    default to the run's. The images' classes and channels (and size, with ``check_size``) must
    be the network's: a one-line error says what differs. ``files`` (image files, any size and
    mode) are read instead of data, fitted to the network's input.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    opened = target if isinstance(target, Opened) else open_weights(target, device)
    trained, settings = opened.trained, opened.settings
    if files is not None:
        pixels = load_images(files, in_channels=trained.in_channels, size=trained.image_size)
        unlabelled = np.full(len(pixels), -1, dtype=np.int64)
        opened.images = ImageArrays(pixels, unlabelled, list(trained.classes))
        opened.files = [str(f) for f in files]
        return opened
    spec = data or settings.get("data")
    if not isinstance(spec, str) or not spec:
        return opened
    opened.data = opened.data_name = spec
    if sample is None:
        loading = {
            "image_size": trained.image_size[0],
            "cache_dir": cache_dir or settings.get("cache_dir"),
            "workers": workers if workers is not None else settings.get("workers"),
        }
        if split == "sample":
            sample = load_eval_sample(spec, count=count, **loading)
        else:
            skip_bad = skip_bad_images or bool(settings.get("skip_bad_images", False))
            loading.update(skip_bad_images=skip_bad, progress=progress)
            sample, opened.data_name = _whole_split(spec, split, loading)
    _, height, width, channels = sample.images.shape
    trained.check_data(
        spec, sample.classes, channels=channels, image_size=(height, width) if check_size else None
    )
    opened.images = sample
    return opened


def _whole_split(spec: str, split: str, loading: dict) -> tuple[ImageArrays, str]:
    """(the whole ``split`` of ``spec`` in order, the data set's name)."""
    dataset = load_dataset(spec, **loading)
    arrays = dataset.test if split == "test" else dataset.train
    if arrays is None:
        raise ValueError(f"data '{spec}' has no {split} split; try --split train")
    return arrays, getattr(dataset, "name", spec)
