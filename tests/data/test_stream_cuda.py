"""On a machine with a CUDA GPU: JPEGs decoded there (nvJPEG) give the views the CPU gives,
up to the decoders' rounding, and a streamed run trains there. Skipped where there is no GPU
(CI has none)."""

import json
import math

import pytest
import torch

from reslearn.data.normalize import Normalizer
from reslearn.data.sources import list_image_folder
from reslearn.data.stream import StreamData, TrainViewSettings
from reslearn.train import TrainConfig, train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

SMALL = TrainViewSettings(shorter=(72, 96), crop=64, lighting=0.1)


def test_gpu_decoding_matches_worker_decoding(photo_folder):
    files, labels = list_image_folder(photo_folder).splits["train"]
    normalizer = Normalizer(torch.full((3, 1, 1), 0.5), torch.full((3, 1, 1), 0.25))

    def first_batch(on_device):
        data = StreamData(
            files, labels, normalizer, device=torch.device("cuda"),
            settings=SMALL, workers=0, stop=1, decode_on_device=on_device,
        )  # fmt: skip
        return data.micro_batches(0, batch_size=12, seed=0)[0]

    (x, y), (u, v) = first_batch(False), first_batch(True)
    assert u.device.type == "cuda" and torch.equal(y.cpu(), v.cpu())
    # the same crops and flips for every image; pixel values within the decoders' and
    # resizers' rounding (normalised units: 0.05 x 0.25 x 255 ~ 3 grey levels). Per image, so
    # that one wrong crop or flip among the 12 cannot hide in the batch's average.
    per_image = (x - u.cpu()).abs().mean(dim=(1, 2, 3))
    assert per_image.shape == (12,)
    assert per_image.max() < 0.05, per_image.tolist()


def test_a_streamed_run_trains_on_the_gpu(photo_folder, tmp_path):
    config = TrainConfig(
        data=str(photo_folder), model="resnet18", recipe="imagenet-paper", crop_size=64,
        scale_range=[72, 96], batch_size=6, iterations=4, eval_every=4, workers=2,
        device="cuda",
    )  # fmt: skip
    result = train(config, tmp_path / "run", quiet=True)
    run_config = json.loads((result.run_dir / "config.json").read_text())
    assert run_config["environment"]["device"].startswith("cuda")
    records = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert losses and all(math.isfinite(loss) for loss in losses)
    # the error is a count of the 12 test images, and the one the last evaluation logged
    tested = [r for r in records if "test_error" in r]
    assert [r["step"] for r in tested] == [4]
    assert result.final["test_error"] == tested[-1]["test_error"]
    wrong = 12 * result.final["test_error"]
    assert wrong == pytest.approx(round(wrong))
