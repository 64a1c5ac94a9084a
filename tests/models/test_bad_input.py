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


def test_other_cifar_depths_build() -> None:
    assert sum(1 for _ in cifar_resnet(14).modules()) > 0
    assert cifar_resnet(8)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


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
