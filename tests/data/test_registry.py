"""The data-format registry: each format recognised from its files alone, the named sets as
--data spells them, and every entry's help line in ``reslearn train --help``."""

import pytest

from reslearn.cli import build_parser
from reslearn.data.registry import ALIASES, FORMATS, LAYOUTS, detect_format


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")
    return folder


@pytest.mark.parametrize(
    "files,expected",
    [
        (["batches.meta", "data_batch_1"], "cifar10"),
        (["meta", "train", "test"], "cifar100"),
        (["train-images-idx3-ubyte.gz"], "idx"),
        (["train-images-idx3-ubyte"], "idx"),
        ([], None),
        (["meta"], None),  # CIFAR-100 needs its train file too
    ],
)
def test_a_format_is_recognised_from_its_files(tmp_path, files, expected) -> None:
    found = detect_format(_touch(tmp_path / "d", *files))
    assert (found.name if found else None) == expected


def test_an_image_folder_is_one_with_a_train_folder(tmp_path) -> None:
    (tmp_path / "d" / "train" / "cat").mkdir(parents=True)
    assert detect_format(tmp_path / "d").name == "folder"
    assert [f.name for f in FORMATS if f.streams] == ["folder"]  # what the stream loader reads


def test_named_sets_as_data_spells_them() -> None:
    assert ALIASES == {
        "cifar10": "cifar10", "cifar-10": "cifar10", "cifar100": "cifar100",
        "cifar-100": "cifar100", "fashion-mnist": "fashion-mnist",
        "fashionmnist": "fashion-mnist",
    }  # fmt: skip


def test_every_format_is_in_the_errors_and_the_help() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if hasattr(a, "choices") and a.choices]
    help_text = commands.choices["train"].format_help()
    for data_format in FORMATS:
        assert data_format.layout in LAYOUTS
        if data_format.help:
            what, says = data_format.help
            assert any(line.split() == [*what.split(), *says.split()]
                       for line in help_text.splitlines()), data_format.name  # fmt: skip
    assert "cifar10 | cifar100 | fashion-mnist" in help_text
