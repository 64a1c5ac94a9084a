"""The streaming loader: decoding, per-image views, step-keyed batches, test views."""

import numpy as np
import pytest
import torch
from PIL import Image

from reslearn.data.decode import BadImageError
from reslearn.data.imagenet_views import center_view, multiscale_views, ten_crop_views
from reslearn.data.normalize import Normalizer
from reslearn.data.sampling import epoch_order
from reslearn.data.sources import list_image_folder
from reslearn.data.stream import (
    StepBatches,
    StreamData,
    TrainViews,
    TrainViewSettings,
    read_rgb,
)
from reslearn.data.stream_eval import StreamEval, fit_stream_normalizer
from reslearn.evaluate import view_scores
from reslearn.models import create_model

SMALL = TrainViewSettings(shorter=(72, 96), crop=64, lighting=0.1)


def test_read_rgb_decodes_jpeg_grey_and_transparent_png(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=95)
    image = read_rgb(str(tmp_path / "a.jpg"))
    assert image.shape == (3, 30, 40) and image.dtype == torch.uint8
    reference = np.asarray(Image.open(tmp_path / "a.jpg").convert("RGB"))
    assert np.abs(image.permute(1, 2, 0).numpy().astype(int) - reference).max() <= 2

    Image.fromarray(pixels[..., 0]).save(tmp_path / "grey.jpg")
    grey = read_rgb(str(tmp_path / "grey.jpg"))
    assert grey.shape == (3, 30, 40) and torch.equal(grey[0], grey[2])

    rgba = np.zeros((8, 8, 4), np.uint8)  # fully transparent: white after compositing
    Image.fromarray(rgba).save(tmp_path / "clear.png")
    assert (read_rgb(str(tmp_path / "clear.png")) == 255).all()


