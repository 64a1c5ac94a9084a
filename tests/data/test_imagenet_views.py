"""The paper's ImageNet augmentation and test views: shapes, ranges and statistics."""

import pytest
import torch

from reslearn.data.imagenet_views import (
    PCA_EIGENVALUES,
    PCA_EIGENVECTORS,
    average_scores,
    center_view,
    multiscale_views,
    scale_augment,
    ten_crop_views,
)
from reslearn.data.normalize import Normalizer
from reslearn.data.sources import list_image_folder
from reslearn.data.stream import StreamData, TrainViewSettings
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


def test_training_batches_get_one_lighting_offset_per_image_along_the_pca_directions(
    photo_folder,
):
    """The production path: StreamData adds each view's PCA offset on the device, divided by
    the normaliser's std. The same views without lighting are the reference."""
    files, labels = list_image_folder(photo_folder).splits["train"]
    std = torch.tensor([0.2, 0.25, 0.3])[:, None, None]
    normalizer = Normalizer(torch.full((3, 1, 1), 0.5), std)

    def batches(lighting):
        data = StreamData(
            files, labels, normalizer, device=torch.device("cpu"), dtype=torch.float32,
            settings=TrainViewSettings(shorter=(72, 96), crop=64, lighting=lighting),
            workers=0, stop=10,
        )  # fmt: skip
        return [data.micro_batches(step, batch_size=len(files), seed=3)[0] for step in range(10)]

    offsets = []
    for (x, y), (plain, same_y) in zip(batches(0.1), batches(0.0)):
        assert torch.equal(y, same_y)  # the same images, crops and flips
        difference = (x - plain) * std  # back to [0, 1] pixel units
        per_image = difference.mean((-2, -1))
        # one RGB offset for the whole image
        assert torch.allclose(difference, per_image[:, :, None, None], atol=1e-5)
        offsets.append(per_image)
    offsets = torch.cat(offsets)
    assert len(offsets) == 10 * len(files) and offsets.abs().max() > 0
    # offset = eigenvectors @ (alpha * eigenvalues), alpha ~ N(0, 0.1) per direction
    alphas = torch.linalg.solve(PCA_EIGENVECTORS, offsets.T).T / PCA_EIGENVALUES
    assert alphas.mean(0).abs().max() < 0.025, alphas.mean(0)
    assert ((alphas.std(0) > 0.085) & (alphas.std(0) < 0.115)).all(), alphas.std(0)


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
