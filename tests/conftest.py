"""Shared test settings and data: deterministic seeds keep the suite repeatable on a 2-core
machine; ``write_image_folder`` makes the small image folders that several tests train on."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="session")
def _own_cache(tmp_path_factory):
    """The suite's own reslearn cache (decoded arrays, precision decisions), never the user's;
    subprocesses inherit it. A test may still point RESLEARN_CACHE elsewhere."""
    previous = os.environ.get("RESLEARN_CACHE")
    os.environ["RESLEARN_CACHE"] = str(tmp_path_factory.mktemp("reslearn-cache"))
    yield
    if previous is None:
        os.environ.pop("RESLEARN_CACHE", None)
    else:
        os.environ["RESLEARN_CACHE"] = previous


def _write_folder(root: Path, classes: list[str], counts: dict[str, int], seed: int, draw) -> Path:
    """``root/<split>/<class>/<file>`` for each split in ``counts``; ``draw(rng, label, i, folder)``
    writes one image whose colour depends on its class (noise plus 100 in channel
    ``label % 3``), so a network can learn them."""
    rng = np.random.default_rng(seed)
    for split, count in counts.items():
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                draw(rng, label, i, folder)
    return root


def _class_noise(rng, label: int, height: int, width: int) -> np.ndarray:
    pixels = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
    pixels[..., label % 3] += 100
    return pixels


def _write_image_folder(
    root: Path, classes: list[str], counts: dict[str, int], *, size: int = 16, seed: int = 0
) -> Path:
    """Square ``NNN.png`` images of ``size`` pixels (see ``_write_folder``)."""

    def draw(rng, label, i, folder):
        Image.fromarray(_class_noise(rng, label, size, size)).save(folder / f"{i:03d}.png")

    return _write_folder(root, classes, counts, seed, draw)


@pytest.fixture(scope="session")
def write_image_folder():
    """The image-folder writer: ``write_image_folder(root, classes, {"train": n, ...})``."""
    return _write_image_folder


def _write_photo_folder(
    root: Path, classes: list[str], counts: dict[str, int], *, seed: int = 0
) -> Path:
    """``NNN.JPEG`` photos in ImageNet's layout: random sizes between 200 and 500 pixels a side,
    smooth class-coloured noise (see ``_write_folder``)."""

    def draw(rng, label, i, folder):
        height, width = rng.integers(200, 501, 2)
        coarse = Image.fromarray(_class_noise(rng, label, height // 8, width // 8))
        image = coarse.resize((width, height), Image.Resampling.BILINEAR)
        image.save(folder / f"{i:03d}.JPEG", quality=90)

    return _write_folder(root, classes, counts, seed, draw)


@pytest.fixture(scope="session")
def photo_folder(tmp_path_factory) -> Path:
    """A small ImageNet-style folder: 3 classes, 12 training and 4 validation JPEGs each."""
    root = tmp_path_factory.mktemp("photos")
    return _write_photo_folder(root, ["n01", "n02", "n03"], {"train": 12, "val": 4})


@pytest.fixture(scope="session")
def write_photo_folder():
    """The JPEG folder writer: ``write_photo_folder(root, classes, {"train": n, ...})``."""
    return _write_photo_folder


@pytest.fixture(scope="session")
def cifar10_jpeg(tmp_path_factory) -> Path:
    """The shared CIFAR-10 JPEG copy, extracted once per session (slow tests only)."""
    import subprocess

    env = os.environ.get("RESLEARN_SHARED_DATA")
    shared = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    archive = shared / "cifar10-jpeg.tar.xz"
    if not archive.is_file():
        pytest.skip(f"{archive} not found (set RESLEARN_SHARED_DATA to the folder holding it)")
    root = tmp_path_factory.mktemp("cifar10")
    subprocess.run(["tar", "-xJf", str(archive), "-C", str(root)], check=True)
    return root / "cifar10-jpeg"


@pytest.fixture
def chromium():
    """A headless Chromium driven by selenium, with the browser console recorded; skips with
    the reason when it is not installed (.ci/run installs Debian's chromium and
    chromium-driver)."""
    import shutil

    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip(
            "headless Chromium is not installed (Debian packages chromium and chromium-driver; "
            ".ci/run installs them)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1800"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(driver), options=options)
    yield session
    session.quit()
