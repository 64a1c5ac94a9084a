"""The notebooks in docs/notebooks run top to bottom (on tiny data, through a real kernel) and
are stored with their outputs, so that they read on GitHub without running."""

import importlib.util
from pathlib import Path

import pytest

from reslearn.hub.akamaster import CIFAR10_CLASSES

NOTEBOOKS = Path(__file__).resolve().parents[1] / "docs" / "notebooks"
BOOKS = ["residual-learning.ipynb", "your-own-images.ipynb"]


def _runner():
    """docs/notebooks/run.py, the script that executes a notebook with parameters."""
    spec = importlib.util.spec_from_file_location("notebook_runner", NOTEBOOKS / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outputs(book) -> str:
    """Every text output of the executed notebook, joined."""
    texts = []
    for cell in book.cells:
        for output in cell.get("outputs", []):
            texts.append(output.get("text", "") or output.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


@pytest.mark.parametrize("name", BOOKS)
def test_each_notebook_is_stored_with_its_outputs(name):
    nbformat = pytest.importorskip("nbformat")
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "a cell was never run"
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    pictures = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(pictures) >= 3
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1


def test_setting_parses_literals_and_plain_strings():
    runner = _runner()
    assert runner.parse_setting("SAMPLE=20") == ("SAMPLE", 20)
    assert runner.parse_setting("DATA=../data/x") == ("DATA", "../data/x")
    assert runner.parse_setting("OUT=None") == ("OUT", None)
    with pytest.raises(ValueError, match="NAME=VALUE"):
        runner.parse_setting("no-equals")


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_residual_learning_notebook_runs_on_tiny_data(tmp_path, write_image_folder):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    data = write_image_folder(tmp_path / "tiny-cifar", CIFAR10_CLASSES, {"train": 4, "test": 3},
                              size=32)  # fmt: skip
    parameters = dict(
        DATA=str(data), SAMPLE=20, DEPTH=20, ITERATIONS=4, BATCH_SIZE=8, PRECISION="fp32",
        CACHE_DIR=str(tmp_path / "cache"),
    )  # fmt: skip
    out = _runner().execute(
        NOTEBOOKS / BOOKS[0], parameters, out=tmp_path / "run.ipynb", timeout=600
    )
    text = _outputs(nbformat.read(out, as_version=4))
    assert "resnet20: 20 test images" in text
    assert "pool=flatten: classifier 40,970 weights; refuses a 40x40 image" in text
    assert "plain20: training error" in text and "resnet20: training error" in text
    starts = ("logit", "mean")
    lines = dict(line.split(":", 1) for line in text.splitlines() if line.startswith(starts))
    assert lines["logit of the top class"].strip() == lines["mean of its CAM + bias"].strip()


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_own_images_notebook_trains_evaluates_and_exports(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    pytest.importorskip("onnxruntime")
    parameters = dict(ITERATIONS=6, PRECISION="fp32", OUT=str(tmp_path / "run"))
    out = _runner().execute(
        NOTEBOOKS / BOOKS[1], parameters, out=tmp_path / "run.ipynb", timeout=600
    )
    text = _outputs(nbformat.read(out, as_version=4))
    assert "60 test images: top-1 error" in text
    assert "model.onnx:" in text and "ONNX Runtime says:" in text
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert (tmp_path / "run" / "report.html").is_file()


def _tiny_notebook(path, *cells):
    """A notebook of code cells, the first tagged ``parameters``."""
    nbformat = pytest.importorskip("nbformat")
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    book.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(book, path)
    return path


def _run_main(capsys, *argv):
    code = _runner().main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) <= 1 and "Traceback" not in err, err
    return code, err


def test_a_parameter_the_notebook_has_not_is_refused_with_the_ones_it_has(tmp_path, capsys):
    pytest.importorskip("nbclient")
    book = _tiny_notebook(tmp_path / "book.ipynb", "DATA = 'x'\nSAMPLE: int = 20", "print(DATA)")
    before = book.read_bytes()
    code, err = _run_main(capsys, book, "--set", "NOSUCH=5", "--set", "SAMPLE=3")
    assert code == 2 and "no parameter NOSUCH" in err and "its parameters: DATA, SAMPLE" in err
    assert book.read_bytes() == before  # refused before a cell ran or anything was written


@pytest.mark.parametrize("text", ['{"a": 1}', "[1, 2]", "not json", '{"cells": 3}'])
def test_a_file_that_is_not_a_notebook_is_refused_in_one_line(tmp_path, capsys, text):
    pytest.importorskip("nbclient")
    path = tmp_path / "book.ipynb"
    path.write_text(text)
    code, err = _run_main(capsys, path)
    assert code == 2 and f"{path} is not a notebook" in err


@pytest.mark.subprocess
def test_the_output_folder_is_made_and_a_failing_cell_still_writes_the_notebook(tmp_path, capsys):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbclient")
    book = _tiny_notebook(tmp_path / "book.ipynb", "N = 2", "print('first', N)", "1 / 0",
                          "print('never')")  # fmt: skip
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    code, err = _run_main(capsys, book, "--out", blocked / "out.ipynb")
    assert code == 2 and "a-file is a file" in err  # refused before the kernel started
    out = tmp_path / "missing" / "sub" / "out.ipynb"
    code, err = _run_main(capsys, book, "--out", out, "--set", "N=3")
    assert code == 1 and "cell 3 raised ZeroDivisionError: division by zero" in err
    assert str(out) in err
    cells = nbformat.read(out, as_version=4).cells
    assert cells[1].outputs[0]["text"] == "first 3\n"  # the partly executed notebook
    assert [o["output_type"] for o in cells[2].outputs] == ["error"] and not cells[3].outputs
