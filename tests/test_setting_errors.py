"""Library errors about a setting name the setting as Python spells it (``topk``); the command
line writes the same error with its flag (``--topk``)."""

import numpy as np
import pytest
import torch

from reslearn.data.normalize import Normalizer
from reslearn.data.sources import list_image_folder
from reslearn.device import resolve_device
from reslearn.errors import SettingError, for_the_command_line
from reslearn.predict import classify


def _cifar_folder(tmp_path):
    (tmp_path / "batches.meta").write_bytes(b"")  # what marks a CIFAR-10 folder
    return tmp_path


LOADER = (
    "'{folder}' is a cifar10 folder, not an image folder; the streaming loader reads image "
    "folders, train/ with a folder per class (set {flag} to memory for this data)"
)
# (the call, the library's message, the command line's), written out by hand
CASES = {
    "topk": (
        lambda tmp: classify(None, np.zeros((1, 8, 8, 3), np.uint8), topk=0),
        "topk must be an integer >= 1; got 0",
        "--topk must be an integer >= 1; got 0",
    ),
    "normalization": (
        lambda tmp: Normalizer.fit(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "imagenet"),
        "normalization imagenet needs RGB images; these have 1 channel(s)",
        "--normalization imagenet needs RGB images; these have 1 channel(s)",
    ),
    "loader": (
        lambda tmp: list_image_folder(_cifar_folder(tmp)),
        LOADER.format(folder="{tmp}", flag="loader"),
        LOADER.format(folder="{tmp}", flag="--loader"),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_the_library_names_the_field_and_the_cli_the_flag(case, tmp_path) -> None:
    call, library, command_line = CASES[case]
    with pytest.raises(SettingError) as raised:
        call(tmp_path)
    assert str(raised.value) == library.replace("{tmp}", str(tmp_path))
    assert for_the_command_line(raised.value) == command_line.replace("{tmp}", str(tmp_path))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_names_the_device_setting() -> None:
    with pytest.raises(SettingError, match="^device cuda was asked for") as raised:
        resolve_device("cuda")
    assert for_the_command_line(raised.value).startswith("--device cuda was asked for")
