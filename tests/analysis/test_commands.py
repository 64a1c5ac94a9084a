"""``reslearn cam`` and ``reslearn shift``: their files, and one-line errors for bad input."""

import json

import pytest
from PIL import Image

from reslearn.cli import main
from reslearn.train import TrainConfig, train

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, write_image_folder):
    root = tmp_path_factory.mktemp("cam")
    data = write_image_folder(root / "data", ["red", "green", "blue"], {"train": 16, "test": 4})
    config = TrainConfig(data=str(data), model="plain20", iterations=3, batch_size=16,
                         cache_dir=str(root / "cache"))  # fmt: skip
    return train(config, root / "run", quiet=True).run_dir, data


def test_overlays_and_predictions(run_dir, tmp_path, capsys):
    run, data = run_dir
    images = [str(data / "test" / "red" / "000.png"), str(data / "test" / "blue" / "001.png")]
    assert main(["cam", str(run), *images, "-o", str(tmp_path), "--topk", "2"]) == 0
    summary = json.loads((tmp_path / "predictions.json").read_text())
    assert summary["method"] == "cam" and summary["layer"] == "layer3"
    assert [len(r["maps"]) for r in summary["images"]] == [2, 2]
    for record in summary["images"]:
        for entry in record["maps"]:
            with Image.open(tmp_path / entry["map"]) as png:
                assert png.format == "PNG" and png.width > 3 * png.height / 2
    assert "000.png: " in capsys.readouterr().out


def test_grad_cam_of_a_chosen_class_at_a_chosen_layer(run_dir, tmp_path, monkeypatch):
    import reslearn.analysis.cam as cam
    import reslearn.analysis.upsample as upsampling

    calls = []

    def spy(module, name):
        real = getattr(module, name)

        def recorded(*args, **kwargs):
            calls.append((name, args[1:], kwargs))
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, recorded)

    for module, name in ((cam, "grad_cam"), (cam, "class_activation_maps"),
                         (upsampling, "upsample")):  # fmt: skip
        spy(module, name)
    run, data = run_dir
    image = str(data / "test" / "green" / "000.png")
    argv = ["cam", str(run), image, "-o", str(tmp_path), "--method", "gradcam",
            "--layer", "layer2.1", "--class", "blue", "--interpolation", "nearest"]  # fmt: skip
    assert main(argv) == 0
    (record,) = json.loads((tmp_path / "predictions.json").read_text())["images"]
    assert [e["class"] for e in record["maps"]] == ["blue"]
    names = [name for name, _, _ in calls]
    assert names == ["grad_cam", "upsample"]  # --method reached the library, CAM did not run
    assert calls[0][2]["layer"] == "layer2.1" and calls[0][2]["target"] == 0  # blue: class 0
    assert calls[1][1][-1] == "nearest"  # --interpolation reached the up-sampling


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--class", "purple"], "unknown class 'purple'; classes: blue, green, red"),
        (["--layer", "layer2"], "--layer applies to Grad-CAM"),
        (["--method", "gradcam", "--layer", "layer9"], "unknown layer 'layer9'; layers: layer1"),
    ],
)
def test_bad_options_are_one_line(run_dir, tmp_path, capsys, extra, message):
    run, data = run_dir
    image = str(data / "test" / "red" / "000.png")
    assert main(["cam", str(run), image, "-o", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_an_undecodable_image_is_named(run_dir, tmp_path, capsys):
    run, _ = run_dir
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    assert main(["cam", str(run), str(broken), "-o", str(tmp_path / "out")]) == 2
    assert f"cannot read image '{broken}'" in capsys.readouterr().err


def test_shift_command_writes_json_and_plot(run_dir, tmp_path, capsys):
    run, _ = run_dir
    argv = ["shift", str(run), "-o", str(tmp_path), "--max-shift", "3", "--images", "12",
            "--equivariance-images", "4"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((tmp_path / "shift.json").read_text())
    assert set(results["invariance"]["consistency"]) == {"circular", "zero"}
    assert list(results["equivariance"]) == ["stem", "layer1", "layer2", "layer3"]
    assert results["equivariance"]["layer3"]["stride"] == 4
    assert (tmp_path / "shift.png").stat().st_size > 0
    assert "consistency" in capsys.readouterr().out


def test_shift_command_refuses_a_shift_as_large_as_the_image(run_dir, tmp_path, capsys):
    run, _ = run_dir
    assert main(["shift", str(run), "-o", str(tmp_path), "--max-shift", "16"]) == 2
    assert "--max-shift must be between 1 and 15" in capsys.readouterr().err


def test_shift_refuses_data_whose_classes_are_not_the_networks(run_dir, tmp_path, capsys,
                                                               write_image_folder):  # fmt: skip
    """A 3-class network on a 10-class folder used to report "accuracy 10.00%"; shift now
    refuses it exactly as eval does (one shared check)."""
    run, _ = run_dir
    ten = write_image_folder(tmp_path / "ten", [f"k{i}" for i in range(10)], {"test": 2})
    (ten / "train").symlink_to(ten / "test")
    messages = []
    for argv in (
        ["shift", str(run), "--data", str(ten), "-o", str(tmp_path / "out"), "--images", "8"],
        ["eval", str(run), "--data", str(ten), "--device", "cpu", "--json"],
    ):
        assert main(argv) == 2
        out, err = capsys.readouterr()
        last = err.strip().splitlines()[-1]  # after the decoding progress bar
        assert out == "" and "Traceback" not in err and last.startswith(f"reslearn {argv[0]}: ")
        messages.append(last.split(": error: ", 1)[1])
    assert messages[0] == messages[1]
    assert "does not match the network's classes: weights have 3 classes, data 10" in messages[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["shift", "RUN", "-o", "OUT", "--equivariance-images", "0"],
        ["shift", "RUN", "-o", "OUT", "--images", "0"],
        ["shift", "RUN", "-o", "OUT", "--max-shift", "-1"],
        ["cam", "RUN", "IMAGE", "-o", "OUT", "--topk", "0"],
        ["predict", "RUN", "IMAGE", "--topk", "0"],
        ["eval", "RUN", "--batch-size", "0"],
        ["eval", "RUN", "--views", "center", "--workers", "-1"],
        ["models", "resnet20", "--input-size", "0"],
    ],
)
def test_counts_below_one_are_refused(run_dir, tmp_path, capsys, argv):
    """--equivariance-images 0 used to print "equivariance error 0.000" for every stage."""
    run, data = run_dir
    places = {"RUN": str(run), "OUT": str(tmp_path / "out"),
              "IMAGE": str(data / "test" / "red" / "000.png")}  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main([places.get(a, a) for a in argv])
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1, err
    flag, value = argv[-2:]
    assert f"argument {flag}: expected an integer >= " in err and f"got {value}" in err
    assert not (tmp_path / "out").exists()


def test_the_shift_probes_refuse_an_empty_batch():
    import torch

    from reslearn.analysis.shift import measure_equivariance, measure_invariance
    from reslearn.models import create_model

    model = create_model("resnet20")
    with pytest.raises(ValueError, match=r"one or more images .* got shape \(0, 3, 32, 32\)"):
        measure_equivariance(model, torch.zeros(0, 3, 32, 32))
    with pytest.raises(ValueError, match="one or more images"):
        measure_invariance(model, torch.zeros(0, 3, 32, 32), torch.zeros(0, dtype=torch.int64))
