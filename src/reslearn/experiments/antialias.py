"""Anti-aliased downsampling (Zhang 2019): the same CIFAR ResNet trained with and without
BlurPool under one budget, compared on accuracy and on shift consistency."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reslearn.experiments.base import Experiment, ExperimentSettings, PlannedRun, Table
from reslearn.experiments.common import cifar_model, claim, percent
from reslearn.experiments.probes import MAX_SHIFT, probe_figures, shift_probes


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
        probes = [
            {"name": record["name"], **_record_labels(record), **report}
            for (_, report), record in zip(shift_probes(settings, runs, self.name), records)
        ]
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
        return probe_figures(
            results, root, results["probes"], "with and without anti-aliasing",
            dashed=lambda probe: not probe["antialias"],
        )  # fmt: skip

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
            f"error, shift consistency and lowest accuracy for shifts up to {MAX_SHIFT} pixels (%)"
        )
        return [Table(caption, header, rows)]


def _record_labels(record: dict) -> dict[str, Any]:
    """The experiment's labels of a run record."""
    return {k: record[k] for k in ("depth", "antialias", "seed")}
