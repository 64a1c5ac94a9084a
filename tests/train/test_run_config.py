"""The settings resolved once: a frozen RunConfig with the same names as TrainConfig, nothing
left open, the network's built options from the registry."""

import dataclasses
import json

import pytest

from reslearn.models import model_info
from reslearn.precision import Setting
from reslearn.train import RunConfig, TrainConfig

BF16 = Setting("bf16", False)


def test_the_resolved_config_names_every_given_setting():
    given = [f.name for f in dataclasses.fields(TrainConfig)]
    assert [f.name for f in dataclasses.fields(RunConfig)] == given


@pytest.mark.parametrize("recipe", ["paper", "fast", "imagenet-paper"])
def test_nothing_is_left_open_once_resolved(recipe):
    resolved = TrainConfig(data="x", recipe=recipe).resolve(
        1000, setting=BF16, image_size=(32, 32), device="cpu"
    )
    record = resolved.as_dict()
    open_ = {k for k, v in record.items() if v is None or v == "auto"}
    assert open_ == {"init"}  # no --init: an option, not a default left open
    assert (resolved.precision, resolved.channels_last, resolved.setting) == ("bf16", False, BF16)
    assert resolved.device == "cpu" and resolved.decode == "workers"
    assert isinstance(resolved.workers, int) and resolved.workers >= 1
    assert resolved.image_size == [32, 32] and json.loads(json.dumps(record)) == record
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.iterations = 5


def test_a_forced_precision_resolves_without_a_choice():
    resolved = TrainConfig(data="x", precision="fp32", channels_last=True).resolve(1000)
    assert resolved.setting == Setting("fp32", True)
    with pytest.raises(ValueError, match="needs the measured choice"):
        TrainConfig(data="x", precision="fp32").resolve(1000)  # layout still to measure


@pytest.mark.parametrize(("model", "side"), [("resnet20", 32), ("resnet20", 48), ("resnet18", 64)])
def test_a_flatten_head_gets_its_map_size_from_the_registry(model, side):
    config = TrainConfig(data="x", model=model, model_options={"pool": "flatten"})
    resolved = config.resolve(1000, setting=BF16, image_size=(side, side))
    expected = side // {"resnet20": 4, "resnet18": 32}[model]  # the paper's strides, by hand
    assert resolved.model_options == {"pool": "flatten", "map_size": expected}
    assert model_info(model).total_stride * expected == side
    assert config.model_options == {"pool": "flatten"}  # the given settings are not mutated
