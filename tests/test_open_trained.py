"""open_for_analysis: weights and data to a network and its inputs, checked against the files
read independently (PIL, numpy) and against the network's classes."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

import reslearn.open_trained as open_trained
from reslearn.data.normalize import Normalizer
from reslearn.errors import UserError
from reslearn.models import create_model
from reslearn.open_trained import open_for_analysis, open_weights
from reslearn.weights import save_weights

CLASSES = ["ant", "bee", "cat"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory, write_image_folder):
    root = tmp_path_factory.mktemp("data") / "three"
    return write_image_folder(root, CLASSES, {"train": 5, "test": 4})


def _weights(path, classes=CLASSES, size=16):
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=len(classes))
    mean = torch.full((3, 1, 1), 0.5)
    std = torch.full((3, 1, 1), 0.25)
    save_weights(path, model, classes=classes, normalizer=Normalizer(mean, std),
                 image_size=(size, size))  # fmt: skip
    return path


def _read_split(folder, split):
    """The split's images and labels read with PIL, class folder by class folder."""
    images, labels = [], []
    for label, name in enumerate(CLASSES):
        for file in sorted((folder / split / name).iterdir()):
            images.append(np.asarray(Image.open(file).convert("RGB")))
            labels.append(label)
    return np.stack(images), np.asarray(labels)


def test_a_bare_file_opens_without_data(tmp_path) -> None:
    opened = open_for_analysis(_weights(tmp_path / "m.safetensors"))
    assert opened.images is None and opened.settings == {} and opened.run_dir is None
    with pytest.raises(ValueError, match="no labelled data"):
        opened.labels()


@pytest.mark.parametrize("split", ["test", "train"])
def test_a_whole_split_in_order_normalised_on_the_device(tmp_path, folder, split) -> None:
    opened = open_for_analysis(
        _weights(tmp_path / "m.safetensors"), data=str(folder), split=split,
        cache_dir=tmp_path / "cache", check_size=True,
    )  # fmt: skip
    pixels, labels = _read_split(folder, split)
    assert np.array_equal(opened.images.images, pixels)
    assert opened.labels().tolist() == labels.tolist()
    expected = (torch.from_numpy(pixels).permute(0, 3, 1, 2) / 255.0 - 0.5) / 0.25
    torch.testing.assert_close(opened.inputs(), expected)
    torch.testing.assert_close(torch.cat(list(opened.batches(3))), expected)


def test_a_run_folder_brings_its_data_and_a_sample_is_reused(tmp_path, folder, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    _weights(run / "model.safetensors")
    settings = {"data": str(folder), "cache_dir": str(tmp_path / "cache")}
    (run / "config.json").write_text(json.dumps({"settings": settings}))
    first = open_for_analysis(run, count=3)
    assert first.run_dir == run and first.data == str(folder)
    assert len(first.images.labels) == 3
    monkeypatch.setattr(open_trained, "load_eval_sample", lambda *a, **k: pytest.fail("loaded"))
    second = open_for_analysis(_weights(tmp_path / "b.safetensors"), data=str(folder),
                               sample=first.images)  # fmt: skip
    assert second.images is first.images


def test_other_classes_are_refused_in_one_line(tmp_path, folder) -> None:
    weights = _weights(tmp_path / "m.safetensors", classes=["ant", "bee", "dog"])
    with pytest.raises(UserError, match="does not match the network's classes"):
        open_for_analysis(weights, data=str(folder), cache_dir=tmp_path / "cache")


def test_another_image_size_is_refused_when_asked(tmp_path, folder) -> None:
    weights = _weights(tmp_path / "m.safetensors", size=16)
    opened = open_weights(weights)
    sample = open_for_analysis(opened, data=str(folder), cache_dir=tmp_path / "c").images
    small = type(sample)(sample.images[:, :8, :8], sample.labels, sample.classes)
    with pytest.raises(UserError, match="8x8 images"):
        open_for_analysis(opened, data=str(folder), sample=small, check_size=True)


def test_image_files_are_fitted_and_carry_no_labels(tmp_path) -> None:
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((40, 20), 200, np.uint8), mode="L").save(path)
    opened = open_for_analysis(_weights(tmp_path / "m.safetensors"), files=[path])
    assert opened.images.images.shape == (1, 16, 16, 3)
    assert (opened.images.images == 200).all()
    assert opened.files == [str(path)]
    with pytest.raises(ValueError, match="no labelled data"):
        opened.labels()


def test_an_unknown_split_is_named(tmp_path) -> None:
    with pytest.raises(ValueError, match="split must be one of sample, test, train; got 'val'"):
        open_for_analysis(tmp_path / "m.safetensors", split="val")
