"""A run's data, ready to train on: decoded into memory (``--loader memory``) or listed for
streaming (``--loader stream``), split into train / val / test the same way for both, then
normalised on the training device into the precision and layout chosen for the run."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from reslearn.data import load_dataset
from reslearn.data.device_data import DeviceData, EvalSet, to_device_uint8
from reslearn.data.normalize import Normalizer
from reslearn.data.sampling import validation_split
from reslearn.data.sources import default_workers, list_image_folder
from reslearn.data.stream import StreamData, TrainViewSettings
from reslearn.data.stream_eval import StreamEval, fit_stream_normalizer
from reslearn.models import model_info
from reslearn.train.config import RunConfig, TrainConfig
from reslearn.train.fingerprint import dataset_fingerprint, listing_fingerprint

#: Where training batches come from: the in-memory data set, or image files through workers.
TrainData = DeviceData | StreamData


@dataclass
class Prepared:
    """A run's data: decoded (or listed) and split, then ``place``d on the device in the run's
    precision and layout; what the trainer needs and what config.json records."""

    name: str
    source: str
    classes: list[str]
    channels: int
    image_size: tuple[int, int]
    skipped: list[str]
    loader: str  # memory | stream
    train_images: int  # after the validation hold-out
    normalizer: Normalizer
    val_indices: np.ndarray | None
    fingerprint: dict[str, Any] | None  # what a resumed run compares (see fingerprint)
    #: ``place(run)`` -> (training data, evaluation splits), normalised into ``run.setting``.
    placer: Callable[[RunConfig], tuple[TrainData, dict[str, EvalSet | StreamEval]]]
    held_out_sizes: dict[str, int]
    train: TrainData | None = None  # set by ``place``
    eval_sets: dict[str, EvalSet | StreamEval] = field(default_factory=dict)

    def place(self, run: RunConfig) -> None:
        """Normalise the data, once, into the dtype and layout the run's step consumes (its
        precision chosen before: no second conversion)."""
        self.train, self.eval_sets = self.placer(run)

    def record(self) -> dict[str, Any]:
        """config.json's "data" record."""
        return {
            "name": self.name,
            "source": self.source,
            "classes": self.classes,
            "train_images": self.train_images,
            "eval_images": dict(self.held_out_sizes),
            "image_size": list(self.image_size),
            "channels": self.channels,
            "skipped_images": self.skipped,
            "loader": self.loader,
            "decode": self.decode_place(),
            "fingerprint": self.fingerprint,
        }

    def decode_place(self) -> str | None:
        """Where a streamed run decodes its JPEGs ("workers" or the device), None in memory."""
        if not isinstance(self.train, StreamData):
            return None
        return str(self.train.device) if self.train.decode_on_device else "workers"

    def close(self) -> None:
        """Stop the streaming loader's workers (nothing to do in memory)."""
        if isinstance(self.train, StreamData):
            self.train.close()


@dataclass
class _Splits:
    """The training items after the validation hold-out, and the held-out splits."""

    train: Any  # an array of images, or a list of files
    labels: np.ndarray
    held_out: dict[str, tuple[Any, np.ndarray]]
    val_indices: np.ndarray | None


def _split(config: TrainConfig, items, labels: np.ndarray, test, take) -> _Splits:
    """Hold out ``--val-split`` training items (a pure function of the seed) and add the test
    split; ``take(items, indices)`` selects items. Refuses data with nothing to evaluate on."""
    held_out: dict[str, tuple[Any, np.ndarray]] = {}
    val_indices = None
    if config.val_split:
        keep, val_indices = validation_split(len(labels), config.val_split, config.seed)
        held_out["val"] = (take(items, val_indices), labels[val_indices])
        items, labels = take(items, keep), labels[keep]
    if test is not None:
        held_out["test"] = test
    if not held_out:
        raise ValueError(
            f"{config.data} has no test split; hold out validation images with --val-split N"
        )
    return _Splits(items, labels, held_out, val_indices)


def prepare(config: TrainConfig, device: torch.device, *, progress: bool) -> Prepared:
    """The data of ``config`` (validated, its recipe's defaults filled in: ``with_recipe``)
    decoded onto ``device`` as uint8 or listed for streaming, split, its batch size checked
    against the training set; ``Prepared.place`` normalises it once the precision is chosen."""
    if config.loader == "stream":
        return _prepare_stream(config, device)
    return _prepare_memory(config, device, progress)


