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

Every entry, the matmul peaks included, is timed in interleaved rounds of ``--seconds`` each
(``timing.py``): a noisy neighbour slows them all alike, each figure is the median of its rounds
with the min-max spread beside it, and auto, a second trainer forced to auto's choice ("auto
again") and the forced setting equal to it measure the same work: when they disagree by more
than 5% the case is marked "NOISY, RERUN" and its figures should not be quoted.

    python benchmarks/train_throughput.py
    python benchmarks/train_throughput.py --cases resnet20:128:32 --rounds 5 --seconds 3
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
from timing import Entry, interleaved, noise_verdict, repeat_for  # noqa: E402

from reslearn.data.device_data import to_device_uint8  # noqa: E402
from reslearn.device import device_name  # noqa: E402
from reslearn.models import create_model, list_models, profile_model  # noqa: E402
from reslearn.precision import Setting, auto_precisions  # noqa: E402
from reslearn.train import TrainConfig, Trainer, assemble_trainer, from_tensors  # noqa: E402

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


def baseline_entry(name, images, labels, batch, workers) -> Entry:
    """``run(seconds)``: images/s of the tutorial loop (DataLoader + torchvision transforms,
    eager fp32 NCHW, persistent workers). Each round first takes, untimed, the batches the
    workers prepared while other entries were timed, so none of them is counted."""
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
    batches = _endless(loader)
    prepared = 2 * workers  # the DataLoader's default prefetch: 2 batches per worker

    def run(seconds: float) -> float:
        for _ in range(prepared):
            next(batches)
        x, y = next(batches)
        start, done = time.perf_counter(), 0
        while True:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += len(y)
            if time.perf_counter() - start >= seconds:
                break
            x, y = next(batches)
        return done / (time.perf_counter() - start)

    return run


def _endless(loader):
    """The loader's batches, epoch after epoch, without end."""
    while True:
        yield from loader


def trainer(
    name, images, labels, batch, device, setting: Setting | None, cache_dir: str, **forced
) -> Trainer:
    """Our Trainer over the same images (on ``device``): ``setting`` forced, or None for the
    defaults (auto; or what ``forced`` names: ``precision``, ``channels_last``), measured with an
    empty decision cache in ``cache_dir``."""
    u8 = to_device_uint8(images, device)
    if setting is not None:
        forced = {"precision": setting.precision, "channels_last": setting.channels_last}
    config = TrainConfig(
        data="synthetic", model=name, batch_size=batch, iterations=10**6, **forced
    )
    labels = torch.from_numpy(labels)
    data = from_tensors(config, u8, labels, test=(u8[:8], labels[:8]))
    model = create_model(name, num_classes=10).to(device)
    previous = os.environ.get("RESLEARN_CACHE")
    os.environ["RESLEARN_CACHE"] = str(cache_dir)  # an empty cache: the first run's cost
    try:
        started = time.perf_counter()
        made, _, choice = assemble_trainer(config, model, data, device=device)
        made.decision_s = time.perf_counter() - started
        made.precision_choice = choice
    finally:
        if previous is None:
            del os.environ["RESLEARN_CACHE"]
        else:
            os.environ["RESLEARN_CACHE"] = previous
    made.next_step = 0
    return made


def trainer_entry(made: Trainer) -> Entry:
    """``run(seconds)``: full training steps (data path included), each round continuing from
    the step the last one ended at, for at least ``seconds``; returns images/s."""

    def step() -> int:
        made.train_step(made.next_step)
        made.next_step += 1
        return made.config.batch_size

    return lambda seconds: repeat_for(seconds, step, lambda: synchronize(made.device))


def matmul_entry(device: torch.device, dtype: torch.dtype, size: int) -> Entry:
    """``run(seconds)``: this device's dense matmul rate in ``dtype``, TFLOP/s."""
    return lambda seconds: matmul_tflops(device, dtype, size, seconds)


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


def parse_case(case: str) -> tuple[str, int, int]:
    """``MODEL:BATCH:PX`` -> (model, batch, px); a one-line error naming the value otherwise."""
    parts = case.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or not parts[2].isdigit():
        raise SystemExit(f"error: a case is MODEL:BATCH:PX, e.g. resnet20:128:32; got {case!r}")
    name, batch, size = parts[0], int(parts[1]), int(parts[2])
    if name not in list_models():
        raise SystemExit(f"error: unknown model {name!r}; choose from {', '.join(list_models())}")
    if batch < 1 or size < 8:
        raise SystemExit(f"error: batch must be >= 1 and px >= 8; got {case!r}")
    return name, batch, size


