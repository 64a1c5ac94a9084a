"""Streaming image folders of any size (ImageNet's layout) through DataLoader workers.

Files are decoded in worker processes (JPEG through torchvision.io, everything else through
Pillow; both turn an image upright by its EXIF orientation), given the paper's per-image views
(``imagenet_views``), and handed over as uint8 batches in pinned memory; the per-pixel mean and
the lighting offset are applied on the training device. Which images make up step ``s``, and
every random number of their views, is a pure function of (seed, step, image index), so a run
can restart at any step, on any number of processes and with any number of workers, and see
the same images.

A file that cannot be decoded is replaced by the next readable image of the split and reported
to the main process, which stops with its name unless bad images may be skipped.
"""

from __future__ import annotations

import inspect
import io
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.io import ImageReadMode, decode_jpeg

from reslearn.data.decode import BadImageError, decode_file, orientation
from reslearn.data.imagenet_views import (
    lighting_offset,
    scale_augment,
)
from reslearn.data.normalize import Normalizer
from reslearn.data.sampling import StepRows, derive_seed
from reslearn.precision.setting import FP32_CHANNELS_LAST, Setting

_JPEG_MAGIC = b"\xff\xd8"
_REPLACEMENT_TRIES = 16  # how far to look for a readable image to stand in for a bad one
# torchvision >= 0.17 applies the EXIF orientation while decoding a JPEG on the CPU (not with
# nvJPEG on a GPU); without it, JPEGs that are not upright go through Pillow.
_JPEG_EXIF = "apply_exif_orientation" in inspect.signature(decode_jpeg).parameters
_EXIF = {"apply_exif_orientation": True} if _JPEG_EXIF else {}


def _is_jpeg(data: torch.Tensor) -> bool:
    return bytes(data[:2].tolist()) == _JPEG_MAGIC


def jpeg_orientation(data: torch.Tensor) -> int:
    """The EXIF orientation of a JPEG's bytes (1: upright, also for anything unreadable)."""
    try:
        with Image.open(io.BytesIO(data.numpy().tobytes())) as img:
            return orientation(img)
    except Exception:  # noqa: BLE001 -- the decoder will name a bad file
        return 1


def read_bytes(path: str) -> torch.Tensor:
    """A file's bytes as a 1-D uint8 tensor. Unlike torchvision.io.read_file, this reads any
    path Python can open, such as a folder name with bytes that are not UTF-8."""
    with open(path, "rb") as file:
        data = bytearray(file.read())
    return torch.frombuffer(data, dtype=torch.uint8) if data else torch.empty(0, dtype=torch.uint8)


def read_rgb(path: str) -> torch.Tensor:
    """A file as a (3, H, W) uint8 tensor (see ``decode_rgb``). Raises BadImageError naming
    the file when it cannot be read or decoded."""
    try:
        data = read_bytes(path)
    except OSError as error:
        raise BadImageError(f"cannot read '{path}': {error}") from None
    return decode_rgb(data, path)


def decode_rgb(data: torch.Tensor, path: str) -> torch.Tensor:
    """A file's bytes as an upright (3, H, W) uint8 tensor: JPEG decoded by torchvision.io,
    other formats and unusual JPEG modes by Pillow (grey images repeated to 3 channels,
    transparency on white); both apply the EXIF orientation. Raises BadImageError naming
    ``path`` when they cannot be decoded."""
    if _is_jpeg(data) and (_JPEG_EXIF or jpeg_orientation(data) == 1):
        try:
            return decode_jpeg(data, mode=ImageReadMode.RGB, **_EXIF)
        except RuntimeError:
            pass  # Pillow decides, and names the problem if there is one
    try:
        array = decode_file(io.BytesIO(data.numpy().tobytes()))
    except Exception as error:  # noqa: BLE001 -- any decoder failure means a bad file
        reason = " ".join(str(error).split()) or type(error).__name__
        raise BadImageError(f"cannot decode '{path}': {reason}") from None
    image = torch.from_numpy(np.array(array, copy=True))
    return image.expand(3, *image.shape) if image.dim() == 2 else image.permute(2, 0, 1)


@dataclass(frozen=True)
class TrainViewSettings:
    """The paper's training augmentation: shorter side in ``shorter``, a ``crop`` square with a
    random flip, and PCA lighting noise with standard deviation ``lighting`` (0: none)."""

    shorter: tuple[int, int] = (256, 480)
    crop: int = 224
    lighting: float = 0.1


class ImageFiles(torch.utils.data.Dataset):
    """Reads files with a fallback for bad ones; subclasses turn an image into views (the
    training views here, the test views in ``stream_eval``)."""

    def __init__(self, files: Sequence[str], labels: np.ndarray) -> None:
        self.files, self.labels = list(files), np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int) -> tuple[torch.Tensor, int, str]:
        """(image, label, "" or the bad file's "path: reason") for ``index``; a bad file is
        replaced by the next readable one so that batches keep their size."""
        bad = ""
        for offset in range(_REPLACEMENT_TRIES):
            position = (index + offset) % len(self.files)
            try:
                return read_rgb(self.files[position]), int(self.labels[position]), bad
            except BadImageError as error:
                bad = bad or str(error)
        raise BadImageError(f"{bad} (and the {_REPLACEMENT_TRIES - 1} files after it)")


