"""The lesion study (Veit, Wilber and Belongie 2016): the test error of trained plain and residual
networks with blocks deleted at test time, one block at a time and k random blocks at once,
beside the published result. Batch norm keeps the statistics it was trained with.

Each network's error counts are kept per batch of test images in ``OUT/lesion/NAME.json`` as
they finish, so that a stopped study goes on where it stopped and a rerun counts nothing twice.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from reslearn.analysis.lesion import count_errors, deletable_blocks, random_deletions
from reslearn.device import resolve_device
from reslearn.evaluate import inference_model
from reslearn.experiments import lesion_tables
from reslearn.experiments.base import ExperimentSettings, Table
from reslearn.experiments.networks import (
    KeptMeasurements,
    NetworkExperiment,
    measurement_key,
    measuring,
    open_network,
)
from reslearn.experiments.networks import labels as network_labels
from reslearn.models import ResNet
from reslearn.open_trained import Opened
from reslearn.report import lesion_plots

#: Random deletion sets drawn for each k (Veit et al. draw more; five give the spread).
DRAWS = 5
BATCH = 250  # test images per pass: every deletion set of one batch shares its activations
FOLDER = "lesion"  # OUT/lesion/NAME.json: each network's error counts per batch


class Lesion(NetworkExperiment):
    """Veit et al.'s lesion study on ResNet-20/32/44/56 and plain-20/56 (--models)."""

    name = "lesion"
    title = "Deleting blocks of trained networks at test time (Veit et al. 2016)"
    description = (
        "test error with each single block deleted (y = shortcut(x); a plain block: y = x) and "
        "with k random blocks deleted at once (k = 1..n/2, 5 draws), BN statistics as trained "
        "(Veit et al. 2016), for resnet20/32/44/56 and plain20/56 (--models) on the test set "
        "(--max-images N: a sample), trained here or given with --weights NAME=FILE or "
        "NAME=reslearn:NAME"
    )
    default_models = ("resnet20", "resnet32", "resnet44", "resnet56", "plain20", "plain56")

    def analyse_in(self, settings, runs, records, root: Path) -> dict[str, Any]:
        device = resolve_device(settings.device)
        targets = self.targets(settings, runs)
        measured = [
            measure_lesion(name, targets[name], settings, root, device=device,
                           trained_here=name not in settings.weights)  # fmt: skip
            for name in self.models(settings)
        ]
        return {
            "lesions": measured,
            "claims": lesion_tables.claims(measured),
            "paper": lesion_tables.paper_statements(),
        }

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        return lesion_plots.draw_all(results["lesions"], root)

    def tables(self, results: dict[str, Any]) -> list[Table]:
        return lesion_tables.tables(results["lesions"])


def measure_lesion(
    name: str,
    target: str,
    settings: ExperimentSettings,
    root: Path,
    *,
    device: torch.device,
    trained_here: bool,
) -> dict[str, Any]:
    """The lesion study of the network ``name`` in ``target`` (weights file, run folder or
    name): its test error whole, with each block deleted, and with k random blocks deleted."""
    opened = open_network(name, target, settings, device=device, count=settings.max_images)
    net = inference_model(opened.trained.model)  # BN folded, its statistics as trained
    first = opened.inputs(0, 1)
    candidates = deletable_blocks(net, first)
    seed = settings.seeds[0]
    sets = deletion_sets(candidates, seed)
    key = measurement_key(opened, seed=seed, draws=DRAWS, batch=BATCH, sets=[list(s) for s in sets])
    kept = KeptMeasurements(root / FOLDER / f"{name}.json", key)
    wrong = _count(net, opened, sets, kept, label=name)
    images = len(opened.images.labels)
    error = {s: w / images for s, w in zip(sets, wrong)}
    places = block_places(net, first)
    blocks = [
        {**place, "deletable": j in candidates, "error": error.get((j,))}
        for j, place in enumerate(places)
    ]
    curve = []
    for k in range(1, len(candidates) // 2 + 1):
        errors = [error[s] for s in random_deletions(candidates, k, DRAWS, seed)]
        curve.append({"k": k, "errors": errors, "mean": statistics.fmean(errors),
                      "min": min(errors), "max": max(errors)})  # fmt: skip
    return {
        "model": name,
        **network_labels(name),
        "weights": str(target),
        "trained_here": trained_here,
        "images": images,
        "chance_error": 1 - 1 / len(opened.images.classes),
        "whole_error": error[()],
        "deletable": len(candidates),
        "blocks": blocks,
        "k_curve": curve,
        "seed": seed,
        "kept_file": str((root / FOLDER / f"{name}.json").relative_to(root)),
    }


def deletion_sets(candidates: list[int], seed: int) -> list[tuple[int, ...]]:
    """Every set the study measures, once each: none (the whole network), each deletable block
    alone, and ``DRAWS`` seeded random sets of k blocks for k = 1..n/2."""
    sets = [(), *((j,) for j in candidates)]
    for k in range(1, len(candidates) // 2 + 1):
        sets += random_deletions(candidates, k, DRAWS, seed)
    return list(dict.fromkeys(sets))


@torch.inference_mode()
def block_places(model: ResNet, x: torch.Tensor) -> list[dict[str, Any]]:
    """Each block's stage and position in it (from 1), label ("2.1") and whether it changes
    its input's shape (a downsampling block), from one pass of the sample ``x``."""
    places, h = [], model.forward_stem(x)
    for stage, name in enumerate(model.stage_names, 1):
        for position, block in enumerate(getattr(model, name), 1):
            out = block(h)
            places.append({"stage": stage, "position": position, "label": f"{stage}.{position}",
                           "downsampling": out.shape != h.shape})  # fmt: skip
            h = out
    return places


def _count(
    net: ResNet, opened: Opened, sets: list[tuple[int, ...]], kept: KeptMeasurements, *, label: str
) -> list[int]:
    """Wrong answers with each deletion set over all test images, counted a batch at a time
    (a progress bar on a terminal); batches counted earlier are read from ``kept``."""
    truth = opened.labels()
    starts = range(0, len(truth), BATCH)
    missing = [s for s in starts if str(s) not in kept.done]
    print(f"lesion: {label}: {len(sets)} deletion sets; {len(missing)} of {len(starts)} batches "
          f"of {BATCH} test images to count ({len(starts) - len(missing)} kept in "
          f"{kept.path})", file=sys.stderr)  # fmt: skip
    with measuring("lesion", label, total=len(missing), unit="batch", desc=f"lesion {label}",
                   kept=lambda: len(kept.done), path=kept.path) as bar:  # fmt: skip
        for start in missing:
            batch = [(opened.inputs(start, start + BATCH), truth[start : start + BATCH])]
            kept.add(str(start), count_errors(net, batch, sets))
            bar.update()
    return [sum(kept.done[str(s)][i] for s in starts) for i in range(len(sets))]
