"""Inference speed, side by side in one run: batch-1 latency and batch-64 throughput of resnet20
(32 px) and resnet50 (224 px) under eager fp32, reslearn's default precision (``--precision
auto`` for inference: measured, cached), torch.compile (fp32) and onnxruntime on the CPU (the
ONNX file ``reslearn export`` writes), each with its speed-up against eager fp32. The variants
are timed in interleaved rounds (a setting's figure is its best round), so a noisy neighbour
slows them all alike.

    python benchmarks/inference.py
    python benchmarks/inference.py --models resnet20 --rounds 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from reslearn.data.normalize import Normalizer
from reslearn.device import device_name
from reslearn.export import export
from reslearn.models import create_model, model_info
from reslearn.precision import autocast, choose_for_model
from reslearn.weights import TrainedModel

Runner = Callable[[torch.Tensor], object]


def trained(name: str) -> TrainedModel:
    """The network with random weights, as export takes it."""
    size = model_info(name).input_size
    model = create_model(name).eval()
    normalizer = Normalizer(torch.zeros(3, 1, 1), torch.ones(3, 1, 1))
    metadata = {"model": name, "model_options": "{}"}
    return TrainedModel(model, [str(i) for i in range(model.num_classes)], normalizer,
                        (size, size), 3, metadata)  # fmt: skip


def runners(name: str, batch: int, folder: Path) -> dict[str, Runner]:
    """Each variant as a function of an input batch."""
    net = trained(name)
    model, size = net.model, net.image_size[0]
    choice = choose_for_model(
        model, device=torch.device("cpu"), precision="auto", channels_last=True,
        batch_size=batch, input_shape=(3, size, size), train=False,
        describe={"model": name, "options": {}},
    )  # fmt: skip
    fast = create_model(name).eval().to(memory_format=torch.channels_last)
    fast.load_state_dict(model.state_dict())
    plain = create_model(name).eval()
    plain.load_state_dict(model.state_dict())
    compiled = torch.compile(plain)
    pixels = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    onnx_file = folder / f"{name}-{batch}.onnx"
    export(net, onnx_file, format="onnx", images=pixels[:2], dynamic_batch=True)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def eager(x):
        with torch.inference_mode():
            return model(x)

    def default(x):
        with torch.inference_mode(), autocast(x.device, choice.precision):
            return fast(x.contiguous(memory_format=torch.channels_last))

    def compiled_fp32(x):
        with torch.inference_mode():
            return compiled(x)

    def ort(x):
        return session.run(None, {input_name: x.numpy()})

    label = f"reslearn default ({choice.setting.label})"
    return {"eager fp32": eager, label: default, "torch.compile fp32": compiled_fp32,
            "onnxruntime (CPU)": ort}  # fmt: skip


def timed(run: Runner, x: torch.Tensor, seconds: float) -> float:
    """Best seconds per call over calls repeated for about ``seconds``."""
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        run(x)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    """Measure every model and batch; print one table per case."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet50"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 64])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--seconds", type=float, default=1.0, help="per variant and round")
    args = parser.parse_args()
    cpu = torch.device("cpu")
    threads = torch.get_num_threads()
    print(f"device {device_name(cpu)}, torch {torch.__version__}, {threads} threads; best of "
          f"{args.rounds} interleaved rounds")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            size = model_info(name).input_size
            for batch in args.batches:
                variants = runners(name, batch, Path(folder))
                x = torch.randn(batch, 3, size, size)
                for run in variants.values():  # warm-up: compilation, allocator, primitives
                    run(x)
                    run(x)
                best = dict.fromkeys(variants, float("inf"))
                for _ in range(args.rounds):
                    for key, run in variants.items():
                        best[key] = min(best[key], timed(run, x, args.seconds))
                base = best["eager fp32"]
                print(f"\n{name} ({size} px), batch {batch}")
                for key, seconds in best.items():
                    figure = (f"{1000 * seconds:8.2f} ms" if batch == 1
                              else f"{batch / seconds:8.0f} img/s")  # fmt: skip
                    print(f"  {key:<44} {figure}  {base / seconds:5.2f}x")


if __name__ == "__main__":
    main()
