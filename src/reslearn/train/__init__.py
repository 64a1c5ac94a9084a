"""Training: recipes, the on-device training loop, checkpoints and run folders."""

from reslearn.train.config import TrainConfig
from reslearn.train.recipes import RECIPES, get_recipe
from reslearn.train.run import RunResult, train
from reslearn.train.trainer import Trainer, TrainingStopped

__all__ = [
    "RECIPES",
    "RunResult",
    "TrainConfig",
    "Trainer",
    "TrainingStopped",
    "get_recipe",
    "train",
]
