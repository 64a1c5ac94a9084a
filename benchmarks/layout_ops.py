"""The layout-keeping operators (``reslearn.models.layout``: option A's shortcut and the global
average pool, whose backward hands back a channels_last gradient) against autograd's slice, pad
and adaptive pool, side by side in one run: full training steps of the same network, batch and
precision, timed in interleaved rounds (``timing.py``).

    python benchmarks/layout_ops.py
    python benchmarks/layout_ops.py --cases resnet20:128:32 resnet56:128:32 --precision fp32
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_throughput import synchronize  # noqa: E402
from timing import interleaved, noise_verdict, repeat_for  # noqa: E402
from train_throughput import parse_case  # noqa: E402

from reslearn.device import device_name  # noqa: E402
from reslearn.models import ZeroPadShortcut, create_model  # noqa: E402
from reslearn.precision import autocast  # noqa: E402


def autograd_ops(model: nn.Module) -> nn.Module:
    """A copy of ``model`` that runs autograd's own slice, pad and adaptive pool."""
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(module, ZeroPadShortcut):
            module.keep_layout = False
    if isinstance(plain.head_pool, nn.AdaptiveAvgPool2d):
        plain.head_pool = nn.AdaptiveAvgPool2d(1)
    return plain


def step_entry(model, batch, size, precision, device):
    """``run(seconds)``: SGD steps of ``model`` on one fixed batch, images/s."""
    model = model.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=generator, device=device)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, model.num_classes, (batch,), generator=generator, device=device)

    def step() -> int:
        with autocast(device, precision):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return batch

    return lambda seconds: repeat_for(seconds, step, lambda: synchronize(device))


def main() -> None:
    """Time both variants of every case and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["resnet20:128:32", "resnet56:128:32"])
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"device {device_name(device)}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.precision} + channels_last")  # fmt: skip
    for case in args.cases:
        name, batch, size = parse_case(case)
        torch.manual_seed(0)
        model = create_model(name, num_classes=10)
        entries = {
            "layout-keeping ops": step_entry(model, batch, size, args.precision, device),
            "autograd's ops": step_entry(autograd_ops(model), batch, size, args.precision, device),
            "layout-keeping again": step_entry(
                copy.deepcopy(model), batch, size, args.precision, device
            ),
        }
        figures = interleaved(entries, args.rounds, args.seconds)
        new, old = figures["layout-keeping ops"], figures["autograd's ops"]
        print(f"\n{case}: images/s, median of {args.rounds} rounds of {args.seconds:g} s")
        for key, figure in figures.items():
            print(f"  {key:<22} {figure.text():>24}")
        print(f"  speed-up {new.median / old.median:.3f}x")
        print("  " + noise_verdict(figures, ["layout-keeping ops", "layout-keeping again"]))


if __name__ == "__main__":
    main()
