"""load_dataset on tiny generated datasets: every format, the array cache, and every error."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import subprocess
import time
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reslearn.data import BadImageError, default_cache_dir, load_dataset, locate, sources

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)

RNG = np.random.default_rng(0)


def _pickle(path: Path, entry: dict) -> None:
    # the official files were written by Python 2's NumPy, which lived in numpy.core
    blob = pickle.dumps(entry, protocol=2)
    path.write_bytes(blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))


def _cifar10(folder: Path, per_batch: int = 3) -> np.ndarray:
    """A fake cifar-10-batches-py; returns the train rows (N, 3072) in file order."""
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer"]
    names += [b"dog", b"frog", b"horse", b"ship", b"truck"]
    _pickle(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072})
    rows = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(x) for x in RNG.integers(0, 10, per_batch)]
        _pickle(folder / name, {b"data": data, b"labels": labels, b"batch_label": b"x"})
        rows.append(data)
    return np.concatenate(rows[:5])


def _idx(path: Path, array: np.ndarray, magic: int | None = None) -> None:
    header = (magic or 0x0800 + array.ndim).to_bytes(4, "big")
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)


def _fashion(folder: Path, suffix: str = "", n: int = 4) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    _idx(folder / f"train-images-idx3-ubyte{suffix}", images)
    _idx(folder / f"train-labels-idx1-ubyte{suffix}", np.arange(n) % 10)
    _idx(folder / f"t10k-images-idx3-ubyte{suffix}", images[:2])
    _idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.array([9, 0]))
    return images


def _image(path: Path, mode: str = "RGB", size: tuple[int, int] = (8, 8), **save) -> Image.Image:
    """A noise image of ``mode`` and (width, height) ``size`` saved at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = RNG.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(pixels).convert(mode)
    img.save(path, **save)
    return img


def _folder(root: Path, classes=("cat", "dog"), per_class: int = 3, test: str | None = "test"):
    for split in ("train", test) if test else ("train",):
        for name in classes:
            for i in range(per_class):
                _image(root / split / name / f"{i}.png")
    return root


def _load(spec, tmp_path: Path, **options):
    options = {"cache_dir": tmp_path / "cache", "progress": False, "workers": 0, **options}
    return load_dataset(str(spec), **options)


# --- official formats ------------------------------------------------------------------------


