"""Class names are folder names, and folder names are bytes: one that is not UTF-8, one that
matplotlib would read as a formula (``$\\evil$``) and one that looks like HTML train, draw,
report and evaluate like any other, and are shown readably everywhere."""

import json
import os

import pytest

from reslearn.cli import main
from reslearn.data.sources import list_image_folder
from reslearn.data.stream import read_rgb
from reslearn.text import display_name, plot_text

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)

UNDECODABLE = os.fsdecode(b"caf\xe9")  # "caf\udce9": b"\xe9" alone is not UTF-8
CLASSES = [UNDECODABLE, "$\\evil$", "<b>&amp;"]


def test_display_name_and_plot_text():
    assert display_name(UNDECODABLE) == "caf\\xe9"
    assert display_name("café $x$") == "café $x$"  # valid names are left alone
    assert display_name("\ud800") == "\\ud800"  # a surrogate that no file system gave
    assert plot_text("$\\evil$") == "\\$\\evil\\$"
    assert plot_text(UNDECODABLE + "$") == "caf\\xe9\\$"


@pytest.fixture
def odd_folder(tmp_path, write_image_folder):
    try:
        (tmp_path / UNDECODABLE).mkdir()
    except (OSError, UnicodeError):
        pytest.skip("this file system does not take names that are not UTF-8")
    return write_image_folder(tmp_path / "odd", CLASSES, {"train": 8, "test": 2})


def test_a_run_on_odd_class_names_finishes_with_its_report(odd_folder, tmp_path, capsys,
                                                           monkeypatch):  # fmt: skip
    monkeypatch.setenv("RESLEARN_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    argv = ["train", "--data", str(odd_folder), "--iterations", "2", "--batch-size", "8",
            "--precision", "fp32", "--out", str(run), "--quiet"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert (run / "confusion.png").stat().st_size > 0
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "<td>caf\\xe9</td>" in page and "<td>$\\evil$</td>" in page
    assert "<td>&lt;b&gt;&amp;amp;</td>" in page
    # the exact names are kept where they are data: config.json and the weights round-trip
    saved = json.loads((run / "config.json").read_text())
    assert sorted(saved["data"]["classes"]) == sorted(CLASSES)

    assert main(["eval", str(run), "--device", "cpu", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert "caf\\xe9" in out and "$\\evil$" in out and "<b>&amp;" in out
    image = odd_folder / "test" / UNDECODABLE / "000.png"
    assert main(["predict", str(run), str(image), "--device", "cpu", "--topk", "3"]) == 0
    assert "caf\\xe9" in capsys.readouterr().out
    cams = tmp_path / "cams"
    argv = ["cam", str(run), str(image), "-o", str(cams), "--class", "caf\\xe9"]
    assert main(argv) == 0
    (record,) = json.loads((cams / "predictions.json").read_text())["images"]
    assert record["maps"][0]["class"] == UNDECODABLE
    assert main(["report", str(run)]) == 0


def test_the_streaming_loader_reads_undecodable_paths(odd_folder):
    listing = list_image_folder(odd_folder)
    assert listing.classes == sorted(CLASSES)
    files, _ = listing.splits["train"]
    odd = [f for f in files if UNDECODABLE in f]
    assert read_rgb(odd[0]).shape == (3, 16, 16)
