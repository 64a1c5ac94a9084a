"""forward_intermediates (timm's convention): the stem's and every stage's output, selected by
index, with the final features those of forward_features."""

import pytest
import torch

import reslearn
from reslearn.models import model_info

SMALL_INPUT = {"cifar": 32, "imagenet": 64}

# (channels, side) of the stem and each stage at the small input, from the paper's tables:
# CIFAR (Sec. 4.2): 16, 32, 64 filters on 32, 16, 8 pixel maps; ImageNet (Table 1) at 64x64:
# the stem (conv /2 and max pool /2) leaves 16x16, then conv2_x..conv5_x at 16, 8, 4, 2.
EXPECTED = {
    "resnet20": [(16, 32), (16, 32), (32, 16), (64, 8)],
    "plain20": [(16, 32), (16, 32), (32, 16), (64, 8)],
    "resnet18": [(64, 16), (64, 16), (128, 8), (256, 4), (512, 2)],
    "resnet50": [(64, 16), (256, 16), (512, 8), (1024, 4), (2048, 2)],
}


def _input(name: str) -> torch.Tensor:
    size = SMALL_INPUT[model_info(name).family]
    return torch.randn(2, 3, size, size)


@pytest.mark.parametrize("name", reslearn.list_models())
def test_every_network_has_intermediates_ending_in_its_features(name: str) -> None:
    with torch.device("meta"):  # shapes only: no memory, no compute
        model = reslearn.create_model(name).eval()
        x = _input(name)
        final, intermediates = model.forward_intermediates(x)
        features = model.forward_features(x)
    assert len(intermediates) == 1 + len(model.stage_names)
    assert final.shape == features.shape == intermediates[-1].shape
    assert final.shape[1] == model.num_features


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_intermediates_are_the_stem_and_the_stages(name: str) -> None:
    torch.manual_seed(0)
    model = reslearn.create_model(name).eval()
    x = _input(name)
    with torch.no_grad():
        final, intermediates = model.forward_intermediates(x)
        # by hand: the stem's modules, then each stage on the previous output
        h = model.maxpool(model.relu(model.bn1(model.blur(model.conv1(x)))))
        by_hand = [h]
        for name_ in model.stage_names:
            h = getattr(model, name_)(h)
            by_hand.append(h)
        features = model.forward_features(x)
    assert [(t.shape[1], t.shape[2]) for t in intermediates] == EXPECTED[name]
    assert all(torch.equal(a, b) for a, b in zip(intermediates, by_hand))
    assert torch.equal(final, features) and final is intermediates[-1]
    assert torch.equal(model.forward_head(final), model(x))


def test_indices_select_like_timm() -> None:
    model = reslearn.create_model("resnet18").eval()
    x = _input("resnet18")
    with torch.no_grad():
        every = model.forward_intermediates(x, intermediates_only=True)
        assert len(every) == 5
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert len(last_two) == 2
        assert all(torch.equal(a, b) for a, b in zip(last_two, every[3:]))
        ends = model.forward_intermediates(x, indices=[-1, 0], intermediates_only=True)
        assert len(ends) == 2  # in forward order, whatever the order asked
        assert torch.equal(ends[0], every[0]) and torch.equal(ends[1], every[4])
        final, middle = model.forward_intermediates(x, indices=[2])
        assert len(middle) == 1 and torch.equal(middle[0], every[2])
        assert torch.equal(final, every[4])  # without stop_early: the whole network ran
    for bad in (6, 0, [5], [-6], [1.0]):
        with pytest.raises(ValueError, match="indices"):
            model.forward_intermediates(x, indices=bad)
    with pytest.raises(ValueError, match="output_fmt"):
        model.forward_intermediates(x, output_fmt="NHWC")


def test_stop_early_runs_no_stage_after_the_last_one_asked_for() -> None:
    model = reslearn.create_model("resnet20").eval()
    x = _input("resnet20")
    ran = []
    for name in model.stage_names:
        getattr(model, name).register_forward_pre_hook(lambda m, _i, n=name: ran.append(n))
    with torch.no_grad():
        full = model.forward_intermediates(x, intermediates_only=True)
        assert ran == ["layer1", "layer2", "layer3"]
        ran.clear()
        final, taken = model.forward_intermediates(x, indices=[0, 1], stop_early=True)
    assert ran == ["layer1"]
    assert len(taken) == 2 and torch.equal(taken[0], full[0]) and torch.equal(taken[1], full[1])
    assert final is taken[-1]  # the features where it stopped
    ran.clear()
    with torch.no_grad():
        model.forward_intermediates(x, indices=[0], stop_early=True)
    assert ran == []  # the stem only


def test_inputs_are_checked_as_forward_checks_them() -> None:
    model = reslearn.create_model("resnet20")
    with pytest.raises(ValueError, match="in_channels=3"):
        model.forward_intermediates(torch.randn(1, 1, 32, 32))
