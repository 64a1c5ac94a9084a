"""What an experiment is given, and the one place that maps it to everything else: the flags of
``reslearn reproduce`` (parsed into settings, and written back as the command a report prints)
and the TrainConfig of each run.

A field's flag is ``--`` plus its name with dashes, and argparse's dest is the field's name, so
a new setting is a field here and its flag in commands/reproduce.py; the round trip in
tests/experiments/test_reproduce_command.py fails until both exist.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reslearn.choices import BUDGETS
from reslearn.errors import SettingError
from reslearn.train.config import TrainConfig

#: Settings that say where the runs train, not what they compute: the command a report prints
#: leaves them out, and a run's sessions may differ in them.
WHERE_NOT_WHAT = ("device", "workers", "cache_dir")

#: A budgeted run evaluates on the test set at most this many times (enough points for a
#: curve, the last at the end), and this many steps apart at least: one pass over CIFAR-10's
#: 10,000 test images costs as much as 26 training steps at batch 128 by FLOPs (70 measured on
#: a 2-core CPU), so a 20-step run evaluating every 2nd step spent 90% of its time evaluating.
#: A run under 100 steps evaluates once, at its end.
_EVALUATIONS_PER_RUN, _STEPS_BETWEEN_EVALUATIONS = 10, 100


@dataclass
class ExperimentSettings:
    """What an experiment trains on and for how long; experiment-specific choices included."""

    data: str
    budget: str | None = None  # a named (recipe, iterations) preset: choices.BUDGETS
    recipe: str = "paper"
    iterations: int | None = None  # None: the recipe's own budget (64k for the paper's)
    seeds: list[int] = field(default_factory=lambda: [0])  # from flags: the experiment's own
    depths: list[int] = field(default_factory=list)  # empty: the experiment's default
    models: list[str] = field(default_factory=list)  # responses, landscape: networks measured
    weights: dict[str, str] = field(default_factory=dict)  # responses, landscape: given weights
    max_images: int | None = None  # responses, antialias, landscape: N test images
    grid: int = 21  # landscape: the 2-D grid is N x N points on [-1, 1]^2 (the paper's 51)
    subset: int = 2000  # landscape: the loss on a seeded sample of N training images
    val_split: int = 0
    batch_size: int | None = None
    eval_every: int | None = None
    device: str = "auto"
    precision: str = "auto"
    cache_dir: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        # one run per (network, seed): a repeated seed or depth would reuse that run and count
        # it twice in every mean and spread
        for name in ("seeds", "depths", "models"):
            values = list(getattr(self, name))
            repeated = sorted({v for v in values if values.count(v) > 1}, key=values.index)
            if repeated:
                shown = " ".join(map(str, values))
                raise SettingError(
                    f"<{name}> {shown} gives {', '.join(map(str, repeated))} more than once; "
                    "each is one run and a result counts it once: give each value once"
                )

    @classmethod
    def from_flags(
        cls, flags: Mapping[str, Any], *, default_seeds: Sequence[int]
    ) -> ExperimentSettings:
        """The settings ``reslearn reproduce`` was given (``vars(args)``): each field from its
        flag, a flag left out (None) keeping the field's default; ``--weights NAME=FILE`` pairs
        make the dict, and no ``--seeds`` means the experiment's ``default_seeds``."""
        given = {}
        for f in dataclasses.fields(cls):
            value = flags[f.name]  # a KeyError here: a field without its flag
            if value is None:
                continue
            if f.default_factory is not dataclasses.MISSING:  # list or dict
                value = type(f.default_factory())(value)
            given[f.name] = value
        given.setdefault("seeds", list(default_seeds))
        return cls(**_with_budget(given))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return dataclasses.asdict(self)

    def train_config(self, model: str, seed: int, **model_options: Any) -> TrainConfig:
        """The training settings of one run of the experiment: every setting TrainConfig has
        too (the same name) passes on as it is; a budgeted run logs more often and evaluates
        10 times at most, 100 steps apart at least (the recipe's budget: once per epoch)."""
        eval_every, log_every = self.eval_every, 100
        if self.iterations is not None:
            if eval_every is None:
                every = math.ceil(self.iterations / _EVALUATIONS_PER_RUN)
                eval_every = min(max(every, _STEPS_BETWEEN_EVALUATIONS), self.iterations)
            log_every = max(1, min(100, self.iterations // 40))
        passed_on = {name: getattr(self, name) for name in _shared_with_train_config()}
        return TrainConfig(
            **{**passed_on, "eval_every": eval_every, "log_every": log_every},
            model=model,
            model_options=dict(model_options),
            seed=seed,
        )


def _with_budget(given: dict[str, Any]) -> dict[str, Any]:
    """``--budget NAME`` as the recipe and iterations it stands for; refused beside either."""
    name = given.get("budget")
    if name is None:
        return given
    if name not in BUDGETS:
        raise SettingError(f"unknown <budget> {name!r}; budgets: {', '.join(BUDGETS)}")
    clash = [key for key in ("recipe", "iterations") if key in given]
    if clash:
        flags = " and ".join(f"<{key}>" for key in clash)
        raise SettingError(f"<budget> {name} sets {flags}: give the budget or {flags}, not both")
    preset = BUDGETS[name]
    return {**given, "recipe": preset["recipe"], "iterations": preset["iterations"]}


def _shared_with_train_config() -> list[str]:
    """The settings named as in TrainConfig (data, recipe, iterations, val_split, ...)."""
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return [f.name for f in dataclasses.fields(ExperimentSettings) if f.name in train_fields]


def settings_argv(settings: Mapping[str, Any]) -> list[str]:
    """``reslearn reproduce`` flags that give these settings (``as_dict()``, or the settings of
    an older results.json, where a missing one is unset), in field order.

    A setting is written when it differs from its default; ``data`` (required) and ``seeds``
    (whose default is the experiment's, not the field's) always are. Unset values (None, empty
    lists) and ``WHERE_NOT_WHAT`` never are. A list is ``--name A B``, a dict one ``--name K=V``
    per entry, anything else ``--name VALUE``.
    """
    argv: list[str] = []
    for f in dataclasses.fields(ExperimentSettings):
        value = settings.get(f.name)
        if f.name in WHERE_NOT_WHAT or value is None or value == [] or value == {}:
            continue
        if settings.get("budget") and f.name in ("recipe", "iterations"):
            continue  # the budget gives them
        if f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = f.default
        if f.name != "seeds" and value == default:
            continue
        flag = f"--{f.name.replace('_', '-')}"
        if isinstance(value, dict):
            for key, item in value.items():
                argv += [flag, f"{key}={item}"]
        elif isinstance(value, list):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv
