"""The official formats: CIFAR-10/100's python pickles and Fashion-MNIST's IDX files.

Both readers return ``(classes, (train_images, train_labels), (test_images, test_labels))`` with
uint8 images (N, H, W, C) and int64 labels. The pickles are read by an unpickler that builds
containers and NumPy arrays only, so a data file cannot run code.
"""

from __future__ import annotations

import codecs
import gzip
import math
import pickle
import zlib
from pathlib import Path

import numpy as np

from reslearn.data.registry import BY_NAME, IDX_FILES, idx_path

FASHION_MNIST_URL = BY_NAME["idx"].url
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

Split = tuple[np.ndarray, np.ndarray]  # (images, labels)


class _ArrayUnpickler(pickle.Unpickler):
    """Loads containers and NumPy arrays only, so a data file can never run code."""

    _reconstruct = np.zeros(1).__reduce__()[0]  # numpy.core or numpy._core, by NumPy version
    _allowed = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles from Python 3 hold bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")
        return self._allowed[module, name]


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            entry = _ArrayUnpickler(f, encoding="bytes").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as error:
        raise ValueError(f"cannot read CIFAR file '{path}' ({error}); re-download it") from None
    if not isinstance(entry, dict):
        raise ValueError(f"CIFAR file '{path}' does not hold a dict; re-download it")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in entry.items()}


def _field(entry: dict, key: str, path: Path):
    if key not in entry:
        raise ValueError(f"CIFAR file '{path}' has no '{key}' entry; re-download it")
    return entry[key]


def read_cifar(folder: Path, kind: str) -> tuple[list[str], Split, Split]:
    """Classes, train and test of CIFAR-10 or CIFAR-100 (fine labels) from the python pickles."""
    if kind == "cifar10":
        parts = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
        meta, names_key, labels_key = "batches.meta", "label_names", "labels"
    else:
        parts = {"train": ["train"], "test": ["test"]}
        meta, names_key, labels_key = "meta", "fine_label_names", "fine_labels"
    names = _field(_unpickle(folder / meta), names_key, folder / meta)
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    splits = {}
    for split, files in parts.items():
        images, labels = [], []
        for file in files:
            path = folder / file
            if not path.is_file():
                raise FileNotFoundError(f"CIFAR file '{path}' is missing; re-download the dataset")
            entry = _unpickle(path)
            data = np.asarray(_field(entry, "data", path), dtype=np.uint8)
            label = np.asarray(_field(entry, labels_key, path), dtype=np.int64)
            if data.ndim != 2 or data.shape[1] != 3072 or len(label) != len(data):
                raise ValueError(
                    f"CIFAR file '{path}' holds data of shape {data.shape} and {len(label)} "
                    "labels; expected (N, 3072) and N labels: re-download it"
                )
            if len(label) and (label.min() < 0 or label.max() >= len(classes)):
                raise ValueError(f"CIFAR file '{path}' has labels outside 0..{len(classes) - 1}")
            # rows are channel-major: 1024 red, then green, then blue values of a 32x32 image
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(label)
        images = np.ascontiguousarray(np.concatenate(images))
        splits[split] = (images, np.concatenate(labels))
    return classes, splits["train"], splits["test"]


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX array of unsigned bytes with ``ndim`` dimensions (magic number 0x0800 + ndim)."""
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"cannot read IDX file '{path}' ({error}); re-download it") from None
    magic, expected = int.from_bytes(data[:4], "big"), 0x0800 + ndim
    if len(data) < 4 + 4 * ndim or magic != expected:
        raise ValueError(
            f"'{path}' is not an IDX file of {ndim}-d unsigned bytes: magic number 0x{magic:08x}, "
            f"expected 0x{expected:08x}; re-download it"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != math.prod(dims):
        raise ValueError(
            f"IDX file '{path}' holds {body.size} values but its header says {dims}; it is "
            "truncated or damaged: re-download it"
        )
    return body.reshape(dims).copy()


def read_fashion(folder: Path) -> tuple[list[str], Split, Split]:
    """Classes, train and test of Fashion-MNIST's four IDX files (each raw or gzipped)."""
    paths = {base: idx_path(folder, base) for base in IDX_FILES}
    missing = [base for base, path in paths.items() if path is None]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST folder '{folder}' lacks {', '.join(missing)} (raw or .gz); "
            f"download them from {FASHION_MNIST_URL}"
        )
    splits = []
    for prefix in ("train", "t10k"):
        images = _read_idx(paths[f"{prefix}-images-idx3-ubyte"], 3)
        labels_path = paths[f"{prefix}-labels-idx1-ubyte"]
        labels = _read_idx(labels_path, 1).astype(np.int64)
        if len(labels) != len(images) or (len(labels) and labels.max() >= 10):
            raise ValueError(
                f"IDX file '{labels_path}' holds {len(labels)} labels (max "
                f"{labels.max(initial=0)}) for {len(images)} images; expected one label in "
                "0..9 per image: re-download it"
            )
        splits.append((images[..., None], labels))
    return list(FASHION_MNIST_CLASSES), splits[0], splits[1]
