"""Tiny data and tiny budgets for the experiment machinery: seconds per experiment."""

from pathlib import Path

import pytest

from reslearn.experiments import ExperimentSettings


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, write_image_folder) -> Path:
    """A 3-class 16x16 image folder: 32 training and 8 test images per class."""
    root = tmp_path_factory.mktemp("experiment-data") / "tiny"
    return write_image_folder(root, ["a", "b", "c"], {"train": 32, "test": 8})


@pytest.fixture
def settings(tiny_data, tmp_path_factory):
    """Settings for a few iterations at batch 16 on the tiny data (overridable by keyword)."""
    cache = tmp_path_factory.getbasetemp() / "experiment-cache"

    def make(**overrides) -> ExperimentSettings:
        values = dict(data=str(tiny_data), iterations=4, batch_size=16, cache_dir=str(cache))
        values.update(overrides)
        return ExperimentSettings(**values)

    return make
