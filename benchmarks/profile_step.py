"""Where one training step's time goes: the real trainer's step (``Trainer.train_step``, data
path included) profiled with torch.profiler over a few warm steps, printed as one table of
groups (convolution forward and backward, batch norm, ReLU, residual add, option A's shortcut,
layout copies, optimizer, data path, ...) in ms per step and % of the step, then each
convolution layer's achieved GFLOP/s beside the matmul peak of the step's precision.
``--onednn`` adds oneDNN's own view: each primitive (convolution forward / backward data /
backward weights, reorder) with its implementation and time, parsed from ONEDNN_VERBOSE.

    python benchmarks/profile_step.py resnet20:128:32
    python benchmarks/profile_step.py resnet56:128:32 --precision fp32 --channels-last --onednn
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parent))
from model_throughput import matmul_tflops, synchronize  # noqa: E402
from onednn_verbose import onednn_table  # noqa: E402
from train_throughput import parse_case, synthetic, trainer  # noqa: E402

from reslearn.choices import PRECISIONS  # noqa: E402
from reslearn.device import device_name  # noqa: E402

_STEP, _DATA = "reslearn::step", "reslearn::data path"

#: (group, names): an event whose name is in ``names`` (or starts with it, for names ending in
#: "*") belongs to the group, and so do its children unless a rule claims them. First match wins.
GROUPS: list[tuple[str, tuple[str, ...]]] = [
    ("data path (gather, crop, flip)", (_DATA,)),
    ("optimizer (SGD, zero_grad)", ("Optimizer.*", "aten::_fused_sgd_")),
    ("layout copies and casts", (
        "aten::copy_", "aten::to", "aten::_to_copy", "aten::contiguous", "aten::clone",
        "ToCopyBackward0", "CloneBackward0",
    )),
    ("convolution forward", ("aten::conv2d", "aten::convolution", "aten::mkldnn_convolution")),
    ("convolution backward (data + weight)", (
        "ConvolutionBackward0", "aten::convolution_backward",
    )),
    ("batch norm forward", ("aten::batch_norm", "aten::native_batch_norm", "aten::_batch_norm*")),
    ("batch norm backward", ("NativeBatchNormBackward0", "aten::native_batch_norm_backward")),
    ("ReLU forward", ("aten::relu", "aten::relu_", "aten::clamp_min_")),
    ("ReLU backward", ("ReluBackward0", "ThresholdBackward0", "aten::threshold_backward")),
    ("option-A shortcut (subsample + zeros)", (
        "aten::slice", "aten::pad", "aten::constant_pad_nd", "aten::slice_backward",
        "SliceBackward0", "ConstantPadNdBackward0",
    )),
    ("residual add (forward, gradient sums)", ("aten::add", "aten::add_", "AddBackward0")),
    ("pooling, fc, loss", (
        "aten::adaptive_avg_pool2d", "aten::mean", "aten::linear", "aten::addmm", "aten::mm",
        "aten::cross_entropy_loss", "aten::log_softmax", "aten::_log_softmax",
        "aten::nll_loss*", "MeanBackward*", "AddmmBackward0", "LogSoftmaxBackward0",
        "NllLossBackward0", "TBackward0", "ViewBackward0", "aten::max_pool2d*", "MaxPool*",
    )),
]


def group_of(name: str) -> str | None:
    """The group an event's name belongs to, or None."""
    bare = name.removeprefix("autograd::engine::evaluate_function: ")
    for group, names in GROUPS:
        for rule in names:
            if bare == rule or (rule.endswith("*") and bare.startswith(rule[:-1])):
                return group
    return None


def attribute(events) -> tuple[dict[str, float], float, int]:
    """Self CPU time (us) per group over every profiled step, the steps' total, their count.

    An event's self time goes to its own group, or its nearest ancestor's, or "other"; the
    step's own self time (Python between operators) goes to "Python and dispatch"."""
    times: dict[str, float] = defaultdict(float)
    total, steps = 0.0, 0

    def walk(event, inherited: str) -> None:
        group = group_of(event.name) or inherited
        times[group] += event.self_cpu_time_total
        for child in event.cpu_children:
            walk(child, group)

    for event in events:
        if event.name == _STEP and event.cpu_parent is None:
            total += event.cpu_time_total
            steps += 1
            times["Python and dispatch (between operators)"] += event.self_cpu_time_total
            for child in event.cpu_children:
                walk(child, "other")
    return times, total, steps


