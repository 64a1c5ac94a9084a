"""The paper's experiments, one command each: ``reslearn reproduce NAME``.

Each experiment plans its training runs, trains the missing ones into ``OUT/runs/`` (finished
runs are reused, interrupted ones resumed), and writes ``results.json`` and ``report.html``.
"""

from reslearn.experiments.antialias import Antialias
from reslearn.experiments.base import (
    Experiment,
    ExperimentSettings,
    PlannedRun,
    run_experiment,
)
from reslearn.experiments.cifar import Cifar
from reslearn.experiments.degradation import Degradation
from reslearn.experiments.gradients import Gradients
from reslearn.experiments.landscape import Landscape
from reslearn.experiments.lesion import Lesion
from reslearn.experiments.pooling import Pooling
from reslearn.experiments.responses import Responses
from reslearn.experiments.shortcuts import Shortcuts
from reslearn.experiments.table6 import Table6

#: Every experiment by name, in the order ``reslearn reproduce --help`` lists them.
EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        Cifar(),
        Degradation(),
        Table6(),
        Responses(),
        Shortcuts(),
        Antialias(),
        Pooling(),
        Landscape(),
        Lesion(),
        Gradients(),
    )
}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; an unknown name lists the known ones."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(
            f"unknown experiment {name!r}; experiments: {', '.join(EXPERIMENTS)}"
        ) from None


__all__ = [
    "EXPERIMENTS",
    "Experiment",
    "ExperimentSettings",
    "PlannedRun",
    "get_experiment",
    "run_experiment",
]
