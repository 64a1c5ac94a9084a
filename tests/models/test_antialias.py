"""antialias=True: same parameters and shapes, blur before every subsampling, and less aliasing
(a smaller equivariance error for shifts the stride cannot follow)."""

import pytest
import torch

from reslearn.analysis.shift import measure_equivariance
from reslearn.models import create_model
from reslearn.models.blocks import BlurPool2d


@pytest.mark.parametrize("name,size", [("resnet20", 32), ("plain20", 32), ("resnet18", 64),
                                       ("resnet50", 64)])  # fmt: skip
def test_same_parameters_and_feature_shapes(name, size):
    plain, smooth = create_model(name), create_model(name, antialias=True)
    count = sum(p.numel() for p in plain.parameters())
    assert count == sum(p.numel() for p in smooth.parameters())
    x = torch.randn(2, 3, size, size)
    assert plain.forward_features(x).shape == smooth.forward_features(x).shape
    blurs = [m for m in smooth.modules() if isinstance(m, BlurPool2d)]
    assert blurs and not any(isinstance(m, BlurPool2d) for m in plain.modules())
    assert all(m.stride == (1, 1) for m in smooth.modules() if isinstance(m, torch.nn.Conv2d))


def test_blur_pool_keeps_a_constant_image_constant_and_halves_the_size():
    out = BlurPool2d(3)(torch.full((1, 3, 8, 8), 2.0))
    assert out.shape == (1, 3, 4, 4) and torch.allclose(out, torch.full_like(out, 2.0))


def test_option_a_shortcut_blurs_before_it_subsamples():
    block = create_model("resnet20", antialias=True).layer2[0]
    assert isinstance(block.downsample.blur, BlurPool2d)


def test_anti_aliasing_lowers_the_error_for_shifts_the_stride_cannot_follow():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 32, 32)
    errors = {}
    for antialias in (False, True):
        model = create_model("resnet20", antialias=antialias).eval()
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.padding_mode = "circular"  # no border effects: only aliasing remains
        errors[antialias] = measure_equivariance(model, x, shifts=(1,))["layer3"]["error"][0]
    assert errors[True] < errors[False]


def test_antialias_must_be_a_bool():
    with pytest.raises(ValueError, match="antialias"):
        create_model("resnet20", antialias="yes")
