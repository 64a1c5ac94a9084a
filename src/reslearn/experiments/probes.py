"""The shift probes that several experiments run on their trained networks: each run's weights
on one random sample of test images (the same for every run), shift consistency and accuracy
under shift (``reslearn.analysis.shift.measure_invariance``), and the figures drawn from them."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from reslearn.analysis.shift import measure_invariance
from reslearn.device import resolve_device
from reslearn.experiments.common import load_curves
from reslearn.experiments.settings import ExperimentSettings
from reslearn.open_trained import open_for_analysis
from reslearn.report.curves import plot_curve_panels
from reslearn.report.shift_plots import plot_accuracy_by_shift
from reslearn.rundir import WEIGHTS

MAX_SHIFT = 8
DEFAULT_IMAGES = 2000  # test images for the probes (--max-images)


def shift_probes(
    settings: ExperimentSettings, runs: list, experiment: str
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(run, the probe's report as a dict) for each finished run, in order."""
    device = resolve_device(settings.device)
    sample = None  # loaded for the first run, the same for every one
    for run in runs:
        opened = open_for_analysis(
            run.run_dir / WEIGHTS, data=settings.data, device=device, sample=sample,
            count=settings.max_images or DEFAULT_IMAGES, cache_dir=settings.cache_dir,
            workers=settings.workers,
        )  # fmt: skip
        sample = opened.images
        print(f"{experiment}: shift probes for {run.planned.name}", file=sys.stderr)
        x, y = opened.inputs(), opened.labels()
        max_shift = min(MAX_SHIFT, min(x.shape[-2:]) - 1)
        report = measure_invariance(opened.trained.model, x, y, max_shift=max_shift)
        yield run, dataclasses.asdict(report)


def probe_figures(
    results: dict[str, Any],
    root: Path,
    probes: list[dict[str, Any]],
    compared: str,
    dashed: Callable[[dict[str, Any]], bool] = lambda probe: False,
) -> list[tuple[str, str]]:
    """Draw ``shift-accuracy.png`` (``probes``' accuracy against shift; ``compared`` says what
    the lines compare, for the caption) and ``curves.png`` (the first seed's runs) into
    ``root``; returns (file name, caption) pairs for the report."""
    plot_accuracy_by_shift(probes, root / "shift-accuracy.png", dashed=dashed)
    first_seed = min(r["seed"] for r in results["runs"])
    curves = load_curves(root, [r for r in results["runs"] if r["seed"] == first_seed], "{name}")
    plot_curve_panels(
        [("training", curves)], root / "curves.png", milestones=results["budget"]["milestones"]
    )
    return [
        (
            "shift-accuracy.png",
            f"Test accuracy against shift size (mean over the four directions), {compared}; "
            "left circular shifts, right shifts that fill the border with the training mean.",
        ),
        ("curves.png", "Training (dashed) and test (bold) error."),
    ]
