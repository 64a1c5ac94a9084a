"""The paper's ImageNet augmentation and test views: shapes, ranges and statistics."""

import math

import pytest
import torch

from reslearn.data.imagenet_views import (
    PCA_EIGENVALUES,
    PCA_EIGENVECTORS,
    center_view,
    multiscale_views,
    scale_augment,
    ten_crop_views,
)
from reslearn.data.normalize import Normalizer
from reslearn.data.sources import list_image_folder
from reslearn.data.stream import StreamData, TrainViewSettings
from reslearn.evaluate import evaluate_logits, view_scores


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
            files, labels, normalizer, device=torch.device("cpu"),
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


class _ChannelMeans(torch.nn.Module):
    """Logits = each channel's mean: a constant view of value v scores exactly v."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x.mean((-2, -1))


def test_ten_crop_scores_are_softmax_averages_computed_by_hand():
    # image 0: nine views mildly for class 0 (logits 1, 0, 0), one strongly for class 1 (0, 10,
    # 0); image 1: ten views for class 2; image 2 as image 0. Averaging the softmax picks class
    # 0 (0.9 e / (e + 2) + 0.1 / (e^10 + 2) = 0.519 against 0.9 / (e + 2) + 0.1 e^10 /
    # (e^10 + 2) = 0.291); averaging the logits would pick class 1 (1.0 against 0.9).
    mild, strong, third = (1.0, 0.0, 0.0), (0.0, 10.0, 0.0), (0.0, 0.0, 3.0)
    per_image = [[mild] * 9 + [strong], [third] * 10, [mild] * 9 + [strong]]
    views = torch.tensor(per_image)[:, :, :, None, None].expand(3, 10, 3, 4, 4)
    labels = torch.tensor([0, 2, 1])
    scores, out_labels = view_scores(_ChannelMeans(), [(views, labels)], precision="fp32")

    e = math.e
    p_mild = [e / (e + 2), 1 / (e + 2), 1 / (e + 2)]
    p_strong = [1 / (e**10 + 2), e**10 / (e**10 + 2), 1 / (e**10 + 2)]
    p_third = [1 / (e**3 + 2), 1 / (e**3 + 2), e**3 / (e**3 + 2)]
    averaged = [0.9 * m + 0.1 * s for m, s in zip(p_mild, p_strong)]
    expected = torch.tensor([averaged, p_third, averaged]).log()
    assert torch.allclose(scores, expected, atol=1e-6) and torch.equal(out_labels, labels)
    result = evaluate_logits(scores, out_labels, num_classes=3)
    assert result.top1_error == 1 / 3  # image 2 (class 1) is scored as class 0
    assert result.confusion.tolist() == [[1, 0, 0], [1, 0, 0], [0, 0, 1]]
    # the loss is the cross-entropy of the averaged probabilities
    loss = -(math.log(averaged[0]) + math.log(p_third[2]) + math.log(averaged[1])) / 3
    assert result.loss == pytest.approx(loss, rel=1e-6)


def test_views_of_different_sizes_run_one_pass_per_size():
    sizes = [torch.full((1, 3, 4, 4), 0.0), torch.full((1, 3, 6, 8), 0.0)]
    sizes[0][:, 0], sizes[1][:, 1] = 2.0, 2.0  # class 0 at one size, class 1 at the other
    scores, _ = view_scores(_ChannelMeans(), [(sizes, torch.tensor([1]))], precision="fp32")
    high, low = math.e**2 / (math.e**2 + 2), 1 / (math.e**2 + 2)
    expected = torch.tensor([[(high + low) / 2, (low + high) / 2, low]]).log()
    assert torch.allclose(scores, expected, atol=1e-6)