def from_tensors(
    config: TrainConfig,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    test: tuple[torch.Tensor, torch.Tensor] | None = None,
    classes: list[str] | None = None,
) -> Prepared:
    """uint8 (N, C, H, W) images and labels already in memory (on their device) as a run's
    data: for benchmarks, tests and notebooks that train without a data folder. ``test``
    (images, labels) is held out; with ``config.val_split`` so are some training images."""
    held = None if test is None else (test[0], test[1].cpu().numpy())
    split = _split(config, images, labels.cpu().numpy(), held, _rows)
    config.steps_per_epoch(len(split.labels))
    normalizer = Normalizer.fit(split.train, config.resolve_normalization())
    count = int(labels.max()) + 1 if len(labels) else 1
    return Prepared(
        "tensors", "memory", classes or [str(i) for i in range(count)], images.shape[1],
        tuple(images.shape[2:4]), [], "memory", len(split.labels), normalizer,
        split.val_indices, None, partial(_place_memory, split, normalizer),
        {name: len(y) for name, (_, y) in split.held_out.items()},
    )  # fmt: skip


def _prepare_memory(config: TrainConfig, device: torch.device, progress: bool) -> Prepared:
    """The data set decoded once (cached) and held on the device as uint8."""
    dataset = load_dataset(
        config.data,
        image_size=config.image_size,
        fallback_size=model_info(config.model).input_size,
        cache_dir=config.cache_dir,
        skip_bad_images=config.skip_bad_images,
        workers=config.workers,
        progress=progress,
    )
    test = None if dataset.test is None else (dataset.test.images, dataset.test.labels)
    split = _split(config, dataset.train.images, dataset.train.labels, test, _rows)
    config.steps_per_epoch(len(split.labels))
    split.train = to_device_uint8(split.train, device)
    split.held_out = {
        name: (to_device_uint8(x, device), y) for name, (x, y) in split.held_out.items()
    }
    normalizer = Normalizer.fit(split.train, config.resolve_normalization())
    images = dataset.train.images
    return Prepared(
        dataset.name, dataset.source, dataset.train.classes, images.shape[-1],
        tuple(images.shape[1:3]), dataset.skipped, "memory", len(split.labels), normalizer,
        split.val_indices, dataset_fingerprint(dataset), partial(_place_memory, split, normalizer),
        {name: len(y) for name, (_, y) in split.held_out.items()},
    )  # fmt: skip


def _place_memory(split: _Splits, normalizer: Normalizer, run: RunConfig):
    """The training set padded and normalised into the run's setting; the held-out splits
    normalised alike (no padding, no augmentation)."""
    train = DeviceData(
        split.train, torch.as_tensor(split.labels), normalizer, setting=run.setting, pad=run.pad,
        flip=run.flip,
    )  # fmt: skip
    eval_sets: dict[str, EvalSet | StreamEval] = {}
    for name, (x, y) in split.held_out.items():
        held = DeviceData(
            x, torch.as_tensor(y), normalizer, setting=run.setting, pad=0, flip=False
        )  # fmt: skip
        eval_sets[name] = EvalSet(held.inputs(), held.labels)
    return train, eval_sets


def _prepare_stream(config: TrainConfig, device: torch.device) -> Prepared:
    """An image folder listed, not decoded: training views come from DataLoader workers, the
    held-out splits are evaluated on the centre view, the per-pixel mean is that of the centre
    views of 1,000 training images."""
    listing = list_image_folder(config.data)
    files, labels = listing.splits["train"]
    split = _split(config, files, labels, listing.splits.get("test"), _items)
    config.steps_per_epoch(len(split.labels))
    workers = config.workers
    if workers is None:  # the node's cores, shared among torchrun's processes on it
        workers = default_workers(share=int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    normalizer = fit_stream_normalizer(
        split.train, config.resolve_normalization(), crop=config.crop_size, seed=config.seed,
        workers=workers,
    )  # fmt: skip
    crop = config.crop_size
    return Prepared(
        listing.name, listing.root, listing.classes, 3, (crop, crop), [], "stream",
        len(split.labels), normalizer, split.val_indices, listing_fingerprint(listing),
        partial(_place_stream, split, normalizer, device),
        {name: len(y) for name, (_, y) in split.held_out.items()},
    )  # fmt: skip


def _place_stream(split: _Splits, normalizer: Normalizer, device: torch.device, run: RunConfig):
    """The streaming loader and the held-out splits' centre views, in the run's setting."""
    views = TrainViewSettings(tuple(run.scale_range), run.crop_size, run.lighting)
    train = StreamData(
        split.train, split.labels, normalizer, device=device, setting=run.setting,
        settings=views, workers=run.workers, skip_bad=run.skip_bad_images, stop=run.iterations,
        decode_on_device=run.decode == "device",
    )  # fmt: skip
    eval_sets: dict[str, EvalSet | StreamEval] = {
        name: StreamEval(
            split_files,
            split_labels,
            normalizer,
            crop=run.crop_size,
            workers=run.workers,
            batch_size=min(run.eval_batch_size, 256),
            skip_bad=run.skip_bad_images,
        )  # fmt: skip
        for name, (split_files, split_labels) in split.held_out.items()
    }
    return train, eval_sets


def _rows(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return images[indices]


def _items(files: Sequence[str], indices: np.ndarray) -> list[str]:
    return [files[i] for i in indices]