def synthetic(batch: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 images (N, H, W, 3) and labels, enough for several batches."""
    rng = np.random.default_rng(seed)
    count = max(4 * batch, 2048 if size <= 64 else 0)
    return rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8), rng.integers(0, 10, count)


def peak_entries(device: torch.device, size: int) -> dict[str, Entry]:
    """One matmul entry per precision ``--precision auto`` chooses among on this device (a CPU's
    fp16 matmul is emulated and takes seconds per call, and no candidate uses it)."""
    return {
        f"matmul {label}": matmul_entry(device, _MATMUL_DTYPES[label], size)
        for label in auto_precisions(device)
    }


def run_case(case: str, args, device: torch.device) -> None:
    """Time one case's entries in interleaved rounds and print its table."""
    model_name, batch, size = parse_case(case)
    images, labels = synthetic(batch, size)
    settings = [Setting(p, cl) for p in auto_precisions(device) for cl in (True, False)]
    with tempfile.TemporaryDirectory() as cache:
        auto = trainer(model_name, images, labels, batch, device, None, cache)
        chose, decided = auto.precision_choice.setting, auto.decision_s
        again = trainer(model_name, images, labels, batch, device, chose, cache)
        forced = {s.label: trainer(model_name, images, labels, batch, device, s, cache)
                  for s in settings}  # fmt: skip
    entries = peak_entries(device, args.matmul_size)
    entries["tutorial loop"] = baseline_entry(model_name, images, labels, batch, args.workers)
    entries["auto"] = trainer_entry(auto)
    entries["auto again"] = trainer_entry(again)
    entries.update({f"forced {k}": trainer_entry(t) for k, t in forced.items()})
    figures = interleaved(entries, args.rounds, args.seconds)
    data = data_path_rate(auto, 20)
    flops_per_image = 3 * 2 * profile_model(model_name, input_size=size).macs
    peaks = {k.split()[1]: f for k, f in figures.items() if k.startswith("matmul")}
    peak_name = max(peaks, key=lambda k: peaks[k].median)
    slow, chosen = figures["tutorial loop"].median, figures["auto"].median
    best_forced = max(f.median for k, f in figures.items() if k.startswith("forced"))
    print(f"\n{model_name}, batch {batch}, {size} px (median of {args.rounds} rounds of "
          f"{args.seconds:g} s, min-max in brackets)")  # fmt: skip
    for key, figure in peaks.items():
        print(f"  {'matmul ' + key + ' TFLOP/s':<30} {figure.text(3):>24}")
    print(f"  {'tutorial loop (baseline)':<30} {figures['tutorial loop'].text():>24} img/s")
    for key in forced:
        figure = figures[f"forced {key}"]
        print(f"  {'forced ' + key:<30} {figure.text():>24} img/s  {figure.median / slow:>5.2f}x")
    fraction = chosen * flops_per_image / (peaks[peak_name].median * 1e12)
    print(
        f"  {'auto -> ' + chose.label:<30} {figures['auto'].text():>24} img/s  "
        f"{chosen / slow:>5.2f}x the baseline, {chosen / best_forced:.3f} of the fastest "
        f"forced, {fraction:.0%} of the {peak_name} matmul peak; decided in {decided:.1f} s "
        "(uncached)"
    )
    print(f"  {'auto again (same setting)':<30} {figures['auto again'].text():>24} img/s")
    print(f"  data path alone {data:,.0f} img/s ({data / chosen:.0f}x the training rate)")
    print("  " + noise_verdict(figures, ["auto", "auto again", f"forced {chose.label}"]))
    sys.stdout.flush()


def main() -> None:
    """Run every case, print one table per case."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES), metavar="MODEL:BATCH:PX")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per entry")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one timed round")
    parser.add_argument("--workers", type=int, default=2, help="baseline DataLoader workers")
    parser.add_argument("--matmul-size", type=int, default=2048)
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be >= 1 and --seconds > 0")
    for case in args.cases:
        parse_case(case)
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(
        f"device {device_name(device)}, torch {torch.__version__}, {torch.get_num_threads()} "
        f"threads; baseline: DataLoader with {args.workers} workers, eager fp32 NCHW; the "
        f"matmul peaks ({args.matmul_size}^3) are timed inside the same interleaved rounds"
    )
    for case in args.cases:
        run_case(case, args, device)


if __name__ == "__main__":
    main()
