"""Shortcut options A, B and C (the paper's Table 3 comparison, here on CIFAR): zero-padding
identity, projections where the shape changes, projections everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reslearn.experiments import paper
from reslearn.experiments.base import Experiment, ExperimentSettings, PlannedRun, Table
from reslearn.experiments.common import (
    cifar_model,
    load_curves,
    mean_std,
    percent,
    runs_where,
)
from reslearn.models.blocks import SHORTCUT_OPTIONS
from reslearn.report.curves import plot_curve_panels

_MEANING = {
    "A": "zero-padding identity",
    "B": "projection where the shape changes",
    "C": "projection on every block",
}


class Shortcuts(Experiment):
    """Options A/B/C on one CIFAR ResNet depth (or several)."""

    name = "shortcuts"
    title = "Shortcut options A, B and C on CIFAR-10 (Table 3's comparison)"
    description = (
        "ResNet-20 (--depths) with shortcut options A, B and C: test error and parameters "
        "side by side"
    )
    default_depths = (20,)
    analyses_finished_runs = True

    def plan(self, settings: ExperimentSettings) -> list[PlannedRun]:
        return [
            PlannedRun(
                name=f"resnet{depth}-{option}-s{seed}",
                config=settings.train_config(cifar_model("resnet", depth), seed, shortcut=option),
                labels={"family": "resnet", "depth": depth, "shortcut": option, "seed": seed},
            )
            for depth in sorted(settings.depths or self.default_depths)
            for option in SHORTCUT_OPTIONS
            for seed in settings.seeds
        ]

    def analyse(self, settings, runs, records) -> dict[str, Any]:
        rows = []
        for depth in sorted({r["depth"] for r in records}):
            for option in SHORTCUT_OPTIONS:
                group = runs_where(records, depth=depth, shortcut=option)
                test, test_std, n = mean_std(r["test_error"] for r in group)
                train, _, _ = mean_std(r["final_train_error"] for r in group)
                rows.append(
                    {
                        "depth": depth,
                        "shortcut": option,
                        "runs": n,
                        "parameters": group[0]["parameters"],
                        "final_train_error": train,
                        "test_error": test,
                        "test_error_std": test_std,
                    }
                )
        return {"summary": rows, "paper": {"table3_resnet34_imagenet": paper.TABLE3_RESNET34}}

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        records = results["runs"]
        first_seed = min(r["seed"] for r in records)
        panels = [
            (
                f"ResNet-{depth}",
                load_curves(
                    root,
                    runs_where(records, depth=depth, seed=first_seed),
                    "option {shortcut}",
                ),
            )
            for depth in sorted({r["depth"] for r in records})
        ]
        plot_curve_panels(
            panels, root / "shortcuts.png", milestones=results["budget"]["milestones"]
        )
        return [
            (
                "shortcuts.png",
                f"Training (dashed) and test (bold) error by shortcut option, seed {first_seed}.",
            )
        ]

    def tables(self, results: dict[str, Any]) -> list[Table]:
        rows = []
        for s in results["summary"]:
            top1, _ = paper.TABLE3_RESNET34[s["shortcut"]]
            rows.append(
                (
                    f"ResNet-{s['depth']} {s['shortcut']}",
                    _MEANING[s["shortcut"]],
                    f"{s['parameters']:,}",
                    str(s["runs"]),
                    percent(s["final_train_error"]),
                    percent(s["test_error"], s["test_error_std"]),
                    f"{top1:.2f}",
                )
            )
        return [
            Table(
                "Errors (%) by shortcut option. The paper's column is ImageNet ResNet-34 top-1 "
                "(Table 3, 10-crop), another data set and depth: compare the order, not the values",
                (
                    "network",
                    "shortcut",
                    "params",
                    "runs",
                    "training error",
                    "test error",
                    "paper (ImageNet)",
                ),
                rows,
            )
        ]
