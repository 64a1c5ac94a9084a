"""He initialisation and the optional zero-init of each residual branch's last BN."""

import math

import torch

from reslearn.models import create_model


def test_he_init_std_matches_fan_out() -> None:
    model = create_model("resnet50")
    # 512 -> 2048 channels, 1x1: fan_out differs from fan_in 4x, and 1M weights give a tight
    # estimate of the standard deviation.
    conv = model.layer4[0].conv3
    expected = math.sqrt(2.0 / conv.out_channels)
    assert abs(conv.weight.std().item() / expected - 1) < 0.02
    assert abs(conv.weight.mean().item()) < expected * 0.01
    assert torch.count_nonzero(model.fc.bias) == 0


def test_bn_starts_at_identity() -> None:
    model = create_model("resnet20")
    bn = model.layer1[0].bn2
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)


def test_zero_init_residual_makes_identity_blocks() -> None:
    model = create_model("resnet20", zero_init_residual=True).eval()
    block = model.layer1[1]
    assert torch.count_nonzero(block.last_bn.weight) == 0
    x = torch.randn(2, 16, 32, 32).relu()
    with torch.no_grad():
        assert torch.allclose(block(x), x)
    assert len(model.blocks()) == 9
    for block in model.blocks():
        assert torch.count_nonzero(block.last_bn.weight) == 0


def test_zero_init_residual_on_bottleneck_zeroes_bn3_only() -> None:
    model = create_model("resnet50", zero_init_residual=True)
    block = model.layer3[2]
    assert block.last_bn is block.bn3
    assert torch.count_nonzero(block.bn3.weight) == 0
    assert torch.all(block.bn2.weight == 1)
