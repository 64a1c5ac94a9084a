"""CAM and Grad-CAM: their agreement at the last stage, clean hooks, bad input, sampling."""

import pytest
import torch

from reslearn.analysis.cam import (
    class_activation_maps,
    grad_cam,
    grad_cam_layers,
    normalize_maps,
)
from reslearn.analysis.upsample import upsample
from reslearn.models import create_model


@pytest.fixture
def model():
    torch.manual_seed(0)
    net = create_model("resnet20", num_classes=10)
    for m in net.modules():  # trained-looking BN statistics, so eval mode is well scaled
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_var.fill_(4.0)
    return net.eval()


def test_cam_is_the_score_spread_over_the_map(model):
    x = torch.randn(3, 3, 32, 32)
    result = class_activation_maps(model, x, topk=2)
    assert result.maps.shape == (3, 2, 8, 8)
    logits = model(x)
    assert torch.equal(result.classes, logits.topk(2, dim=1).indices)
    # GAP then linear: the class score is the map's mean plus the bias
    scores = result.maps.mean(dim=(2, 3)) + model.fc.bias[result.classes]
    torch.testing.assert_close(scores, logits.gather(1, result.classes), rtol=1e-4, atol=1e-4)


def test_grad_cam_at_the_last_stage_is_cam_up_to_a_positive_scale(model):
    x = torch.randn(4, 3, 32, 32)
    cam = class_activation_maps(model, x, target=3)
    gradcam = grad_cam(model, x, target=3)
    h, w = cam.maps.shape[-2:]
    torch.testing.assert_close(gradcam.maps, torch.relu(cam.maps) / (h * w), rtol=1e-4, atol=1e-6)
    assert torch.equal(gradcam.classes, cam.classes)


def test_grad_cam_on_any_stage_or_block_of_a_plain_network():
    net = create_model("plain20", num_classes=10).eval()
    x = torch.randn(2, 3, 32, 32)
    for layer, side in (("layer1", 32), ("layer2.1", 16), ("layer3", 8)):
        assert grad_cam(net, x, layer=layer).maps.shape == (2, 1, side, side)


def test_hooks_are_removed_also_when_the_forward_raises(model):
    with pytest.raises(ValueError):
        grad_cam(model, torch.randn(1, 1, 32, 32))  # wrong channel count
    assert all(not m._forward_hooks for m in model.modules())
    grad_cam(model, torch.randn(1, 3, 32, 32), layer="layer2")
    assert all(not m._forward_hooks for m in model.modules())


def test_a_flat_map_normalises_to_zeros_not_nan(model):
    assert torch.equal(normalize_maps(torch.full((2, 1, 8, 8), 3.0)), torch.zeros(2, 1, 8, 8))
    # every gradient zero (the class weights are zero): Grad-CAM is a zero map, not NaN
    model.fc.weight.data[5] = 0
    maps = grad_cam(model, torch.zeros(1, 3, 32, 32), target=5).maps
    assert torch.equal(maps, torch.zeros_like(maps))
    assert not normalize_maps(maps).isnan().any()


def test_cam_needs_gap_and_a_linear_head(model):
    with pytest.raises(ValueError, match="use Grad-CAM"):
        class_activation_maps(torch.nn.Sequential(model), torch.randn(1, 3, 32, 32))


def test_unknown_layer_lists_the_valid_ones(model):
    with pytest.raises(ValueError, match=r"unknown layer 'layer4'; layers: layer1, layer1.0"):
        grad_cam(model, torch.randn(1, 3, 32, 32), layer="layer4")
    assert grad_cam_layers(model)[-1] == "layer3.2"


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
def test_upsampling_keeps_the_range_of_the_map(mode):
    maps = torch.rand(2, 3, 8, 8)
    out = upsample(maps, (32, 32), mode)
    assert out.shape == (2, 3, 32, 32)
    assert out.min() >= maps.min() - 1e-6 and out.max() <= maps.max() + 1e-6
    if mode == "nearest":
        assert torch.equal(out[..., ::4, ::4], maps)


def test_unknown_interpolation_is_refused():
    with pytest.raises(ValueError, match="nearest, bilinear, bicubic"):
        upsample(torch.rand(1, 4, 4), (8, 8), "lanczos")
