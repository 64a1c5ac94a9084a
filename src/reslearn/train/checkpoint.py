"""Training checkpoints: written atomically, read only with ``weights_only=True``.

A checkpoint holds everything a run needs to continue bit for bit: the step, the model, the
optimizer (momentum buffers), the schedule's state and the global RNG states (a run adds its
run id and its logging window). The run folder keeps the newest two; if the newest is damaged
(or, as the run decides, another run's, or does not fit its network), resuming falls back to
the one before it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from reslearn.atomic import atomic_write
from reslearn.rundir import checkpoint_name, list_checkpoints

FORMAT = "reslearn-checkpoint/1"


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, fsync, then rename over ``path``."""
    atomic_write(path, lambda file: torch.save(obj, file))


def save_checkpoint(folder: str | Path, state: dict[str, Any], *, keep: int = 2) -> Path:
    """Write ``state`` (with a "step") as ``folder/step-NNNNNNN.pt``; keep the newest ``keep``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / checkpoint_name(state["step"])
    atomic_save({"format": FORMAT, **state}, path)
    for old in list_checkpoints(folder)[:-keep]:
        if old != path:
            old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read one checkpoint safely; a damaged or foreign file raises a one-line ValueError."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises many types for a torn or foreign file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"checkpoint {path} cannot be read ({reason[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a reslearn training checkpoint")
    return state


def load_latest_checkpoint(
    folder: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    accept: Callable[[Path, dict[str, Any]], None] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """The newest readable checkpoint in ``folder``, warning about each damaged newer one.

    ``accept(path, state)`` may refuse a readable checkpoint with a ValueError (another run's,
    or one that does not fit the network); it then counts as damaged, and the one before is
    tried.
    """
    candidates = list_checkpoints(folder)
    if not candidates:
        raise FileNotFoundError(f"no checkpoint in {folder}; the run cannot be resumed")
    problems = []
    for path in reversed(candidates):
        try:
            state = load_checkpoint(path, map_location)
            if accept is not None:
                accept(path, state)
            return path, state
        except ValueError as error:
            problems.append(str(error))
            warnings.warn(f"{error}; falling back to the previous checkpoint", stacklevel=2)
    raise ValueError(f"no checkpoint in {folder} can be resumed: {'; '.join(problems)}")


def rng_state() -> dict[str, Any]:
    """The global torch RNG states (CPU and every CUDA device)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
