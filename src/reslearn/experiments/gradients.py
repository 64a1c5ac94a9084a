"""Why residual networks train, measured on plain and residual networks at initialisation and
trained: each residual block's branch against its shortcut (De and Smith 2020), the gradient at
every layer, and on the deepest ResNet the gradient carried by paths through k residual
branches (Veit, Wilber and Belongie 2016), beside the published results.

Each network's finished measurements are kept in ``OUT/gradients/NAME.json``, so that a stopped
study goes on where it stopped and a rerun measures nothing twice.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reslearn.analysis.gradient_paths import (
    PathGradients,
    branch_ratios,
    gradient_window,
    layer_gradient_norms,
    path_subsets,
)
from reslearn.device import resolve_device
from reslearn.errors import SettingError
from reslearn.experiments import gradient_tables
from reslearn.experiments.base import ExperimentSettings, Table
from reslearn.experiments.networks import (
    KeptMeasurements,
    NetworkExperiment,
    measurement_key,
    measuring,
    open_network,
)
from reslearn.experiments.networks import labels as network_labels
from reslearn.models import ResNet, create_model, model_info
from reslearn.open_trained import Opened
from reslearn.report import gradient_plots

IMAGES = 128  # test images (a seeded sample) unless --max-images says otherwise
PATH_DRAWS = 3  # sets of k branches sampled for each k (all of them where there are fewer)
SHARE = 0.9  # the path window: the narrowest range of lengths that carries this much gradient
FOLDER = "gradients"  # OUT/gradients/NAME.json: each network's finished measurements


class Gradients(NetworkExperiment):
    """Branch ratios, layer gradients and Veit et al.'s path study (--models)."""

    name = "gradients"
    title = "Branches, gradients and path lengths of plain and residual networks"
    description = (
        "std(F(x))/std(x) of each residual block at initialisation and trained beside 1/sqrt(l) "
        "(De and Smith 2020), the gradient norm at every layer, and on the deepest ResNet the "
        "gradient through paths of k residual branches (Veit et al. 2016), for resnet20/32/44/56 "
        "and plain20/56 (--models) on a sample of 128 test images (--max-images), trained here "
        "or given with --weights NAME=FILE or NAME=reslearn:NAME"
    )
    default_models = ("resnet20", "resnet32", "resnet44", "resnet56", "plain20", "plain56")

    def check(self, settings: ExperimentSettings) -> None:
        super().check(settings)
        names = self.models(settings)
        if path_network(names) is None:
            shown = " ".join(names)
            raise SettingError(
                f"<models> {shown}: the path study needs a network with residual blocks, and "
                f"{'this one is' if len(names) == 1 else 'these are'} plain (shortcut=None): "
                "add a resnet, e.g. resnet56"
            )

    def analyse_in(self, settings, runs, records, root: Path) -> dict[str, Any]:
        device = resolve_device(settings.device)
        targets = self.targets(settings, runs)
        deepest = path_network(self.models(settings))
        measured = [
            measure_gradients(name, targets[name], settings, root, device=device,
                              trained_here=name not in settings.weights, paths=name == deepest)
            for name in self.models(settings)
        ]  # fmt: skip
        return {
            "gradients": measured,
            "claims": gradient_tables.claims(measured),
            "paper": gradient_tables.paper_statements(),
        }

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        return gradient_plots.draw_all(results["gradients"], root)

    def tables(self, results: dict[str, Any]) -> list[Table]:
        return gradient_tables.tables(results["gradients"])


def path_network(names: list[str]) -> str | None:
    """The deepest residual network of ``names`` (the first of equals); None if all are plain."""
    residual = [n for n in names if not model_info(n).plain]
    return max(residual, key=lambda n: model_info(n).depth, default=None)


def measure_gradients(
    name: str,
    target: str,
    settings: ExperimentSettings,
    root: Path,
    *,
    device: torch.device,
    trained_here: bool,
    paths: bool,
) -> dict[str, Any]:
    """The network ``name`` in ``target`` (weights file, run folder or name) at initialisation
    (seeded, train-mode BN) and trained (eval mode): its branch ratios, its gradient at every
    layer and, with ``paths``, the gradient through paths of each length."""
    opened = open_network(name, target, settings, device=device,
                          count=settings.max_images or IMAGES)  # fmt: skip
    seed = settings.seeds[0]
    key = measurement_key(opened, seed=seed, draws=PATH_DRAWS, paths=paths)
    kept = KeptMeasurements(root / FOLDER / f"{name}.json", key)
    _measure(_jobs(opened, seed, paths), kept, label=name)
    done = kept.done
    residual = "ratios_init" in done
    result = {
        "model": name,
        **network_labels(name),
        "weights": str(target),
        "trained_here": trained_here,
        "images": len(opened.images.labels),
        "seed": seed,
        "ratios": {"init": done["ratios_init"], "trained": done["ratios_trained"]}
        if residual else None,
        "norms": {"init": done["norms_init"], "trained": done["norms_trained"]},
        "ratio_power": _power(done["ratios_init"]) if residual else None,
        "paths": _paths(done) if paths else None,
        "kept_file": str(kept.path.relative_to(root)),
    }  # fmt: skip
    return result


