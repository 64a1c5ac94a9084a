"""The loss landscape (Li, Xu, Taylor, Studer and Goldstein 2018): the training loss of plain and
residual networks along random filter-normalised directions, in 1-D and 2-D, for networks
trained here or given as weights; the numbers that compare the shapes beside the paper's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from reslearn.analysis.landscape import axis, loss_and_accuracy, random_directions
from reslearn.analysis.landscape_shape import line_shape, plane_shape
from reslearn.data.sampling import sample_indices
from reslearn.data.sources import ImageArrays
from reslearn.device import resolve_device
from reslearn.errors import SettingError
from reslearn.experiments import landscape_tables, paper
from reslearn.experiments.base import ExperimentSettings, Table
from reslearn.experiments.landscape_points import PointLog, landscape_key, measure_points
from reslearn.experiments.networks import NetworkExperiment, labels, open_named
from reslearn.open_trained import Opened, open_for_analysis
from reslearn.report import landscape_plots
from reslearn.rundir import WEIGHTS

#: The 1-D curve: this many points on [-1, 1] along the first direction (the paper's 51).
LINE_POINTS = 51
#: --grid: the 2-D grid's side, odd so that the trained weights are a point of it.
GRID_RANGE = (3, 101)
FOLDER = "landscape"  # OUT/landscape/NAME.jsonl: each network's points as they finish


class Landscape(NetworkExperiment):
    """Li et al.'s Fig. 5 for plain-20/56 and ResNet-20/56 (--models), trained here or given."""

    name = "landscape"
    title = "Loss landscapes of plain and residual networks (Li et al. 2018)"
    description = (
        "training loss along random filter-normalised directions (Li et al. 2018), 1-D (51 "
        "points) and 2-D (--grid N, 21; the paper's 51) on a seeded --subset of the training "
        "images (2000), for plain20/56 and resnet20/56 (--models), trained here or given with "
        "--weights NAME=FILE or NAME=reslearn:NAME"
    )
    default_models = ("plain20", "plain56", "resnet20", "resnet56")

    def check(self, settings: ExperimentSettings) -> None:
        super().check(settings)
        low, high = GRID_RANGE
        if not low <= settings.grid <= high or settings.grid % 2 == 0:
            raise SettingError(
                f"<grid> {settings.grid}: the 2-D landscape is N x N points; give an odd N "
                f"from {low} to {high} (21 on a CPU, the paper's 51)"
            )
        if settings.subset < 1:
            raise SettingError(f"<subset> {settings.subset}: give a number of training images")

    def analyse_in(self, settings, runs, records, root: Path) -> dict[str, Any]:
        device = resolve_device(settings.device)
        trained_here = {run.planned.config.model: run.run_dir / WEIGHTS for run in runs}
        samples: dict[tuple, Any] = {}  # the training subset and test sample per input
        measured = [
            measure_landscape(
                name,
                settings.weights.get(name) or trained_here[name],
                settings,
                root,
                samples,
                device=device,
                trained_here=name not in settings.weights,
            )
            for name in self.models(settings)
        ]
        return {
            "landscapes": measured,
            "claims": landscape_tables.claims(measured),
            "paper": {"landscape": paper.LANDSCAPE_SHAPES},
        }

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        return landscape_plots.draw_all(results["landscapes"], root)

    def tables(self, results: dict[str, Any]) -> list[Table]:
        return landscape_tables.tables(results["landscapes"])


def measure_landscape(
    name: str,
    target: str | Path,
    settings: ExperimentSettings,
    root: Path,
    samples: dict[tuple, Any],
    *,
    device: torch.device,
    trained_here: bool,
) -> dict[str, Any]:
    """The 1-D curve and 2-D surface of the network ``name`` in ``target`` (weights file, run
    folder or name) on the seeded training subset, its test error, and their shapes' numbers;
    points measured earlier into ``root/landscape`` are reused."""
    opened = open_named(name, target, device)
    model = opened.trained.model
    training = _training_subset(opened, settings, samples)
    subset = training.images
    seed = settings.seeds[0]
    directions = random_directions(model, 2, seed)
    line, grid = axis(LINE_POINTS), axis(settings.grid)
    points = [(a, 0.0) for a in line] + [(a, b) for b in grid for a in grid]
    key = landscape_key(model, subset.images, subset.labels, seed)
    log = PointLog(root / FOLDER / f"{name}.jsonl", key)
    values = measure_points(model, directions, points, training.inputs(), training.labels(), log,
                            label=name)  # fmt: skip
    test_error, test_images = _test_error(opened, settings, samples)
    line_loss = [values[(a, 0.0)][0] for a in line]
    plane_loss = [[values[(a, b)][0] for a in grid] for b in grid]
    return {
        "model": name,
        **labels(name),
        "weights": str(target),
        "trained_here": trained_here,
        "subset": len(subset.labels),
        "seed": seed,
        "test_error": test_error,
        "test_images": test_images,
        "line": {
            "coefficients": line,
            "loss": _json_numbers(line_loss),
            "accuracy": _json_numbers([values[(a, 0.0)][1] for a in line]),
        },
        "plane": {
            "coefficients": grid,
            "loss": [_json_numbers(row) for row in plane_loss],
            "accuracy": [_json_numbers([values[(a, b)][1] for a in grid]) for b in grid],
        },
        "line_shape": line_shape(line, line_loss),
        "plane_shape": plane_shape(grid, plane_loss),
        "points_file": str((root / FOLDER / f"{name}.jsonl").relative_to(root)),
    }


def _training_subset(
    opened: Opened, settings: ExperimentSettings, samples: dict[tuple, Any]
) -> Opened:
    """The network with ``settings.subset`` training images, drawn once (seeded) and shared by
    every network of the same input; refused when the training split is smaller."""
    trained = opened.trained
    key = ("train", trained.image_size, trained.in_channels)
    if key not in samples:
        whole = open_for_analysis(
            opened, data=settings.data, split="train", cache_dir=settings.cache_dir,
            workers=settings.workers,
        ).images  # fmt: skip
        if whole is None:
            raise ValueError(f"--data {settings.data}: no training images found")
        if settings.subset > len(whole.labels):
            raise SettingError(
                f"<subset> {settings.subset:,} is more than the {len(whole.labels):,} training "
                f"images of {settings.data}; give at most {len(whole.labels):,}"
            )
        chosen = sample_indices(len(whole.labels), settings.subset)
        samples[key] = ImageArrays(whole.images[chosen], whole.labels[chosen], whole.classes)
    return open_for_analysis(opened, data=settings.data, sample=samples[key])


def _test_error(
    opened: Opened, settings: ExperimentSettings, samples: dict[tuple, Any]
) -> tuple[float, int]:
    """(test error, test images) of the trained weights on the test split (a seeded sample of
    ``--max-images``), as inference runs them in fp32."""
    trained = opened.trained
    key = ("test", trained.image_size, trained.in_channels)
    opened = open_for_analysis(
        opened, data=settings.data, count=settings.max_images, cache_dir=settings.cache_dir,
        workers=settings.workers, sample=samples.get(key),
    )  # fmt: skip
    samples[key] = opened.images
    _, accuracy = loss_and_accuracy(trained.model, opened.inputs(), opened.labels())
    return 1.0 - float(accuracy or 0.0), len(opened.images.labels)


def _json_numbers(values: list[float | None]) -> list[float | None]:
    """The values with NaN and infinities as None (JSON has neither)."""
    return [v if v is not None and math.isfinite(v) else None for v in values]
