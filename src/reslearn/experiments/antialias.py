"""Anti-aliased downsampling (Zhang 2019): the same CIFAR ResNet trained with and without
BlurPool under one budget, compared on accuracy and on shift consistency."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch

from reslearn.analysis.shift import measure_invariance
from reslearn.data.device_data import to_device_uint8
from reslearn.data.sources import load_eval_sample
from reslearn.device import resolve_device
from reslearn.experiments.base import Experiment, ExperimentSettings, PlannedRun, Table
from reslearn.experiments.common import cifar_model, claim, load_curves, percent
from reslearn.report.curves import plot_curve_panels
from reslearn.rundir import WEIGHTS
from reslearn.weights import load_weights

_MAX_SHIFT = 8
_DEFAULT_IMAGES = 2000  # test images for the shift probes (--max-images)


class Antialias(Experiment):
    """ResNet-20 (--depths) with and without antialias=True."""

    name = "antialias"
    title = "Anti-aliased downsampling: accuracy and shift consistency (Zhang 2019)"
    description = (
        "ResNet-20 (--depths) trained with and without BlurPool before every subsampling; "
        "test error, shift consistency and accuracy against shift side by side"
    )
    default_depths = (20,)

    def plan(self, settings: ExperimentSettings) -> list[PlannedRun]:
        runs = []
        for depth in sorted(settings.depths or self.default_depths):
            for antialias in (False, True):
                for seed in settings.seeds:
                    options = {"antialias": True} if antialias else {}
                    suffix = "-antialias" if antialias else ""
                    runs.append(
                        PlannedRun(
                            name=f"resnet{depth}{suffix}-s{seed}",
                            config=settings.train_config(
                                cifar_model("resnet", depth), seed, **options
                            ),
                            labels={"depth": depth, "antialias": antialias, "seed": seed},
                        )
                    )
        return runs

    def analyse(self, settings, runs, records) -> dict[str, Any]:
        device = resolve_device(settings.device)
        probes, images = [], None
        for run, record in zip(runs, records):
            trained = load_weights(run.run_dir / WEIGHTS, device)
            if images is None:
                sample = load_eval_sample(
                    settings.data,
                    image_size=trained.image_size[0],
                    count=settings.max_images or _DEFAULT_IMAGES,
                    cache_dir=settings.cache_dir,
                    workers=settings.workers,
                )
                images, labels = sample.images, sample.labels
            trained.check_data(settings.data, sample.classes, channels=images.shape[3])
            print(f"antialias: shift probes for {run.planned.name}", file=sys.stderr)
            x = trained.normalizer(to_device_uint8(images, device)).float()
            y = torch.as_tensor(labels, dtype=torch.int64, device=device)
            max_shift = min(_MAX_SHIFT, min(x.shape[-2:]) - 1)
            report = measure_invariance(trained.model, x, y, max_shift=max_shift)
            probes.append({"name": record["name"], **_record_labels(record),
                           **dataclasses.asdict(report)})  # fmt: skip
        claims = []
        for base in (p for p in probes if not p["antialias"]):
            smooth = next(
                (p for p in probes if p["antialias"] and p["depth"] == base["depth"]
                 and p["seed"] == base["seed"]),
                None,
            )  # fmt: skip
            if smooth is None:
                continue
            for mode in ("circular", "zero"):
                claims.append(
                    claim(
                        f"anti-aliasing raises ResNet-{base['depth']}'s {mode}-shift consistency"
                        f" (Zhang 2019; seed {base['seed']})",
                        smooth["consistency"][mode] > base["consistency"][mode],
                        f"{percent(smooth['consistency'][mode])}% vs "
                        f"{percent(base['consistency'][mode])}%",
                    )
                )
        return {"probes": probes, "claims": claims}

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        _plot_accuracy_by_shift(results["probes"], root / "shift-accuracy.png")
        records = results["runs"]
        first_seed = min(r["seed"] for r in records)
        curves = load_curves(
            root,
            [r for r in records if r["seed"] == first_seed],
            "{name}",
        )
        plot_curve_panels(
            [("training", curves)], root / "curves.png", milestones=results["budget"]["milestones"]
        )
        return [
            (
                "shift-accuracy.png",
                "Test accuracy against shift size (mean over the four directions), with and "
                "without anti-aliasing; left circular shifts, right shifts that fill the border "
                "with the training mean.",
            ),
            ("curves.png", "Training (dashed) and test (bold) error."),
        ]

    def tables(self, results: dict[str, Any]) -> list[Table]:
        test_error = {r["name"]: r["test_error"] for r in results["runs"]}
        rows = [
            (
                p["name"],
                "yes" if p["antialias"] else "no",
                percent(test_error[p["name"]]),
                percent(1 - p["accuracy"]),
                percent(p["consistency"]["circular"]),
                percent(p["consistency"]["zero"]),
                percent(min(p["accuracy_by_shift"]["zero"])),
                str(p["images"]),
            )
            for p in results["probes"]
        ]
        header = ("run", "anti-aliased", "test error", "sample error", "consistency (circular)",
                  "consistency (zero)", "lowest accuracy (zero)", "sample")  # fmt: skip
        caption = (
            "Test error (the whole test split) and, on a random sample of test images, the "
            f"error, shift consistency and lowest accuracy for shifts up to {_MAX_SHIFT} pixels (%)"
        )
        return [Table(caption, header, rows)]


def _record_labels(record: dict) -> dict[str, Any]:
    """The experiment's labels of a run record."""
    return {k: record[k] for k in ("depth", "antialias", "seed")}


def _plot_accuracy_by_shift(probes: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4.0), dpi=120)
    panels = figure.subplots(1, 2, sharey=True)
    for axes, mode in zip(panels, ("circular", "zero")):
        for index, probe in enumerate(probes):
            curve = [100 * a for a in probe["accuracy_by_shift"][mode]]
            style = "-o" if probe["antialias"] else "--o"
            axes.plot(range(len(curve)), curve, style, markersize=3, color=f"C{index}",
                      label=f"{probe['name']} (consistency "
                      f"{100 * probe['consistency'][mode]:.1f}%)")  # fmt: skip
        axes.set_title(f"{mode} shifts")
        axes.set_xlabel("shift (pixels)")
        axes.grid(True, linewidth=0.3)
        axes.legend(fontsize="small")
    panels[0].set_ylabel("test accuracy (%)")
    figure.tight_layout()
    figure.savefig(path)
