"""akamaster/pytorch_resnet_cifar10's published CIFAR-10 ResNets (BSD 2-Clause, Yerlan
Idelbayev), read into reslearn's networks.

Their files are torch pickles ``{"best_prec1": ..., "state_dict": ...}`` with DataParallel's
``module.`` prefix and the classifier named ``linear``. Their option-A shortcut pads the new
channels with zeros on both sides of the channel axis, where reslearn (like fb.resnet.torch)
puts them after the input's: loaded into reslearn's default layout, their weights give chance
accuracy without a word. The reader therefore builds the network with ``zero_pad="both"``, and
sets their input normalisation (ImageNet's mean and std) and CIFAR-10's class names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from reslearn.atomic import WriteError, temporary_beside
from reslearn.choices import AKAMASTER_FILES as FILES
from reslearn.choices import AKAMASTER_REPOSITORY as REPOSITORY
from reslearn.data.normalize import IMAGENET_MEAN, IMAGENET_STD, Normalizer
from reslearn.errors import UserError, one_line
from reslearn.models import create_model
from reslearn.paths import default_cache_dir
from reslearn.weights import TrainedModel

URL = "https://github.com/akamaster/pytorch_resnet_cifar10/raw/master/pretrained_models/"
#: Test error (%) their README reports, measured on the original CIFAR-10 pixels.
REPORTED_ERROR = {
    "resnet20": 8.27, "resnet32": 7.37, "resnet44": 6.90, "resnet56": 6.61, "resnet110": 6.32,
    "resnet1202": 6.18,
}  # fmt: skip
CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip
_BLOCK = re.compile(r"^layer(\d)\.(\d+)\.")


def read_akamaster(path: str | os.PathLike, device: torch.device | str = "cpu") -> TrainedModel:
    """One of akamaster's ``.th`` files as a reslearn network (eval mode, on ``device``); a file
    that is not one of theirs is refused in one line."""
    path = Path(path)
    state = _state_dict(path)
    name = _architecture(path, state)
    classes = int(state["fc.weight"].shape[0])
    model = create_model(name, num_classes=classes, zero_pad="both")
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in expected]
    shapes = [k for k in state if k in expected and state[k].shape != expected[k].shape]
    if missing or extra or shapes:
        groups = (("missing", missing), ("extra", extra), ("shape", shapes))
        found = ", ".join(f"{what}: {', '.join(keys[:3])}" for what, keys in groups if keys)
        raise UserError(f"'{path}' is not an akamaster CIFAR {name} ({found})")
    model.load_state_dict(state, strict=False)  # their files predate num_batches_tracked
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    normalizer = Normalizer(mean, torch.tensor(IMAGENET_STD)[:, None, None])
    names = CIFAR10_CLASSES if classes == 10 else [f"class{i}" for i in range(classes)]
    metadata = {
        "format": "akamaster",
        "model": name,
        "model_options": json.dumps({"zero_pad": "both", "num_classes": classes}),
        "source": f"{REPOSITORY}: {path.name}",
        "license": "BSD 2-Clause, copyright Yerlan Idelbayev",
    }
    return TrainedModel(
        model=model.to(device).eval(), classes=names, normalizer=normalizer.to(device),
        image_size=(32, 32), in_channels=3, metadata=metadata,
    )  # fmt: skip


def _state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Their state dict with reslearn's names (``module.`` dropped, ``linear`` -> ``fc``)."""
    if not path.is_file():
        raise FileNotFoundError(f"weights file '{path}' does not exist")
    try:
        loaded: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 -- torch raises many types for foreign files
        raise UserError(
            f"'{path}' is not an akamaster .th file (a torch pickle of tensors): {one_line(error)}"
        ) from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"'{path}' holds no state_dict of tensors; not an akamaster .th file")
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        renamed["fc." + key[len("linear.") :] if key.startswith("linear.") else key] = value
    if "fc.weight" not in renamed:
        raise UserError(f"'{path}' has no classifier ('linear'); not an akamaster CIFAR ResNet")
    return renamed


def _architecture(path: Path, state: dict[str, torch.Tensor]) -> str:
    """``resnetN`` from the number of blocks per stage (6n + 2 layers)."""
    blocks: dict[int, set[int]] = {}
    for key in state:
        if match := _BLOCK.match(key):
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    counts = [len(blocks.get(stage, ())) for stage in (1, 2, 3)]
    if sorted(blocks) != [1, 2, 3] or len(set(counts)) != 1 or "conv1.weight" not in state:
        raise UserError(f"'{path}' is not a CIFAR ResNet of three equal stages (blocks: {counts})")
    return f"resnet{6 * counts[0] + 2}"


def fetch(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The file of ``akamaster:NAME`` (resnet20/32/44/56/110/1202): from the cache folder, or
    downloaded there and checked against the sha256 prefix in its name."""
    if name not in FILES:
        known = ", ".join(f"akamaster:{k}" for k in FILES)
        raise UserError(f"unknown pretrained network 'akamaster:{name}'; known: {known}")
    folder = Path(folder) if folder is not None else default_cache_dir() / "weights"
    path = folder / FILES[name]
    if path.is_file():
        check_sha256(path)
        return path
    url = URL + FILES[name]
    try:
        with _download(name, url, folder) as read, temporary_beside(path) as temporary:
            with open(temporary, "wb") as out:
                while chunk := read(1 << 20):
                    out.write(chunk)
            check_sha256(temporary, expected_name=path.name)
            os.replace(temporary, path)
    except WriteError as error:  # the cache folder, not the network
        raise UserError(
            f"cannot download akamaster:{name} into the cache ({error}); set RESLEARN_CACHE to "
            f"a writable folder, or download {url} elsewhere and give the file instead"
        ) from None
    return path


@contextlib.contextmanager
def _download(name: str, url: str, folder: Path) -> Iterator[Callable[[int], bytes]]:
    """The file at ``url`` as a reader of chunks; a network failure is a ``UserError`` (not an
    ``OSError``, which would read as a failed write) that says what to do offline."""

    def failed(error: BaseException) -> UserError:
        return UserError(
            f"cannot download akamaster:{name} ({one_line(error)}); offline, download {url} "
            f"elsewhere and put it in {folder}/"
        )

    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise failed(error) from None

    def read(size: int) -> bytes:
        try:
            return response.read(size)
        except (OSError, TimeoutError) as error:
            raise failed(error) from None

    with response:
        yield read


def check_sha256(path: Path, *, expected_name: str | None = None) -> None:
    """The file's sha256 must start with the 8 hex digits in its published name."""
    name = expected_name or path.name
    match = re.search(r"-([0-9a-f]{8})\.th$", name)
    if match is None:
        return
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(match.group(1)):
        raise UserError(
            f"'{path}' does not match its published checksum (sha256 {digest[:8]}..., expected "
            f"{match.group(1)}...): the download is truncated or altered; delete it and retry"
        )
