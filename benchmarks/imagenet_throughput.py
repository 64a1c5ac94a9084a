"""ImageNet-scale speed, side by side in one run: ResNet-50 training and JPEG loading.

1. ResNet-50 training images/s at 224x224 on synthetic data: our trainer
   (``Trainer.train_step``: bf16 autocast + channels_last, fused SGD) against a plain eager
   fp32 NCHW loop (forward, cross-entropy, backward, SGD step), and their ratio.
2. Data loading images/s of the streaming loader (``reslearn.data.stream.StreamData``: decode,
   scale augmentation 256-480, 224 crop, flip, lighting, normalisation) on a folder of
   full-size JPEGs that the benchmark writes (ImageNet-like: 500 x 375 on average), with 0, 1
   and 2 DataLoader workers, and the ratio to 0 workers.

    python benchmarks/imagenet_throughput.py
    python benchmarks/imagenet_throughput.py --device cuda --batch 256 --steps 30 --workers 0 4 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_throughput import synchronize  # noqa: E402

from reslearn.data.normalize import Normalizer  # noqa: E402
from reslearn.data.stream import StreamData, TrainViewSettings  # noqa: E402
from reslearn.device import resolve_device  # noqa: E402
from reslearn.models import create_model  # noqa: E402
from reslearn.precision import Setting  # noqa: E402
from reslearn.train import TrainConfig, assemble_trainer, from_tensors  # noqa: E402


def plain_rate(device: torch.device, batch: int, steps: int, warmup: int) -> float:
    """Images/s of the textbook loop: eager fp32 NCHW ResNet-50, data already on the device."""
    torch.manual_seed(0)
    model = create_model("resnet50", num_classes=1000).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    images = torch.randn(batch, 3, 224, 224, device=device)
    labels = torch.randint(0, 1000, (batch,), device=device)
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def trainer_rate(device: torch.device, batch: int, steps: int, warmup: int) -> float:
    """Images/s of ``Trainer.train_step`` with its defaults on synthetic 224 px images."""
    torch.manual_seed(0)
    count = 2 * batch
    images = torch.randint(0, 256, (count, 3, 224, 224), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 1000, (count,), device=device)
    config = TrainConfig(
        data="synthetic", model="resnet50", batch_size=batch, iterations=10**6, pad=0
    )
    data = from_tensors(config, images, labels, test=(images[:8], labels[:8]))
    model = create_model("resnet50", num_classes=1000).to(device)
    trainer, _, _ = assemble_trainer(config, model, data, device=device)
    for step in range(warmup + steps):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        trainer.train_step(step)
    synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def write_jpegs(folder: Path, count: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """``count`` photo-like JPEGs (smooth colour fields plus grain), 400-600 x 300-450 px."""
    rng = np.random.default_rng(seed)
    files = []
    for i in range(count):
        width, height = int(rng.integers(400, 601)), int(rng.integers(300, 451))
        coarse = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        pixels = np.asarray(image, dtype=np.int16) + rng.integers(-12, 13, (height, width, 3))
        path = folder / f"{i:05d}.JPEG"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        files.append(str(path))
    return files, np.zeros(count, dtype=np.int64)


def loading_rate(files, labels, workers: int, batch: int, steps: int) -> float:
    """Images/s the streaming loader delivers to the CPU, after its first batch (worker start)."""
    normalizer = Normalizer(torch.full((3, 1, 1), 0.45), torch.ones(3, 1, 1))
    data = StreamData(
        files, labels, normalizer, device=torch.device("cpu"), setting=Setting("bf16", True),
        settings=TrainViewSettings(), workers=workers, stop=steps + 1,
    )  # fmt: skip
    data.micro_batches(0, batch_size=batch, seed=0)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        data.micro_batches(step, batch_size=batch, seed=0)
    rate = batch * steps / (time.perf_counter() - start)
    data.close()
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--batch", type=int, default=32, help="training batch (32)")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps (5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (2)")
    parser.add_argument("--images", type=int, default=192, help="JPEGs to write (192)")
    parser.add_argument("--load-batch", type=int, default=32, help="loading batch (32)")
    parser.add_argument("--load-steps", type=int, default=5, help="timed loading batches (5)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="(0 1 2)")
    parser.add_argument("--skip-training", action="store_true", help="only the loading part")
    args = parser.parse_args()
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads")

    if not args.skip_training:
        plain = plain_rate(device, args.batch, args.steps, args.warmup)
        ours = trainer_rate(device, args.batch, args.steps, args.warmup)
        print(f"\nresnet50 training, 224 px, batch {args.batch}, {args.steps} timed steps")
        print(f"  plain eager fp32 NCHW loop     {plain:8.1f} img/s")
        print(f"  reslearn Trainer (bf16 + NHWC) {ours:8.1f} img/s   {ours / plain:.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        files, labels = write_jpegs(Path(tmp), args.images)
        sizes = [Image.open(f).size for f in files[:50]]
        mean_w, mean_h = (round(float(np.mean(v))) for v in zip(*sizes))
        print(f"\nstreaming loader on {len(files)} JPEGs (~{mean_w} x {mean_h}, written in "
              f"{time.perf_counter() - started:.1f} s): decode, scale 256-480, crop 224, flip, "
              f"lighting, normalise; batch {args.load_batch}")  # fmt: skip
        base = None
        for workers in args.workers:
            rate = loading_rate(files, labels, workers, args.load_batch, args.load_steps)
            base = base or rate
            print(f"  {workers} workers  {rate:8.1f} img/s   {rate / base:.2f}x")


if __name__ == "__main__":
    main()
