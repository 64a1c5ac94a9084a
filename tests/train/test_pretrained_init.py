"""--init: torchvision and reslearn weights loaded into the matching layout, a new head for
other classes, a frozen or slower backbone, and one-line errors for files that do not fit."""

import json

import pytest
import torch
import torchvision

from reslearn.models import create_model
from reslearn.train import TrainConfig, train
from reslearn.train.pretrained_init import init_model_options, load_initial_weights

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


@pytest.fixture(scope="module")
def torchvision_files(tmp_path_factory):
    """Randomly initialised torchvision resnet18 and resnet50 state_dicts saved as .pth."""
    root = tmp_path_factory.mktemp("tv")
    torch.manual_seed(1)
    paths = {}
    for name in ("resnet18", "resnet50"):
        paths[name] = root / f"{name}.pth"
        torch.save(getattr(torchvision.models, name)(weights=None).state_dict(), paths[name])
    return paths


def test_torchvision_weights_load_with_a_new_head(torchvision_files):
    state = torch.load(torchvision_files["resnet18"], weights_only=True)
    model = create_model("resnet18", num_classes=3)
    report = load_initial_weights(str(torchvision_files["resnet18"]), model, "resnet18")
    assert report.head == "replaced (1000 -> 3 classes)"
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])
    assert model.fc.weight.shape == (3, 512)


def test_a_torchvision_bottleneck_file_builds_the_v15_layout(torchvision_files):
    options = init_model_options(str(torchvision_files["resnet50"]), "resnet50", {})
    assert options == {"stride_in_1x1": False}
    model = create_model("resnet50", num_classes=1000, **options)
    report = load_initial_weights(str(torchvision_files["resnet50"]), model, "resnet50")
    assert report.head == "loaded"
    reference = torchvision.models.resnet50(weights=None)
    reference.load_state_dict(torch.load(torchvision_files["resnet50"], weights_only=True))
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model.eval()(x), reference.eval()(x), rtol=1e-5, atol=1e-5)


def test_a_file_of_another_network_is_refused_with_what_it_holds(torchvision_files):
    model = create_model("resnet34", num_classes=10)
    with pytest.raises(ValueError, match=r"does not fit resnet34: the file holds \d+ tensors"):
        load_initial_weights(str(torchvision_files["resnet18"]), model, "resnet34")
    with pytest.raises(
        ValueError, match=r"bn1.bias is \(64,\) in the file, \(16,\) in the network"
    ):
        load_initial_weights(
            str(torchvision_files["resnet18"]), create_model("resnet20"), "resnet20"
        )
    with pytest.raises(ValueError, match="no such file"):
        load_initial_weights("/no/such.pth", model, "resnet34")


@pytest.fixture(scope="module")
def data(tmp_path_factory, write_image_folder):
    root = tmp_path_factory.mktemp("init-data")
    return write_image_folder(root / "d", ["a", "b"], {"train": 16, "test": 4}, size=32)


def _config(data, tmp, **overrides):
    settings = dict(data=str(data), model="resnet18", iterations=2, batch_size=8, lr=0.01,
                    cache_dir=str(tmp / "cache"), precision="fp32",
                    channels_last=True)  # fmt: skip
    settings.update(overrides)
    return TrainConfig(**settings)


def test_frozen_backbone_trains_only_the_head(data, tmp_path, torchvision_files):
    source = str(torchvision_files["resnet18"])
    run = train(_config(data, tmp_path, init=source, freeze_backbone=True), tmp_path / "r",
                quiet=True).run_dir  # fmt: skip
    saved = json.loads((run / "config.json").read_text())
    assert saved["init"]["head"] == "replaced (1000 -> 2 classes)"
    from reslearn.weights import load_weights

    trained = load_weights(run / "model.safetensors")
    state = torch.load(source, weights_only=True)
    assert torch.equal(trained.model.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])
    # the pretrained weights see the inputs they were trained on: torchvision's mean and std
    assert saved["resolved"]["normalization"] == "imagenet"
    assert torch.allclose(trained.normalizer.std.flatten(), torch.tensor([0.229, 0.224, 0.225]))
    plain = _config(data, tmp_path).resolve(32)
    assert plain.normalization == "per-pixel"


def test_backbone_lr_scale_gives_the_backbone_a_smaller_lr(data, tmp_path):
    from reslearn.train.trainer import _sgd

    model = create_model("resnet18", num_classes=2)
    config = _config(data, tmp_path, backbone_lr_scale=0.1).resolve(32)
    groups = _sgd(model, config).param_groups
    assert [g["lr_scale"] for g in groups] == [0.1, 1.0]
    assert groups[1]["params"] == list(model.fc.parameters())


def test_a_reslearn_file_carries_its_own_options(data, tmp_path):
    first = train(_config(data, tmp_path, model="resnet20", model_options={"shortcut": "B"},
                          image_size=16), tmp_path / "one", quiet=True).run_dir  # fmt: skip
    weights = str(first / "model.safetensors")
    assert init_model_options(weights, "resnet20", {}) == {"shortcut": "B"}
    second = train(_config(data, tmp_path, model="resnet20", image_size=16, init=weights),
                   tmp_path / "two", quiet=True).run_dir  # fmt: skip
    saved = json.loads((second / "config.json").read_text())
    assert saved["resolved"]["model_options"] == {"shortcut": "B"}
    assert saved["init"]["head"] == "loaded"


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"backbone_lr_scale": 0}, "backbone_lr_scale must be a positive"),
        ({"freeze_backbone": True, "backbone_lr_scale": 0.5}, "exclude each other"),
    ],
)
def test_bad_fine_tuning_settings(data, tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _config(data, tmp_path, **overrides).validate()


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_a_damaged_safetensors_file_is_one_line_naming_it(data, tmp_path, capsys, damage):
    from safetensors.torch import save_file

    from reslearn.cli import main

    path = tmp_path / "bad.safetensors"
    if damage == "truncated":
        save_file(create_model("resnet20", num_classes=2).state_dict(), path)
        path.write_bytes(path.read_bytes()[:5000])
    else:
        path.write_bytes(bytes(range(256)) * 7)
    argv = ["train", "--data", str(data), "--model", "resnet20", "--init", str(path),
            "--iterations", "1", "--batch-size", "8", "--cache-dir", str(tmp_path / "cache"),
            "--out", str(tmp_path / "run"), "--quiet"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"--init {path}: not a readable .safetensors file" in err and "truncated" in err