def test_cifar10_rows_are_channel_major(tmp_path: Path) -> None:
    rows = _cifar10(tmp_path / "dl" / "cifar-10-batches-py")
    data = _load(tmp_path / "dl", tmp_path)  # a folder holding the folder works too
    assert data.name == "cifar10" and data.source == str(tmp_path / "dl" / "cifar-10-batches-py")
    images = data.train.images
    assert images.shape == (15, 32, 32, 3) and images.dtype == np.uint8
    assert images.flags["C_CONTIGUOUS"] and data.train.labels.dtype == np.int64
    # pixel (row 1, column 2) of image 0: red at 1 * 32 + 2, green 1024 later, blue 2048 later
    assert tuple(images[0, 1, 2]) == (rows[0, 34], rows[0, 1024 + 34], rows[0, 2048 + 34])
    assert np.array_equal(images, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert data.test.images.shape == (3, 32, 32, 3) and data.skipped == []
    assert data.train.classes == data.test.classes and data.train.classes[9] == "truck"


def test_cifar100_uses_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    fine = [f"class{i}".encode() for i in range(100)]
    _pickle(folder / "meta", {b"fine_label_names": fine, b"coarse_label_names": [b"a"] * 20})
    for split, n in (("train", 5), ("test", 2)):
        data = RNG.integers(0, 256, (n, 3072), dtype=np.uint8)
        entry = {b"data": data, b"fine_labels": [99] * n, b"coarse_labels": [0] * n}
        _pickle(folder / split, entry)
    data = _load(folder, tmp_path)
    assert data.name == "cifar100" and len(data.train.classes) == 100
    assert data.train.labels.tolist() == [99] * 5 and data.test.images.shape == (2, 32, 32, 3)


def test_cifar_pickle_cannot_run_code_and_missing_batches_are_named(tmp_path: Path) -> None:
    _cifar10(tmp_path / "cifar-10-batches-py")
    evil = pickle.dumps({b"data": os.getpid}, protocol=2)  # any global outside NumPy's arrays
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(evil)
    with pytest.raises(ValueError, match=r"data_batch_3.*refusing to load \w+\.getpid"):
        _load(tmp_path, tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"CIFAR file '.*data_batch_3' is missing"):
        _load(tmp_path, tmp_path)


def test_cifar_image_size_resizes(tmp_path: Path) -> None:
    _cifar10(tmp_path / "cifar-10-batches-py", per_batch=1)
    data = _load(tmp_path, tmp_path, image_size=16)
    assert data.train.images.shape == (5, 16, 16, 3) and data.test.images.shape == (1, 16, 16, 3)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_fashion_mnist_idx(tmp_path: Path, suffix: str) -> None:
    images = _fashion(tmp_path / "fm", suffix)
    data = _load(tmp_path / "fm", tmp_path)
    assert data.name == "fashion-mnist" and data.train.images.shape == (4, 28, 28, 1)
    assert np.array_equal(data.train.images[..., 0], images)
    assert data.train.labels.tolist() == [0, 1, 2, 3] and data.test.labels.tolist() == [9, 0]
    assert data.train.classes[0] == "T-shirt/top" and data.test.classes[9] == "Ankle boot"


def test_idx_wrong_magic_and_truncation_name_the_file(tmp_path: Path) -> None:
    _fashion(tmp_path / "fm")
    bad = tmp_path / "fm" / "t10k-labels-idx1-ubyte"
    _idx(bad, np.array([1, 2]), magic=0x0803)
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte' is not an IDX file.*0x00000801"):
        _load(tmp_path / "fm", tmp_path)
    _idx(bad, np.array([1, 2]))
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte' holds 1 values.*truncated"):
        _load(tmp_path / "fm", tmp_path)
    bad.unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks t10k-labels-idx1-ubyte"):
        _load(tmp_path / "fm", tmp_path)


# --- image folders ---------------------------------------------------------------------------


def test_mixed_modes_become_rgb(tmp_path: Path) -> None:
    root = tmp_path / "mixed"
    _image(root / "train" / "a" / "rgb.png", "RGB", (8, 8))
    _image(root / "train" / "a" / "cmyk.jpg", "CMYK", (10, 12))
    _image(root / "train" / "a" / "grey.png", "L", (8, 8))
    _image(root / "train" / "b" / "palette.png", "P", (16, 8))
    _image(root / "train" / "b" / "grey_alpha.png", "LA", (8, 8))
    clear = Image.new("RGBA", (8, 8), (10, 20, 30, 0))  # fully transparent: white after compositing
    clear.save(root / "train" / "b" / "clear.png")
    data = _load(root, tmp_path, image_size=8)
    assert data.test is None and data.name == "mixed" and data.train.classes == ["a", "b"]
    assert (
        data.train.images.shape == (6, 8, 8, 3) and data.train.labels.tolist() == [0] * 3 + [1] * 3
    )
    files = ["cmyk", "grey", "rgb", "clear", "grey_alpha", "palette"]  # sorted per class
    grey = data.train.images[files.index("grey")]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all()
    assert (data.train.images[files.index("clear")] == 255).all()
    rgb = np.asarray(Image.open(root / "train" / "a" / "rgb.png"))
    assert np.array_equal(data.train.images[files.index("rgb")], rgb)  # same size: untouched


def test_grey_modes_stay_one_channel(tmp_path: Path) -> None:
    root = tmp_path / "grey"
    _image(root / "train" / "a" / "l.png", "L")
    _image(root / "train" / "a" / "one.png", "1")
    _image(root / "train" / "b" / "la.png", "LA")
    Image.fromarray(np.full((8, 8), 65535, np.uint16)).save(root / "train" / "b" / "deep.png")
    _image(root / "val" / "a" / "x.png", "L")
    _image(root / "val" / "b" / "y.png", "L")
    data = _load(root, tmp_path)
    assert data.train.images.shape == (4, 8, 8, 1) and data.test.images.shape == (2, 8, 8, 1)
    assert (data.train.images[2] == 255).all()  # 16-bit white stays white (deep.png sorts first)


def test_same_sizes_are_kept_and_different_sizes_warn(tmp_path: Path, count_decodes) -> None:
    root = tmp_path / "sized"
    _image(root / "train" / "a" / "0.png", size=(12, 10))
    _image(root / "train" / "b" / "0.png", size=(12, 10))
    assert _load(root, tmp_path).train.images.shape == (2, 10, 12, 3)  # (H, W) kept
    _image(root / "test" / "a" / "0.png", size=(20, 20))
    _image(root / "test" / "b" / "0.png", size=(12, 10))
    calls = count_decodes()
    for _ in range(2):  # decoded, then from the cache: the warning comes both times
        with pytest.warns(
            UserWarning, match=r"sizes \(e.g. 10x12 and 20x20\); making every image 6x6"
        ):
            data = _load(root, tmp_path, fallback_size=6)
        assert data.train.images.shape == (2, 6, 6, 3) and data.test.images.shape == (2, 6, 6, 3)
    assert 0 < sum(calls) <= 8


def test_a_request_for_the_native_size_reuses_it(tmp_path: Path, count_decodes) -> None:
    root = _folder(tmp_path / "f")  # 8x8 images
    calls = count_decodes()
    native = _load(root, tmp_path)
    assert sum(calls) == 12
    assert np.array_equal(_load(root, tmp_path, image_size=8).train.images, native.train.images)
    assert sum(calls) == 12
    assert _load(root, tmp_path, image_size=4).train.images.shape == (6, 4, 4, 3)
    assert _load(root, tmp_path, image_size=4).train.images.shape == (6, 4, 4, 3)
    assert sum(calls) == 24
    (entry,) = (tmp_path / "cache" / "arrays").iterdir()
    assert sorted(p.name for p in entry.iterdir()) == ["4px", "native"]


def test_resize_shorter_side_then_centre_crop(tmp_path: Path) -> None:
    pixels = np.zeros((8, 16), np.uint8)
    pixels[:, 8:] = 255  # left half black, right half white
    for name in ("a", "b"):  # a data set needs two classes
        (tmp_path / "r" / "train" / name).mkdir(parents=True)
        Image.fromarray(pixels).save(tmp_path / "r" / "train" / name / "0.png")
    image = _load(tmp_path / "r", tmp_path, image_size=4).train.images[0, ..., 0]
    # 16x8 -> 8x4, keep the middle 4 columns: two black, two white
    assert image.shape == (4, 4)
    assert (image[:, 0] == 0).all() and (image[:, 3] == 255).all()


def test_parallel_decode_matches_in_process(tmp_path: Path) -> None:
    root = _folder(tmp_path / "many", per_class=70, test=None)
    serial = _load(root, tmp_path / "a", workers=0)
    parallel = _load(root, tmp_path / "b", workers=2)
    assert np.array_equal(serial.train.images, parallel.train.images)
    assert np.array_equal(serial.train.labels, parallel.train.labels)
    (root / "train" / "dog" / "50.png").write_bytes(b"")
    with pytest.raises(BadImageError, match=r"dog/50.png"):
        _load(root, tmp_path / "c", workers=2)


# --- the array cache -------------------------------------------------------------------------




def test_second_load_comes_from_the_cache(tmp_path: Path, monkeypatch, count_decodes) -> None:
    root = _folder(tmp_path / "thousand", classes=("a", "b", "c", "d"), per_class=200)
    calls = count_decodes()
    first = _load(root, tmp_path)
    assert sum(calls) == 1600
    entries = []
    real_load_entry = sources.load_entry

    def recording(folder):
        found = real_load_entry(folder)
        entries.append(found is not None)
        return found

    monkeypatch.setattr(sources, "load_entry", recording)
    second = _load(root, tmp_path)
    assert sum(calls) == 1600  # nothing decoded again
    assert entries and entries[0]  # the arrays came from the cache entry
    assert np.array_equal(first.train.images, second.train.images)
    assert np.array_equal(first.test.labels, second.test.labels)
    (entry,) = (tmp_path / "cache" / "arrays").iterdir()
    assert entry.name.startswith("thousand-") and (entry / "native" / "meta.json").is_file()
    assert not [p for p in entry.rglob("*") if p.name.endswith(".tmp")]


def test_any_change_to_the_folder_invalidates_the_cache(tmp_path: Path, count_decodes) -> None:
    root = _folder(tmp_path / "f")
    target = root / "train" / "cat" / "0.png"
    calls = count_decodes()
    changes = [
        lambda: None,
        lambda: os.utime(target, ns=(0, target.stat().st_mtime_ns + 1000)),  # touched
        lambda: _image(root / "train" / "cat" / "new.png"),  # added
        lambda: (root / "test" / "dog" / "2.png").unlink(),  # removed
        lambda: None,  # no change: from the cache
    ]
    decoded = []
    for change in changes:
        change()
        calls.clear()
        data = _load(root, tmp_path)
        decoded.append(sum(calls))
    assert decoded == [12, 12, 13, 12, 0]
    assert len(data.train.labels) == 7 and len(data.test.labels) == 5
    assert len(list((tmp_path / "cache" / "arrays").iterdir())) == 1  # stale entries are gone


def test_a_damaged_cache_entry_is_rebuilt(tmp_path: Path, count_decodes) -> None:
    root = _folder(tmp_path / "f")
    first = _load(root, tmp_path)
    (entry,) = (tmp_path / "cache" / "arrays").iterdir()
    (entry / "native" / "train_images.npy").write_bytes(b"\x93NUMPY broken")
    calls = count_decodes()
    with pytest.warns(UserWarning, match="train_images.npy cannot be read.*decoded again"):
        second = _load(root, tmp_path)
    assert calls and np.array_equal(first.train.images, second.train.images)


def test_default_cache_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESLEARN_CACHE", str(tmp_path / "r"))
    assert default_cache_dir() == tmp_path / "r"
    monkeypatch.delenv("RESLEARN_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x" / "reslearn"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "reslearn"


# --- errors ----------------------------------------------------------------------------------


def _truncated_jpeg(path: Path) -> None:
    _image(path, size=(64, 64), format="JPEG")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    "name,write",
    [
        ("empty.png", lambda p: p.write_bytes(b"")),
        ("cut.jpg", _truncated_jpeg),
        ("text.jpg", lambda p: p.write_text("not an image")),
        ("notes.txt", lambda p: p.write_text("taken on a sunny day")),
    ],
)
def test_bad_files_are_named(tmp_path: Path, name: str, write) -> None:
    root = _folder(tmp_path / "f")
    write(root / "train" / "dog" / name)
    with pytest.raises(BadImageError, match=rf"'.*dog/{name}'.*--skip-bad-images to skip"):
        _load(root, tmp_path)


def test_skip_bad_images(tmp_path: Path) -> None:
    root = _folder(tmp_path / "f")
    (root / "train" / "cat" / "0b.png").write_bytes(b"")
    _truncated_jpeg(root / "test" / "dog" / "0.jpg")
    (root / "train" / "dog" / ".DS_Store").write_bytes(b"\0junk")  # hidden: never a candidate
    for _ in range(2):  # decoded, then from the cache
        with pytest.warns(UserWarning, match=r"skipped 2 unreadable image file\(s\)"):
            data = _load(root, tmp_path, skip_bad_images=True)
        assert [Path(p).name for p in data.skipped] == ["0b.png", "0.jpg"]
        assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
        assert data.test.labels.tolist() == [0, 0, 0, 1, 1, 1]
        assert data.train.images.shape == (6, 8, 8, 3)


def test_a_class_of_only_bad_files(tmp_path: Path) -> None:
    root = _folder(tmp_path / "f", test=None)
    for path in (root / "train" / "dog").iterdir():
        path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"'.*f/train' has no readable images for class 'dog'"):
        _load(root, tmp_path, skip_bad_images=True)


