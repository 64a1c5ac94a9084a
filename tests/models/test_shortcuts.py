"""The paper's shortcut options A, B, C, and plain networks that truly have no shortcut."""

import pytest
import torch

from reslearn.models import ZeroPadShortcut, count_parameters, create_model


def reshaping(block) -> bool:
    first = block.conv1
    return (
        first.stride != (1, 1)
        or block.conv2.stride != (1, 1)
        or (first.in_channels != block.last_bn.num_features)
    )


@pytest.mark.parametrize("name", ["resnet20", "resnet56", "resnet34"])
def test_option_a_adds_no_parameters(name: str) -> None:
    residual = create_model(name, shortcut="A")
    plain = create_model(name.replace("resnet", "plain"))
    assert count_parameters(residual) == count_parameters(plain)
    for block in residual.blocks():
        if reshaping(block):
            assert isinstance(block.downsample, ZeroPadShortcut)
        else:
            assert block.downsample is None


def test_option_a_on_bottlenecks_pads_without_parameters() -> None:
    model = create_model("resnet50", shortcut="A")
    assert isinstance(model.layer1[0].downsample, ZeroPadShortcut)  # 64 -> 256 channels
    assert all(
        b.downsample is None or isinstance(b.downsample, ZeroPadShortcut) for b in model.blocks()
    )
    assert count_parameters(model) < count_parameters(create_model("resnet50"))
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1000)


@pytest.mark.parametrize("name", ["resnet20", "resnet18", "resnet50"])
def test_option_b_projects_only_where_shapes_change(name: str) -> None:
    model = create_model(name, shortcut="B")
    projected = [b for b in model.blocks() if b.downsample is not None]
    assert projected and all(reshaping(b) for b in projected)
    assert all(b.downsample is None for b in model.blocks() if not reshaping(b))
    expected = {"resnet20": 2, "resnet18": 3, "resnet50": 4}[name]
    assert len(projected) == expected


@pytest.mark.parametrize("name", ["resnet20", "resnet18", "resnet50"])
def test_option_c_projects_on_every_block(name: str) -> None:
    c, b = create_model(name, shortcut="C"), create_model(name, shortcut="B")
    assert all(isinstance(blk.downsample, torch.nn.Sequential) for blk in c.blocks())
    extra = sum(count_parameters(blk.downsample) for blk in c.blocks() if not reshaping(blk))
    assert count_parameters(c) == count_parameters(b) + extra > count_parameters(b)


def test_zero_pad_shortcut_subsamples_and_appends_zeros() -> None:
    x = torch.randn(2, 16, 8, 8)
    y = ZeroPadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0


def test_shortcut_option_is_case_insensitive() -> None:
    assert create_model("resnet20", shortcut="b").shortcut == "B"


def _cut_conv_branch(block) -> None:
    """Zero the first conv so no signal crosses the residual branch."""
    with torch.no_grad():
        block.conv1.weight.zero_()


@pytest.mark.parametrize(
    "plain_name,residual_name",
    [
        ("plain20", "resnet20"),
        ("plain18", "resnet18"),
    ],
)
def test_plain_block_input_reaches_output_only_through_convs(
    plain_name: str, residual_name: str
) -> None:
    for name, has_shortcut in ((plain_name, False), (residual_name, True)):
        model = create_model(name).eval()
        assert model.is_plain is not has_shortcut
        for block in model.blocks():
            _cut_conv_branch(block)
            x = torch.randn(2, block.conv1.in_channels, 8, 8).relu()
            perturbed = x + torch.rand_like(x)
            with torch.no_grad():
                changed = not torch.allclose(block(x), block(perturbed))
            assert changed is has_shortcut, f"{name}: {block}"
