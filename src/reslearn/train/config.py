"""Every setting of a training run, resolved from a recipe and the user's overrides, checked
before any work starts, and saved as the run's config.json."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reslearn.data.normalize import NORMALIZATIONS
from reslearn.device import DEVICES, PRECISIONS
from reslearn.errors import UserError, one_line
from reslearn.jsonfile import read_json_record
from reslearn.models import MODEL_OPTIONS, model_info
from reslearn.train.recipes import SCHEDULES, get_recipe

LOADERS = ("memory", "stream")
DECODES = ("auto", "workers", "device")


@dataclass
class TrainConfig:
    """A training run's settings. ``None`` means "the recipe's default" until ``resolve``."""

    data: str
    model: str = "resnet20"
    model_options: dict[str, Any] = field(default_factory=dict)
    recipe: str = "paper"
    iterations: int | None = None
    epochs: float | None = None
    batch_size: int | None = None
    lr: float | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    schedule: str | None = None
    milestones: list[int] | None = None
    lr_gamma: float = 0.1
    warmup_steps: int | None = None  # onecycle warm-up length
    low_lr_warmup: bool | None = None  # the paper's lr/10 start for 110+ layers
    seed: int = 0
    val_split: int = 0
    normalization: str | None = None  # per-pixel; imagenet when --init is torchvision's
    pad: int = 4
    flip: bool = True
    image_size: int | None = None
    precision: str = "auto"  # measured at start-up (reslearn.precision); bf16 | fp16 | fp32
    channels_last: bool | None = None  # None: measured with the precision
    compile: bool = False
    device: str = "auto"
    log_every: int = 100
    eval_every: int | None = None  # default: once per epoch
    checkpoint_every: int | None = None  # default: at every evaluation
    eval_batch_size: int = 1000
    cache_dir: str | None = None
    skip_bad_images: bool = False
    workers: int | None = None  # decoding processes (memory) or DataLoader workers (stream)
    init: str | None = None  # torchvision:NAME or a weights file (fresh runs only)
    freeze_backbone: bool = False  # train only the classifier
    backbone_lr_scale: float = 1.0  # the backbone's lr relative to the classifier's
    loader: str | None = None  # memory | stream (default: the recipe's)
    accumulate: int = 1  # micro-batches per step and process (gradient accumulation)
    sync_bn: bool = False  # batch statistics over all processes (GPUs only)
    crop_size: int = 224  # stream loader: training crop
    scale_range: list[int] = field(default_factory=lambda: [256, 480])  # shorter side range
    lighting: float = 0.1  # stream loader: PCA lighting noise std (0: none)
    decode: str = "auto"  # stream: JPEGs decoded in the workers or on the device (auto: GPU)
    plateau_patience: int = 5  # evaluations without improvement before the lr drops
    plateau_threshold: float = 0.001  # improvement in error (absolute) that counts

    def resolve(self, train_images: int) -> TrainConfig:
        """A copy with every recipe default filled in for a training set of this size."""
        recipe = get_recipe(self.recipe)
        out = dataclasses.replace(
            self, model_options=dict(self.model_options), scale_range=list(self.scale_range)
        )
        if out.loader is None:
            out.loader = recipe.loader
        out.normalization = out.resolve_normalization()
        recipe_settings = (
            "batch_size", "lr", "momentum", "nesterov", "weight_decay", "label_smoothing",
            "schedule",
        )  # fmt: skip
        for name in recipe_settings:
            if getattr(out, name) is None:
                setattr(out, name, getattr(recipe, name))
        _check_positive("--batch-size", out.batch_size)
        if out.batch_size > train_images:
            raise ValueError(
                f"--batch-size {out.batch_size} is larger than the {train_images} training images"
            )
        steps_per_epoch = train_images // out.batch_size
        if out.iterations is None:
            if out.epochs is not None:
                _check_positive("--epochs", out.epochs)
                out.iterations = max(1, round(out.epochs * steps_per_epoch))
            elif recipe.iterations is not None:
                out.iterations = recipe.iterations
            else:
                out.iterations = max(1, round(recipe.epochs * steps_per_epoch))
        elif out.epochs is not None:
            raise ValueError("give --iterations or --epochs, not both")
        _check_positive("--iterations", out.iterations)
        out.epochs = out.iterations / steps_per_epoch
        if out.milestones is None:
            # --iterations N scales the paper's 32k/48k-of-64k milestones proportionally
            # (a tiny budget can round two drops onto one step, or onto 0: keep each once)
            scaled = {round(f * out.iterations) for f in recipe.milestone_fractions}
            out.milestones = sorted(m for m in scaled if 0 < m < out.iterations)
        if out.warmup_steps is None:
            out.warmup_steps = round(recipe.warmup_fraction * out.iterations)
        if out.low_lr_warmup is None:
            depth = recipe.low_lr_warmup_depth
            out.low_lr_warmup = depth is not None and model_info(out.model).depth >= depth
        if out.eval_every is None:
            out.eval_every = min(steps_per_epoch, out.iterations)
        if out.checkpoint_every is None:
            out.checkpoint_every = out.eval_every
        out.validate()
        return out

    def resolve_normalization(self) -> str:
        """The normalization as given, else per-pixel (the paper's), or torchvision's
        ImageNet statistics when starting from torchvision weights."""
        if self.normalization is not None:
            return self.normalization
        return "imagenet" if _torchvision_init(self.init) else "per-pixel"

    def _check_loader_flags(self) -> None:
        """Refuse flags that the chosen loader would silently ignore."""
        defaults = TrainConfig(data="")
        stream_only = ("crop_size", "scale_range", "lighting", "decode")
        memory_only = ("pad", "flip", "image_size")
        loader = self.loader or get_recipe(self.recipe).loader
        unused = stream_only if loader == "memory" else memory_only
        given = [
            "--" + name.replace("_", "-")
            for name in unused
            if getattr(self, name) != getattr(defaults, name)
        ]
        if given:
            other = "stream" if loader == "memory" else "memory"
            raise ValueError(
                f"{', '.join(given)} only apply to --loader {other}; this run uses "
                f"--loader {loader}"
            )

    def validate(self) -> None:
        """Raise a one-line ValueError for the first invalid setting."""
        model_info(self.model)
        check_model_options(self.model_options)
        get_recipe(self.recipe)
        _check_choice("--precision", self.precision, PRECISIONS)
        _check_choice("--device", self.device, DEVICES)
        if self.normalization is not None:
            _check_choice("--normalization", self.normalization, NORMALIZATIONS)
        if self.loader is not None:
            _check_choice("--loader", self.loader, LOADERS)
        _check_choice("--decode", self.decode, DECODES)
        self._check_loader_flags()
        for flag, value in (("--accumulate", self.accumulate), ("--crop-size", self.crop_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{flag} must be an integer >= 1; got {value}")
        if isinstance(self.plateau_patience, bool) or not isinstance(self.plateau_patience, int):
            raise ValueError(f"--plateau-patience must be an integer; got {self.plateau_patience}")
        if self.plateau_patience < 1:
            raise ValueError(f"--plateau-patience must be >= 1; got {self.plateau_patience}")
        if len(self.scale_range) != 2 or not (
            self.crop_size <= self.scale_range[0] <= self.scale_range[1]
        ):
            raise ValueError(
                f"--scale-range must be two sides LOW HIGH with --crop-size {self.crop_size} "
                f"<= LOW <= HIGH; got {' '.join(map(str, self.scale_range))}"
            )
        if not (math.isfinite(self.lighting) and self.lighting >= 0):
            raise ValueError(f"--lighting must be >= 0; got {self.lighting}")
        if self.schedule is not None:
            _check_choice("--schedule", self.schedule, SCHEDULES)
        for flag, value in (
            ("--batch-size", self.batch_size),
            ("--iterations", self.iterations),
            ("--epochs", self.epochs),
            ("--log-every", self.log_every),
            ("--eval-every", self.eval_every),
            ("--checkpoint-every", self.checkpoint_every),
            ("--eval-batch-size", self.eval_batch_size),
            ("--image-size", self.image_size),
        ):
            if value is not None:
                _check_positive(flag, value)
        if self.lr is not None:
            _check_positive("--lr", self.lr)
        for flag, value in (
            ("--momentum", self.momentum),
            ("--weight-decay", self.weight_decay),
            ("--pad", self.pad),
            ("--val-split", self.val_split),
            ("--warmup-steps", self.warmup_steps),
        ):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{flag} must be >= 0; got {value}")
        if self.momentum is not None and self.momentum >= 1:
            raise ValueError(f"--momentum must be below 1; got {self.momentum}")
        if self.label_smoothing is not None and not 0 <= self.label_smoothing < 1:
            raise ValueError(f"--label-smoothing must be in [0, 1); got {self.label_smoothing}")
        if not 0 < self.lr_gamma <= 1:
            raise ValueError(f"--lr-gamma must be in (0, 1]; got {self.lr_gamma}")
        if not (math.isfinite(self.backbone_lr_scale) and self.backbone_lr_scale > 0):
            raise ValueError(
                f"--backbone-lr-scale must be a positive number; got {self.backbone_lr_scale}"
            )
        if self.freeze_backbone and self.backbone_lr_scale != 1:
            raise ValueError("--freeze-backbone and --backbone-lr-scale exclude each other")
        if self.nesterov and self.momentum == 0:
            raise ValueError("--nesterov needs a momentum above 0")
        if self.milestones is not None:
            if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
                raise ValueError(f"--milestones must increase; got {self.milestones}")
            for m in self.milestones:
                if m <= 0 or (self.iterations is not None and m >= self.iterations):
                    raise ValueError(
                        f"milestone {m} is outside the run (1 to {self.iterations} iterations); "
                        "give milestones inside --iterations"
                    )
        if (
            self.warmup_steps is not None
            and self.iterations is not None
            and self.warmup_steps >= self.iterations
        ):
            raise ValueError(
                f"--warmup-steps {self.warmup_steps} must be below --iterations {self.iterations}"
            )

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Settings from ``as_dict`` output; unknown keys are an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"config has unknown settings: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        """The settings saved in a run's config.json; a damaged file is named."""
        fix = "restore it from a copy, or start a new run"
        record = read_json_record(path, ("settings",), fix=fix)
        try:
            return cls.from_dict(record["settings"])
        except (ValueError, TypeError) as error:
            raise UserError(f"'{path}' is damaged: {one_line(error)}; {fix}") from None


def _torchvision_init(init: str | None) -> bool:
    """Whether ``--init`` names torchvision weights (a name, or a torchvision .pth/.pt file)."""
    return bool(init) and (init.startswith("torchvision:") or init.endswith((".pth", ".pt")))


def _check_positive(flag: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ValueError(f"{flag} must be a positive number; got {value}")


#: Model options that a training run takes from its data, never from the user.
FROM_DATA = {
    "num_classes": "the number of classes in the data",
    "in_channels": "the data's channels (1 for grey-scale images, 3 for colour)",
}


def check_model_options(options: dict[str, Any]) -> None:
    """Refuse, by name, a model option that does not exist or that the data decides."""
    for key, value in options.items():
        if key in FROM_DATA:
            raise ValueError(
                f"model option {key} comes from the data ({FROM_DATA[key]}); drop "
                f"--set {key}={value}"
            )
        if key not in MODEL_OPTIONS:
            allowed = ", ".join(k for k in MODEL_OPTIONS if k not in FROM_DATA)
            raise ValueError(f"unknown model option {key!r}; allowed: {allowed}")


def _check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{flag} must be one of {', '.join(choices)}; got {value!r}")
