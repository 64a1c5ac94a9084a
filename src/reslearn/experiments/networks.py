"""What the experiments that measure trained networks share (lesion, gradients, landscape):
the networks named by --models, trained here or given with --weights NAME=FILE, a run folder or
a name (``reslearn:resnet56-cifar10``), each opened with its test images; and their
measurements kept in the experiment folder as they finish, with a progress bar, so that a
stopped experiment goes on where it stopped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tqdm import tqdm

from reslearn.experiments.base import Experiment, ExperimentSettings, FinishedRun, PlannedRun
from reslearn.experiments.run_record import weights_sha256
from reslearn.hub import weights_path
from reslearn.jsonfile import read_json
from reslearn.models import model_info
from reslearn.open_trained import Opened, open_for_analysis, open_weights
from reslearn.rundir import WEIGHTS, write_json


class NetworkExperiment(Experiment):
    """An experiment over named networks (--models), trained here unless --weights gives them."""

    default_models: tuple[str, ...] = ()

    def models(self, settings: ExperimentSettings) -> list[str]:
        """The networks to measure, in the order given."""
        names = list(settings.models or self.default_models)
        return names + [n for n in settings.weights if n not in names]

    def check(self, settings: ExperimentSettings) -> None:
        for name in self.models(settings):
            model_info(name)
        for name, target in settings.weights.items():
            if ":" not in target and not Path(target).exists():
                raise ValueError(
                    f"--weights {name}={target}: no such file or run folder (or give a name, "
                    "e.g. reslearn:resnet56-cifar10)"
                )
        if settings.depths:
            raise ValueError(f"{self.name} takes --models (e.g. resnet20 resnet56), not --depths")

    def plan(self, settings: ExperimentSettings) -> list[PlannedRun]:
        seed = settings.seeds[0]
        return [
            PlannedRun(
                name=f"{name}-s{seed}",
                config=settings.train_config(name, seed),
                labels=labels(name) | {"seed": seed},
            )
            for name in self.models(settings)
            if name not in settings.weights
        ]

    def targets(self, settings: ExperimentSettings, runs: list[FinishedRun]) -> dict[str, str]:
        """Each network's weights: given with --weights, else the run trained here."""
        trained = {run.planned.config.model: str(run.run_dir / WEIGHTS) for run in runs}
        return {name: settings.weights.get(name) or trained[name] for name in self.models(settings)}


def open_named(name: str, target: str | Path, device: Any) -> Opened:
    """The weights ``target`` (file, run folder or name) on ``device``, which must hold the
    network ``name``: weights of another network are refused in one line."""
    opened = open_weights(target, device)
    if opened.trained.name != name:
        raise ValueError(
            f"--weights {name}={target} holds a {opened.trained.name}, not a {name}: give "
            f"{opened.trained.name}={target}, or weights of a {name}"
        )
    return opened


def open_network(
    name: str, target: str, settings: ExperimentSettings, *, device: Any, count: int | None
) -> Opened:
    """The network ``name`` from ``target`` on ``device`` with a seeded sample of ``count`` test
    images (all when None); weights of another network are refused in one line."""
    opened = open_named(name, target, device)
    return open_for_analysis(
        opened, data=settings.data, count=count, cache_dir=settings.cache_dir,
        workers=settings.workers,
    )  # fmt: skip


def labels(name: str) -> dict[str, Any]:
    """A network's family (plain or resnet) and depth."""
    info = model_info(name)
    return {"family": "plain" if info.plain else "resnet", "depth": info.depth}


def measurement_key(opened: Opened, **what: Any) -> dict[str, Any]:
    """What a network's measurements depend on: its weights' digest, its images, and ``what``."""
    images = opened.images
    return {
        "weights_sha256": weights_sha256(weights_path(opened.weights)),
        "data": opened.data,
        "images": None if images is None else len(images.labels),
        **what,
    }


class KeptMeasurements:
    """One network's finished measurements (``done``: name -> JSON value), kept in ``path``
    and rewritten whole after each one; measurements taken with another key start over."""

    def __init__(self, path: Path, key: dict[str, Any]) -> None:
        self.path, self.key = path, key
        self.done: dict[str, Any] = {}
        if path.is_file():
            kept = read_json(path, fix="delete it to measure again")
            if kept.get("key") == key:
                self.done = dict(kept.get("done") or {})
            else:
                print(f"{path}: measured with other weights, images or settings; measuring "
                      "again", file=sys.stderr)  # fmt: skip

    def add(self, name: str, value: Any) -> None:
        """Keep one finished measurement."""
        self.done[name] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"key": self.key, "done": self.done})


@contextmanager
def measuring(
    study: str, label: str, *, total: int, unit: str, desc: str, kept: Callable[[], int],
    path: Path,
) -> Iterator[tqdm]:
    """A progress bar (on a terminal) over the ``total`` measurements ``study`` takes of
    ``label``; a stop (Ctrl-C) says how many ``unit``s are kept in ``path`` and how to go on."""
    bar = tqdm(total=total, desc=desc, unit=unit, disable=None, file=sys.stderr,
               dynamic_ncols=True)  # fmt: skip
    try:
        yield bar
    except KeyboardInterrupt:
        print(f"{study}: stopped; {kept():,} {unit}s of {label} are kept in {path}: run the "
              "same command again to go on", file=sys.stderr)  # fmt: skip
        raise
    finally:
        bar.close()
