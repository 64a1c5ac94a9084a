"""reslearn's shipped networks: each is listed with its model card, its file matches the card's
sha256, it loads by name everywhere weights are taken, and (slow, with the shared CIFAR-10) its
test error is the one the card records."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch

import reslearn
from reslearn.cli import main
from reslearn.errors import UserError
from reslearn.hub import load_trained
from reslearn.hub.pretrained import FOLDER, cards, pretrained_path

#: at least these: the 30-epoch ResNet-20/56 and the laptop suite's seed-0 network of every
#: depth and family (results/cifar-laptop)
SUITE = ("plain20", "plain32", "plain44", "plain56", "resnet20", "resnet32", "resnet44",
         "resnet56", "resnet20-B", "resnet20-C")  # fmt: skip
SHIPPED = ("resnet20-cifar10", "resnet56-cifar10", *(f"{n}-cifar10-laptop" for n in SUITE))


def test_the_promised_networks_are_shipped_with_their_cards():
    found = cards()
    assert set(SHIPPED) <= set(found)
    for name, card in found.items():
        facts = card.facts
        assert card.weights.is_file(), name
        assert hashlib.sha256(card.weights.read_bytes()).hexdigest() == facts["sha256"]
        assert (FOLDER / f"{name}.md").is_file()
        assert 0 < facts["test_error"] < 0.5 and facts["test_images"] == 10_000
        for key in ("model", "data", "recipe", "command", "machine", "train_seconds"):
            assert facts[key], (name, key)
        trained = reslearn.load_pretrained(name)
        assert trained.name == facts["model"] and len(trained.classes) == 10
        assert card.weights.stat().st_size < 5_000_000  # a few MB each
    shipped = sum(path.stat().st_size for path in FOLDER.iterdir() if path.is_file())
    assert shipped < 28_000_000  # the wheel, which holds them, stays under 30 MB


def test_names_work_wherever_weights_go(tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (90, 140, 200)).save(image)
    assert main(["predict", "reslearn:resnet20-cifar10", str(image), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)[0]["predictions"][0]["class"]
    trained = load_trained("reslearn:resnet20-cifar10")
    pixels = torch.from_numpy(np.array(Image.open(image))).permute(2, 0, 1)[None]
    x = trained.normalizer(pixels)
    with torch.no_grad():
        assert trained.classes[int(trained.model(x).argmax())] == predicted
    assert main(["models", "--pretrained"]) == 0
    listed = capsys.readouterr().out
    assert "reslearn:resnet20-cifar10" in listed and "%" in listed


def test_eval_by_name_names_its_png_without_the_prefix(tmp_path, monkeypatch, write_image_folder):
    classes = load_trained("reslearn:resnet20-cifar10").classes
    data = write_image_folder(tmp_path / "tiny", classes, {"train": 1, "test": 1}, size=32)
    monkeypatch.chdir(tmp_path)
    argv = ["eval", "reslearn:resnet20-cifar10", "--data", str(data), "--precision", "fp32",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0
    assert (tmp_path / "resnet20-cifar10-confusion.png").is_file()
    assert not [p.name for p in tmp_path.iterdir() if ":" in p.name]


def test_an_unknown_name_suggests_the_closest():
    with pytest.raises(UserError, match="did you mean reslearn:resnet20-cifar10"):
        load_trained("reslearn:resnet20-cifar")


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch):
    from reslearn.hub import pretrained

    copy = tmp_path / "p"
    shutil.copytree(FOLDER, copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    weights = copy / "resnet20-cifar10.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    monkeypatch.setattr(pretrained, "FOLDER", copy)
    with pytest.raises(UserError, match="does not match its model card's sha256"):
        pretrained_path("resnet20-cifar10")


def test_the_suite_networks_say_where_they_come_from():
    runs = FOLDER.parents[3] / "results" / "cifar-laptop" / "runs"  # in a source checkout
    for name in SHIPPED[2:]:
        facts = cards()[name].facts
        run = name.removesuffix("-cifar10-laptop")
        model, _, shortcut = run.partition("-")
        assert facts["model"] == model and facts["budget"] == "laptop" and facts["seed"] == 0
        assert facts["model_options"] == ({"shortcut": shortcut} if shortcut else {})
        assert facts["command"].startswith("reslearn reproduce cifar --budget laptop")
        assert facts["cpu_family"] and facts["precision"] == "fp32"
        weights = runs / f"{run}-s0" / "model.safetensors"
        if weights.is_file():  # the very weights the suite committed
            assert hashlib.sha256(weights.read_bytes()).hexdigest() == facts["sha256"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_the_card_error_is_what_eval_measures(name, cifar10_jpeg, capsys, tmp_path):
    facts = cards()[name].facts
    code = main(["eval", f"reslearn:{name}", "--data", str(cifar10_jpeg),
                 "--precision", "fp32", "--json", "--out", str(tmp_path / "c.png")])  # fmt: skip
    assert code == 0
    measured = json.loads(capsys.readouterr().out)
    assert abs(measured["top1_error"] - facts["test_error"]) <= 0.0005  # 0.05 points
