"""Tiny generated image folders for training tests."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory, write_image_folder) -> Path:
    """A 3-class, 96 + 24 image, 16x16 RGB data set (shared by the tests of a session)."""
    root = tmp_path_factory.mktemp("data") / "tiny"
    classes = [f"class{label}" for label in range(3)]
    return write_image_folder(root, classes, {"train": 32, "test": 8})
