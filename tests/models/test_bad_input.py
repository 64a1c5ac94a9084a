"""Bad names, options and inputs get a ValueError that says what is allowed."""

import pytest
import torch

from reslearn.models import cifar_resnet, create_model, imagenet_resnet, model_info


def test_unknown_name_lists_known_models() -> None:
    with pytest.raises(ValueError, match=r"unknown model 'resnet19'.*did you mean.*resnet20"):
        create_model("resnet19")
    with pytest.raises(ValueError, match=r"known models: resnet20, plain20, .*resnet152"):
        model_info("vgg16")


@pytest.mark.parametrize(
    "options,message",
    [
        ({"shortcut": "D"}, r"shortcut must be one of 'A', 'B', 'C'.*got 'D'"),
        ({"num_classes": 0}, r"num_classes must be an integer >= 1; got 0"),
        ({"num_classes": 2.5}, r"num_classes must be an integer >= 1"),
        ({"in_channels": -1}, r"in_channels must be an integer >= 1"),
        ({"zero_init_residual": "yes"}, r"zero_init_residual must be True or False"),
        ({"dropout": 0.5}, r"unknown option\(s\) dropout for resnet20; allowed: num_classes"),
    ],
)
def test_invalid_options(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_model("resnet20", **options)


def test_stride_in_1x1_on_basic_blocks_is_refused() -> None:
    for value in (True, False):
        with pytest.raises(ValueError, match="stride_in_1x1 applies only to bottleneck"):
            create_model("resnet18", stride_in_1x1=value)
    with pytest.raises(ValueError, match="stride_in_1x1 applies only to bottleneck"):
        create_model("resnet20", stride_in_1x1=True)


def test_shortcut_on_a_plain_network_is_refused() -> None:
    with pytest.raises(ValueError, match="plain networks have no shortcuts"):
        create_model("plain20", shortcut="B")
    with pytest.raises(ValueError, match="zero_init_residual needs residual blocks"):
        create_model("plain20", zero_init_residual=True)


@pytest.mark.parametrize("depth", [15, 21, 2, 0, "20"])
def test_cifar_depth_must_be_6n_plus_2(depth) -> None:
    with pytest.raises(ValueError, match=r"6n\+2"):
        cifar_resnet(depth)


def _cifar_parameters(n: int, classes: int = 10) -> int:
    """Parameters of the paper's 6n+2 CIFAR network with option A shortcuts, by hand: 3x3 convs
    without bias (16, 32, 64 filters), two BN parameters per channel, a linear head."""
    conv = lambda c_in, c_out: 9 * c_in * c_out  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    total = conv(3, 16) + bn(16)
    for c_in, c_out in ((16, 16), (16, 32), (32, 64)):
        total += conv(c_in, c_out) + conv(c_out, c_out) + 2 * bn(c_out)  # first block
        total += (n - 1) * (2 * conv(c_out, c_out) + 2 * bn(c_out))
    return total + 64 * classes + classes


@pytest.mark.parametrize("depth", [8, 14, 26])
def test_other_cifar_depths_build(depth: int) -> None:
    n = (depth - 2) // 6
    model = cifar_resnet(depth)
    # 6n+2 weighted layers: the first conv, 2n convs in each of the 3 stages, the linear head
    # (option A shortcuts add none).
    weighted = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(weighted) == 6 * n + 2 == depth
    assert [len(getattr(model, name)) for name in model.stage_names] == [n, n, n]
    assert sum(p.numel() for p in model.parameters()) == _cifar_parameters(n)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_cifar_parameter_formula_matches_the_paper() -> None:
    # The formula above against the paper's Table 6 counts (0.27M, 0.85M, 1.7M).
    assert round(_cifar_parameters(3) / 1e6, 2) == 0.27
    assert round(_cifar_parameters(9) / 1e6, 2) == 0.85
    assert round(_cifar_parameters(18) / 1e6, 1) == 1.7


def test_imagenet_depth_must_be_in_table_1() -> None:
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        imagenet_resnet(26)


@pytest.mark.parametrize(
    "name,shape,message",
    [
        (
            "resnet20",
            (2, 1, 32, 32),
            r"expected an input of shape \(N, 3, H, W\).*got \(2, 1, 32, 32\)",
        ),
        ("resnet20", (3, 32, 32), r"expected an input of shape \(N, 3, H, W\).*got \(3, 32, 32\)"),
        ("resnet20", (2, 3, 2, 32), r"too small: this network downsamples by 4"),
        ("resnet18", (2, 3, 16, 16), r"too small: this network downsamples by 32.*H, W >= 32"),
    ],
)
def test_bad_input_shapes_are_named(name: str, shape: tuple, message: str) -> None:
    model = create_model(name)
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_integer_images_are_refused_with_a_hint() -> None:
    model = create_model("resnet20")
    with pytest.raises(ValueError, match=r"floating-point input; got torch.uint8.*x.float\(\)"):
        model(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_grey_scale_model_names_its_channels() -> None:
    model = create_model("resnet20", in_channels=1)
    with pytest.raises(ValueError, match="built for in_channels=1"):
        model(torch.randn(2, 3, 32, 32))
