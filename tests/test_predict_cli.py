"""``reslearn eval`` and ``reslearn predict`` on weights and a tiny generated image folder."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import reslearn
from reslearn.cli import main
from reslearn.data.image_files import load_image
from reslearn.data.normalize import Normalizer
from reslearn.evaluate import evaluate
from reslearn.weights import save_weights

CLASSES = ["ant", "bee", "cat"]
TEST_PER_CLASS = 3


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RESLEARN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def data(tmp_path, write_image_folder):
    counts = {"train": 2, "test": TEST_PER_CLASS}
    return write_image_folder(tmp_path / "shapes", CLASSES, counts, size=32)


@pytest.fixture
def weights(tmp_path):
    model = reslearn.create_model("resnet20", num_classes=3)
    with torch.no_grad():
        model(torch.randn(16, 3, 32, 32))  # BN statistics that are not the initial ones
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    path = tmp_path / "model.safetensors"
    save_weights(
        path,
        model.eval(),
        classes=CLASSES,
        normalizer=Normalizer.fit(images),
        image_size=(32, 32),
    )
    return path


def run_main(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def expected_evaluation(weights, data, precision="fp32"):
    """The oracle: decode the test PNGs directly (sorted class folders) and call evaluate."""
    from reslearn.weights import load_weights

    trained = load_weights(weights)
    files = [
        (label, p) for label, c in enumerate(CLASSES) for p in sorted((data / "test" / c).iterdir())
    ]
    pixels = np.stack([np.asarray(Image.open(p)) for _, p in files])
    inputs = trained.normalizer(torch.from_numpy(pixels).permute(0, 3, 1, 2))
    labels = torch.tensor([label for label, _ in files])
    return evaluate(trained.model, inputs, labels, num_classes=3, precision=precision)


def test_eval_weights_file_prints_errors_and_writes_png(capsys, weights, data) -> None:
    code, out, err = run_main(
        capsys, "eval", weights, "--data", data, "--device", "cpu", "--precision", "fp32"
    )
    assert code == 0, err
    expected = expected_evaluation(weights, data)
    assert f"top-1 error  {expected.top1_error:.2%}" in out
    assert "top-3 error  0.00%" in out  # three classes: top-min(5, K)
    assert f"{TEST_PER_CLASS * 3} images" in out and "resnet20" in out
    assert out.splitlines()[6].split() == ["class", "images", "accuracy", "%"]
    png = weights.with_name("model-confusion.png")
    assert f"confusion matrix: {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("winner", ["fp32", "bf16"])
def test_eval_measures_its_precision_by_default(capsys, weights, data, monkeypatch, tmp_path,
                                                winner) -> None:  # fmt: skip
    from reslearn.precision import DecisionCache, measure, support

    if not support.autocast_works(torch.device("cpu"), "bf16"):
        pytest.skip("bf16 autocast does not work on this CPU: auto has nothing to choose")
    # both candidates, also where auto would leave bf16 out (emulated: too slow to win)
    monkeypatch.setattr(support, "auto_precisions", lambda device: ["fp32", "bf16"])

    def timer(*args, **kwargs):  # rigged rates: the outcome does not depend on the load
        return lambda s: (3000.0 if s.precision == winner else 1000.0) + 100 * s.channels_last

    monkeypatch.setattr(measure, "step_timer", timer)
    monkeypatch.setattr(measure, "default_cache", lambda: DecisionCache(tmp_path / "p.json"))
    code, out, err = run_main(capsys, "eval", weights, "--data", data, "--device", "cpu")
    assert code == 0, err
    line = next(x for x in err.splitlines() if x.startswith("precision: "))
    assert line.startswith(f"precision: {winner} + channels_last") and "measured" in line
    # the printed result is the evaluation in the chosen precision
    expected = expected_evaluation(weights, data, precision=winner)
    assert f"top-1 error  {expected.top1_error:.2%}" in out


def test_eval_json_matches_direct_evaluation(capsys, weights, data, tmp_path) -> None:
    out_png = tmp_path / "elsewhere" / "c.png"
    out_png.parent.mkdir()
    code, out, err = run_main(
        capsys, "eval", weights, "--data", data, "--json", "--out", out_png, "--batch-size", "4",
        "--precision", "fp32",
    )  # fmt: skip
    assert code == 0, err
    result = json.loads(out)
    expected = expected_evaluation(weights, data)
    assert result["model"] == "resnet20" and result["split"] == "test"
    assert result["data"] == str(data) and result["confusion_png"] == str(out_png)
    assert result["count"] == 9
    assert result["confusion"] == expected.confusion.tolist()
    assert result["top1_error"] == pytest.approx(expected.top1_error)
    assert result["loss"] == pytest.approx(expected.loss, rel=1e-4)
    assert list(result["per_class_accuracy"]) == CLASSES
    assert out_png.is_file()


def test_eval_run_directory_uses_its_config(capsys, weights, data, tmp_path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(weights.read_bytes())
    settings = {"data": str(data), "cache_dir": str(tmp_path / "run-cache"), "workers": 0}
    (run / "config.json").write_text(json.dumps({"settings": settings, "data": {"name": "x"}}))
    code, out, err = run_main(capsys, "eval", run, "--json", "--split", "train")
    assert code == 0, err
    result = json.loads(out)
    assert result["count"] == 6 and result["split"] == "train"
    assert result["confusion_png"] == str(run / "confusion-train.png")
    assert (tmp_path / "run-cache").is_dir()
    code, out, err = run_main(capsys, "eval", run)
    assert code == 0, err
    assert (run / "confusion.png").is_file()


def one_line_error(capsys, *args) -> str:
    code, out, err = run_main(capsys, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_eval_errors(capsys, weights, data, tmp_path, write_image_folder) -> None:
    assert "--data is required" in one_line_error(capsys, "eval", weights)
    (tmp_path / "unfinished-run").mkdir()
    err = one_line_error(capsys, "eval", tmp_path / "unfinished-run")
    assert "has no model.safetensors" in err

    other = tmp_path / "other"
    write_image_folder(other, ["ant", "bee", "dog", "eel"], {"train": 1, "test": 1}, size=32)
    err = one_line_error(capsys, "eval", weights, "--data", other, "--json")  # no progress bars
    assert "does not match the network's classes" in err
    assert "only in the weights: cat; only in the data: dog, eel" in err

    checkpoint = tmp_path / "step-000010.pt"
    torch.save({"step": 10}, checkpoint)
    err = one_line_error(capsys, "eval", checkpoint, "--data", data)
    assert "training checkpoint" in err and "reslearn train --resume" in err


def test_predict_prints_topk_by_name(capsys, weights, data) -> None:
    images = [data / "test" / "ant" / "000.png", data / "test" / "cat" / "001.png"]
    code, out, err = run_main(capsys, "predict", weights, *images, "--topk", "2")
    assert code == 0, err
    blocks = out.strip().split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [str(p) for p in images]
    for block in blocks:
        rows = [line.split() for line in block.splitlines()[1:]]
        assert len(rows) == 2 and all(name in CLASSES for _, name in rows)
        assert float(rows[0][0].rstrip("%")) >= float(rows[1][0].rstrip("%"))


def test_predict_json(capsys, weights, data) -> None:
    image = data / "train" / "bee" / "000.png"
    code, out, err = run_main(capsys, "predict", weights, image, image, "--json", "--topk", "9")
    assert code == 0, err
    results = json.loads(out)
    assert [r["image"] for r in results] == [str(image)] * 2
    predictions = results[0]["predictions"]
    assert sorted(p["class"] for p in predictions) == CLASSES  # top-k is capped at K
    probabilities = [p["probability"] for p in predictions]
    assert probabilities == sorted(probabilities, reverse=True)
    # the oracle: the PNG decoded directly, normalised, and the model's own softmax in fp32
    from reslearn.weights import load_weights

    trained = load_weights(weights)
    pixels = torch.from_numpy(np.asarray(Image.open(image).convert("RGB")).copy())
    with torch.no_grad():
        expected = trained.model(trained.normalizer(pixels.permute(2, 0, 1)[None])).softmax(1)[0]
    for result in results:
        got = {p["class"]: p["probability"] for p in result["predictions"]}
        assert got == pytest.approx(dict(zip(CLASSES, expected.tolist())), abs=1e-5)


@pytest.mark.subprocess
def test_predict_undecodable_file_is_a_one_line_error(weights, tmp_path) -> None:
    fake = tmp_path / "x.png"
    fake.write_text("not an image\n")
    result = subprocess.run(
        [sys.executable, "-m", "reslearn", "predict", str(weights), str(fake)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"reslearn predict: error: cannot read image '{fake}'" in result.stderr


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "RGB"])
@pytest.mark.parametrize("channels", [1, 3])
def test_load_image_any_mode(tmp_path, mode, channels) -> None:
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8))
    image = rgb.convert(mode) if mode != "I;16" else Image.new("I;16", (60, 40), 40000)
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    image.save(path)
    pixels = load_image(path, in_channels=channels, size=(32, 32))
    assert pixels.shape == (32, 32, channels) and pixels.dtype == np.uint8
    if mode == "I;16":
        assert (pixels == round(40000 / 257)).all()  # scaled, not clipped at 255


def test_load_image_transparency_is_white_and_sizes(tmp_path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (32, 32), (10, 200, 30, 0)).save(path)
    assert (load_image(path, in_channels=3, size=(32, 32)) == 255).all()
    assert load_image(path, in_channels=1, size=(16, 24)).shape == (16, 24, 1)
    with pytest.raises(FileNotFoundError, match="missing.png' does not exist"):
        load_image(tmp_path / "missing.png", in_channels=3, size=(32, 32))
