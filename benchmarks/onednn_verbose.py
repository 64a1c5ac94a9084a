"""oneDNN's own view of a step: ONEDNN_VERBOSE lines (which oneDNN prints on the process's
standard output) captured for one step, parsed into a table of primitives (kind, propagation,
implementation) with their calls and milliseconds, instead of thousands of raw lines."""

from __future__ import annotations

import os
import sys
import tempfile
from collections import defaultdict
from collections.abc import Callable

import torch


def parse_verbose(text: str) -> dict[tuple[str, str, str], list[float]]:
    """(kind, propagation, implementation) -> the milliseconds of each execution."""
    found: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for line in text.splitlines():
        fields = line.strip().split(",")
        if not fields or not fields[0].endswith("_verbose") or "exec" not in fields:
            continue
        at = fields.index("exec")
        # onednn_verbose,[v1,][timestamp,]primitive,exec,cpu,KIND,IMPL,PROP,...,TIME_MS
        if len(fields) < at + 5:
            continue
        try:
            ms = float(fields[-1])
        except ValueError:
            continue
        kind, impl, prop = fields[at + 2], fields[at + 3], fields[at + 4]
        found[(kind, prop if prop != "undef" else "", impl)].append(ms)
    return found


def capture_stdout(run: Callable[[], None]) -> str:
    """What ``run`` writes to file descriptor 1 (C code included), returned as text."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            run()
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return sink.read().decode("utf-8", "replace")


def onednn_table(step: Callable[[int], object], at_step: int) -> list[str]:
    """Lines of a table of oneDNN primitives over one step; a line that says why when oneDNN's
    verbose output is unavailable on this machine."""
    verbose = getattr(torch.backends, "mkldnn", None)
    if verbose is None or not hasattr(verbose, "verbose") or not verbose.is_available():
        return ["oneDNN verbose output is unavailable here (this torch has no oneDNN); "
                "the profiler table above stands"]  # fmt: skip

    def run() -> None:
        with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
            step(at_step)

    try:
        text = capture_stdout(run)
    except (RuntimeError, OSError) as error:
        return [f"oneDNN verbose output is unavailable here ({error}); the table above stands"]
    found = parse_verbose(text)
    if not found:
        return ["oneDNN verbose output is unavailable here (no primitive executions were "
                "reported: a device or build without oneDNN verbose); the table above stands"]
    total = sum(sum(v) for v in found.values())
    lines = [
        f"oneDNN primitives over one step ({total:.1f} ms in oneDNN; verbose logging adds a "
        "little to each call)",
        f"{'primitive':<13} {'propagation':<17} {'implementation':<52} {'calls':>5} "
        f"{'ms':>7} {'share':>6}",
    ]
    for (kind, prop, impl), times in sorted(found.items(), key=lambda kv: -sum(kv[1])):
        lines.append(
            f"{kind:<13} {prop:<17} {impl[:52]:<52} {len(times):>5} {sum(times):>7.2f} "
            f"{sum(times) / total:>6.1%}"
        )
    return lines
