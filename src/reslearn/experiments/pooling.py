"""Why global average pooling at the end? The same CIFAR ResNet body with three heads -- global
average pooling + FC (the paper's), global max pooling + FC, and no pooling (the 64 x 8 x 8 map
flattened into the FC) -- trained under one budget and compared on test error, parameters,
shift consistency and accuracy under shift, and whether CAM applies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reslearn.experiments.base import Experiment, ExperimentSettings, PlannedRun, Table
from reslearn.experiments.common import cifar_model, claim, percent
from reslearn.experiments.probes import MAX_SHIFT, probe_figures, shift_probes

HEADS = ("avg", "max", "flatten")
_LABEL = {"avg": "global average pooling", "max": "global max pooling", "flatten": "no pooling"}


class Pooling(Experiment):
    """ResNet-20 (--depths) with each of the three heads."""

    name = "pooling"
    title = "Why global average pooling: three heads on one ResNet body"
    description = (
        "ResNet-20 (--depths) with global average pooling (the paper's), global max pooling, "
        "or no pooling before the classifier; test error, parameters, shift consistency and "
        "whether CAM applies"
    )
    default_depths = (20,)

    def plan(self, settings: ExperimentSettings) -> list[PlannedRun]:
        return [
            PlannedRun(
                name=f"resnet{depth}-{pool}-s{seed}",
                config=settings.train_config(cifar_model("resnet", depth), seed, pool=pool),
                labels={"depth": depth, "pool": pool, "seed": seed},
            )
            for depth in sorted(settings.depths or self.default_depths)
            for pool in HEADS
            for seed in settings.seeds
        ]

    def analyse(self, settings, runs, records) -> dict[str, Any]:
        probes = [
            {
                "name": record["name"], "depth": record["depth"], "pool": record["pool"],
                "seed": record["seed"], "parameters": record["parameters"],
                "test_error": record["test_error"], "cam": record["pool"] == "avg", **report,
            }
            for (_, report), record in zip(shift_probes(settings, runs, self.name), records)
        ]  # fmt: skip
        return {"probes": probes, "claims": _claims(probes)}

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        first_seed = min(p["seed"] for p in results["probes"])
        first = [p for p in results["probes"] if p["seed"] == first_seed]
        return probe_figures(results, root, first, f"with each head (seed {first_seed})")

    def tables(self, results: dict[str, Any]) -> list[Table]:
        rows = [
            (
                p["name"], _LABEL[p["pool"]], f"{p['parameters']:,}", percent(p["test_error"]),
                percent(p["consistency"]["circular"]), percent(p["consistency"]["zero"]),
                percent(min(p["accuracy_by_shift"]["zero"])),
                "yes" if p["cam"] else "no (needs GAP; Grad-CAM works)",
            )
            for p in results["probes"]
        ]  # fmt: skip
        header = ("run", "head", "parameters", "test error", "consistency (circular)",
                  "consistency (zero)", "lowest accuracy (zero)", "CAM")  # fmt: skip
        caption = (
            "Test error on the whole test split; shift consistency and the lowest accuracy for "
            f"shifts up to {MAX_SHIFT} pixels on a random sample of test images (%)"
        )
        return [Table(caption, header, rows)]


def _claims(probes: list[dict]) -> list[dict]:
    """The reader's expectations, checked for each depth and seed that has all three heads."""
    claims = []
    for avg in (p for p in probes if p["pool"] == "avg"):
        same = {
            p["pool"]: p for p in probes if (p["depth"], p["seed"]) == (avg["depth"], avg["seed"])
        }
        flat = same.get("flatten")
        if flat is None:
            continue
        where = f"ResNet-{avg['depth']}, seed {avg['seed']}"
        claims.append(claim(
            f"global average pooling needs fewer parameters than flattening ({where})",
            avg["parameters"] < flat["parameters"],
            f"{avg['parameters']:,} vs {flat['parameters']:,}",
        ))  # fmt: skip
        claims.append(claim(
            f"global average pooling is at least as accurate as flattening ({where})",
            avg["test_error"] <= flat["test_error"],
            f"test error {percent(avg['test_error'])}% vs {percent(flat['test_error'])}%",
        ))  # fmt: skip
        claims.append(claim(
            f"global average pooling is more consistent under circular shifts than flattening "
            f"({where})",
            avg["consistency"]["circular"] > flat["consistency"]["circular"],
            f"{percent(avg['consistency']['circular'])}% vs "
            f"{percent(flat['consistency']['circular'])}%",
        ))  # fmt: skip
    return claims
