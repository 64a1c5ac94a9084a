"""torch.hub: hubconf.py at the repository root, loaded the way torch.hub loads it."""

import json
from pathlib import Path

import pytest
import torch

from reslearn.hub import load_pretrained
from reslearn.hub.pretrained import cards
from reslearn.models import list_models

REPO = str(Path(__file__).resolve().parents[1])


def _entries():
    """What torch.hub.list answers for a GitHub repository (it takes no local folder): the
    public callables of hubconf.py, imported as torch.hub imports it."""
    module = torch.hub._import_module("hubconf", str(Path(REPO) / "hubconf.py"))
    names = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
    return module, names


def test_every_registry_network_and_shipped_network_is_an_entry():
    module, entries = _entries()
    shipped = {"resnet20_cifar10", "resnet56_cifar10", "plain56_cifar10_laptop",
               "resnet20_B_cifar10_laptop"}  # fmt: skip
    assert shipped <= {name.replace("-", "_") for name in cards()}
    assert set(entries) == set(list_models()) | {name.replace("-", "_") for name in cards()}
    assert all(isinstance(d, str) for d in module.dependencies)
    assert "eval mode" in module.resnet20_cifar10.__doc__  # what torch.hub.help shows


def test_the_shipped_network_comes_in_eval_mode_with_what_feeds_it():
    model = torch.hub.load(REPO, "resnet20_cifar10", source="local", pretrained=True)
    assert not model.training and len(model.classes) == 10 and model.image_size == (32, 32)
    reference = load_pretrained("resnet20-cifar10")
    images = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8).numpy()
    inputs = model.normalize(images)
    with torch.no_grad():
        assert torch.equal(model(inputs), reference.model(reference.prepare(images)))
    assert model.classes == reference.classes


def test_a_registry_entry_builds_with_options_and_refuses_missing_weights():
    model = torch.hub.load(REPO, "resnet32", source="local", num_classes=100, shortcut="B")
    assert model.fc.out_features == 100 and model.training  # untrained, as built
    with pytest.raises(ValueError, match="no shipped weights for resnet110"):
        torch.hub.load(REPO, "resnet110", source="local", pretrained=True)
    # pretrained by registry name: the shipped CIFAR-10 weights
    shipped = torch.hub.load(REPO, "resnet56", source="local", pretrained=True)
    assert len(shipped.classes) == 10 and not shipped.training


def test_pretrained_by_registry_name_takes_the_best_shipped_network_built_as_registered():
    # resnet20 is shipped twice (30 epochs and the laptop suite's 10) and with shortcuts B and
    # C: the registry name takes the lowest-error one without options
    model = torch.hub.load(REPO, "resnet20", source="local", pretrained=True)
    best = min((c.facts["test_error"], n) for n, c in cards().items()
               if c.facts["model"] == "resnet20" and not c.facts["model_options"])  # fmt: skip
    reference = load_pretrained(best[1])
    assert best[1] == "resnet20-cifar10"
    for ours, theirs in zip(model.state_dict().values(), reference.model.state_dict().values()):
        assert torch.equal(ours, theirs)
    plain = torch.hub.load(REPO, "plain56", source="local", pretrained=True)
    assert plain.trained.name == "plain56"
    projected = torch.hub.load(REPO, "resnet20_B_cifar10_laptop", source="local")
    assert json.loads(projected.trained.metadata["model_options"])["shortcut"] == "B"


def test_a_device_that_is_not_there_is_named_with_what_is(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a machine without a GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(ValueError) as refused:
        torch.hub.load(REPO, "resnet20_cifar10", source="local", device="cuda")
    message = str(refused.value)
    assert "device 'cuda'" in message and "available: cpu" in message and "\n" not in message
    assert "weights file" not in message and "safetensors" not in message
