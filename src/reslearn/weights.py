"""The final-weights file: one safetensors file that rebuilds a trained network by itself.

Besides the model's tensors it holds the input normalisation (``__normalizer__.mean`` and
``__normalizer__.std``) and, as string metadata, everything needed to use the network: the
registry name and options that rebuild it, the class names in output order and the image size
it was trained on. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import safetensors.torch
import torch
from safetensors import safe_open
from torch import nn

from reslearn.atomic import atomic_write
from reslearn.data.device_data import to_device_uint8
from reslearn.data.normalize import Normalizer
from reslearn.device import check_available
from reslearn.errors import UserError
from reslearn.models import ResNet, create_model
from reslearn.text import display_name
from reslearn.version import __version__

FORMAT = "reslearn-weights/1"
_NORMALIZER = "__normalizer__."
_REQUIRED = ("format", "model", "model_options", "classes", "image_size")


@dataclass
class TrainedModel:
    """A trained network with what it takes to feed it: classes, normalisation, input size."""

    model: ResNet  # built with create_model(name, **options), weights loaded, eval mode
    classes: list[str]
    normalizer: Normalizer  # on the model's device
    image_size: tuple[int, int]  # (H, W) the network was trained on
    in_channels: int
    metadata: dict[str, str]  # the file's metadata, as stored

    @property
    def name(self) -> str:
        """The registry name of the network, e.g. ``resnet20``."""
        return self.metadata["model"]

    def prepare(self, images) -> torch.Tensor:
        """uint8 (N, H, W, C) host images -> the network's input: on its device, normalised."""
        return self.normalizer(to_device_uint8(images, self.normalizer.mean.device))

    def check_data(
        self,
        spec: str,
        classes: list[str],
        *,
        channels: int | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        """Refuse, in one line, data whose classes (names and order), channels or image size
        (when given) are not the network's: every command that runs weights on a data set."""
        difference = class_mismatch(self.classes, list(classes))
        if difference:
            raise UserError(f"data '{spec}' does not match the network's classes: {difference}")
        if channels is not None and channels != self.in_channels:
            raise UserError(
                f"data '{spec}' has {channels}-channel images; the network takes {self.in_channels}"
            )
        if image_size is not None and tuple(image_size) != self.image_size:
            height, width = image_size
            raise UserError(
                f"data '{spec}' has {height}x{width} images; the network was trained on "
                f"{self.image_size[0]}x{self.image_size[1]}"
            )


def class_mismatch(weights: list[str], data: list[str]) -> str | None:
    """Why the data's classes differ from the network's, in one line; None when they agree."""
    if weights == data:
        return None

    def names(items: list[str]) -> str:
        shown = ", ".join(display_name(c) for c in items[:5])
        return shown + (f" and {len(items) - 5} more" if len(items) > 5 else "")

    only_weights = [c for c in weights if c not in set(data)]
    only_data = [c for c in data if c not in set(weights)]
    if not only_weights and not only_data:
        detail = f"the same classes in another order (weights: {names(weights)}; data: "
        return detail + f"{names(data)})"
    parts = [f"weights have {len(weights)} classes, data {len(data)}"]
    if only_weights:
        parts.append(f"only in the weights: {names(only_weights)}")
    if only_data:
        parts.append(f"only in the data: {names(only_data)}")
    return "; ".join(parts)


def save_weights(
    path: str | os.PathLike,
    model: nn.Module,
    *,
    classes: list[str],
    normalizer: Normalizer,
    image_size: tuple[int, int],
    extra: dict[str, str] | None = None,
) -> None:
    """Write ``model`` (built by ``create_model``) and its input facts to one safetensors file.

    The file is written to a temporary name in the same folder and renamed into place, so a
    crash never leaves a half-written file under ``path``.
    """
    model = getattr(model, "_orig_mod", model)  # a torch.compile wrapper
    build_args = getattr(model, "build_args", None)
    if not isinstance(build_args, dict):
        raise ValueError("save_weights needs a model built by reslearn.create_model")
    options = dict(build_args["options"])
    # The built network is the truth: reset_classifier may have changed num_classes.
    options["num_classes"] = model.num_classes
    options["in_channels"] = model.in_channels
    classes = [str(c) for c in classes]
    if len(classes) != model.num_classes:
        raise ValueError(
            f"{len(classes)} class names for a network with {model.num_classes} outputs"
        )
    if normalizer.mean.shape[0] != model.in_channels:
        raise ValueError(
            f"normalizer has {normalizer.mean.shape[0]} channels; the network takes "
            f"{model.in_channels}"
        )
    height, width = (int(s) for s in image_size)
    metadata = {
        "format": FORMAT,
        "model": str(build_args["name"]),
        "model_options": json.dumps(options, sort_keys=True),
        "classes": json.dumps(classes),
        "image_size": json.dumps([height, width]),
        "reslearn_version": __version__,
    }
    for key, value in (extra or {}).items():
        if key in metadata:
            raise ValueError(f"extra metadata key {key!r} is reserved")
        metadata[str(key)] = str(value)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for key, value in normalizer.state().items():
        tensors[_NORMALIZER + key] = value.float().contiguous()
    data = safetensors.torch.save(tensors, metadata=metadata)
    atomic_write(path, lambda file: file.write(data))


def load_weights(path: str | os.PathLike, device: torch.device | str = "cpu") -> TrainedModel:
    """Rebuild the network saved by ``save_weights`` on ``device``, in eval mode; a device
    that is not there is refused by name (before the file is blamed for it)."""
    device = check_available(device)
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"'{path}' is a directory; pass a weights file such as its model.safetensors"
        )
    if not path.exists():
        raise FileNotFoundError(f"weights file '{path}' does not exist")
    _reject_torch_pickle(path)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            metadata = dict(f.metadata() or {})
            _check_metadata(path, metadata)
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as error:
        if isinstance(error, (ValueError, OSError)):
            raise
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"'{path}' is not a reslearn weights file (safetensors): {reason}"
        ) from None
    return _rebuild(path, metadata, tensors, device)


