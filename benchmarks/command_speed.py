"""Whole commands, this tree against an earlier revision, side by side in one run: `reslearn
eval` of a data set's test split and `reslearn explore` of 8 images, each run as a user runs it
(a fresh interpreter: imports, data cache, network, output file), in interleaved rounds.

The earlier revision is checked out into a temporary git worktree (removed afterwards) and run
with the same interpreter and packages; eval's top-1 error must come out the same in both.

    python benchmarks/command_speed.py --data data/cifar10-jpeg --before 917b910
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import Figure, interleaved, noise_verdict

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = "reslearn:resnet20-cifar10"


_MAIN = "import sys; from reslearn.cli import main; sys.exit(main())"


def _entry(source: Path, argv: list[str], results: list):
    """An Entry that runs the command once (a round is one run) and keeps its stdout."""

    def run(seconds: float) -> float:
        env = {**os.environ, "PYTHONPATH": str(source / "src")}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _MAIN, *argv], env=env,
                              capture_output=True, text=True, cwd=source)  # fmt: skip
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed in {source}:\n{done.stderr[-2000:]}")
        results.append(done.stdout)
        return 1.0 / elapsed  # runs per second

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="a CIFAR-10 copy (e.g. data/cifar10-jpeg)")
    parser.add_argument("--before", default="917b910", help="the earlier revision (917b910)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = str(Path(args.data).resolve())
    with tempfile.TemporaryDirectory(prefix="reslearn-bench-") as scratch:
        scratch = Path(scratch)
        before = scratch / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before),
                        args.before], check=True, capture_output=True)  # fmt: skip
        try:
            _compare(before, data, scratch, args.rounds, args.before)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(before)], check=False)  # fmt: skip


def _compare(before: Path, data: str, scratch: Path, rounds: int, revision: str) -> None:
    commands = {
        "eval": ["eval", WEIGHTS, "--data", data, "--json", "--out", str(scratch / "c.png")],
        "explore": ["explore", WEIGHTS, "--data", data, "--images", "8", "--overwrite",
                    "-o", str(scratch / "e.html")],  # fmt: skip
    }
    for name, argv in commands.items():
        outputs: dict[str, list] = {"before": [], "now": [], "now again": []}
        entries = {
            f"{revision} (before)": _entry(before, argv, outputs["before"]),
            "this tree": _entry(ROOT, argv, outputs["now"]),
            "this tree again": _entry(ROOT, argv, outputs["now again"]),
        }
        figures = interleaved(entries, rounds, 0.0)
        seconds = {key: Figure([1 / r for r in f.samples]) for key, f in figures.items()}
        print(f"\nreslearn {name} (seconds per run, median of {rounds}, min-max in brackets)")
        for key, figure in seconds.items():
            print(f"  {key:<24} {figure.text(2)} s")
        speedup = seconds[f"{revision} (before)"].median / seconds["this tree"].median
        print(f"  speed-up {speedup:.2f}x;", noise_verdict(seconds, list(entries)[1:]))
        if name == "eval":
            errors = {k: {json.loads(o)["top1_error"] for o in v} for k, v in outputs.items()}
            print(f"  top-1 error: before {errors['before']}, now {errors['now']}")


if __name__ == "__main__":
    main()
