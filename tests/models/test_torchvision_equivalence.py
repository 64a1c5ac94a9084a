"""Oracle test: torchvision's own ResNets, loaded into ours, give the same outputs."""

import pytest
import torch
import torchvision

from reslearn.models import create_model


def _randomise_bn_statistics(model: torch.nn.Module) -> None:
    # Fresh BN layers have mean 0, var 1, weight 1, bias 0, which would hide a mix-up of BN
    # layers; give every one distinct values.
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


@pytest.mark.parametrize(
    "name,options",
    [
        ("resnet18", {}),
        ("resnet50", {"stride_in_1x1": False}),
    ],
)
def test_torchvision_weights_load_strictly_and_agree(name: str, options: dict) -> None:
    reference = getattr(torchvision.models, name)(weights=None).eval()
    _randomise_bn_statistics(reference)
    ours = create_model(name, **options).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    scale = expected.abs().max().item()
    assert scale > 1e-2  # the comparison is not between two zeros
    assert (expected - got).abs().max().item() <= 1e-5 * scale  # measured here: exactly 0


@pytest.mark.parametrize("name", ["resnet34", "resnet101", "resnet152"])
def test_state_dict_keys_and_shapes_match_torchvision(name: str) -> None:
    options = {} if name == "resnet34" else {"stride_in_1x1": False}
    with torch.device("meta"):
        reference = getattr(torchvision.models, name)(weights=None)
        ours = create_model(name, **options)
    ref = {k: v.shape for k, v in reference.state_dict().items()}
    assert ref == {k: v.shape for k, v in ours.state_dict().items()}


def test_v1_layout_differs_from_torchvision_but_shares_its_names() -> None:
    reference = torchvision.models.resnet50(weights=None).eval()
    ours = create_model("resnet50").eval()  # the paper's v1 layout
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert not torch.allclose(reference(x), ours(x), atol=1e-3)
    assert ours.layer2[0].conv1.stride == (2, 2) and ours.layer2[0].conv2.stride == (1, 1)