def test_folder_errors_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"dataset '.*nowhere' not found"):
        _load(tmp_path / "nowhere", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"data folder '.*empty' is empty"):
        _load(tmp_path / "empty", tmp_path)
    _image(tmp_path / "flat" / "cat" / "0.png")
    _image(tmp_path / "flat" / "dog" / "0.png")
    with pytest.raises(ValueError, match=r"'.*flat' has no train/ folder; expected .*CIFAR-10"):
        _load(tmp_path / "flat", tmp_path)
    root = _folder(tmp_path / "f")
    with pytest.raises(ValueError, match=r"looks like a split: pass its parent"):
        _load(root / "train", tmp_path)
    (root / "train" / "eel").mkdir()
    with pytest.raises(ValueError, match=r"'.*f/train' has no images for class 'eel'"):
        _load(root, tmp_path)
    (root / "train" / "eel").rmdir()
    shutil.rmtree(root / "test" / "cat")
    _image(root / "test" / "cow" / "0.png")
    with pytest.raises(
        ValueError, match=r"classes of '.*test' differ.*missing cat; not in train: cow"
    ):
        _load(root, tmp_path)


@pytest.mark.parametrize("loader", ["memory", "stream"])
def test_one_class_is_refused_by_both_loaders(tmp_path: Path, capsys, loader) -> None:
    """A one-class folder used to train to "test error 0.0" without a word."""
    from reslearn.cli import main

    root = _folder(tmp_path / "one", classes=("only",))
    message = r"'.*one/train' has one class folder \('only'\); a classifier needs at least 2"
    with pytest.raises(ValueError, match=message):
        if loader == "memory":
            _load(root, tmp_path)
        else:
            sources.list_image_folder(root)
    argv = ["train", "--data", str(root), "--loader", loader, "--iterations", "1",
            "--batch-size", "1", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    assert "has one class folder ('only'); a classifier needs at least 2 classes" in err
    assert not (tmp_path / "run").exists()


def test_bad_options_and_files(tmp_path: Path) -> None:
    root = _folder(tmp_path / "f")
    with pytest.raises(ValueError, match=r"image_size must be a positive integer; got 0"):
        _load(root, tmp_path, image_size=0)
    with pytest.raises(ValueError, match=r"workers must be an integer >= 0"):
        _load(root, tmp_path, workers=-1)
    (tmp_path / "data.tar.gz").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"is a file \(an archive: extract it first\)"):
        _load(tmp_path / "data.tar.gz", tmp_path)


