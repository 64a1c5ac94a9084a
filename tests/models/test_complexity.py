"""Parameter and multiply-add counts against the paper's numbers and torchvision's models."""

import pytest
import torchvision

from reslearn.models import count_parameters, create_model, profile_model

CIFAR_PARAMS = {  # option A, paper Table 6 (0.27M ... 19.4M), exact counts
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
}
IMAGENET_GMACS_V1 = {
    "resnet18": 1.81,
    "resnet34": 3.66,
    "resnet50": 3.86,
    "resnet101": 7.57,
    "resnet152": 11.28,
}
PAPER_GFLOPS = {
    "resnet18": 1.8,
    "resnet34": 3.6,
    "resnet50": 3.8,
    "resnet101": 7.6,
    "resnet152": 11.3,
}


@pytest.mark.parametrize("name,params", CIFAR_PARAMS.items())
def test_cifar_parameter_counts(name: str, params: int) -> None:
    assert profile_model(name).parameters == params
    plain = name.replace("resnet", "plain")
    if plain != "plain1202":  # option A adds nothing, so plain and residual nets are equal
        assert profile_model(plain).parameters == params


@pytest.mark.parametrize("name,gmacs", IMAGENET_GMACS_V1.items())
def test_imagenet_macs_v1_match_the_paper(name: str, gmacs: float) -> None:
    macs = profile_model(name).macs
    assert round(macs / 1e9, 2) == gmacs
    assert abs(macs / 1e9 - PAPER_GFLOPS[name]) < 0.1


@pytest.mark.parametrize("name", ["resnet50", "resnet101", "resnet152"])
def test_v15_layout_costs_more(name: str) -> None:
    v1, v15 = profile_model(name), profile_model(name, stride_in_1x1=False)
    assert v15.parameters == v1.parameters
    assert v15.macs > v1.macs
    if name == "resnet50":
        assert round(v15.macs / 1e9, 2) == 4.09


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_imagenet_parameters_equal_torchvision(name: str) -> None:
    reference = getattr(torchvision.models, name)()
    assert profile_model(name).parameters == count_parameters(reference)


def test_cifar_macs_scale_with_input() -> None:
    native = profile_model("resnet20").macs
    assert 40e6 < native < 41e6  # the paper's ~41M for ResNet-20
    fc_macs = 64 * 10
    assert profile_model("resnet20", input_size=64).macs - fc_macs == 4 * (native - fc_macs)


def test_count_macs_on_a_real_model_equals_meta() -> None:
    from reslearn.models import count_macs

    model = create_model("resnet20")
    assert count_macs(model, (3, 32, 32)) == profile_model("resnet20").macs
    assert model.training  # counting leaves the mode as it was


@pytest.mark.parametrize("name,size", [("resnet20", 32), ("resnet50", 224), ("plain34", 224)])
def test_stages_add_up_and_follow_table_1(name: str, size: int) -> None:
    whole = profile_model(name, stages=True)
    stages = whole.stages
    assert sum(s.parameters for s in stages) == whole.parameters
    assert sum(s.macs for s in stages) == whole.macs
    maps = [s.output_shape[1] for s in stages if s.stage.startswith("layer")]
    assert maps == ([32, 16, 8] if size == 32 else [56, 28, 14, 7])
    assert stages[-1].output_shape == (10 if size == 32 else 1000,)
