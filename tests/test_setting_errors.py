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


CASES = {
    "topk": (lambda tmp: classify(None, np.zeros((1, 8, 8, 3), np.uint8), topk=0), "topk"),
    "normalization": (
        lambda tmp: Normalizer.fit(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "imagenet"),
        "normalization",
    ),
    "loader": (lambda tmp: list_image_folder(_cifar_folder(tmp)), "loader"),
}


@pytest.mark.parametrize("case", CASES)
def test_the_library_names_the_field_and_the_cli_the_flag(case, tmp_path) -> None:
    call, field = CASES[case]
    with pytest.raises(SettingError) as raised:
        call(tmp_path)
    message, flags = str(raised.value), for_the_command_line(raised.value)
    assert field in message and "--" not in message
    assert f"<{field}>" in raised.value.template
    assert flags == " ".join(raised.value.template.replace(f"<{field}>", f"--{field}").split())


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_names_the_device_setting() -> None:
    with pytest.raises(SettingError, match="^device cuda was asked for") as raised:
        resolve_device("cuda")
    assert for_the_command_line(raised.value).startswith("--device cuda was asked for")
