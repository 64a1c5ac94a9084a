"""Training: recipes, the on-device training loop, checkpoints and run folders.

The names below are imported when first used (PEP 562), so that ``reslearn.train.recipes``,
which the command line's parsers read, comes without torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reslearn.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and editors see
    from reslearn.train.assemble import assemble_trainer
    from reslearn.train.config import RunConfig, TrainConfig
    from reslearn.train.loop import TrainingStopped
    from reslearn.train.prepare import from_tensors, prepare
    from reslearn.train.recipes import RECIPES, get_recipe
    from reslearn.train.run import RunResult, train
    from reslearn.train.trainer import Trainer

#: Each public name and the module that defines it.
_HOMES = {
    "RECIPES": "reslearn.train.recipes",
    "RunConfig": "reslearn.train.run_config",
    "RunResult": "reslearn.train.run",
    "TrainConfig": "reslearn.train.config",
    "Trainer": "reslearn.train.trainer",
    "TrainingStopped": "reslearn.train.loop",
    "assemble_trainer": "reslearn.train.assemble",
    "from_tensors": "reslearn.train.prepare",
    "get_recipe": "reslearn.train.recipes",
    "prepare": "reslearn.train.prepare",
    "train": "reslearn.train.run",
}

__all__ = [
    "RECIPES",
    "RunConfig",
    "RunResult",
    "TrainConfig",
    "Trainer",
    "TrainingStopped",
    "assemble_trainer",
    "from_tensors",
    "get_recipe",
    "prepare",
    "train",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