class TrainViews(ImageFiles):
    """Training samples keyed by (index, step): a random view (seeded by seed, step and index)
    as uint8 (3, crop, crop), the label, the lighting offset (3,) and the bad-file report."""

    def __init__(
        self, files: Sequence[str], labels: np.ndarray, settings: TrainViewSettings, seed: int
    ) -> None:
        super().__init__(files, labels)
        self.settings, self.seed = settings, seed

    def __getitem__(self, key: tuple[int, int]):
        index, step = key
        image, label, bad = self.read(index)
        view, offset = self.view(image, index, step)
        return view, label, offset, bad

    def view(self, image: torch.Tensor, index: int, step: int):
        """(the random view of ``image`` (3, crop, crop), its lighting offset (3,)); the
        image may live on any device, the random numbers come from the CPU either way."""
        generator = torch.Generator().manual_seed(derive_seed("view", self.seed, step, index))
        s = self.settings
        view = scale_augment(image, generator, shorter=s.shorter, crop=s.crop)
        offset = lighting_offset(generator, alpha_std=s.lighting)  # in [0, 1] pixel units
        return view.contiguous(), offset


class TrainBytes(ImageFiles):
    """The files' bytes only, keyed like TrainViews, for decoding on the training device, with
    each JPEG's EXIF orientation (read here, in the workers: a GPU decoder ignores it)."""

    def __getitem__(self, key: tuple[int, int]):
        index, step = key
        try:
            data = read_bytes(self.files[index])
        except OSError:
            data = torch.empty(0, dtype=torch.uint8)  # unreadable: the main process decides
        return data, index, step, jpeg_orientation(data) if _is_jpeg(data) else 1


def collate_lists(samples):
    """A batch as one list per field (for samples of different shapes)."""
    return tuple(list(column) for column in zip(*samples))


class StepBatches(torch.utils.data.Sampler):
    """The keys of this process's micro-batches, step after step from ``start`` to ``stop``.

    Step ``s`` takes the next ``batch_size`` images of epoch ``s // steps_per_epoch``'s order
    (a pure function of seed and epoch) and splits them into ``parts`` equal parts; this
    process yields the parts listed in ``mine``, in order.
    """

    def __init__(
        self,
        count: int,
        *,
        batch_size: int,
        seed: int,
        parts: int,
        mine: Sequence[int],
        start: int,
        stop: int,
    ) -> None:
        self.count, self.batch_size, self.seed = count, batch_size, seed
        self.parts, self.mine, self.start, self.stop = parts, tuple(mine), start, stop
        self.steps_per_epoch = count // batch_size

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * len(self.mine)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        rows_of = StepRows(self.count, self.batch_size, self.seed)
        for step in range(self.start, self.stop):
            for _, rows in rows_of.parts(step, self.parts, self.mine):
                yield [(int(i), step) for i in rows]


def make_loader(dataset, workers: int, pin: bool, **options) -> DataLoader:
    """A DataLoader over ``dataset`` with ``workers`` processes (0: in this one), each keeping
    four batches ready; ``pin``: batches in pinned memory, for a CUDA device."""
    return DataLoader(
        dataset,
        num_workers=workers,
        pin_memory=pin,
        persistent_workers=False,
        prefetch_factor=4 if workers else None,
        **options,
    )


def report_bad(reports: Sequence[str], skip_bad: bool, seen: set[str]) -> None:
    """Stop at a batch's first bad-file report, or (``skip_bad``) warn once per file."""
    for report in reports:
        if not report or report in seen:
            continue
        if not skip_bad:
            raise BadImageError(f"{report}; remove the file or pass --skip-bad-images")
        seen.add(report)
        warnings.warn(f"skipped a bad image ({report}); a readable one stood in", stacklevel=3)


