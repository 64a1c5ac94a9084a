"""Training: recipes, the on-device training loop, checkpoints and run folders.

The names below are imported when first used (PEP 562), so that ``reslearn.train.recipes``,
which the command line's parsers read, comes without torch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reslearn.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and editors see
    from reslearn.train.config import TrainConfig
    from reslearn.train.loop import TrainingStopped
    from reslearn.train.recipes import RECIPES, get_recipe
    from reslearn.train.run import RunResult, train
    from reslearn.train.trainer import Trainer

#: Each public name and the module that defines it.
_HOMES = {
    "RECIPES": "reslearn.train.recipes",
    "RunResult": "reslearn.train.run",
    "TrainConfig": "reslearn.train.config",
    "Trainer": "reslearn.train.trainer",
    "TrainingStopped": "reslearn.train.loop",
    "get_recipe": "reslearn.train.recipes",
    "train": "reslearn.train.run",
}

__all__ = [
    "RECIPES",
    "RunResult",
    "TrainConfig",
    "Trainer",
    "TrainingStopped",
    "get_recipe",
    "train",
]


__getattr__, __dir__ = lazy_exports(__name__, _HOMES, globals())