def test_a_truncated_or_fake_image_is_named(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "whole.jpg")
    data = (tmp_path / "whole.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "notes.jpg").write_text("not an image")
    for name in ("cut.jpg", "notes.jpg"):
        with pytest.raises(BadImageError, match=name):
            read_rgb(str(tmp_path / name))


def test_training_views_are_a_pure_function_of_seed_step_and_index(photo_folder):
    files, labels = list_image_folder(photo_folder).splits["train"]
    views = TrainViews(files, labels, SMALL, seed=3)
    a, label, offset, bad = views[(5, 7)]
    b, *_ = views[(5, 7)]
    c, *_ = views[(5, 8)]
    assert a.shape == (3, 64, 64) and a.dtype == torch.uint8 and offset.shape == (3,)
    assert label == labels[5] and bad == ""
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_step_batches_split_the_global_batch_into_parts():
    whole = list(StepBatches(50, batch_size=8, seed=1, parts=1, mine=[0], start=0, stop=9))
    split = list(StepBatches(50, batch_size=8, seed=1, parts=4, mine=[0, 1, 2, 3], start=0, stop=9))
    rank1 = list(StepBatches(50, batch_size=8, seed=1, parts=4, mine=[2, 3], start=0, stop=9))
    assert len(whole) == 9 and len(split) == 36 and len(rank1) == 18
    for step in range(9):
        joined = sum(split[4 * step : 4 * step + 4], [])
        assert joined == whole[step]
        assert rank1[2 * step] + rank1[2 * step + 1] == joined[4:]
    # 6 steps per epoch (50 // 8): step 6 starts epoch 1's order
    order = epoch_order(50, 1, 1)
    assert [i for i, _ in whole[6]] == order[:8].tolist()
    assert {s for _, s in whole[6]} == {6}


def test_stream_batches_do_not_depend_on_workers_or_where_they_start(photo_folder):
    files, labels = list_image_folder(photo_folder).splits["train"]
    normalizer = Normalizer(torch.full((3, 1, 1), 0.5), torch.ones(3, 1, 1))

    def data(workers):
        return StreamData(
            files, labels, normalizer, device=torch.device("cpu"),
            settings=SMALL, workers=workers, stop=6,
        )  # fmt: skip

    options = dict(batch_size=8, seed=0, parts=2, mine=(0, 1))
    inline, pooled = data(0), data(2)
    first = [inline.micro_batches(step, **options) for step in range(4)]
    assert [len(parts) for parts in first] == [2, 2, 2, 2]
    images, targets = first[3][1]
    assert images.shape == (4, 3, 64, 64) and images.is_contiguous(
        memory_format=torch.channels_last
    )
    late = pooled.micro_batches(3, **options)  # a fresh start at step 3, through 2 workers
    for (x, y), (u, v) in zip(first[3], late):
        assert torch.equal(x, u) and torch.equal(y, v)
    again = inline.micro_batches(1, **options)  # going back restarts at that step
    assert torch.equal(again[0][0], first[1][0][0])
    pooled.close()


def test_per_pixel_mean_of_the_training_crops(photo_folder):
    files, _ = list_image_folder(photo_folder).splits["train"]
    normalizer = fit_stream_normalizer(files, "per-pixel", crop=64, seed=0)
    assert normalizer.mean.shape == (3, 64, 64)
    centres = torch.stack([center_view(read_rgb(f), shorter=73, crop=64) for f in files])
    assert normalizer(centres).mean().abs() < 1e-5  # every file was in the sample
    # class colours raise one channel for a third of the images: the mean image shows it
    assert (normalizer.mean.mean((1, 2)) > 0.3).all()
    assert normalizer.resized(90, 120).mean.shape == (3, 90, 120)


class _Counting(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model, self.shapes = model, []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.model(x)


@pytest.mark.parametrize("view", ["center", "10crop", "multiscale"])
def test_test_views_count_and_average(photo_folder, view):
    files, labels = list_image_folder(photo_folder).splits["test"]
    files, labels = files[:3], labels[:3]
    model = create_model("resnet18", num_classes=3).eval()
    counting = _Counting(model).eval()
    normalizer = Normalizer(torch.full((3, 1, 1), 0.45), torch.full((3, 1, 1), 0.25))
    evaluation = StreamEval(
        files, labels, normalizer, view=view, crop=64, batch_size=20, sides=(64, 80, 96)
    )
    batches = evaluation.batches(torch.device("cpu"))
    scores, out_labels = view_scores(counting, batches, precision="fp32", channels_last=False)
    assert scores.shape == (3, 3) and torch.equal(out_labels, torch.as_tensor(labels))
    inputs = sum(shape[0] for shape in counting.shapes)
    assert inputs == {"center": 3, "10crop": 30, "multiscale": 9}[view]
    if view == "multiscale":  # whole images at three sizes: shorter sides 64, 80, 96
        assert sorted({min(s[2:]) for s in counting.shapes}) == [64, 80, 96]
    # the oracle: each file's views made here, the model's softmax of each, averaged by hand
    shorter = round(64 * 256 / 224)
    for i, file in enumerate(files):
        image = read_rgb(file)
        if view == "center":
            views = [center_view(image, shorter=shorter, crop=64)[None]]
        elif view == "10crop":
            views = list(ten_crop_views(image, shorter=shorter, crop=64)[:, None])
        else:
            views = [v[None] for v in multiscale_views(image, (64, 80, 96))]
        with torch.no_grad():
            probs = [model(normalizer.resized(*v.shape[-2:])(v)).softmax(1)[0] for v in views]
        expected = sum(probs) / len(probs)
        assert torch.allclose(scores[i].exp(), expected, atol=1e-5), (view, i)


def test_decoding_on_the_device_gives_the_same_batches(write_photo_folder, tmp_path):
    root = write_photo_folder(tmp_path / "photos", ["a", "b"], {"train": 6})
    Image.open(root / "train" / "a" / "001.JPEG").save(root / "train" / "a" / "001.png")
    (root / "train" / "a" / "001.JPEG").unlink()  # one PNG: decoded by Pillow either way
    bad = root / "train" / "b" / "003.JPEG"
    bad.write_bytes(bad.read_bytes()[:400])  # truncated: the batch decode fails, then per file
    files, labels = list_image_folder(root).splits["train"]
    normalizer = Normalizer(torch.full((3, 1, 1), 0.5), torch.ones(3, 1, 1))

    def batches(on_device, skip_bad):
        data = StreamData(
            files, labels, normalizer, device=torch.device("cpu"),
            settings=SMALL, workers=0, stop=3, skip_bad=skip_bad, decode_on_device=on_device,
        )  # fmt: skip
        return [data.micro_batches(s, batch_size=12, seed=0)[0] for s in range(3)]

    with pytest.warns(UserWarning, match="003.JPEG"):
        in_workers = batches(False, True)
    with pytest.warns(UserWarning, match="003.JPEG"):
        on_device = batches(True, True)
    for (x, y), (u, v) in zip(in_workers, on_device):
        assert torch.equal(x, u) and torch.equal(y, v)
    with pytest.raises(BadImageError, match="003.JPEG"):
        batches(True, False)


def test_a_device_that_cannot_decode_hands_over_to_the_workers(photo_folder, monkeypatch):
    import reslearn.data.stream as stream

    real = stream.decode_jpeg

    def no_batches(data, **options):  # a device without a JPEG decoder
        if isinstance(data, list):
            raise RuntimeError("no nvJPEG here")
        return real(data, **options)

    monkeypatch.setattr(stream, "decode_jpeg", no_batches)
    files, labels = list_image_folder(photo_folder).splits["train"]
    normalizer = Normalizer(torch.full((3, 1, 1), 0.5), torch.ones(3, 1, 1))

    def batches(on_device):
        data = StreamData(
            files, labels, normalizer, device=torch.device("cpu"),
            settings=SMALL, workers=0, stop=3, decode_on_device=on_device,
        )  # fmt: skip
        return data, [data.micro_batches(s, batch_size=12, seed=0)[0] for s in range(3)]

    with pytest.warns(UserWarning, match="no nvJPEG here.*workers decode") as caught:
        switched, got = batches(True)
    assert sum("nvJPEG" in str(w.message) for w in caught) == 1  # said once
    assert not switched.decode_on_device
    for (x, y), (u, v) in zip(batches(False)[1], got):
        assert torch.equal(x, u) and torch.equal(y, v)
