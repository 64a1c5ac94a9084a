"""Batch norm folded into convolutions (inference's network) computes what the eval-mode network
computes, within the export check's tolerance, for every kind of block, stem and head; and
inference through it (predict_logits) equals a plain eager fp32 forward pass."""

import pytest
import torch
from torch import nn

from reslearn.evaluate import inference_model, predict_logits
from reslearn.export import TOLERANCE
from reslearn.models import create_model
from reslearn.models.fold import fold_batch_norm

CASES = [
    ("resnet20", {}, 32),
    ("plain20", {}, 32),
    ("resnet20", {"shortcut": "C"}, 32),
    ("resnet20", {"antialias": True}, 32),
    ("resnet20", {"pool": "max"}, 32),
    ("resnet18", {"antialias": True}, 64),
    ("resnet50", {}, 64),
    ("resnet50", {"stride_in_1x1": False, "shortcut": "C"}, 64),
]


def _random_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Trained-looking BN layers: running statistics and affine parameters far from 0 and 1."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(n, generator=generator) * 2 + 0.2)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.2)
    return model.eval()


def _close(got: torch.Tensor, expected: torch.Tensor) -> None:
    allowed = TOLERANCE * max(1.0, float(expected.abs().max()))
    assert float((got - expected).abs().max()) <= allowed


@pytest.mark.parametrize("name,options,size", CASES)
def test_folded_network_matches_eval_mode(name, options, size) -> None:
    model = _random_statistics(create_model(name, num_classes=10, **options))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(3, 3, size, size)
    with torch.no_grad():
        _close(folded(x), model(x))
    after = model.state_dict()  # the original is left as it was
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_wrong_folding_is_caught() -> None:
    """The comparison can fail: a BN folded with the wrong epsilon differs."""
    model = _random_statistics(create_model("resnet20", num_classes=10))
    model.bn1.eps = 0.5
    folded = fold_batch_norm(model)
    model.bn1.eps = 1e-5
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), pytest.raises(AssertionError):
        _close(folded(x), model(x))


def test_nothing_to_fold_returns_the_model() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    assert fold_batch_norm(model) is model


def test_predict_logits_equals_eager_fp32() -> None:
    model = _random_statistics(create_model("resnet20", num_classes=10))
    x = torch.randn(70, 3, 32, 32)
    with torch.no_grad():
        expected = model(x)
    got = predict_logits(model, x, batch_size=64, precision="fp32")
    _close(got, expected)
    assert model.bn1.__class__ is nn.BatchNorm2d  # the caller's network is not folded


def test_inference_model_is_channels_last() -> None:
    net = inference_model(create_model("resnet20", num_classes=10))
    assert net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