def conv_layers(model: torch.nn.Module, made) -> list[dict]:
    """One record per convolution of the network: its name, input and weight shapes, FLOPs of
    its forward pass and of its backward pass (data gradient only where the input needs one)."""
    found = []

    def hook(module, inputs, output):
        x = inputs[0]
        per_output = 2 * module.weight.shape[1] * module.weight.shape[2] * module.weight.shape[3]
        forward = per_output * output.numel()
        found.append({
            "name": names[module], "input": tuple(x.shape),
            "weight": tuple(module.weight.shape), "forward": forward,
            "backward": forward * (2 if x.requires_grad else 1),
        })  # fmt: skip

    names = {m: n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    handles = [m.register_forward_hook(hook) for m in names]
    try:
        made.train_step(0)
    finally:
        for handle in handles:
            handle.remove()
    return found


def conv_table(events, layers: list[dict], steps: int, peak: float) -> list[str]:
    """Achieved GFLOP/s of each shape of convolution (layers of one shape are timed together:
    the profiler tells them apart by shapes only), forward and backward."""
    spent: dict[tuple, dict[str, float]] = defaultdict(lambda: {"forward": 0.0, "backward": 0.0})
    for event in events:
        shapes = event.input_shapes or []
        if event.name == "aten::convolution" and len(shapes) >= 2:
            key = (tuple(shapes[0]), tuple(shapes[1]))
            spent[key]["forward"] += event.cpu_time_total
        elif event.name == "aten::convolution_backward" and len(shapes) >= 3:
            key = (tuple(shapes[1]), tuple(shapes[2]))
            spent[key]["backward"] += event.cpu_time_total
    shapes: dict[tuple, list[dict]] = defaultdict(list)
    for layer in layers:
        shapes[(layer["input"], layer["weight"])].append(layer)
    lines = [
        f"{'convolution (layers of this shape)':<44} {'in -> out, kernel':<22} "
        f"{'fwd ms':>7} {'GFLOP/s':>8} {'bwd ms':>7} {'GFLOP/s':>8} {'of peak':>8}"
    ]
    for key, group in shapes.items():
        first, weight = group[0], key[1]
        label = first["name"] + (f" (+{len(group) - 1} more)" if len(group) > 1 else "")
        shape = f"{weight[1]}->{weight[0]}, {weight[2]}x{weight[3]}, {key[0][2]}px"
        fwd_ms = spent[key]["forward"] / 1e3 / steps
        bwd_ms = spent[key]["backward"] / 1e3 / steps
        fwd = sum(layer["forward"] for layer in group) / (fwd_ms / 1e3) / 1e9 if fwd_ms else 0
        bwd = sum(layer["backward"] for layer in group) / (bwd_ms / 1e3) / 1e9 if bwd_ms else 0
        both_ms = fwd_ms + bwd_ms
        both = sum(layer["forward"] + layer["backward"] for layer in group)
        of_peak = both / (both_ms / 1e3) / (peak * 1e12) if both_ms else math.nan
        lines.append(
            f"{label:<44} {shape:<22} {fwd_ms:>7.2f} {fwd:>8.0f} {bwd_ms:>7.2f} {bwd:>8.0f} "
            f"{of_peak:>8.0%}"
        )
    return lines


def parse_args(argv=None) -> argparse.Namespace:
    """The command line, checked: a bad case or precision ends in one line naming it."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("case", metavar="MODEL:BATCH:PX", help="e.g. resnet20:128:32")
    parser.add_argument(
        "--precision", default="auto", help=f"one of {', '.join(PRECISIONS)} (default: auto)"
    )
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument("--channels-last", dest="channels_last", action="store_true", default=None)
    layout.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--steps", type=int, default=5, help="profiled steps (default: 5)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default: 5)")
    parser.add_argument("--onednn", action="store_true", help="add oneDNN's primitives and times")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--matmul-size", type=int, default=2048)
    args = parser.parse_args(argv)
    if args.precision not in PRECISIONS:
        parser.error(f"unknown precision {args.precision!r}; choose from {', '.join(PRECISIONS)}")
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    try:
        args.model, args.batch, args.size = parse_case(args.case)
    except SystemExit as error:
        parser.error(str(error).removeprefix("error: "))
    return args


def main(argv=None) -> None:
    """Profile the case and print the tables."""
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    images, labels = synthetic(args.batch, args.size)
    forced = {"precision": args.precision}
    if args.channels_last is not None:
        forced["channels_last"] = args.channels_last
    with tempfile.TemporaryDirectory() as cache:
        made = trainer(args.model, images, labels, args.batch, device, None, cache, **forced)
    config = made.config
    setting = f"{config.precision} + {'channels_last' if config.channels_last else 'NCHW'}"
    data = made.data
    original = data.micro_batches

    def traced_batches(*a, **k):
        with record_function(_DATA):
            return original(*a, **k)

    data.micro_batches = traced_batches
    layers = conv_layers(made.model, made)
    for step in range(args.warmup):
        made.train_step(1 + step)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.precision, torch.float32)
    peak_before = matmul_tflops(device, dtype, args.matmul_size, seconds=1.0)
    synchronize(device)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        for step in range(args.steps):
            with record_function(_STEP):
                made.train_step(1 + args.warmup + step)
            synchronize(device)
    peak = max(peak_before, matmul_tflops(device, dtype, args.matmul_size, seconds=1.0))
    events = prof.events()
    times, total, steps = attribute(events)
    step_ms = total / 1e3 / steps
    print(
        f"{args.model}, batch {args.batch}, {args.size} px, {setting}; {device_name(device)}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; {steps} profiled steps "
        f"after {args.warmup} warm ones: {step_ms:.1f} ms per step, "
        f"{args.batch / step_ms * 1e3:,.0f} img/s under the profiler"
    )
    print(f"\n{'group':<44} {'ms/step':>8} {'% of step':>10}")
    for group, spent in sorted(times.items(), key=lambda kv: -kv[1]):
        print(f"{group:<44} {spent / 1e3 / steps:>8.2f} {spent / total:>10.1%}")
    print(
        f"\nmatmul peak ({args.matmul_size}^3, {config.precision}): {peak:.3f} TFLOP/s "
        "(the faster of two measurements, before and after the profile)"
    )
    for line in conv_table(events, layers, steps, peak):
        print(line)
    if args.onednn:
        print()
        for line in onednn_table(lambda step: made.train_step(step), 2 + args.warmup + steps):
            print(line)


if __name__ == "__main__":
    main()
