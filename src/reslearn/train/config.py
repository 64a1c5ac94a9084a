"""Every setting of a training run, resolved from a recipe and the user's overrides, checked
before any work starts, and saved as the run's config.json."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reslearn.data.sources import default_workers
from reslearn.device import resolve_device
from reslearn.errors import SettingError, UserError, one_line
from reslearn.jsonfile import read_json_record
from reslearn.models import model_info
from reslearn.paths import default_cache_dir
from reslearn.precision import Setting
from reslearn.train.recipes import get_recipe
from reslearn.train.run_config import RunConfig
from reslearn.train.validation import DECODES, LOADERS, check_positive, validate

__all__ = ["DECODES", "LOADERS", "RunConfig", "TrainConfig"]


@dataclass
class TrainConfig:
    """A training run's settings as given. ``None`` and ``"auto"`` mean "the recipe's default"
    or "measured" until ``resolve`` makes the run's frozen RunConfig (train/run_config.py)."""

    data: str  # a data folder or a name (cifar10, cifar100, fashion-mnist)
    model: str = "resnet20"  # a registry name (reslearn models)
    model_options: dict[str, Any] = field(default_factory=dict)  # create_model options
    recipe: str = "paper"  # the defaults below come from it (train/recipes.py)
    iterations: int | None = None  # optimizer steps (or give epochs)
    epochs: float | None = None  # passes over the training images (or give iterations)
    batch_size: int | None = None  # images per step, over all processes
    lr: float | None = None  # the peak learning rate
    momentum: float | None = None  # SGD momentum
    nesterov: bool | None = None  # Nesterov momentum
    weight_decay: float | None = None  # L2 penalty on every weight
    label_smoothing: float | None = None  # cross-entropy target smoothing (0: none)
    schedule: str | None = None  # step | onecycle | cosine | constant | plateau
    milestones: list[int] | None = None  # step schedule: steps where lr *= lr_gamma
    lr_gamma: float = 0.1  # the step schedule's factor at each milestone
    warmup_steps: int | None = None  # onecycle warm-up length
    low_lr_warmup: bool | None = None  # the paper's lr/10 start for 110+ layers
    seed: int = 0  # weights, data order and augmentation are pure functions of it
    val_split: int = 0  # training images held out for validation
    normalization: str | None = None  # per-pixel; imagenet when --init is torchvision's
    pad: int = 4  # random-crop padding in pixels (memory loader)
    flip: bool = True  # random horizontal flips
    image_size: int | None = None  # square size images are resized to (None: as found)
    precision: str = "auto"  # measured at start-up (reslearn.precision); bf16 | fp16 | fp32
    channels_last: bool | None = None  # None: measured with the precision
    compile: bool = False  # torch.compile the network
    device: str = "auto"  # auto | cpu | cuda
    log_every: int = 100  # steps between training records
    eval_every: int | None = None  # default: once per epoch
    checkpoint_every: int | None = None  # default: at every evaluation
    eval_batch_size: int = 1000  # images per evaluation forward pass
    cache_dir: str | None = None  # decoded image folders (None: $RESLEARN_CACHE or ~/.cache)
    skip_bad_images: bool = False  # leave out undecodable files instead of stopping
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

    def with_recipe(self) -> TrainConfig:
        """A validated copy with the recipe's defaults that do not depend on the data filled in
        (loader, batch size, optimizer, schedule, normalisation); ``resolve`` adds the rest."""
        self.validate()
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
        return out

    def steps_per_epoch(self, train_images: int) -> int:
        """Steps per pass over ``train_images`` (with the recipe's batch size unless given);
        refuses a batch larger than the training set, before any work starts."""
        batch_size = self.batch_size or get_recipe(self.recipe).batch_size
        check_positive("batch_size", batch_size)
        if batch_size > train_images:
            raise SettingError(
                f"<batch_size> {batch_size} is larger than the {train_images} training images"
            )
        return train_images // batch_size

    def built_model_options(self, image_size: tuple[int, int]) -> dict[str, Any]:
        """The options the network is built with on images of ``image_size``: the given ones,
        and a flatten head's ``map_size`` (the last map's side: the image side over the
        network's total stride, from the registry)."""
        options = dict(self.model_options)
        if options.get("pool") == "flatten" and "map_size" not in options:
            options["map_size"] = max(1, image_size[0] // model_info(self.model).total_stride)
        return options

    def resolve(
        self,
        train_images: int,
        *,
        setting: Setting | None = None,
        image_size: tuple[int, int] | None = None,
        model_options: dict[str, Any] | None = None,
        device: str | None = None,
    ) -> RunConfig:
        """The run's settings, resolved once: every recipe default filled in for a training
        set of ``train_images`` images of ``image_size`` (default: the given or the model's
        size), the precision ``setting`` chosen (only a forced precision and layout may leave it
        out), the network's built options (default: ``built_model_options``) and the device
        (default: ``device`` resolved)."""
        recipe = get_recipe(self.recipe)
        out = self.with_recipe()
        steps_per_epoch = out.steps_per_epoch(train_images)
        if out.iterations is None:
            if out.epochs is not None:
                check_positive("epochs", out.epochs)
                out.iterations = max(1, round(out.epochs * steps_per_epoch))
            elif recipe.iterations is not None:
                out.iterations = recipe.iterations
            else:
                out.iterations = max(1, round(recipe.epochs * steps_per_epoch))
        elif out.epochs is not None:
            raise SettingError("give <iterations> or <epochs>, not both")
        check_positive("iterations", out.iterations)
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
        return _resolved(out, setting, image_size, model_options, device)

    def resolve_normalization(self) -> str:
        """The normalization as given, else per-pixel (the paper's), or torchvision's
        ImageNet statistics when starting from torchvision weights."""
        if self.normalization is not None:
            return self.normalization
        return "imagenet" if _imagenet_normalised_init(self.init) else "per-pixel"

    def validate(self) -> None:
        """Raise a one-line SettingError (a ValueError) for the first invalid setting."""
        validate(self, TrainConfig(data=""))

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


def _resolved(
    out: TrainConfig,
    setting: Setting | None,
    image_size: tuple[int, int] | None,
    model_options: dict[str, Any] | None,
    device: str | None,
) -> RunConfig:
    """``out`` (its recipe and data defaults filled in) with the facts of the precision, the
    images, the network, the device and the machine added, as a frozen RunConfig."""
    if setting is None:
        if out.precision == "auto" or out.channels_last is None:
            raise ValueError(
                "resolving an 'auto' precision or layout needs the measured choice: pass "
                "setting= (reslearn.train.choose_run_precision measures it)"
            )
        setting = Setting(out.precision, out.channels_last)
    if image_size is None:
        side = out.image_size or model_info(out.model).input_size
        image_size = (side, side)
    if model_options is None:
        model_options = out.built_model_options(image_size)
    stream = out.loader == "stream"
    if device is None:
        device = str(resolve_device(out.device))
    decode = out.decode
    if decode == "auto":
        decode = "device" if stream and device.startswith("cuda") else "workers"
    workers = out.workers
    if workers is None:  # the node's cores, shared among torchrun's processes on it
        workers = default_workers(share=int(os.environ.get("LOCAL_WORLD_SIZE", 1)) if stream else 1)
    values = {
        **dataclasses.asdict(out),
        "model_options": dict(model_options),
        "image_size": list(image_size),
        "precision": setting.precision,
        "channels_last": setting.channels_last,
        "device": device,
        "cache_dir": str(out.cache_dir or default_cache_dir()),
        "workers": workers,
        "decode": decode,
    }
    return RunConfig(**values)


def _imagenet_normalised_init(init: str | None) -> bool:
    """Whether ``--init`` names weights trained on ImageNet-normalised inputs: torchvision's (a
    name, or a .pth/.pt file) or akamaster's (a name, or a .th file)."""
    if not init:
        return False
    return init.startswith(("torchvision:", "akamaster:")) or init.endswith((".pth", ".pt", ".th"))