def _reject_torch_pickle(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(4)
    # torch.save writes a zip archive (or, before torch 1.6, a raw pickle starting with 0x80).
    if (head == b"PK\x03\x04" and zipfile.is_zipfile(path)) or head[:1] == b"\x80":
        raise ValueError(
            f"'{path}' is a training checkpoint (a torch.save file), not final weights; use "
            f"the run's model.safetensors, or continue training with `reslearn train --resume`"
        )


def _check_metadata(path: Path, metadata: dict[str, str]) -> None:
    missing = [key for key in _REQUIRED if key not in metadata]
    if missing:
        raise ValueError(
            f"'{path}' is a safetensors file without reslearn metadata (missing: "
            f"{', '.join(missing)}), e.g. a bare state dict; reslearn weights are written by "
            f"reslearn.weights.save_weights"
        )
    if metadata["format"] != FORMAT:
        raise ValueError(
            f"'{path}' has format {metadata['format']!r}; this reslearn "
            f"({__version__}) reads {FORMAT!r}"
        )


def _rebuild(
    path: Path, metadata: dict[str, str], tensors: dict[str, torch.Tensor], device
) -> TrainedModel:
    try:
        options = json.loads(metadata["model_options"])
        classes = json.loads(metadata["classes"])
        height, width = json.loads(metadata["image_size"])
        normalizer = Normalizer(tensors.pop(_NORMALIZER + "mean"), tensors.pop(_NORMALIZER + "std"))
    except (ValueError, TypeError, KeyError) as error:
        raise ValueError(f"'{path}' has damaged reslearn metadata: {error}") from None
    try:
        model = create_model(metadata["model"], **options)
    except ValueError as error:
        raise ValueError(f"'{path}': cannot rebuild the network: {error}") from None
    _check_state(path, model.state_dict(), tensors)
    _check_facts(path, model, classes, normalizer, (height, width))
    model.load_state_dict(tensors, strict=True)
    return TrainedModel(
        model=model.to(device).eval(),
        classes=list(classes),
        normalizer=normalizer.to(device),
        image_size=(int(height), int(width)),
        in_channels=model.in_channels,
        metadata=metadata,
    )


def _check_facts(path: Path, model: ResNet, classes, normalizer: Normalizer, size) -> None:
    """The metadata must describe the network: one class name per output, the normaliser's
    channels, a real image size; otherwise predictions would be labelled wrongly or fail."""
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise UserError(f"'{path}' has damaged reslearn metadata: classes is not a list of names")
    if len(classes) != model.num_classes:
        raise UserError(
            f"'{path}' lists {len(classes)} class names for a network with {model.num_classes} "
            "outputs; the file is inconsistent: save the weights again with one name per output"
        )
    repeated = sorted({c for c in classes if classes.count(c) > 1})
    if repeated:
        raise UserError(
            f"'{path}' lists the class name(s) {', '.join(map(display_name, repeated))} more "
            "than once; every output needs its own name"
        )
    if normalizer.mean.shape[0] != model.in_channels:
        raise UserError(
            f"'{path}' normalises {normalizer.mean.shape[0]} channels for a network that takes "
            f"{model.in_channels}; the file is inconsistent"
        )
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size):
        raise UserError(f"'{path}' has damaged reslearn metadata: image_size {list(size)}")


def _check_state(path: Path, expected: dict, found: dict) -> None:
    """One-line ValueError for what load_state_dict would report as a multi-line RuntimeError."""
    problems = []
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [
        f"{k} {tuple(found[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in found and found[k].shape != v.shape
    ]
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{label}: {', '.join(items[:3])}{more}")
    if problems:
        raise ValueError(f"'{path}' does not match the network it names ({'; '.join(problems)})")
