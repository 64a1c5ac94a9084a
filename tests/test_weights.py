"""The final-weights file: an exact round trip, its metadata, atomic writes, one-line errors."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import reslearn
from reslearn.data.normalize import Normalizer
from reslearn.weights import FORMAT, load_weights, save_weights


def trained_like(name: str = "resnet20", **options) -> torch.nn.Module:
    """A model whose BN running statistics are no longer the initial ones."""
    model = reslearn.create_model(name, **options)
    channels = options.get("in_channels", 3)
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, channels, 32, 32) * 2 + 0.5)
    return model.eval()


def normalizer_for(channels: int, mode: str = "per-pixel") -> Normalizer:
    images = torch.randint(0, 256, (16, channels, 32, 32), dtype=torch.uint8)
    return Normalizer.fit(images, mode)


@pytest.mark.parametrize(
    "name,options,mode",
    [
        ("resnet20", {"num_classes": 3}, "per-pixel"),
        ("resnet20", {"num_classes": 5, "shortcut": "B", "in_channels": 1}, "per-channel"),
        ("plain20", {"num_classes": 4}, "per-pixel"),
    ],
)
def test_round_trip_gives_identical_logits(tmp_path, name, options, mode) -> None:
    model = trained_like(name, **options)
    classes = [f"class-{i}" for i in range(model.num_classes)]
    normalizer = normalizer_for(model.in_channels, mode)
    path = tmp_path / "model.safetensors"
    save_weights(path, model, classes=classes, normalizer=normalizer, image_size=(32, 32))

    loaded = load_weights(path)
    assert not loaded.model.training
    assert loaded.classes == classes
    assert loaded.image_size == (32, 32)
    assert loaded.in_channels == model.in_channels
    assert loaded.name == name
    # The file records every option given, plus the built network's classes and channels.
    expected = {**options, "num_classes": model.num_classes, "in_channels": model.in_channels}
    assert loaded.model.build_args == {"name": name, "options": expected}
    assert loaded.model.shortcut == model.shortcut
    assert torch.equal(loaded.normalizer.mean, normalizer.mean)
    assert torch.equal(loaded.normalizer.std, normalizer.std)
    x = torch.randn(6, model.in_channels, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(x), model(x))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key


def test_metadata(tmp_path) -> None:
    model = trained_like(num_classes=3, shortcut="B")
    path = tmp_path / "w.safetensors"
    save_weights(
        path,
        model,
        classes=["cat", "dog", "eel"],
        normalizer=normalizer_for(3),
        image_size=(32, 32),
        extra={"recipe": "paper", "iterations": "64000"},
    )
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
        keys = set(f.keys())
    assert metadata["format"] == FORMAT == "reslearn-weights/1"
    assert metadata["model"] == "resnet20"
    assert json.loads(metadata["model_options"]) == {
        "num_classes": 3,
        "in_channels": 3,
        "shortcut": "B",
    }
    assert json.loads(metadata["classes"]) == ["cat", "dog", "eel"]
    assert json.loads(metadata["image_size"]) == [32, 32]
    assert metadata["reslearn_version"] == reslearn.__version__
    assert metadata["recipe"] == "paper" and metadata["iterations"] == "64000"
    assert {"__normalizer__.mean", "__normalizer__.std", "fc.weight"} <= keys
    assert load_weights(path).metadata["recipe"] == "paper"


def test_written_atomically_with_ordinary_permissions(tmp_path) -> None:
    path = tmp_path / "run" / "model.safetensors"
    for _ in range(2):  # the second write replaces the first
        save_weights(
            path,
            trained_like(num_classes=3),
            classes=list("abc"),
            normalizer=normalizer_for(3),
            image_size=(32, 32),
        )
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]
    assert path.stat().st_mode & 0o044  # readable by others as the umask allows, not 0600


def test_reset_classifier_is_what_gets_saved(tmp_path) -> None:
    model = trained_like(num_classes=10)
    model.reset_classifier(2)
    path = tmp_path / "m.safetensors"
    save_weights(path, model, classes=["a", "b"], normalizer=normalizer_for(3), image_size=(32, 32))
    assert load_weights(path).model.num_classes == 2


def test_save_rejects_inconsistent_arguments(tmp_path) -> None:
    model = trained_like(num_classes=3)
    path = tmp_path / "m.safetensors"
    with pytest.raises(ValueError, match="2 class names for a network with 3 outputs"):
        save_weights(
            path, model, classes=["a", "b"], normalizer=normalizer_for(3), image_size=(32, 32)
        )
    with pytest.raises(ValueError, match="normalizer has 1 channels"):
        save_weights(
            path, model, classes=list("abc"), normalizer=normalizer_for(1), image_size=(32, 32)
        )
    with pytest.raises(ValueError, match="built by reslearn.create_model"):
        save_weights(
            path,
            torch.nn.Linear(2, 3),
            classes=list("abc"),
            normalizer=normalizer_for(3),
            image_size=(32, 32),
        )
    with pytest.raises(ValueError, match="reserved"):
        save_weights(
            path,
            model,
            classes=list("abc"),
            normalizer=normalizer_for(3),
            image_size=(32, 32),
            extra={"model": "resnet56"},
        )
    assert not path.exists()


@pytest.fixture
def weights_file(tmp_path):
    path = tmp_path / "model.safetensors"
    save_weights(
        path,
        trained_like(num_classes=3),
        classes=list("abc"),
        normalizer=normalizer_for(3),
        image_size=(32, 32),
    )
    return path


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def test_missing_file(tmp_path) -> None:
    with pytest.raises(FileNotFoundError) as error:
        load_weights(tmp_path / "nope.safetensors")
    assert "nope.safetensors' does not exist" in one_line(error)


def test_directory(tmp_path) -> None:
    with pytest.raises(ValueError) as error:
        load_weights(tmp_path)
    assert "is a directory" in one_line(error)


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],  # truncated in the tensors
        lambda data: data[:20],  # truncated in the header
        lambda data: b"",
        lambda data: b"this is a text file, not weights\n",
        lambda data: data + b"trailing junk",
    ],
    ids=["truncated", "truncated-header", "empty", "text", "trailing-junk"],
)
def test_not_safetensors(weights_file, damage) -> None:
    weights_file.write_bytes(damage(weights_file.read_bytes()))
    with pytest.raises(ValueError) as error:
        load_weights(weights_file)
    message = one_line(error)
    assert f"'{weights_file}' is not a reslearn weights file (safetensors): " in message


def test_raw_state_dict_without_metadata(tmp_path) -> None:
    path = tmp_path / "raw.safetensors"
    save_file(reslearn.create_model("resnet20").state_dict(), str(path))
    with pytest.raises(ValueError) as error:
        load_weights(path)
    message = one_line(error)
    assert "without reslearn metadata" in message
    assert "missing: format, model, model_options, classes, image_size" in message


def test_training_checkpoint(tmp_path) -> None:
    path = tmp_path / "step-000100.pt"
    model = reslearn.create_model("resnet20", num_classes=3)
    torch.save({"model": model.state_dict(), "step": 100}, path)
    with pytest.raises(ValueError) as error:
        load_weights(path)
    message = one_line(error)
    assert "training checkpoint" in message
    assert "model.safetensors" in message and "reslearn train --resume" in message


def test_other_format_version(weights_file) -> None:
    with safe_open(str(weights_file), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = {**f.metadata(), "format": "reslearn-weights/2"}
    save_file(tensors, str(weights_file), metadata=metadata)
    with pytest.raises(ValueError) as error:
        load_weights(weights_file)
    assert "'reslearn-weights/2'" in one_line(error)


def test_metadata_that_does_not_match_the_tensors(weights_file) -> None:
    with safe_open(str(weights_file), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = f.metadata()
    metadata["model_options"] = json.dumps({"num_classes": 7, "in_channels": 3})
    save_file(tensors, str(weights_file), metadata=metadata)
    with pytest.raises(ValueError) as error:
        load_weights(weights_file)
    assert "does not match the network it names (shape: fc.weight" in one_line(error)

    metadata["model"] = "resnet19"
    save_file(tensors, str(weights_file), metadata=metadata)
    with pytest.raises(ValueError) as error:
        load_weights(weights_file)
    assert "cannot rebuild the network: unknown model 'resnet19'" in str(error.value)


def _rewrite_metadata(path, **changes) -> None:
    with safe_open(str(path), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
        metadata = {**f.metadata(), **changes}
    save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize(
    "classes,message",
    [
        (["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"], "lists 10 class names for a network "
         "with 3 outputs"),
        (["a", "b"], "lists 2 class names for a network with 3 outputs"),
        (["a", "b", "a"], "lists the class name(s) a more than once"),
        ({"a": 0}, "classes is not a list of names"),
    ],
)  # fmt: skip
def test_class_names_must_match_the_outputs(weights_file, classes, message) -> None:
    _rewrite_metadata(weights_file, classes=json.dumps(classes))
    with pytest.raises(ValueError) as error:
        load_weights(weights_file)
    assert message in one_line(error) and f"'{weights_file}'" in one_line(error)


def test_predict_and_cam_refuse_names_that_do_not_fit(weights_file, tmp_path, capsys) -> None:
    """3 names for 10 outputs used to crash predict (IndexError) and mislabel cam's maps."""
    from PIL import Image

    from reslearn.cli import main

    path = tmp_path / "ten.safetensors"
    save_weights(path, trained_like(num_classes=10), classes=list("abcdefghij"),
                 normalizer=normalizer_for(3), image_size=(32, 32))  # fmt: skip
    _rewrite_metadata(path, classes=json.dumps(["a", "b", "c"]))
    image = tmp_path / "x.png"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(image)
    for argv in (
        ["predict", path, image, "--device", "cpu"],
        ["cam", path, image, "-o", tmp_path / "cams", "--topk", "3"],
    ):
        assert main([str(a) for a in argv]) == 2
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1, err
        assert f"'{path}' lists 3 class names for a network with 10 outputs" in err
    assert not (tmp_path / "cams").exists()
