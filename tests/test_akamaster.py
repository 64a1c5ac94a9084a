"""akamaster/pytorch_resnet_cifar10's published weights: read into reslearn, they compute what
their own network computes (checked against a forward pass written out here from their code's
description, not reslearn's modules), convert to a reslearn file, and are refused when foreign."""

import hashlib
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from reslearn.cli import main
from reslearn.hub import load_trained
from reslearn.hub.akamaster import CIFAR10_CLASSES, check_sha256, read_akamaster
from reslearn.weights import load_weights

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "akamaster"
FILES = {"resnet20": SHARED / "resnet20-12fca82f.th", "resnet56": SHARED / "resnet56-4bfd9763.th"}
needs_files = pytest.mark.skipif(
    not FILES["resnet20"].is_file(), reason=f"akamaster's files are not in {SHARED}"
)


def reference_logits(state: dict, x: torch.Tensor, blocks: int) -> torch.Tensor:
    """Their ResNet, written out: conv-BN-ReLU, three stages of basic blocks whose option-A
    shortcut subsamples by 2 and pads planes // 4 zero channels on each side, global average
    pooling, ``linear``. BN in eval mode with their running statistics."""
    s = {k.removeprefix("module."): v for k, v in state.items()}

    def bn(h, name):
        return F.batch_norm(
            h, s[f"{name}.running_mean"], s[f"{name}.running_var"], s[f"{name}.weight"],
            s[f"{name}.bias"], training=False, eps=1e-5,
        )  # fmt: skip

    out = F.relu(bn(F.conv2d(x, s["conv1.weight"], padding=1), "bn1"))
    for stage, planes in ((1, 16), (2, 32), (3, 64)):
        for i in range(blocks):
            name = f"layer{stage}.{i}"
            stride = 2 if stage > 1 and i == 0 else 1
            h = F.relu(bn(F.conv2d(out, s[f"{name}.conv1.weight"], stride=stride, padding=1),
                          f"{name}.bn1"))  # fmt: skip
            h = bn(F.conv2d(h, s[f"{name}.conv2.weight"], padding=1), f"{name}.bn2")
            if stride != 1 or out.shape[1] != planes:
                shortcut = F.pad(out[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))
            else:
                shortcut = out
            out = F.relu(h + shortcut)
    pooled = F.avg_pool2d(out, out.shape[3]).flatten(1)
    return F.linear(pooled, s["linear.weight"], s["linear.bias"])


