"""A decoded-data cache entry is checked before use (its arrays against the digests written
with them, then shapes, dtypes, label range and class list against the folder): a damaged one
is dropped with a one-line warning and the folder decoded again, never used."""

import warnings

import numpy as np
import pytest

from reslearn.data import load_dataset
from reslearn.data.array_cache import save_entry


@pytest.fixture
def cached(tmp_path, write_image_folder):
    """A 3-class folder, loaded once (so its entry is in the cache): (load, the entry, data)."""
    root = write_image_folder(tmp_path / "three", ["a", "b", "c"], {"train": 3, "test": 2})

    def load():
        return load_dataset(str(root), cache_dir=tmp_path / "cache", workers=0, progress=False)

    first = load()
    (entry,) = (tmp_path / "cache" / "arrays").iterdir()
    return load, entry / "native", first


def _reloaded(load, count_decodes, reason: str):
    """Load again: one warning naming the entry and ``reason``, a new decode."""
    calls = count_decodes()
    with pytest.warns(UserWarning) as caught:
        again = load()
    (warning,) = [w for w in caught if "cache entry" in str(w.message)]
    message = str(warning.message)
    assert "is damaged" in message and reason in message and "\n" not in message
    assert sum(calls) == 15  # decoded again: 9 train and 6 test images
    return again


def test_labels_edited_in_place_are_caught_by_the_digest(cached, count_decodes):
    """The issue's case: train_labels.npy with a valid header and label 7 for 3 classes (it
    used to end in `IndexError: Target 7 is out of bounds` in the next `reslearn train`)."""
    load, entry, first = cached
    labels = np.load(entry / "train_labels.npy")
    labels[4] = 7
    np.save(entry / "train_labels.npy", labels)
    again = _reloaded(load, count_decodes, "train_labels.npy differs from the digest")
    assert np.array_equal(again.train.labels, first.train.labels)
    assert np.array_equal(again.train.images, first.train.images)
    calls = count_decodes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rebuilt entry is used, silently
        third = load()
    assert sum(calls) == 0 and np.array_equal(third.train.labels, first.train.labels)


def test_a_truncated_array_is_dropped_with_a_warning(cached, count_decodes):
    load, entry, first = cached
    images = entry / "test_images.npy"
    images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    again = _reloaded(load, count_decodes, "test_images.npy cannot be read")
    assert np.array_equal(again.test.images, first.test.images)


def _rewrite(entry, first, change):
    """Write the entry again, consistent with its digests but holding ``change``'s damage."""
    arrays = {
        "train_images": first.train.images, "train_labels": first.train.labels,
        "test_images": first.test.images, "test_labels": first.test.labels,
    }  # fmt: skip
    meta = {"source": "x", "skip_bad_images": False, "classes": ["a", "b", "c"], "skipped": []}
    arrays, meta = change(dict(arrays), meta)
    save_entry(entry, arrays, meta)


def _label(arrays, meta):
    arrays["train_labels"] = np.where(np.arange(9) == 4, 7, arrays["train_labels"])
    return arrays, meta


DAMAGE = {
    "label out of range": (_label, "train_labels.npy holds label 7 for 3 classes"),
    "labels int32": (
        lambda a, m: ({**a, "test_labels": a["test_labels"].astype(np.int32)}, m),
        "test_labels.npy is int32",
    ),
    "images float": (
        lambda a, m: ({**a, "train_images": a["train_images"].astype(np.float32)}, m),
        "train_images.npy is float32",
    ),
    "fewer labels than images": (
        lambda a, m: ({**a, "train_labels": a["train_labels"][:-1]}, m),
        "train_labels.npy is int64 (8,), not int64 (9,)",
    ),
    "other classes": (lambda a, m: (a, {**m, "classes": ["a", "c", "b"]}), "class list"),
    "a split missing": (
        lambda a, m: ({k: v for k, v in a.items() if not k.startswith("test")}, m),
        "no test images or labels",
    ),
    "splits of other sizes": (
        lambda a, m: ({**a, "test_images": a["test_images"][:, :8, :8]}, m),
        "images differ in shape",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_an_entry_that_does_not_fit_the_folder_is_rebuilt(cached, count_decodes, damage):
    load, entry, first = cached
    change, reason = DAMAGE[damage]
    _rewrite(entry, first, change)
    again = _reloaded(load, count_decodes, reason)
    for split in ("train", "test"):
        expected, got = getattr(first, split), getattr(again, split)
        assert np.array_equal(got.images, expected.images) and got.images.dtype == np.uint8
        assert np.array_equal(got.labels, expected.labels) and got.labels.dtype == np.int64


def test_a_read_only_cache_costs_a_warning_and_the_decode(
    tmp_path, monkeypatch, write_image_folder, count_decodes
):
    import errno
    import os
    import tempfile

    root = write_image_folder(tmp_path / "f", ["a", "b"], {"train": 2})
    real = tempfile.mkstemp

    def mkstemp(suffix=None, prefix=None, dir=None, text=False):
        if dir is not None and str(dir).startswith(str(tmp_path / "cache")):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), f"{dir}/{prefix}tmpk3x9q")
        return real(suffix, prefix, dir, text)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    for _ in range(2):  # nothing was cached: decoded, with the warning, both times
        calls = count_decodes()
        with pytest.warns(UserWarning, match="could not write the array cache") as caught:
            data = load_dataset(str(root), cache_dir=tmp_path / "cache", workers=0, progress=False)
        assert sum(calls) == 4 and data.train.labels.tolist() == [0, 0, 1, 1]
        (message,) = [str(w.message) for w in caught if "array cache" in str(w.message)]
        assert "read-only file system" in message and "tmpk3x9q" not in message