class StreamData:
    """The training set of an image folder, served step by step from DataLoader workers.

    ``micro_batches(step, ...)`` returns this process's parts of step ``step``'s batch as
    normalised (B, 3, crop, crop) images on the device, in the dtype and layout of ``setting``
    (the run's precision), with their labels.
    Asking for any step other than the next one restarts the workers at that step.
    """

    def __init__(
        self,
        files: Sequence[str],
        labels: np.ndarray,
        normalizer: Normalizer,
        *,
        device: torch.device,
        setting: Setting = FP32_CHANNELS_LAST,
        settings: TrainViewSettings,
        workers: int,
        skip_bad: bool = False,
        stop: int | None = None,
        decode_on_device: bool = False,
    ) -> None:
        self.settings = settings
        self.device, self.setting, self.workers, self.skip_bad = device, setting, workers, skip_bad
        # JPEGs decoded on the training device (nvJPEG on a GPU): workers only read bytes
        self.decode_on_device = decode_on_device
        self._bytes = TrainBytes(files, labels)
        self._views: TrainViews | None = None  # made with the seed of micro_batches
        self._device_decode_failed = False
        self.normalizer = normalizer.to(device)
        self.stop = stop
        self.bad_seen: set[str] = set()
        self._iterator: Iterator | None = None
        self._next_step = -1
        self._layout: tuple | None = None

    def __len__(self) -> int:
        return len(self._bytes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one network input: an RGB crop."""
        crop = self.settings.crop
        return (3, crop, crop)

    def close(self) -> None:
        """Stop the worker processes."""
        self._iterator = None

    def micro_batches(
        self,
        step: int,
        *,
        batch_size: int,
        seed: int,
        parts: int = 1,
        mine: Sequence[int] = (0,),
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This process's parts ``mine`` of the batch of ``step`` split into ``parts``."""
        layout = (batch_size, seed, parts, tuple(mine))
        if self._device_decode_failed and self.decode_on_device:
            self.decode_on_device, self._iterator = False, None  # the workers decode from now
        if self._iterator is None or step != self._next_step or layout != self._layout:
            if self._views is None or self._views.seed != seed:
                files, labels = self._bytes.files, self._bytes.labels
                self._views = TrainViews(files, labels, self.settings, seed)
            sampler = StepBatches(
                len(self), batch_size=batch_size, seed=seed, parts=parts, mine=mine,
                start=step, stop=self.stop if self.stop is not None else step + 1_000_000,
            )  # fmt: skip
            if self.decode_on_device:
                loader = make_loader(
                    self._bytes, self.workers, False, batch_sampler=sampler,
                    collate_fn=collate_lists,
                )  # fmt: skip
            else:
                loader = make_loader(
                    self._views, self.workers, self.device.type == "cuda", batch_sampler=sampler
                )
            self._iterator, self._layout = iter(loader), layout
        self._next_step = step + 1
        if self.decode_on_device:
            return [self._to_device(*self._decode(*next(self._iterator))) for _ in mine]
        return [self._to_device(*next(self._iterator)) for _ in mine]

    def _decode(self, datas: list[torch.Tensor], indices: list[int], steps: list[int],
                orientations: list[int]):  # fmt: skip
        """Decode a micro-batch's JPEGs on the device in one call and make their views there;
        other formats, JPEGs that a GPU would leave sideways (an EXIF orientation: only the
        CPU decoder applies it) and every file of a batch the device cannot decode go through
        the CPU reader (which also names and replaces bad files)."""
        images: list[torch.Tensor | None] = [None] * len(datas)
        keeps_exif = self.device.type == "cpu" and _JPEG_EXIF
        jpegs = [
            i for i, data in enumerate(datas)
            if _is_jpeg(data) and (keeps_exif or orientations[i] == 1)
        ]  # fmt: skip
        if jpegs and not self._device_decode_failed:  # one call for the whole micro-batch
            try:
                decoded = decode_jpeg(
                    [datas[i] for i in jpegs], mode=ImageReadMode.RGB, device=self.device,
                    **(_EXIF if keeps_exif else {}),
                )  # fmt: skip
            except RuntimeError as error:
                decoded = []
                if all(self._decodes_on_cpu(datas[i]) for i in jpegs):
                    # not a bad file but the device: the workers decode from the next step on
                    self._device_decode_failed = True
                    warnings.warn(
                        f"decoding JPEGs on {self.device} failed ({error}); the DataLoader "
                        "workers decode them from now on",
                        stacklevel=4,
                    )
            for i, image in zip(jpegs, decoded):
                images[i] = image
        train_views = self._views
        views, labels, offsets, bad = [], [], [], []
        for i, image in enumerate(images):
            index, label, report = indices[i], int(train_views.labels[indices[i]]), ""
            if image is None:  # not a JPEG, or the device could not decode it
                try:
                    image = decode_rgb(datas[i], train_views.files[index])
                except BadImageError:  # the next readable file stands in, as in the workers
                    image, label, report = train_views.read(index)
                image = image.to(self.device, non_blocking=True)
            view, offset = train_views.view(image, index, steps[i])
            views.append(view)
            labels.append(label)
            offsets.append(offset)
            bad.append(report)
        return torch.stack(views), torch.tensor(labels), torch.stack(offsets), bad

    @staticmethod
    def _decodes_on_cpu(data: torch.Tensor) -> bool:
        try:
            decode_jpeg(data, mode=ImageReadMode.RGB)
        except RuntimeError:
            return False
        return True

    def _to_device(self, images, labels, offsets, bad) -> tuple[torch.Tensor, torch.Tensor]:
        report_bad(bad, self.skip_bad, self.bad_seen)
        images = images.to(self.device, non_blocking=True)
        offsets = offsets.to(self.device, non_blocking=True)
        x = self.normalizer(images) + (offsets / self.normalizer.std.flatten())[:, :, None, None]
        x = self.setting.inputs(x)
        return x, labels.to(self.device, non_blocking=True)