@needs_files
@pytest.mark.parametrize("name,blocks", [("resnet20", 3), ("resnet56", 9)])
def test_their_weights_compute_their_logits(name, blocks, tmp_path):
    state = torch.load(FILES[name], map_location="cpu", weights_only=True)["state_dict"]
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    expected = reference_logits(state, x, blocks)
    trained = read_akamaster(FILES[name])
    assert trained.name == name and trained.classes == CIFAR10_CLASSES
    with torch.no_grad():
        ours = trained.model(x)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    # reslearn's own layout (zeros after the input's channels) computes something else
    from reslearn.models import create_model

    wrong = create_model(name).eval()
    wrong.load_state_dict(trained.model.state_dict())
    with torch.no_grad():
        assert (wrong(x) - expected).abs().max() > 0.1
    # converted to a reslearn file: the same logits, their normalisation and class names
    out = tmp_path / f"{name}.safetensors"
    assert main(["convert", "akamaster", str(FILES[name]), "-o", str(out)]) == 0
    converted = load_weights(out)
    with torch.no_grad():
        torch.testing.assert_close(converted.model(x), expected, rtol=1e-5, atol=1e-5)
    assert converted.classes == CIFAR10_CLASSES
    assert torch.allclose(converted.normalizer.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    assert json.loads(converted.metadata["model_options"])["zero_pad"] == "both"


@needs_files
def test_commands_take_their_file_directly(tmp_path, capsys):
    from PIL import Image

    image = tmp_path / "cat.png"
    Image.new("RGB", (40, 30), (200, 120, 40)).save(image)
    code = main(["predict", str(FILES["resnet20"]), str(image), "--json", "--device", "cpu"])
    assert code == 0
    direct = load_trained(FILES["resnet20"])
    printed = json.loads(capsys.readouterr().out)
    assert printed[0]["predictions"][0]["class"] in direct.classes


def test_foreign_files_are_refused_in_one_line(tmp_path, capsys):
    random_bytes = tmp_path / "random.th"
    random_bytes.write_bytes(bytes(range(256)) * 8)
    other = tmp_path / "other.th"
    torch.save({"state_dict": {"module.conv1.weight": torch.zeros(16, 3, 3, 3)}}, other)
    not_tensors = tmp_path / "dict.th"
    torch.save({"state_dict": {"a": 1}}, not_tensors)
    cases = (
        (random_bytes, "not an akamaster .th file"),
        (other, "no classifier"),
        (not_tensors, "no state_dict of tensors"),
    )
    for path, words in cases:
        out = tmp_path / "x.safetensors"
        assert main(["convert", "akamaster", str(path), "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and len(err.splitlines()) == 1, err
        assert not out.exists()


@needs_files
def test_another_depths_blocks_missing_are_named(tmp_path, capsys):
    state = torch.load(FILES["resnet20"], map_location="cpu", weights_only=True)["state_dict"]
    del state["module.layer2.1.conv1.weight"]
    path = tmp_path / "damaged.th"
    torch.save({"state_dict": state}, path)
    assert main(["convert", "akamaster", str(path), "-o", str(tmp_path / "o.safetensors")]) == 2
    assert "missing: layer2.1.conv1.weight" in capsys.readouterr().err


def test_a_download_is_checked_against_the_published_checksum(tmp_path):
    good = tmp_path / "resnet20-00000000.th"
    good.write_bytes(b"x")
    digest = hashlib.sha256(b"x").hexdigest()[:8]
    named = tmp_path / f"resnet20-{digest}.th"
    named.write_bytes(b"x")
    check_sha256(named)  # matches
    from reslearn.errors import UserError

    with pytest.raises(UserError, match="does not match its published checksum"):
        check_sha256(good)


def test_unknown_names_and_offline_downloads_say_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESLEARN_CACHE", str(tmp_path))
    assert main(["predict", "akamaster:resnet21", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "unknown pretrained network 'akamaster:resnet21'" in err and "akamaster:resnet20" in err

    import urllib.request

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert main(["predict", "akamaster:resnet32", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "resnet32-d509ac18.th" in err and str(tmp_path / "weights") in err
    assert not list((tmp_path / "weights").glob("*.th"))  # nothing half-written


@needs_files
def test_fine_tuning_starts_from_their_weights(tmp_path, write_image_folder):
    from reslearn.train import TrainConfig, train

    data = write_image_folder(tmp_path / "d", ["a", "b", "c"], {"train": 8, "test": 2}, size=32)
    config = TrainConfig(
        data=str(data), model="resnet20", init=str(FILES["resnet20"]), iterations=1,
        batch_size=8, precision="fp32", channels_last=False, cache_dir=str(tmp_path / "c"),
        lr=1e-9, momentum=0.0, weight_decay=0.0,
    )  # fmt: skip
    result = train(config, tmp_path / "run", quiet=True)
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["resolved"]["model_options"]["zero_pad"] == "both"
    assert saved["resolved"]["normalization"] == "imagenet"  # theirs
    assert saved["init"]["head"] == "replaced (10 -> 3 classes)"
    tuned = load_weights(result.run_dir / "model.safetensors")
    theirs = read_akamaster(FILES["resnet20"]).model.state_dict()
    # an lr of 1e-9 for one step leaves the body as it was loaded
    torch.testing.assert_close(tuned.model.state_dict()["layer3.2.conv2.weight"],
                               theirs["layer3.2.conv2.weight"], rtol=0, atol=1e-6)  # fmt: skip
