"""Every registered model: builds, runs forward and backward, and has the right output shape."""

import pytest
import torch

import reslearn
from reslearn.models import model_info

# ImageNet networks are checked at 64x64, where they still reduce to a 2x2 map: the counts at
# 224x224 are tested separately (on the meta device, so they cost nothing).
SMALL_INPUT = {"cifar": 32, "imagenet": 64}


@pytest.mark.parametrize("name", reslearn.list_models())
def test_forward_backward(name: str) -> None:
    info = model_info(name)
    model = reslearn.create_model(name, num_classes=7)
    size = SMALL_INPUT[info.family]
    x = torch.randn(2, 3, size, size)
    logits = model(x)
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    logits.logsumexp(1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # The first conv receives a gradient: the signal went through the whole network.
    assert model.conv1.weight.grad.abs().sum() > 0
    # the registry's stride (what run.py sizes a flatten head by) is the built network's
    assert info.total_stride == model.total_stride
    features = model.forward_features(x)
    assert features.shape[-1] == size // info.total_stride


@pytest.mark.parametrize("name", ["resnet20", "plain20", "resnet18", "resnet50"])
def test_features_then_head_is_forward(name: str) -> None:
    model = reslearn.create_model(name).eval()
    size = SMALL_INPUT[model_info(name).family]
    x = torch.randn(2, 3, size, size)
    features = model.forward_features(x)
    assert features.shape == (
        2,
        model.num_features,
        size // model.total_stride,
        size // model.total_stride,
    )
    assert torch.equal(model.forward_head(features), model(x))
    assert model.forward_head(features, pre_logits=True).shape == (2, model.num_features)


def test_list_models_families() -> None:
    cifar = reslearn.list_models("cifar")
    imagenet = reslearn.list_models("imagenet")
    assert set(cifar) == {
        "resnet20",
        "resnet32",
        "resnet44",
        "resnet56",
        "resnet110",
        "resnet1202",
        "plain20",
        "plain32",
        "plain44",
        "plain56",
        "plain110",
    }
    assert set(imagenet) == {
        "resnet18",
        "resnet34",
        "resnet50",
        "resnet101",
        "resnet152",
        "plain18",
        "plain34",
    }
    assert reslearn.list_models() == cifar + imagenet


def test_grey_scale_input_and_classes() -> None:
    model = reslearn.create_model("resnet20", in_channels=1, num_classes=3)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 3)


def test_reset_classifier() -> None:
    model = reslearn.create_model("resnet20")
    model.reset_classifier(100)
    assert model.get_classifier().out_features == 100
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)


def test_build_args_rebuild_the_same_architecture() -> None:
    model = reslearn.create_model("resnet50", stride_in_1x1=False, num_classes=5)
    args = model.build_args
    again = reslearn.create_model(args["name"], **args["options"])
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes == {k: v.shape for k, v in again.state_dict().items()}