# --- named datasets --------------------------------------------------------------------------


def test_names_resolve_in_the_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(locate, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system-copy")
    cache = tmp_path / "cache"
    _cifar10(cache / "datasets" / "cifar-10-batches-py", per_batch=1)
    _fashion(cache / "datasets" / "FashionMNIST" / "raw", ".gz")
    assert _load("CIFAR10", tmp_path).name == "cifar10"
    assert _load("fashion_mnist", tmp_path).train.images.shape == (4, 28, 28, 1)


def _offline(monkeypatch: pytest.MonkeyPatch, name: str, error: Exception) -> list[int]:
    """The torchvision download fails with ``error``; returns a list that counts the tries."""
    from torchvision import datasets

    attempts: list[int] = []

    def fail(**kwargs):
        assert Path(kwargs["root"]).name == "datasets" and kwargs["download"]
        attempts.append(1)
        raise error

    monkeypatch.setattr(datasets, name, fail)
    return attempts


def test_named_cifar_offline_says_what_to_download(tmp_path: Path, monkeypatch) -> None:
    attempts = _offline(monkeypatch, "CIFAR10", urllib.error.URLError("Name or service not known"))
    waits = []
    monkeypatch.setattr(time, "sleep", waits.append)
    with pytest.raises(FileNotFoundError) as info:
        _load("cifar10", tmp_path)
    assert attempts == [1] and waits == []  # one try, no waiting and retrying
    message, root = str(info.value), tmp_path / "cache" / "datasets"
    assert "\n" not in message and "URLError" in message
    assert "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert f"extract it into {root}" in message and f"{root / 'cifar-10-batches-py'}" in message


def test_named_fashion_mnist_offline_mentions_apt(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(locate, "FASHION_MNIST_SYSTEM_DIR", tmp_path / "no-system-copy")
    _offline(monkeypatch, "FashionMNIST", RuntimeError("Error downloading\nTried a mirror"))
    with pytest.raises(FileNotFoundError) as info:
        _load("FashionMNIST", tmp_path)
    message = str(info.value)
    assert "\n" not in message and "sudo apt-get install dataset-fashion-mnist" in message
    assert "train-images-idx3-ubyte.gz" in message
    assert str(tmp_path / "cache" / "datasets" / "fashion-mnist") in message


# --- the real thing --------------------------------------------------------------------------


def _shared_data() -> Path:
    env = os.environ.get("RESLEARN_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.mark.subprocess
@pytest.mark.slow
def test_cifar10_jpeg_folder(tmp_path: Path) -> None:
    archive = _shared_data() / "cifar10-jpeg.tar.xz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found (set RESLEARN_SHARED_DATA to the folder holding it)")
    subprocess.run(["tar", "-xJf", str(archive), "-C", str(tmp_path)], check=True)
    start = time.perf_counter()
    data = load_dataset(str(tmp_path / "cifar10-jpeg"), cache_dir=tmp_path / "cache")
    decoded = time.perf_counter() - start
    start = time.perf_counter()
    again = load_dataset(str(tmp_path / "cifar10-jpeg"), cache_dir=tmp_path / "cache")
    cached = time.perf_counter() - start
    print(f"decoded 60,000 JPEGs in {decoded:.1f} s; cached reload {cached:.2f} s")
    assert data.train.images.shape == (50000, 32, 32, 3)
    assert data.test.images.shape == (10000, 32, 32, 3)
    assert data.train.classes[0] == "airplane" and data.train.classes[-1] == "truck"
    assert np.bincount(data.train.labels).tolist() == [5000] * 10
    assert np.bincount(data.test.labels).tolist() == [1000] * 10
    assert np.array_equal(again.train.images, data.train.images)
    assert data.train.images.mean() > 50  # real pixels, not a grey fill from a failed decode
