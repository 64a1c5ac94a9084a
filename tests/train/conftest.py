"""Tiny generated image folders for training tests."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def make_image_folder(root: Path, *, classes=3, train=32, test=8, size=16, seed=0) -> Path:
    """train/ and test/ with ``classes`` folders of PNGs whose colour depends on the class."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("test", test)):
        for label in range(classes):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = rng.integers(0, 120, (size, size, 3), dtype=np.uint8)
                pixels[..., label % 3] += 100
                Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    """A 3-class, 96 + 24 image, 16x16 RGB data set (shared by the tests of a session)."""
    return make_image_folder(tmp_path_factory.mktemp("data") / "tiny")
