"""The paper's ImageNet augmentation and test views: shapes, ranges and statistics."""

import pytest
import torch

from reslearn.data.imagenet_views import (
    PCA_EIGENVECTORS,
    average_scores,
    center_view,
    lighting,
    multiscale_views,
    scale_augment,
    ten_crop_views,
)
from reslearn.models import create_model


@pytest.fixture
def image():
    return torch.randint(0, 256, (3, 300, 400), dtype=torch.uint8)  # landscape, any size


def test_scale_augmentation_crops_224_from_shorter_sides_in_256_480(image, monkeypatch):
    import reslearn.data.imagenet_views as views

    sides = []
    resize = views._resize_shorter
    monkeypatch.setattr(views, "_resize_shorter", lambda im, s: sides.append(s) or resize(im, s))
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        assert scale_augment(image, generator).shape == (3, 224, 224)
    assert min(sides) >= 256 and max(sides) <= 480
    assert min(sides) < 280 and max(sides) > 450  # the whole range is used


def test_flips_happen_about_half_the_time():
    stripe = torch.zeros(1, 256, 256, dtype=torch.uint8)
    stripe[..., :128] = 255  # left half bright: a flip puts it on the right
    generator = torch.Generator().manual_seed(1)
    flipped = [
        scale_augment(stripe, generator, shorter=(256, 256), crop=256)[0, 0, 0].item() == 0
        for _ in range(400)
    ]
    assert 0.4 < sum(flipped) / 400 < 0.6


def test_lighting_adds_one_offset_along_the_pca_directions():
    generator = torch.Generator().manual_seed(0)
    base = torch.full((3, 8, 8), 0.5)
    offsets = torch.stack([(lighting(base, generator) - base)[:, 0, 0] for _ in range(2000)])
    noisy = lighting(base, generator)
    assert torch.allclose(noisy - noisy[:, :1, :1], torch.zeros_like(noisy), atol=1e-7)
    assert offsets.mean(0).abs().max() < 0.002  # zero mean
    # the offsets' covariance is E diag((0.1 * eigenvalues)^2) E^T: largest along the first
    spread = (offsets @ PCA_EIGENVECTORS).std(0)
    assert spread[0] > 5 * spread[1] > 0
    with pytest.raises(ValueError, match="float RGB"):
        lighting(torch.zeros(3, 4, 4, dtype=torch.uint8), generator)


def test_test_views(image):
    assert center_view(image).shape == (3, 224, 224)
    crops = ten_crop_views(image)
    assert crops.shape == (10, 3, 224, 224)
    # torchvision's order: corners and centre, then the same of the flipped image (whose
    # top-left corner is the mirror of the original's top-right)
    for flipped, original in ((5, 1), (6, 0), (7, 3), (8, 2)):
        assert torch.equal(crops[flipped], crops[original].flip(-1))
    assert torch.equal(center_view(image), crops[4])
    scales = multiscale_views(image)
    assert [min(v.shape[-2:]) for v in scales] == [224, 256, 384, 480, 640]
    assert all(abs(v.shape[-1] / v.shape[-2] - 4 / 3) < 0.01 for v in scales)  # aspect kept


def test_scores_average_over_views_of_any_size():
    model = create_model("resnet18", num_classes=5).eval()
    views = [torch.randn(3, 64, 64), torch.randn(3, 64, 96), torch.randn(2, 3, 64, 64)]
    scores = average_scores(model, views)
    assert scores.shape == (5,) and torch.isclose(scores.sum(), torch.tensor(1.0))
