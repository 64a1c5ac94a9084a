"""Fig. 7's layer responses agree with a direct, hook-free computation."""

import pytest
import torch

from reslearn.analysis import layer_responses, response_layers
from reslearn.models import create_model


def _direct(model, x):
    """Walk the network by hand and take each 3x3 layer's BN output's per-channel std."""

    def std(t):
        return t.double().std(dim=(0, 2, 3), unbiased=False).mean().item()

    out = [std(model.bn1(model.conv1(x)))]
    h = model.forward_stem(x)
    for block in model.blocks():
        first = block.bn1(block.conv1(h))
        out.append(std(first))
        out.append(std(block.bn2(block.conv2(torch.relu(first)))))
        h = block(h)
    return out


@pytest.mark.parametrize("name", ["resnet20", "plain20"])
def test_responses_match_a_direct_computation(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=10)
    # Non-trivial BN statistics and affine parameters, so BN really transforms.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.2, 1.5)
            m.bias.data.normal_(0, 0.5)
    model.eval()
    x = torch.randn(12, 3, 32, 32)
    responses = layer_responses(model, x.split(5))  # three uneven batches
    assert [r.index for r in responses] == list(range(1, 20))  # 6n + 1 3x3 layers
    assert responses[0].name == "conv1" and responses[-1].name == "layer3.2.conv2"
    with torch.no_grad():
        expected = _direct(model, x)
    got = [r.std for r in responses]
    assert got == pytest.approx(expected, rel=1e-9)


def test_hooks_are_removed_and_mode_restored_when_forward_raises():
    model = create_model("resnet20", num_classes=10).train()
    with pytest.raises(ValueError):
        layer_responses(model, [torch.randn(2, 1, 32, 32)])  # wrong channel count
    assert model.training
    assert all(not bn._forward_hooks for _, bn in response_layers(model))


def test_bottleneck_networks_count_only_their_3x3_layers():
    layers = response_layers(create_model("resnet50", num_classes=10))
    assert len(layers) == 16  # one 3x3 conv per bottleneck; the 7x7 stem does not count
    assert all(name.endswith("conv2") for name, _ in layers)


def test_no_images_is_an_error():
    with pytest.raises(ValueError, match="no images"):
        layer_responses(create_model("resnet20", num_classes=10), [])
