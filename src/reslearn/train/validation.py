"""The checks of a training run's settings, each refusing one setting by its field name
(``SettingError``: ``batch_size must be ...`` from Python, ``--batch-size must be ...`` on the
command line), before any work starts."""

from __future__ import annotations

import math
from typing import Any

from reslearn.choices import DECODES, LOADERS
from reslearn.data.normalize import NORMALIZATIONS
from reslearn.device import DEVICES, PRECISIONS
from reslearn.errors import SettingError
from reslearn.models import MODEL_OPTIONS, model_info
from reslearn.train.recipes import SCHEDULES, get_recipe

#: Model options that a training run takes from its data, never from the user.
FROM_DATA = {
    "num_classes": "the number of classes in the data",
    "in_channels": "the data's channels (1 for grey-scale images, 3 for colour)",
}
_STREAM_ONLY = ("crop_size", "scale_range", "lighting", "decode")
_MEMORY_ONLY = ("pad", "flip", "image_size")


def validate(config: Any, defaults: Any) -> None:
    """Raise a one-line SettingError for the first invalid setting of a TrainConfig
    (``defaults``: a TrainConfig with every default, to tell which flags were given)."""
    model_info(config.model)
    check_model_options(config.model_options)
    get_recipe(config.recipe)
    _check_choices(config)
    _check_loader_flags(config, defaults)
    _check_stream(config)
    _check_counts(config)
    _check_optimizer(config)
    _check_schedule(config)


def check_model_options(options: dict[str, Any]) -> None:
    """Refuse, by name, a model option that does not exist or that the data decides."""
    for key, value in options.items():
        if key in FROM_DATA:
            raise SettingError(
                f"model option {key} comes from the data ({FROM_DATA[key]}); drop "
                f"<set> {key}={value}"
            )
        if key not in MODEL_OPTIONS:
            allowed = ", ".join(k for k in MODEL_OPTIONS if k not in FROM_DATA)
            raise SettingError(f"unknown model option {key!r}; allowed: {allowed}")


def check_positive(name: str, value: Any) -> None:
    """``value`` must be a finite number above 0."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise SettingError(f"<{name}> must be a positive number; got {value}")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingError(f"<{name}> must be one of {', '.join(choices)}; got {value!r}")


def _check_choices(c: Any) -> None:
    _check_choice("precision", c.precision, PRECISIONS)
    _check_choice("device", c.device, DEVICES)
    if c.normalization is not None:
        _check_choice("normalization", c.normalization, NORMALIZATIONS)
    if c.loader is not None:
        _check_choice("loader", c.loader, LOADERS)
    _check_choice("decode", c.decode, DECODES)
    if c.schedule is not None:
        _check_choice("schedule", c.schedule, SCHEDULES)


def _check_loader_flags(c: Any, defaults: Any) -> None:
    """Refuse settings that the chosen loader would silently ignore."""
    loader = c.loader or get_recipe(c.recipe).loader
    unused = _STREAM_ONLY if loader == "memory" else _MEMORY_ONLY
    given = [f"<{name}>" for name in unused if getattr(c, name) != getattr(defaults, name)]
    if given:
        other = "stream" if loader == "memory" else "memory"
        raise SettingError(
            f"{', '.join(given)} only apply to <loader> {other}; this run uses <loader> {loader}"
        )


def _check_stream(c: Any) -> None:
    for name in ("accumulate", "crop_size"):
        value = getattr(c, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SettingError(f"<{name}> must be an integer >= 1; got {value}")
    if len(c.scale_range) != 2 or not (c.crop_size <= c.scale_range[0] <= c.scale_range[1]):
        raise SettingError(
            f"<scale_range> must be two sides LOW HIGH with <crop_size> {c.crop_size} "
            f"<= LOW <= HIGH; got {' '.join(map(str, c.scale_range))}"
        )
    if not (math.isfinite(c.lighting) and c.lighting >= 0):
        raise SettingError(f"<lighting> must be >= 0; got {c.lighting}")


def _check_counts(c: Any) -> None:
    positive = (
        "batch_size", "iterations", "epochs", "log_every", "eval_every", "checkpoint_every",
        "eval_batch_size", "image_size", "lr",
    )  # fmt: skip
    for name in positive:
        if getattr(c, name) is not None:
            check_positive(name, getattr(c, name))
    for name in ("momentum", "weight_decay", "pad", "val_split", "warmup_steps"):
        value = getattr(c, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise SettingError(f"<{name}> must be >= 0; got {value}")
    patience = c.plateau_patience
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        raise SettingError(f"<plateau_patience> must be an integer >= 1; got {patience}")


def _check_optimizer(c: Any) -> None:
    if c.momentum is not None and c.momentum >= 1:
        raise SettingError(f"<momentum> must be below 1; got {c.momentum}")
    if c.label_smoothing is not None and not 0 <= c.label_smoothing < 1:
        raise SettingError(f"<label_smoothing> must be in [0, 1); got {c.label_smoothing}")
    if not 0 < c.lr_gamma <= 1:
        raise SettingError(f"<lr_gamma> must be in (0, 1]; got {c.lr_gamma}")
    if not (math.isfinite(c.backbone_lr_scale) and c.backbone_lr_scale > 0):
        raise SettingError(
            f"<backbone_lr_scale> must be a positive number; got {c.backbone_lr_scale}"
        )
    if c.freeze_backbone and c.backbone_lr_scale != 1:
        raise SettingError("<freeze_backbone> and <backbone_lr_scale> exclude each other")
    if c.nesterov and c.momentum == 0:
        raise SettingError("<nesterov> needs a <momentum> above 0")


def _check_schedule(c: Any) -> None:
    if c.milestones is not None:
        if any(b <= a for a, b in zip(c.milestones, c.milestones[1:])):
            raise SettingError(f"<milestones> must increase; got {c.milestones}")
        for m in c.milestones:
            if m <= 0 or (c.iterations is not None and m >= c.iterations):
                raise SettingError(
                    f"milestone {m} is outside the run (1 to {c.iterations} iterations); "
                    "give <milestones> inside <iterations>"
                )
    if c.warmup_steps is not None and c.iterations is not None and c.warmup_steps >= c.iterations:
        raise SettingError(
            f"<warmup_steps> {c.warmup_steps} must be below <iterations> {c.iterations}"
        )
