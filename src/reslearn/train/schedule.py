"""The learning-rate schedule of a run as an object of its own: the rate at any step, what it
observes along the way (the training error, for the paper's lr/10 warm-up of 110+ layers; each
evaluation, for the plateau schedule) and its state, which checkpoints carry."""

from __future__ import annotations

import math
from typing import Any

from reslearn.train.recipes import LOW_LR_WARMUP_ERROR, LOW_LR_WARMUP_FACTOR, learning_rate
from reslearn.train.run_config import RunConfig

#: Training steps whose mean error decides that the low-lr warm-up has ended.
WARMUP_WINDOW = 20


class LearningRateSchedule:
    """The learning rate of a resolved ``config`` at each step, and what moves it."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        #: The paper's warm-up: lr/10 until the training error is below 80%.
        self.warmup_active = bool(config.low_lr_warmup)
        self.warmup_errors: list[float] = []
        self.warmup_ended_at: int | None = None
        #: Steps after which the plateau schedule divided the lr, and its best error so far.
        self.plateau_drops: list[int] = []
        self.plateau_best = math.inf
        self.plateau_waited = 0

    def lr_at(self, step: int) -> float:
        """The learning rate used for ``step`` (0-based)."""
        c = self.config
        lr = learning_rate(
            step,
            base_lr=c.lr,
            schedule=c.schedule,
            iterations=c.iterations,
            milestones=tuple(c.milestones),
            gamma=c.lr_gamma,
            warmup_steps=c.warmup_steps,
            plateau_drops=sum(d <= step for d in self.plateau_drops),
        )
        return lr * LOW_LR_WARMUP_FACTOR if self.warmup_active else lr

    def observe_training_error(self, step: int, error: float) -> None:
        """A step's training error (while the warm-up lasts): it ends once the mean over the
        last ``WARMUP_WINDOW`` steps is below ``LOW_LR_WARMUP_ERROR``."""
        self.warmup_errors = (self.warmup_errors + [error])[-WARMUP_WINDOW:]
        full = len(self.warmup_errors) == WARMUP_WINDOW
        if full and sum(self.warmup_errors) / WARMUP_WINDOW < LOW_LR_WARMUP_ERROR:
            self.warmup_active, self.warmup_ended_at = False, step + 1

    def observe_evaluation(self, done: int, error: float) -> bool:
        """The monitored split's error after ``done`` steps (plateau schedule): divide the lr
        when it has not improved by ``plateau_threshold`` for ``plateau_patience``
        evaluations; True when it dropped."""
        if error < self.plateau_best - self.config.plateau_threshold:
            self.plateau_best, self.plateau_waited = error, 0
            return False
        self.plateau_waited += 1
        if self.plateau_waited < self.config.plateau_patience:
            return False
        self.plateau_drops.append(done)
        self.plateau_waited = 0
        self.plateau_best = min(self.plateau_best, error)
        return True

    def state_dict(self) -> dict[str, Any]:
        """The schedule's state, as a checkpoint holds it under "schedule"."""
        return {
            "warmup_active": self.warmup_active,
            "warmup_errors": list(self.warmup_errors),
            "warmup_ended_at": self.warmup_ended_at,
            "plateau_drops": list(self.plateau_drops),
            "plateau_best": self.plateau_best,
            "plateau_waited": self.plateau_waited,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (checkpoints from before the plateau schedule
        lack its three entries)."""
        self.warmup_active = state["warmup_active"]
        self.warmup_errors = list(state["warmup_errors"])
        self.warmup_ended_at = state["warmup_ended_at"]
        self.plateau_drops = list(state.get("plateau_drops", []))
        self.plateau_best = state.get("plateau_best", math.inf)
        self.plateau_waited = state.get("plateau_waited", 0)
