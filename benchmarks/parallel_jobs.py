"""Training throughput on a CPU: one process with every thread against N processes with
cores/N threads each (what ``reslearn reproduce --launcher local --jobs N`` does), side by
side in interleaved rounds, so a suite of independent runs knows which way is faster here.

Each configuration keeps its worker processes alive (model built, first steps taken) and times
fp32 channels_last SGD steps on synthetic batches for ``--seconds`` per round; N processes'
rates are summed. Printed: images/s of each configuration (median of the rounds, min-max
beside it) and their ratio.

    python benchmarks/parallel_jobs.py
    python benchmarks/parallel_jobs.py --model resnet56 --jobs 2 --rounds 5 --seconds 10
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import interleaved  # noqa: E402


def _worker(model_name: str, batch: int, threads: int, commands, results) -> None:
    """A training process: waits for "run SECONDS", trains that long, answers images/s."""
    import torch

    from reslearn.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(model_name, num_classes=10).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    images = torch.randn(batch, 3, 32, 32).to(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()

    for _ in range(3):  # warm-up: oneDNN's kernels chosen, memory allocated
        step()
    results.put("ready")
    while (command := commands.get()) is not None:
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < command:
            step()
            steps += 1
        results.put(steps * batch / (time.perf_counter() - start))


class Pool:
    """``jobs`` worker processes of ``threads`` threads each, timed together."""

    def __init__(self, model: str, batch: int, jobs: int, threads: int) -> None:
        context = mp.get_context("spawn")
        self.links = []
        for _ in range(jobs):
            commands, results = context.Queue(), context.Queue()
            process = context.Process(target=_worker,
                                      args=(model, batch, threads, commands, results))  # fmt: skip
            process.start()
            self.links.append((process, commands, results))
        for _, _, results in self.links:
            assert results.get(timeout=300) == "ready"

    def rate(self, seconds: float) -> float:
        """images/s of every process training at once for ``seconds``, summed."""
        for _, commands, _ in self.links:
            commands.put(seconds)
        return sum(results.get(timeout=seconds + 300) for _, _, results in self.links)

    def close(self) -> None:
        for process, commands, _ in self.links:
            commands.put(None)
            process.join(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--jobs", type=int, default=2, help="processes in the parallel case")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per entry")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one round")
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    threads = max(1, cores // args.jobs)
    one = Pool(args.model, args.batch, 1, cores)
    many = Pool(args.model, args.batch, args.jobs, threads)
    try:
        names = (f"1 process x {cores} threads", f"{args.jobs} processes x {threads} threads")
        figures = interleaved({names[0]: one.rate, names[1]: many.rate},
                              args.rounds, args.seconds)  # fmt: skip
    finally:
        one.close()
        many.close()
    print(f"{args.model}, batch {args.batch}, fp32 channels_last, {cores} cores, "
          f"{args.rounds} rounds of {args.seconds:g} s (images/s: median, min-max)")  # fmt: skip
    for name in names:
        print(f"  {name:28s} {figures[name].text(1)}")
    ratio = figures[names[1]].median / figures[names[0]].median
    print(f"  {names[1]} / {names[0]}: {ratio:.2f}x")


if __name__ == "__main__":
    main()
