"""Shift probes: the shift itself, equivariance exactly where the stride allows it, and the
invariance report's bookkeeping."""

import math

import pytest
import torch
import torch.nn.functional as F

from reslearn.analysis.shift import (
    measure_equivariance,
    measure_invariance,
    shift_images,
)
from reslearn.errors import SettingError
from reslearn.models import create_model


def test_shifts_move_pixels_and_fill_or_wrap():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    assert torch.equal(shift_images(x, 1, 2, "circular"), torch.roll(x, (1, 2), (-2, -1)))
    zero = shift_images(x, 1, -1, "zero")
    assert torch.equal(zero[0, 0, 1:, :3], x[0, 0, :3, 1:])
    assert zero[0, 0, 0].eq(0).all() and zero[0, 0, :, 3].eq(0).all()
    assert torch.equal(shift_images(shift_images(x, 3, -2), -3, 2), x)


@pytest.mark.parametrize("mode", ["circular", "zero"])
def test_a_shift_larger_than_the_image_is_refused(mode):
    with pytest.raises(ValueError, match="does not fit a 4x4 image"):
        shift_images(torch.zeros(1, 1, 4, 4), 4, 0, mode)


def _circular(model):
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.padding_mode = "circular"
    return model.eval()


def test_equivariance_is_exact_at_multiples_of_the_stride_with_circular_padding():
    torch.manual_seed(0)
    model = _circular(create_model("resnet20", num_classes=10))
    x = torch.randn(4, 3, 32, 32)
    result = measure_equivariance(model, x, shifts=(1, 2, 4))
    assert [result[k]["stride"] for k in result] == [1, 1, 2, 4]  # stem, layer1..3
    for name, entry in result.items():
        for shift, error in zip(entry["shifts"], entry["error"]):
            if shift % entry["stride"] == 0:
                assert error < 1e-5, (name, shift, error)
            else:
                assert error > 0.05, (name, shift, error)


def test_zero_padding_breaks_exact_equivariance_at_the_borders():
    model = create_model("resnet20", num_classes=10).eval()
    result = measure_equivariance(model, torch.randn(2, 3, 32, 32), shifts=(4,))
    assert 0 < result["layer1"]["error"][0] < 0.5


def test_invariance_report_bookkeeping():
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=3).eval()
    x, labels = torch.randn(60, 3, 32, 32), torch.randint(0, 3, (60,))
    report = measure_invariance(model, x, labels, max_shift=3, angles=(0, 10), scales=(1.0, 0.9))
    for mode in ("circular", "zero"):
        agreeing = 60 * report.consistency[mode]  # a count of the 60 images
        assert agreeing == pytest.approx(round(agreeing), abs=1e-4)
        assert len(report.accuracy_by_shift[mode]) == 4
        assert report.accuracy_by_shift[mode][0] == pytest.approx(report.accuracy)
    assert report.rotation["agreement"][0] == 1.0 and report.scale["agreement"][0] == 1.0
    # the library names the setting; the CLI writes it as --max-shift (test_commands.py)
    with pytest.raises(SettingError, match="^max_shift must be between 1 and 31"):
        measure_invariance(model, x, labels, max_shift=32)


def _warp(x: torch.Tensor, angle: float, scale: float) -> torch.Tensor:
    """Rotate ``angle`` degrees clockwise (as torchvision's affine) and scale about the centre,
    bilinear, zeros outside: the sampling grid built by hand for square images."""
    a = math.radians(angle)
    theta = torch.tensor([[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0]])
    grid = F.affine_grid((theta / scale).expand(len(x), 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def test_rotation_and_scale_match_an_independent_warp():
    torch.manual_seed(0)  # a linear classifier of the pixels: its predictions move with them
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 3)).eval()
    x, labels = torch.randn(60, 3, 32, 32), torch.randint(0, 3, (60,))
    angles, scales = (0, 7, -15, 30), (1.0, 0.8, 1.25)
    report = measure_invariance(model, x, labels, max_shift=1, angles=angles, scales=scales)
    with torch.no_grad():
        base = model(x).argmax(1)
        for probe, values, warp in (
            (report.rotation, angles, lambda v: _warp(x, v, 1.0)),
            (report.scale, scales, lambda v: _warp(x, 0.0, v)),
        ):
            assert probe["values"] == list(map(float, values))
            for i, value in enumerate(values):
                predicted = model(warp(value)).argmax(1)
                agree = (predicted == base).float().mean().item()
                correct = (predicted == labels).float().mean().item()
                assert probe["agreement"][i] == pytest.approx(agree), (value, probe)
                assert probe["accuracy"][i] == pytest.approx(correct), (value, probe)
    assert min(report.rotation["agreement"]) < 1 and min(report.scale["agreement"]) < 1


class _Pooled(torch.nn.Module):
    """Global average pooling, then a linear layer: blind to circular shifts by construction."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x.mean((-2, -1)))


class _Corner(torch.nn.Module):
    """Predicts the channel that is brightest at the top-left pixel: moved by every shift."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x[:, :, 0, 0]


def test_consistency_is_one_for_a_shift_blind_model_and_low_for_a_pixel_reader():
    torch.manual_seed(0)
    x, labels = torch.randn(60, 3, 16, 16), torch.randint(0, 3, (60,))
    blind = measure_invariance(_Pooled(), x, labels, max_shift=3, angles=(0,), scales=(1.0,))
    assert blind.consistency["circular"] == 1.0
    assert blind.accuracy_by_shift["circular"] == pytest.approx([blind.accuracy] * 4)
    # on noise, the corner pixel's brightest channel after two different shifts is a fresh
    # draw of 3 classes: the two predictions agree far less often than always
    corner = measure_invariance(_Corner(), x, labels, max_shift=3, angles=(0,), scales=(1.0,))
    assert corner.consistency["circular"] < 0.75
    assert corner.accuracy_by_shift["circular"][0] == pytest.approx(
        (x[:, :, 0, 0].argmax(1) == labels).float().mean().item()
    )


def test_probes_leave_the_model_in_the_mode_they_found_it():
    model = create_model("resnet20", num_classes=3).train()
    x, labels = torch.randn(4, 3, 32, 32), torch.randint(0, 3, (4,))
    measure_invariance(model, x, labels, max_shift=2, angles=(0,), scales=(1.0,))
    measure_equivariance(model, x, shifts=(1,))
    assert model.training
