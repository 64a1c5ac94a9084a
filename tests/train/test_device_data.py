"""The on-device data path: normalisation, augmentation and determinism."""

import numpy as np
import pytest
import torch

from reslearn.data.device_data import DeviceData
from reslearn.data.normalize import Normalizer
from reslearn.data.sampling import validation_split
from reslearn.precision import Setting


def _images(count=64, channels=3, size=8):
    return torch.randint(0, 256, (count, channels, size, size), dtype=torch.uint8)


def test_per_pixel_mean_is_the_mean_image():
    images = _images()
    normalizer = Normalizer.fit(images)
    expected = images.double().mean(0) / 255
    torch.testing.assert_close(normalizer.mean.double(), expected, rtol=0, atol=1e-6)
    assert normalizer.mode == "per-pixel"
    assert normalizer(images).mean(0).abs().max() < 1e-5


def test_per_channel_statistics():
    images = _images()
    normalizer = Normalizer.fit(images, "per-channel")
    out = normalizer(images)
    torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(3), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.std((0, 2, 3)), torch.ones(3), rtol=0, atol=1e-3)


def test_unaugmented_batch_is_the_normalised_image():
    images = _images()
    normalizer = Normalizer.fit(images)
    data = DeviceData(images, torch.arange(64), normalizer)
    idx = torch.tensor([5, 2, 9])
    batch, labels = data.batch(idx, augment=False)
    torch.testing.assert_close(batch, normalizer(images[idx]))
    assert labels.tolist() == [5, 2, 9]
    assert batch.is_contiguous(memory_format=torch.channels_last)


def test_augmentation_is_a_shifted_possibly_flipped_window_of_the_padded_image():
    images = _images(count=32)
    normalizer = Normalizer.fit(images)
    data = DeviceData(images, torch.zeros(32), normalizer, pad=4)
    idx = torch.arange(32)
    batch, _ = data.batch(idx, seed=3, step=7)
    padded = torch.nn.functional.pad(normalizer(images), (4, 4, 4, 4))
    flips = 0
    for i in range(32):
        windows = [
            padded[i, :, y : y + 8, x : x + 8].flip(-1) if f else padded[i, :, y : y + 8, x : x + 8]
            for y in range(9)
            for x in range(9)
            for f in (False, True)
        ]
        matches = [k for k, w in enumerate(windows) if torch.equal(w, batch[i])]
        assert matches, f"image {i} is not a crop of its padded self"
        flips += matches[0] % 2
    assert 4 <= flips <= 28  # about half are flipped


def test_batches_are_a_pure_function_of_seed_and_step():
    images = _images()
    data = DeviceData(images, torch.zeros(64), Normalizer.fit(images))
    idx = torch.arange(16)
    a, _ = data.batch(idx, seed=1, step=5)
    data.batch(idx, seed=1, step=6)  # another step in between changes nothing
    b, _ = data.batch(idx, seed=1, step=5)
    c, _ = data.batch(idx, seed=1, step=6)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(data.permutation(0, 3), data.permutation(0, 3))
    assert not torch.equal(data.permutation(0, 3), data.permutation(0, 4))


def test_bf16_storage():
    images = _images()
    data = DeviceData(
        images, torch.zeros(64), Normalizer.fit(images), setting=Setting("bf16", True)
    )
    batch, _ = data.batch(torch.arange(4))
    assert batch.dtype == torch.bfloat16


def test_batches_come_in_the_settings_layout_with_the_same_values():
    images, normalizer = _images(), Normalizer.fit(_images())
    nhwc = DeviceData(images, torch.zeros(64), normalizer, setting=Setting("fp32", True))
    nchw = DeviceData(images, torch.zeros(64), normalizer, setting=Setting("fp32", False))
    a, _ = nhwc.batch(torch.arange(8), seed=3, step=2)
    b, _ = nchw.batch(torch.arange(8), seed=3, step=2)
    assert a.is_contiguous(memory_format=torch.channels_last) and not a.is_contiguous()
    assert b.is_contiguous()
    # the oracle: normalise the raw images by hand (no augmentation: the un-padded centre)
    expected = (images.float() / 255 - normalizer.mean) / normalizer.std
    plain, _ = nchw.batch(torch.arange(8), augment=False)
    assert torch.allclose(plain, expected[:8], atol=1e-6)
    assert torch.equal(a, b)


def test_validation_split_is_a_pure_function_of_the_seed():
    train, val = validation_split(100, 10, seed=0)
    assert len(val) == 10 and len(train) == 90
    assert not set(train) & set(val)
    again = validation_split(100, 10, seed=0)
    assert np.array_equal(val, again[1])
    assert not np.array_equal(val, validation_split(100, 10, seed=1)[1])
    with pytest.raises(ValueError, match="^val_split must be between 0 and 99"):
        validation_split(100, 100, seed=0)


def test_sample_indices_are_a_seeded_random_subset_not_the_first_images():
    from reslearn.data.sampling import sample_indices

    chosen = sample_indices(10_000, 2000)
    assert len(set(chosen.tolist())) == 2000 and list(chosen) == sorted(chosen)
    assert chosen.max() > 9000  # not just the first classes of a class-ordered folder
    assert (sample_indices(10_000, 2000) == chosen).all()
    assert (sample_indices(10_000, 2000, seed=1) != chosen).any()
    assert (sample_indices(50, None) == list(range(50))).all()
    assert (sample_indices(50, 80) == list(range(50))).all()
