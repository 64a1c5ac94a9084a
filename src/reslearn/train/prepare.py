"""A run's data, ready to train on: decoded into memory (``--loader memory``) or listed for
streaming (``--loader stream``), split into train / val / test the same way for both, the
settings resolved on the training set's size, and normalised on the training device."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
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
from reslearn.precision import input_dtype
from reslearn.train.config import TrainConfig
from reslearn.train.fingerprint import dataset_fingerprint, listing_fingerprint


@dataclass
class Prepared:
    """A run's data, ready to train on: what the trainer needs and what config.json records."""

    name: str
    source: str
    classes: list[str]
    channels: int
    image_size: tuple[int, int]
    skipped: list[str]
    resolved: TrainConfig
    train: DeviceData | StreamData
    eval_sets: dict[str, EvalSet | StreamEval]
    normalizer: Normalizer
    val_indices: np.ndarray | None
    fingerprint: dict[str, Any] | None = None  # what a resumed run compares (see fingerprint)

    def record(self) -> dict[str, Any]:
        """config.json's "data" record."""
        return {
            "name": self.name,
            "source": self.source,
            "classes": self.classes,
            "train_images": len(self.train),
            "eval_images": self.eval_sizes(),
            "image_size": list(self.image_size),
            "channels": self.channels,
            "skipped_images": self.skipped,
            "loader": self.resolved.loader,
            "decode": self.decode_place(),
            "fingerprint": self.fingerprint,
        }

    def eval_sizes(self) -> dict[str, int]:
        """Images in each held-out split."""
        return {name: len(split.labels) for name, split in self.eval_sets.items()}

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
    """The data of ``config`` (validated, its recipe's loader chosen) on ``device``, and the
    settings resolved on the training set's size."""
    if config.loader == "stream":
        return _prepare_stream(config, device)
    return _prepare_memory(config, device, progress)


def _prepare_memory(config: TrainConfig, device: torch.device, progress: bool) -> Prepared:
    """The data set decoded once (cached) and held on the device, padded and normalised."""
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
    resolved = config.resolve(len(split.labels))
    dtype = input_dtype(resolved.precision)  # fp32 while "auto": cast once it is chosen
    train_u8 = to_device_uint8(split.train, device)
    normalizer = Normalizer.fit(train_u8, resolved.normalization)
    train = DeviceData(
        train_u8, torch.from_numpy(split.labels), normalizer, dtype=dtype, pad=resolved.pad,
        flip=resolved.flip,
    )  # fmt: skip
    eval_sets: dict[str, EvalSet | StreamEval] = {}
    for name, (x, y) in split.held_out.items():
        held = DeviceData(
            to_device_uint8(x, device), torch.from_numpy(y), normalizer, dtype=dtype, pad=0,
            flip=False,
        )  # fmt: skip
        eval_sets[name] = EvalSet(held.inputs(), held.labels)
    images = dataset.train.images
    return Prepared(
        dataset.name, dataset.source, dataset.train.classes, images.shape[-1],
        tuple(images.shape[1:3]), dataset.skipped, resolved, train, eval_sets, normalizer,
        split.val_indices, fingerprint=dataset_fingerprint(dataset),
    )  # fmt: skip


def _prepare_stream(config: TrainConfig, device: torch.device) -> Prepared:
    """An image folder listed, not decoded: training views come from DataLoader workers, the
    held-out splits are evaluated on the centre view, the per-pixel mean is that of the centre
    views of 1,000 training images."""
    listing = list_image_folder(config.data)
    files, labels = listing.splits["train"]
    split = _split(config, files, labels, listing.splits.get("test"), _items)
    resolved = config.resolve(len(split.labels))
    workers = resolved.workers
    if workers is None:  # the node's cores, shared among torchrun's processes on it
        workers = default_workers(share=int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    crop = resolved.crop_size
    on_device = resolved.decode == "device" or (resolved.decode == "auto" and device.type == "cuda")
    normalizer = fit_stream_normalizer(
        split.train, resolved.normalization, crop=crop, seed=resolved.seed, workers=workers
    )
    views = TrainViewSettings(tuple(resolved.scale_range), crop, resolved.lighting)
    train = StreamData(
        split.train, split.labels, normalizer, device=device,
        dtype=input_dtype(resolved.precision), settings=views, workers=workers,
        skip_bad=resolved.skip_bad_images, stop=resolved.iterations, decode_on_device=on_device,
    )  # fmt: skip
    eval_sets: dict[str, EvalSet | StreamEval] = {
        name: StreamEval(
            split_files,
            split_labels,
            normalizer,
            crop=crop,
            workers=workers,
            batch_size=min(resolved.eval_batch_size, 256),
            skip_bad=resolved.skip_bad_images,
        )  # fmt: skip
        for name, (split_files, split_labels) in split.held_out.items()
    }
    return Prepared(
        listing.name, listing.root, listing.classes, 3, (crop, crop), [], resolved, train,
        eval_sets, normalizer, split.val_indices, fingerprint=listing_fingerprint(listing),
    )  # fmt: skip


def _rows(images: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return images[indices]


def _items(files: Sequence[str], indices: np.ndarray) -> list[str]:
    return [files[i] for i in indices]