def initial_network(opened: Opened, seed: int) -> ResNet:
    """A fresh network built as the trained one was, initialised from ``seed``, in train mode
    (batch statistics, as training sees it); the global random state is left as it was."""
    trained = opened.trained
    options = json.loads(trained.metadata["model_options"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = create_model(trained.name, **options)
    return fresh.to(opened.device).train()


def _jobs(opened: Opened, seed: int, paths: bool) -> dict[str, Callable[[], Any]]:
    """Each measurement by the name it is kept under, to be run when not kept yet."""
    x, y = opened.inputs(), opened.labels()
    trained = opened.trained.model
    fresh = functools.cache(lambda: initial_network(opened, seed))
    jobs: dict[str, Callable[[], Any]] = {}
    if any(block.residual for block in trained.blocks()):
        jobs["ratios_init"] = lambda: _ratios(fresh(), x)
        jobs["ratios_trained"] = lambda: _ratios(trained, x)
    jobs["norms_init"] = lambda: layer_gradient_norms(fresh(), x, y)
    jobs["norms_trained"] = lambda: layer_gradient_norms(trained, x, y)
    if paths:
        study = functools.cache(lambda: PathGradients(trained, x, y))
        n = len(trained.blocks())
        for k in range(n + 1):
            subsets = path_subsets(n, k, PATH_DRAWS, seed)
            jobs[f"path_k{k}"] = lambda s=subsets: [study().norm(branches) for branches in s]
    return jobs


def _measure(jobs: dict[str, Callable[[], Any]], kept: KeptMeasurements, *, label: str) -> None:
    """Run the jobs ``kept`` lacks (a progress bar on a terminal), keeping each as it ends."""
    missing = [name for name in jobs if name not in kept.done]
    print(f"gradients: {label}: {len(missing)} of {len(jobs)} measurements to take "
          f"({len(jobs) - len(missing)} kept in {kept.path})", file=sys.stderr)  # fmt: skip
    with measuring("gradients", label, total=len(missing), unit="measurement",
                   desc=f"gradients {label}", kept=lambda: len(kept.done),
                   path=kept.path) as bar:  # fmt: skip
        for name in missing:
            kept.add(name, jobs[name]())
            bar.update()


def _ratios(model: ResNet, x: torch.Tensor) -> list[dict[str, float]]:
    return [
        {"index": r.index, "branch_std": r.branch_std, "shortcut_std": r.shortcut_std,
         "ratio": r.ratio}
        for r in branch_ratios(model, x)
    ]  # fmt: skip


def _power(ratios: list[dict[str, float]]) -> float:
    """The exponent b of ratio ~ l^b fitted on log-log axes (De and Smith: b = -1/2)."""
    slope, _, _ = log_fit([math.log(r["index"]) for r in ratios], [r["ratio"] for r in ratios])
    return _finite(slope)


def _paths(done: dict[str, Any]) -> dict[str, Any]:
    """The path study's numbers from its kept norms: the magnitude of one path of each length,
    its share of the whole gradient (times the number of such paths), the window and the
    exponential fit."""
    n = sum(1 for name in done if name.startswith("path_k")) - 1
    norms = [done[f"path_k{k}"] for k in range(n + 1)]
    magnitudes = [statistics.fmean(values) for values in norms]
    carried = [math.comb(n, k) * m for k, m in enumerate(magnitudes)]
    whole = sum(carried) or 1.0
    shortest, longest, fraction = gradient_window(magnitudes, SHARE)
    slope, _, r2 = log_fit(range(n + 1), magnitudes)
    return {
        "blocks": n,
        "draws": PATH_DRAWS,
        "by_k": [
            {"k": k, "subsets": len(values), "norms": values, "magnitude": m,
             "paths": math.comb(n, k), "share": c / whole}
            for k, (values, m, c) in enumerate(zip(norms, magnitudes, carried))
        ],  # fmt: skip
        "window": {"share": SHARE, "shortest": shortest, "longest": longest,
                   "fraction_of_paths": fraction},  # fmt: skip
        "decay": {"per_branch": _finite(math.exp(slope)), "r2": _finite(r2)},
    }


def _finite(value: float) -> float | None:
    """``value``, or None where it is NaN or infinite (JSON has neither)."""
    return value if math.isfinite(value) else None


def log_fit(x: Any, y: list[float]) -> tuple[float, float, float]:
    """(slope, intercept, r²) of the least-squares line through (x, log y), positive y only."""
    points = [(a, math.log(b)) for a, b in zip(x, y) if b > 0]
    if len(points) < 2:
        return math.nan, math.nan, math.nan
    xs, ys = (np.array(v, dtype=float) for v in zip(*points))
    slope, intercept = np.polyfit(xs, ys, 1)
    residual = ys - (slope * xs + intercept)
    spread = float(((ys - ys.mean()) ** 2).sum())
    r2 = 1 - float((residual**2).sum()) / spread if spread > 0 else 1.0
    return float(slope), float(intercept), r2
