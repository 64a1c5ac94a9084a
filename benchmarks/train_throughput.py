"""Trainer throughput against a tutorial-style baseline and against each forced precision,
side by side in one run.

For each case (model, batch, image size) it measures, on synthetic uint8 images:

- auto: ``reslearn.train.Trainer`` with its defaults: ``--precision auto`` measures bf16
  autocast, fp32 (and fp16 + GradScaler on GPUs without bf16) in channels_last and NCHW on this
  network and keeps the fastest (fp32 within 3%); the decision's own time is printed (measured
  with an empty cache, as a first run pays it; a second run reads the cache);
- each forced setting (``--precision fp32|bf16 --[no-]channels-last``) through the same trainer;
- baseline: the same model trained the way tutorials and most reference repositories do it:
  eager fp32 NCHW, a torch DataLoader (2 workers) over PIL images with torchvision transforms
  (RandomCrop with padding 4, RandomHorizontalFlip, ToTensor, Normalize);
- the on-device data path alone (gather + pad/crop/flip), which must be >= 10x the training rate;
- this device's matmul rate in fp32, bf16 and fp16, and the fraction of the fastest of them that
  the default reaches (a training step counts as 3x the forward multiply-adds, 2 FLOPs each).

The trainers are timed in interleaved rounds (each round times every setting once; a setting's
rate is its best round), so a noisy neighbour on a shared machine slows them all alike.

    python benchmarks/train_throughput.py
    python benchmarks/train_throughput.py --cases resnet20:128:32 --steps 30
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
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
from reslearn.device import device_name  # noqa: E402
from reslearn.models import create_model, profile_model  # noqa: E402
from reslearn.precision import Setting, auto_precisions  # noqa: E402
from reslearn.train import TrainConfig, Trainer  # noqa: E402

DEFAULT_CASES = ("resnet20:128:32", "resnet56:128:32", "resnet50:32:224")
_MATMUL_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


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


def trainer(name, images, labels, batch, device, setting: Setting | None, cache_dir: str):
    """Our Trainer over the same images (on ``device``): ``setting`` forced, or None for the
    defaults (auto), measured with an empty decision cache in ``cache_dir``."""
    u8 = to_device_uint8(images, device)
    data = DeviceData(u8, torch.from_numpy(labels), Normalizer.fit(u8))
    forced = {} if setting is None else {
        "precision": setting.precision, "channels_last": setting.channels_last
    }  # fmt: skip
    config = TrainConfig(
        data="synthetic", model=name, batch_size=batch, iterations=10**6, **forced
    ).resolve(len(labels))
    model = create_model(name, num_classes=10).to(device)
    previous = os.environ.get("RESLEARN_CACHE")
    os.environ["RESLEARN_CACHE"] = str(cache_dir)  # an empty cache: the first run's cost
    try:
        started = time.perf_counter()
        made = Trainer(config, model, data)
        made.decision_s = time.perf_counter() - started
    finally:
        if previous is None:
            del os.environ["RESLEARN_CACHE"]
        else:
            os.environ["RESLEARN_CACHE"] = previous
    return made


def time_steps(trainer: Trainer, first: int, steps: int) -> float:
    """Images/s of ``steps`` full training steps (data path included) from step ``first``."""
    synchronize(trainer.device)
    start = time.perf_counter()
    for step in range(first, first + steps):
        loss, _ = trainer.train_step(step)
    loss.item()
    synchronize(trainer.device)
    return trainer.config.batch_size * steps / (time.perf_counter() - start)


def interleaved_rates(trainers: dict[str, Trainer], steps: int, warmup: int, rounds: int):
    """The best of ``rounds`` timings of each trainer, the rounds interleaved."""
    for t in trainers.values():
        time_steps(t, 0, warmup)
    rates = dict.fromkeys(trainers, 0.0)
    for r in range(rounds):
        for key, t in trainers.items():
            rates[key] = max(rates[key], time_steps(t, warmup + r * steps, steps))
    return rates


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
    """Run every case, print one table per case."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), metavar="MODEL:BATCH:PX")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per setting")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="baseline DataLoader workers")
    parser.add_argument("--matmul-size", type=int, default=2048)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    peaks = {}
    for label, dtype in _MATMUL_DTYPES.items():
        try:
            peaks[label] = matmul_tflops(device, dtype, args.matmul_size, seconds=1.5)
        except RuntimeError:
            continue
    peak_name = max(peaks, key=peaks.get)
    matmuls = ", ".join(f"{k} {v:.3f}" for k, v in peaks.items())
    print(
        f"device {device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads; matmul TFLOP/s ({args.matmul_size}^3): {matmuls}; baseline: DataLoader "
        f"with {args.workers} workers, eager fp32 NCHW; rates are the best of {args.rounds} "
        f"interleaved rounds of {args.steps} steps"
    )
    settings = [Setting(p, cl) for p in auto_precisions(device) for cl in (True, False)]
    for case in args.cases:
        model_name, batch, size = case.split(":")
        batch, size = int(batch), int(size)
        count = max(4 * batch, 2048 if size <= 64 else 0)
        images = rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, count)
        with tempfile.TemporaryDirectory() as cache:
            auto = trainer(model_name, images, labels, batch, device, None, cache)
            trainers = {"auto": auto}
            for setting in settings:
                trainers[setting.label] = trainer(
                    model_name, images, labels, batch, device, setting, cache
                )
        rates = interleaved_rates(trainers, args.steps, args.warmup, args.rounds)
        data = data_path_rate(auto, 4 * args.steps)
        chose, decided = auto.precision_choice.setting.label, auto.decision_s
        del trainers, auto
        slow = baseline_rate(
            model_name, images, labels, batch, args.steps, args.warmup, args.workers
        )
        flops_per_image = 3 * 2 * profile_model(model_name, input_size=size).macs
        chosen = rates["auto"]
        best_forced = max(v for k, v in rates.items() if k != "auto")
        forced = [k for k in rates if k != "auto"]
        print(f"\n{model_name}, batch {batch}, {size} px")
        print(f"  {'tutorial loop (baseline)':<28} {slow:>9.1f} img/s")
        for key in forced:
            print(f"  {'forced ' + key:<28} {rates[key]:>9.1f} img/s  {rates[key] / slow:>5.2f}x")
        fraction = chosen * flops_per_image / (peaks[peak_name] * 1e12)
        print(
            f"  {'auto -> ' + chose:<28} {chosen:>9.1f} img/s  "
            f"{chosen / slow:>5.2f}x the baseline, {chosen / best_forced:.3f} of the fastest "
            f"forced, {fraction:.0%} of {peak_name} matmul peak; decided in "
            f"{decided:.1f} s (uncached)"
        )
        print(f"  data path alone {data:,.0f} img/s ({data / chosen:.0f}x the training rate)")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
