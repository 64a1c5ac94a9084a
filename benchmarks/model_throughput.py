"""Training-step throughput of the paper's networks, fp32 NCHW against bf16 autocast +
channels_last, measured side by side in one run, with the ratio and the fraction of this
device's own bf16 matmul rate that the step reaches.

Synthetic inputs, no data loading: this isolates the network's cost (the trainer's benchmark
adds the data path). One step = forward, backward, SGD update.

    python benchmarks/model_throughput.py                       # CPU defaults
    python benchmarks/model_throughput.py --device cuda --steps 30
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from reslearn.models import create_model, profile_model

DEFAULT_CASES = ("resnet20:128:32", "resnet56:128:32", "resnet50:32:224")


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` so that wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_tflops(device: torch.device, dtype: torch.dtype, size: int, seconds: float) -> float:
    """Measured dense matmul rate in TFLOP/s (2 FLOPs per multiply-add)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    synchronize(device)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        count += 1
        if count % 4 == 0:
            synchronize(device)
    synchronize(device)
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e12


def step_rate(
    name: str, batch: int, size: int, device: torch.device, fast: bool, steps: int, warmup: int
) -> float:
    """Images per second of full training steps for one model and configuration."""
    model = create_model(name).to(device)
    memory_format = torch.channels_last if fast else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(batch, 3, size, size, device=device).to(memory_format=memory_format)
    y = torch.randint(0, model.num_classes, (batch,), device=device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if fast else nullcontext()

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    """Parse arguments, run every case in both configurations, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--cases", nargs="+", default=list(DEFAULT_CASES), metavar="MODEL:BATCH:SIZE"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--matmul-size", type=int, default=2048)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)

    peak = matmul_tflops(device, torch.bfloat16, args.matmul_size, seconds=2.0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"device {name}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
        f"bf16 matmul {peak:.3f} TFLOP/s ({args.matmul_size}^3)"
    )
    print(
        f"{'model':<10} {'batch':>5} {'px':>4} {'fp32 NCHW img/s':>16} "
        f"{'bf16+CL img/s':>14} {'ratio':>6} {'of bf16 peak':>13}"
    )
    for case in args.cases:
        model_name, batch, size = case.split(":")
        batch, size = int(batch), int(size)
        slow = step_rate(model_name, batch, size, device, False, args.steps, args.warmup)
        fast = step_rate(model_name, batch, size, device, True, args.steps, args.warmup)
        # A training step costs about 3x the forward pass (forward + two backward products).
        flops_per_image = 3 * 2 * profile_model(model_name, input_size=size).macs
        fraction = fast * flops_per_image / (peak * 1e12)
        print(
            f"{model_name:<10} {batch:>5} {size:>4} {slow:>16.1f} {fast:>14.1f} "
            f"{fast / slow:>5.2f}x {fraction:>12.0%}"
        )


if __name__ == "__main__":
    main()
