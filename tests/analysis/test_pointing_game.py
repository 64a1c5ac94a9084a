"""Do the maps mean something? On a synthetic task where the class is the colour of a square at
a random position, a briefly trained ResNet-20's CAM peak should land inside the square."""

import numpy as np
import pytest
import torch
from PIL import Image

from reslearn.analysis.cam import class_activation_maps, pointing_game
from reslearn.analysis.upsample import upsample
from reslearn.data.device_data import to_device_uint8
from reslearn.train import TrainConfig, train
from reslearn.weights import load_weights

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)

SIZE, SIDE = 32, 10  # image side and object side in pixels
COLOURS = ((220, 40, 40), (40, 200, 40), (50, 60, 230))


def make_images(count: int, rng: np.random.Generator):
    """Grey noise with one coloured square; returns images, labels and the squares' boxes."""
    images = rng.integers(70, 150, (count, SIZE, SIZE, 3), dtype=np.uint8)
    images[..., 1:] = images[..., :1]  # grey background
    labels = rng.integers(0, len(COLOURS), count)
    tops = rng.integers(0, SIZE - SIDE + 1, count)
    lefts = rng.integers(0, SIZE - SIDE + 1, count)
    for image, label, top, left in zip(images, labels, tops, lefts):
        image[top : top + SIDE, left : left + SIDE] = COLOURS[label]
    boxes = np.stack([tops, lefts, tops + SIDE, lefts + SIDE], 1)
    return images, labels, boxes


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pointing")
    rng = np.random.default_rng(0)
    for split, count in (("train", 900), ("test", 30)):
        images, labels, _ = make_images(count, rng)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / "squares" / split / f"c{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / f"{i}.png")
    config = TrainConfig(
        data=str(root / "squares"), model="resnet20", recipe="fast", iterations=150,
        batch_size=64, cache_dir=str(root / "cache"), eval_every=150,
    )  # fmt: skip
    run = train(config, root / "run", quiet=True)
    return load_weights(run.run_dir / "model.safetensors")


def test_pointing_game_on_hand_made_maps():
    """Peaks placed by hand: inside, on each edge (bottom and right exclusive), outside."""
    peaks = [(5, 5), (2, 3), (6, 3), (2, 8), (4, 9), (0, 0)]
    expected = [True, True, False, True, False, False]
    maps = torch.zeros(len(peaks), 10, 12)
    for i, (row, col) in enumerate(peaks):
        maps[i, row, col] = 1.0
    maps[:, 9, 11] = 0.5  # a lower second peak never wins
    boxes = torch.tensor([[2, 3, 6, 9]] * len(peaks))  # rows 2-5, columns 3-8
    assert pointing_game(maps, boxes).tolist() == expected
    maps[0, 9, 11] = 2.0  # now the peak is outside the box
    assert not pointing_game(maps[:1], boxes[:1]).item()


@pytest.mark.slow
def test_cam_peaks_land_on_the_object(trained):
    images, labels, boxes = make_images(300, np.random.default_rng(1))
    x = trained.normalizer(to_device_uint8(images, "cpu"))
    result = class_activation_maps(trained.model, x)
    accuracy = (result.classes[:, 0].numpy() == labels).mean()
    maps = upsample(result.maps[:, 0], (SIZE, SIZE), "bilinear")
    hits = pointing_game(maps, torch.from_numpy(boxes)).float().mean().item()
    print(f"\npointing game: {hits:.1%} of CAM peaks inside the object (accuracy {accuracy:.1%})")
    assert accuracy > 0.9
    assert hits >= 0.9
