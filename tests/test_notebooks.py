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
