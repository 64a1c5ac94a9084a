"""``reslearn explore``: the precomputed views against independent computations and against the
functions behind ``reslearn shift`` and ``reslearn cam``; the command's bad input."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

import reslearn
from reslearn.analysis.cam import class_activation_maps, grad_cam
from reslearn.analysis.shift import measure_equivariance
from reslearn.analysis.upsample import INTERPOLATIONS, interpolation_matrix, upsample
from reslearn.cli import main
from reslearn.data.normalize import Normalizer
from reslearn.explore import explore_image, shift_grid, uses_cam
from reslearn.weights import save_weights

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]  # fmt: skip


def scene(seed: int, size: int = 32) -> np.ndarray:
    """A photo-like uint8 image: a smooth background and a few coloured shapes."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[None, :, None] * rng.integers(0, 255, 3)
    image = Image.fromarray((40 + 0.6 * ramp + rng.normal(0, 6, (size, size, 3))).clip(0, 255)
                            .astype(np.uint8).repeat(size, 0)[:size])  # fmt: skip
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = rng.integers(0, size - 8, 2)
        x1, y1 = x0 + rng.integers(6, size // 2), y0 + rng.integers(6, size // 2)
        draw.ellipse((x0, y0, x1, y1), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return np.asarray(image)


def shifted(x: torch.Tensor, dy: int, dx: int, mode: str) -> torch.Tensor:
    """The oracle shift: numpy's roll, or zero padding then a crop."""
    if mode == "circular":
        return torch.from_numpy(np.roll(x.numpy(), (dy, dx), axis=(-2, -1)))
    height, width = x.shape[-2:]
    padded = F.pad(x, (abs(dx), abs(dx), abs(dy), abs(dy)))
    top, left = abs(dy) - dy, abs(dx) - dx
    return padded[..., top : top + height, left : left + width]


@pytest.fixture(scope="module")
def pretrained():
    return reslearn.load_pretrained("resnet20-cifar10")


@pytest.fixture(scope="module")
def x(pretrained):
    pixels = torch.from_numpy(scene(1).copy()).permute(2, 0, 1)[None]
    return pretrained.normalizer(pixels).float()


@pytest.fixture(scope="module")
def view(pretrained, x):
    return explore_image(pretrained.model, x, max_shift=3, channels=2)


def test_shift_grid_is_dy_major():
    grid = shift_grid(2)
    assert len(grid) == 25 and grid[0] == (-2, -2) and grid[1] == (-2, -1)
    assert grid[(1 + 2) * 5 + (-2 + 2)] == (1, -2)


@pytest.mark.parametrize("mode", ["circular", "zero"])
@pytest.mark.parametrize("dy,dx", [(0, 0), (2, -1), (-3, 3)])
def test_probabilities_are_the_networks_on_the_shifted_image(pretrained, x, view, mode, dy, dx):
    with torch.no_grad():
        expected = pretrained.model(shifted(x, dy, dx, mode)).softmax(1)[0]
    index = shift_grid(3).index((dy, dx))
    shown = view.modes[mode]
    top = torch.as_tensor(shown.top[index])
    assert torch.equal(top, expected.topk(5).indices)
    assert np.allclose(shown.probabilities[index], expected[top].numpy(), atol=1e-5)


def test_class_maps_are_reslearn_cams_of_the_unshifted_top_class(pretrained, x, view):
    assert uses_cam(pretrained.model)
    for dy, dx in [(0, 0), (1, 2)]:
        cam = class_activation_maps(pretrained.model, shifted(x, dy, dx, "circular"),
                                    target=view.label)  # fmt: skip
        index = shift_grid(3).index((dy, dx))
        assert np.allclose(view.modes["circular"].maps[index], cam.maps[0, 0].numpy(), atol=1e-5)


def test_equivariance_errors_are_reslearn_shifts(pretrained, x, view):
    measured = measure_equivariance(pretrained.model, x, shifts=(1, 2, 3))
    for name, entry in measured.items():
        assert view.strides[name] == entry["stride"]
        for s, error in zip(entry["shifts"], entry["error"]):
            index = shift_grid(3).index((s, s))
            assert view.modes["circular"].errors[name][index] == pytest.approx(error, rel=1e-5)
        assert view.modes["circular"].errors[name][shift_grid(3).index((0, 0))] < 1e-6


def test_feature_maps_are_the_most_active_channels(pretrained, x, view):
    reference = pretrained.model.forward_intermediates(x, intermediates_only=True)
    for (name, channels), feature in zip(view.channels.items(), reference):
        means = feature[0].mean(dim=(1, 2))
        assert channels == means.argsort(descending=True)[:2].tolist()
        unshifted = view.modes["zero"].features[name][shift_grid(3).index((0, 0))]
        assert np.allclose(unshifted, feature[0, channels].detach().numpy(), atol=1e-5)


def test_a_network_without_gap_gets_grad_cam(x):
    model = reslearn.create_model("resnet20", pool="flatten", map_size=8).eval()
    view = explore_image(model, x, max_shift=1, channels=1)
    assert not uses_cam(model)
    expected = grad_cam(model, shifted(x, 1, -1, "zero"), target=view.label).maps[0, 0]
    index = shift_grid(1).index((1, -1))
    assert np.allclose(view.modes["zero"].maps[index], expected.numpy(), atol=1e-5)


@pytest.mark.parametrize("mode", INTERPOLATIONS)
def test_interpolation_matrices_reproduce_upsample(mode):
    maps = torch.randn(4, 7, 5)
    uy, ux = interpolation_matrix(7, 30, mode), interpolation_matrix(5, 22, mode)
    result = uy @ maps @ ux.T
    if mode == "bicubic":
        low, high = maps.amin((1, 2), keepdim=True), maps.amax((1, 2), keepdim=True)
        result = torch.maximum(torch.minimum(result, high), low)
    assert torch.allclose(result, upsample(maps, (30, 22), mode), atol=1e-5)


# --- the command ---------------------------------------------------------------------------


def write_weights(path, classes, **options):
    model = reslearn.create_model("resnet20", num_classes=len(classes), **options).eval()
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    save_weights(path, model, classes=classes, normalizer=Normalizer.fit(images),
                 image_size=(32, 32))  # fmt: skip
    return path


@pytest.fixture
def odd_images(tmp_path):
    """Images of other modes and sizes, one smaller than the network's input."""
    base = Image.fromarray(scene(2, size=64))
    files = {
        "small-rgba.png": base.resize((20, 20)).convert("RGBA"),
        "grey-wide.png": base.resize((100, 60)).convert("L"),
        "palette.gif": base.convert("P"),
        "deep.png": Image.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257),
    }
    for name, image in files.items():
        image.save(tmp_path / name)
    return [tmp_path / name for name in files]


def test_the_command_writes_a_page_for_images_of_any_mode_and_size(tmp_path, odd_images, capsys):
    out = tmp_path / "explore.html"
    code = main(["explore", "reslearn:resnet20-cifar10", *map(str, odd_images), "-o", str(out),
                 "--max-shift", "2"])  # fmt: skip
    assert code == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "explore-data" in page
    assert all(image.name in page for image in odd_images)
    assert "http://" not in page and "https://" not in page  # nothing fetched from a network
    assert f"{out} (" in capsys.readouterr().out


def test_a_network_without_gap_is_drawn_with_grad_cam_and_a_note(tmp_path, odd_images):
    weights = write_weights(tmp_path / "flat.safetensors", CIFAR_CLASSES, pool="flatten",
                            map_size=8)  # fmt: skip
    out = tmp_path / "page.html"
    assert main(["explore", str(weights), str(odd_images[0]), "-o", str(out),
                 "--max-shift", "1"]) == 0  # fmt: skip
    page = out.read_text()
    assert '"method":"Grad-CAM"' in page and "CAM does not apply" in page


def one_line_error(*args):
    result = subprocess.run([sys.executable, "-m", "reslearn", "explore", *map(str, args)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.subprocess
def test_bad_input_is_refused_in_one_line(tmp_path, odd_images):
    image = str(odd_images[0])
    existing = tmp_path / "exists.html"
    existing.write_text("the user's own page")
    assert "pass --overwrite" in one_line_error("reslearn:resnet20-cifar10", image, "-o", existing)
    assert existing.read_text() == "the user's own page"
    other = write_weights(tmp_path / "three.safetensors", ["ant", "bee", "cat"])
    message = one_line_error("reslearn:resnet20-cifar10", image, "--compare", other,
                             "-o", tmp_path / "c.html")  # fmt: skip
    assert "--compare needs a network with the same classes" in message
    message = one_line_error("reslearn:resnet20-cifar10", "-o", tmp_path / "d.html")
    assert "give image files, or --data" in message
    message = one_line_error("reslearn:resnet20-cifar10", image, "--max-shift", "32",
                             "-o", tmp_path / "e.html")  # fmt: skip
    assert "--max-shift must be between 1 and 31" in message
    assert not (tmp_path / "c.html").exists() and not (tmp_path / "e.html").exists()


def test_an_imagenet_network_shows_its_max_pool_stem_and_four_stages():
    model = reslearn.create_model("resnet18", num_classes=3).eval()
    x = torch.randn(1, 3, 64, 64)
    view = explore_image(model, x, max_shift=2, channels=1)
    assert view.strides == {"stem": 4, "layer1": 4, "layer2": 8, "layer3": 16, "layer4": 32}
    assert view.modes["zero"].features["layer4"].shape == (25, 1, 2, 2)
    assert view.modes["zero"].maps.shape == (25, 2, 2)
