"""Trainer throughput against a tutorial-style baseline, side by side in one run.

For each case (model, batch, image size) it measures, on synthetic uint8 images:

- ours: ``reslearn.train.Trainer.train_step`` -- the data set on the device, batch-wise
  augmentation there, bf16 autocast + channels_last (the trainer's defaults), and the same
  trainer with ``--precision fp32`` (NCHW) to show what the precision alone is worth;
- baseline: the same model trained the way tutorials and most reference repositories do it:
  eager fp32 NCHW, a torch DataLoader (2 workers) over PIL images with torchvision transforms
  (RandomCrop with padding 4, RandomHorizontalFlip, ToTensor, Normalize);
- the on-device data path alone (gather + pad/crop/flip), which must be >= 10x the training rate;
- this device's bf16 matmul rate, and the fraction of it our training step reaches (a training
  step counts as 3x the forward multiply-adds, 2 FLOPs each).

    python benchmarks/train_throughput.py
    python benchmarks/train_throughput.py --cases resnet20:128:32 --steps 30
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_throughput import matmul_tflops, synchronize  # noqa: E402

from reslearn.data.device_data import DeviceData, to_device_uint8  # noqa: E402
from reslearn.data.normalize import Normalizer  # noqa: E402
from reslearn.models import create_model, profile_model  # noqa: E402
from reslearn.train import TrainConfig, Trainer  # noqa: E402

DEFAULT_CASES = ("resnet20:128:32", "resnet56:128:32", "resnet50:32:224")


class PilImages(torch.utils.data.Dataset):
    """uint8 images served as PIL images, as torchvision.datasets.CIFAR10 serves them."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def baseline_rate(name, images, labels, batch, steps, warmup, workers) -> float:
    """Images/s of the tutorial loop: DataLoader + torchvision transforms, eager fp32 NCHW."""
    size = images.shape[1]
    mean = (images.reshape(-1, 3).mean(0) / 255).tolist()
    std = (images.reshape(-1, 3).std(0) / 255).tolist()
    transform = transforms.Compose(
        [
            transforms.RandomCrop(size, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    loader = torch.utils.data.DataLoader(
        PilImages(images, labels, transform),
        batch_size=batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    model = create_model(name, num_classes=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    model.train()
    done, start = 0, None
    while done < warmup + steps:
        for x, y in loader:
            if done == warmup:
                start = time.perf_counter()
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            if done == warmup + steps:
                break
    return batch * steps / (time.perf_counter() - start)


def ours(name, images, labels, batch, device, precision):
    """Our Trainer over the same images (on ``device``)."""
    u8 = to_device_uint8(images, device)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    data = DeviceData(u8, torch.from_numpy(labels), Normalizer.fit(u8), dtype=dtype)
    config = TrainConfig(
        data="synthetic",
        model=name,
        precision=precision,
        channels_last=precision == "bf16",
        batch_size=batch,
        iterations=10**6,
    ).resolve(len(labels))
    model = create_model(name, num_classes=10).to(device)
    return Trainer(config, model, data)


def trainer_rate(trainer: Trainer, steps: int, warmup: int) -> float:
    """Images/s of full training steps (data path included)."""
    for step in range(warmup):
        trainer.train_step(step)
    synchronize(trainer.device)
    start = time.perf_counter()
    for step in range(warmup, warmup + steps):
        loss, _ = trainer.train_step(step)
    loss.item()
    synchronize(trainer.device)
    return trainer.config.batch_size * steps / (time.perf_counter() - start)


def data_path_rate(trainer: Trainer, steps: int) -> float:
    """Images/s of the on-device data path alone (gather, pad, crop, flip)."""
    trainer.batch(0)
    synchronize(trainer.device)
    start = time.perf_counter()
    for step in range(steps):
        images, _ = trainer.batch(step)
    images.sum().item()
    synchronize(trainer.device)
    return trainer.config.batch_size * steps / (time.perf_counter() - start)


def main() -> None:
    """Run every case, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), metavar="MODEL:BATCH:PX")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="baseline DataLoader workers")
    parser.add_argument("--matmul-size", type=int, default=2048)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    peak = matmul_tflops(device, torch.bfloat16, args.matmul_size, seconds=2.0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {name}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"bf16 matmul {peak:.3f} TFLOP/s ({args.matmul_size}^3); baseline: DataLoader with "
        f"{args.workers} workers, eager fp32 NCHW; ours: bf16 autocast + channels_last"
    )
    header = (
        f"{'model':<9} {'batch':>5} {'px':>4} {'baseline img/s':>15} {'ours fp32':>10} "
        f"{'ours img/s':>11} {'ratio':>6} {'of bf16 peak':>13} {'data path img/s':>16} "
        f"{'data/train':>11}"
    )
    print(header)
    for case in args.cases:
        model_name, batch, size = case.split(":")
        batch, size = int(batch), int(size)
        count = max(4 * batch, 2048 if size <= 64 else 0)
        images = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, count)
        trainer = ours(model_name, images, labels, batch, device, "bf16")
        fast = trainer_rate(trainer, args.steps, args.warmup)
        data = data_path_rate(trainer, 4 * args.steps)
        del trainer
        plain = trainer_rate(
            ours(model_name, images, labels, batch, device, "fp32"), args.steps, args.warmup
        )
        slow = baseline_rate(
            model_name, images, labels, batch, args.steps, args.warmup, args.workers
        )
        flops_per_image = 3 * 2 * profile_model(model_name, input_size=size).macs
        fraction = fast * flops_per_image / (peak * 1e12)
        print(
            f"{model_name:<9} {batch:>5} {size:>4} {slow:>15.1f} {plain:>10.1f} {fast:>11.1f} "
            f"{fast / slow:>5.2f}x {fraction:>12.0%} {data:>16.0f} {data / fast:>10.0f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
