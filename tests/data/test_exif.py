"""A JPEG's EXIF orientation (a photo taken sideways is stored sideways, with a tag saying how to
turn it) is applied in every place a file is decoded: the in-memory loader, the streaming
loader's workers and its device decoding, and predict / cam."""

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from reslearn.data import load_dataset
from reslearn.data.decode import decode_file
from reslearn.data.image_files import load_image
from reslearn.data.normalize import Normalizer
from reslearn.data.sources import list_image_folder
from reslearn.data.stream import StreamData, TrainViewSettings, read_rgb

HEIGHT, WIDTH = 48, 80  # not square: a quarter turn shows in the shape


def _upright() -> np.ndarray:
    """Four flat quadrants of different colours: any turn or mirror moves them."""
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    h, w = HEIGHT // 2, WIDTH // 2
    image[:h, :w], image[:h, w:] = (230, 30, 30), (30, 230, 30)
    image[h:, :w], image[h:, w:] = (30, 30, 230), (230, 230, 30)
    return image


# What a camera stores for each EXIF orientation, given the upright picture: the inverse of the
# display transform the tag names (the EXIF specification's table, written with NumPy).
STORED = {
    1: lambda u: u,
    2: lambda u: u[:, ::-1],  # displayed mirrored left-right
    3: lambda u: u[::-1, ::-1],  # displayed turned 180 degrees
    4: lambda u: u[::-1],  # displayed mirrored top-bottom
    5: lambda u: u.transpose(1, 0, 2),  # displayed transposed
    6: lambda u: np.rot90(u, 1),  # displayed turned 90 degrees clockwise
    7: lambda u: np.rot90(u, 2).transpose(1, 0, 2),  # displayed transversed
    8: lambda u: np.rot90(u, -1),  # displayed turned 90 degrees counter-clockwise
}


def _save(path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = np.ascontiguousarray(STORED[orientation](_upright()))
    Image.fromarray(stored).save(path, quality=95, exif=exif)


def _close(image: np.ndarray) -> bool:
    """Equal to the upright picture up to JPEG's loss (a mean difference of a few levels)."""
    if image.shape != (HEIGHT, WIDTH, 3):
        return False
    return float(np.abs(image.astype(int) - _upright()).mean()) < 4


@pytest.fixture(scope="module")
def exif_folder(tmp_path_factory):
    """Two classes; every orientation in each."""
    root = tmp_path_factory.mktemp("exif") / "photos"
    for split in ("train", "test"):
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)
            for orientation in STORED:
                _save(root / split / name / f"{orientation}.jpg", orientation)
    return root


@pytest.fixture(params=["torchvision applies it", "Pillow applies it"])
def jpeg_exif(request, monkeypatch):
    """This torchvision's decode_jpeg applies the orientation; an older one does not, and then
    JPEGs that are not upright go through Pillow. Both ways are tested."""
    import reslearn.data.stream as stream

    if request.param == "Pillow applies it":
        monkeypatch.setattr(stream, "_JPEG_EXIF", False)
        monkeypatch.setattr(stream, "_EXIF", {})
    return request.param


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_every_reader_turns_the_image_upright(exif_folder, orientation, jpeg_exif):
    path = exif_folder / "train" / "a" / f"{orientation}.jpg"
    with Image.open(path) as raw:  # the stored pixels really are turned
        assert raw.size == ((WIDTH, HEIGHT) if orientation < 5 else (HEIGHT, WIDTH))
    assert _close(decode_file(str(path)))  # the in-memory loader's decoder (Pillow)
    assert _close(read_rgb(str(path)).permute(1, 2, 0).numpy())  # the workers (torchvision)
    assert _close(load_image(path, in_channels=3, size=(HEIGHT, WIDTH)))  # predict and cam
    square = load_image(path, in_channels=3, size=(HEIGHT, HEIGHT))  # shorter side, centre crop
    assert square.shape == (HEIGHT, HEIGHT, 3)
    left, right = square[HEIGHT // 4, 2], square[HEIGHT // 4, -3]  # upper left and upper right
    assert left[0] > 150 > left[1] and right[1] > 150 > right[0]


def test_the_in_memory_loader_turns_every_image(exif_folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # turned sides must not look like mixed sizes
        data = load_dataset(str(exif_folder), cache_dir=tmp_path, workers=0, progress=False)
    for split in (data.train, data.test):
        assert split.images.shape == (16, HEIGHT, WIDTH, 3)
        assert all(_close(image) for image in split.images)


SETTINGS = TrainViewSettings(shorter=(48, 56), crop=40, lighting=0.1)


def _batches(files, labels, device: str, on_device: bool, steps: int = 2):
    normalizer = Normalizer(torch.full((3, 1, 1), 0.5), torch.full((3, 1, 1), 0.25))
    data = StreamData(
        files, labels, normalizer, device=torch.device(device),
        settings=SETTINGS, workers=0, stop=steps, decode_on_device=on_device,
    )  # fmt: skip
    return [data.micro_batches(s, batch_size=8, seed=0)[0] for s in range(steps)]


def test_device_decoding_stays_bit_identical_to_the_workers(exif_folder, jpeg_exif):
    files, labels = list_image_folder(exif_folder).splits["train"]
    for (x, y), (u, v) in zip(_batches(files, labels, "cpu", False),
                              _batches(files, labels, "cpu", True)):  # fmt: skip
        assert torch.equal(x, u) and torch.equal(y, v)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_gpu_decoding_turns_the_images_as_the_workers_do(exif_folder):
    """nvJPEG ignores the EXIF orientation: such JPEGs go through the CPU reader instead."""
    files, labels = list_image_folder(exif_folder).splits["train"]
    for (x, y), (u, v) in zip(_batches(files, labels, "cuda", False),
                              _batches(files, labels, "cuda", True)):  # fmt: skip
        assert u.device.type == "cuda" and torch.equal(y.cpu(), v.cpu())
        per_image = (x - u).abs().mean(dim=(1, 2, 3))  # a turned image would differ by ~2
        assert per_image.max() < 0.05, per_image.tolist()
