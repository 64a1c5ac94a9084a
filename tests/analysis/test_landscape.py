"""The loss landscape's directions, perturbation and evaluation against independent oracles:
filter norms computed by hand, the unperturbed network run directly, and a linear model whose
squared loss is an exact parabola along any direction."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional

from reslearn.analysis.landscape import (
    axis,
    filter_normalized_direction,
    landscape,
    random_directions,
)
from reslearn.analysis.landscape_shape import BASIN_RISE, contour_levels, line_shape, plane_shape
from reslearn.models import create_model


def _tiny(name: str = "resnet20", **options) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name, num_classes=4, **options)
    for m in model.modules():  # trained-looking BN: statistics and affine parameters not 0 / 1
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
    return model.eval()


@pytest.mark.parametrize("shortcut", ["A", "B"])
def test_every_filter_has_its_weight_filters_norm_and_bn_and_biases_are_zero(shortcut):
    model = _tiny(shortcut=shortcut)
    direction = filter_normalized_direction(model, torch.Generator().manual_seed(3))
    parameters = dict(model.named_parameters())
    assert direction.keys() == parameters.keys()
    zero = {  # every BN parameter and every bias, by module type and name
        f"{prefix}.{name}"
        for prefix, module in model.named_modules()
        for name, _ in module.named_parameters(recurse=False)
        if isinstance(module, nn.BatchNorm2d) or name == "bias"
    }
    assert "fc.bias" in zero and "bn1.weight" in zero
    filters = 0
    for name, weight in parameters.items():
        d = direction[name]
        assert d.shape == weight.shape and d.dtype == weight.dtype
        if name in zero:
            assert torch.count_nonzero(d) == 0, name
            continue
        for k in range(weight.shape[0]):  # one output channel of a conv, one row of fc
            wanted = math.sqrt(sum(float(x) ** 2 for x in weight[k].flatten()))
            assert float(d[k].norm()) == pytest.approx(wanted, rel=1e-6), (name, k)
            filters += 1
    convs = sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))
    assert filters == convs + 4  # every conv filter and the 4 rows of the classifier


def test_directions_are_seeded_and_differ_between_seeds():
    model = _tiny()
    first, again, other = (random_directions(model, 2, seed)[0] for seed in (0, 0, 1))
    assert all(torch.equal(first[n], again[n]) for n in first)
    assert not torch.equal(first["conv1.weight"], other["conv1.weight"])
    d1, d2 = random_directions(model, 2, 0)
    assert not torch.equal(d1["fc.weight"], d2["fc.weight"])


def test_loss_at_the_origin_is_the_unperturbed_networks_and_nothing_is_left_changed():
    model = _tiny()
    inputs, labels = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 3, 0, 1])
    with torch.no_grad():
        logits = model(inputs)  # directly: eval mode, BN not folded
    direct = float(functional.cross_entropy(logits, labels))
    accuracy = float((logits.argmax(1) == labels).double().mean())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    directions = random_directions(model, 2, 0)
    measured = list(landscape(model, directions, [(0.5, -0.5), (0.0, 0.0)], inputs, labels))
    (_, far, _), (point, loss, acc) = measured
    assert point == (0.0, 0.0) and loss == pytest.approx(direct, rel=1e-5) and acc == accuracy
    assert far != pytest.approx(direct, rel=1e-3)  # the far point did move the network
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN statistics
    assert not model.training


def test_a_stopped_iteration_restores_the_weights():
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    points = landscape(model, random_directions(model, 1, 0), [(1.0,), (0.5,)],
                       torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))  # fmt: skip
    next(points)
    assert not torch.equal(model.conv1.weight, before["conv1.weight"])  # moved to the point
    points.close()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_linear_models_squared_loss_is_the_exact_parabola_along_a_direction():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3)).double().eval()
    inputs, targets = torch.randn(20, 3, 2, 2, dtype=torch.float64), torch.randn(20, 3).double()
    d1, d2 = random_directions(model, 2, 5)
    assert torch.count_nonzero(d1["1.bias"]) == 0
    # the oracle: r + alpha s + beta t is the residual, its mean square a quadratic form
    x, w, b = inputs.flatten(1), model[1].weight.detach(), model[1].bias.detach()
    r, s, t = x @ w.T + b - targets, x @ d1["1.weight"].T, x @ d2["1.weight"].T
    coefficients = axis(5)
    points = [(a, c) for a in coefficients for c in coefficients]
    for (alpha, beta), loss, accuracy in landscape(
        model, [d1, d2], points, inputs, targets, loss=functional.mse_loss
    ):
        exact = (r.pow(2).mean() + 2 * alpha * (r * s).mean() + 2 * beta * (r * t).mean()
                 + alpha**2 * s.pow(2).mean() + beta**2 * t.pow(2).mean()
                 + 2 * alpha * beta * (s * t).mean())  # fmt: skip
        assert loss == pytest.approx(float(exact), rel=1e-6)  # the logits are float32
        assert accuracy is None  # float targets: no classes
    line = [loss for _, loss, _ in landscape(model, [d1], [(a,) for a in axis(51)], inputs,
                                             targets, loss=functional.mse_loss)]  # fmt: skip
    shape = line_shape(axis(51), line)  # a parabola's second difference is exact
    assert shape["centre_curvature"] == pytest.approx(2 * float(s.pow(2).mean()), rel=1e-3)


def test_an_overflowing_network_gives_nan_not_an_error():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2)).eval()
    huge = {"1.weight": torch.full((2, 4), float("inf")), "1.bias": torch.zeros(2)}
    ((_, loss, accuracy),) = landscape(model, [huge], [(1.0,)], torch.ones(3, 1, 2, 2),
                                       torch.tensor([0, 1, 0]))  # fmt: skip
    assert math.isnan(loss) and accuracy is not None


def test_shape_numbers_of_a_known_parabola_and_paraboloid():
    x = axis(51)
    curve = [0.2 + 4 * a * a for a in x]  # basin: 4 a^2 < BASIN_RISE, |a| < 0.5
    line = line_shape(x, curve)
    assert line["centre_loss"] == pytest.approx(0.2)
    assert line["edge_losses"] == pytest.approx([4.2, 4.2])
    assert line["centre_curvature"] == pytest.approx(8.0)
    assert line["basin_width"] == pytest.approx(2 * math.sqrt(BASIN_RISE / 4), abs=0.01)
    assert not line["basin_reaches_edge"] and line["non_finite"] == 0
    assert line_shape(x, [0.1 * a * a for a in x])["basin_reaches_edge"]

    grid = axis(21)
    bowl = [[a * a + b * b for a in grid] for b in grid]
    plane = plane_shape(grid, bowl)
    inside = sum(a * a + b * b < BASIN_RISE for a in grid for b in grid) / len(grid) ** 2
    assert plane["basin_fraction"] == pytest.approx(inside)
    assert plane["centre_curvature"] == pytest.approx([2.0, 2.0])
    assert plane["downward_fraction"] == 0.0
    saddle = [[a * a - b * b + 5 for a in grid] for b in grid]
    assert plane_shape(grid, saddle)["downward_fraction"] == 1.0


def test_nan_points_are_counted_and_kept_out_of_the_basin():
    x = axis(11)
    curve = [a * a for a in x]
    curve[-1] = curve[-2] = math.nan
    line = line_shape(x, curve)
    assert line["non_finite"] == 2 and line["edge_losses"][1] is None
    assert not line["basin_reaches_edge"] and line["basin_width"] == pytest.approx(1.6)
    grid = axis(5)
    bowl = [[0.01 * (a * a + b * b) for a in grid] for b in grid]
    bowl[0][0] = math.nan
    plane = plane_shape(grid, bowl)
    assert plane["non_finite"] == 1 and plane["basin_fraction"] == pytest.approx(24 / 25)
    assert plane["edge_mean_loss"] is not None


def test_contour_levels_are_the_papers():
    levels = contour_levels()
    assert levels[0] == 0.1 and levels[-1] == 9.6 and len(levels) == 20
