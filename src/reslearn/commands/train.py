"""``reslearn train``: train a network on a data set with a recipe; resumable."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reslearn.choices import DECODES, DEVICES, LOADERS, NORMALIZATIONS, PRECISIONS
from reslearn.commands.arguments import int_list, paragraph, parse_option
from reslearn.data.registry import epilog_lines
from reslearn.train.recipes import RECIPES, SCHEDULES

if TYPE_CHECKING:
    from reslearn.train import RunResult, TrainConfig, TrainingStopped

#: Flags that still make sense when resuming (everything else comes from the run's config).
_RESUME_FLAGS = {
    "resume", "quiet", "allow_data_change", "func", "command", "debug", "tensorboard"
}  # fmt: skip


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    from reslearn.train import TrainConfig

    settings = {
        name: getattr(args, name)
        for name in TrainConfig.__dataclass_fields__
        if name not in ("data", "model_options") and getattr(args, name, None) is not None
    }
    return TrainConfig(data=args.data, model_options=dict(args.set or []), **settings)


def run(args: argparse.Namespace) -> int:
    """Train (or resume) and print where the results are."""
    from reslearn.report import draw_run
    from reslearn.report.draw_guard import draw_run_guarded
    from reslearn.train import TrainingStopped, train

    if args.resume is not None:
        given = sorted(
            f"--{k.replace('_', '-')}"
            for k, v in vars(args).items()
            if k not in _RESUME_FLAGS and v not in (None, False, [])
        )
        if given:
            raise ValueError(
                f"--resume continues a run with its saved settings; drop {', '.join(given)}"
            )
        config = None
    else:
        if args.allow_data_change:
            raise ValueError("--allow-data-change applies only with --resume")
        if args.data is None:
            raise ValueError("--data is required (a folder, cifar10, cifar100 or fashion-mnist)")
        config = _config_from_args(args)
    try:
        result = train(
            config,
            args.out,
            resume=args.resume,
            overwrite=args.overwrite,
            quiet=args.quiet,
            allow_data_change=args.allow_data_change,
            draw=draw_run_guarded,  # a signal while drawing prints a stop line too
            tensorboard=False if args.tensorboard is None else args.tensorboard,
            redraw=draw_run,  # report.html and curves.png follow the run as it trains
        )
    except TrainingStopped as stop:
        return _stopped(stop)
    if _is_main_process():
        _print_result(result)
    return 0


def _stopped(stop: TrainingStopped) -> int:
    """Say why training stopped and how to resume (in the main process); the exit code."""
    if not _is_main_process():
        return stop.exit_code
    print(f"reslearn train: {stop}", file=sys.stderr)
    if stop.checkpoint:
        run_dir = Path(stop.checkpoint).parent.parent  # RUN/checkpoints/step-N.pt
        print(f"  last checkpoint: {stop.checkpoint}", file=sys.stderr)
        if stop.resumable:
            launcher = "reslearn train"
            if int(os.environ.get("WORLD_SIZE", 1)) > 1:  # started by torchrun
                per_node = os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])
                launcher = f"torchrun --nproc_per_node={per_node} -m reslearn train"
            print(f"  resume with:     {launcher} --resume {run_dir}", file=sys.stderr)
    return stop.exit_code


def _print_result(result: RunResult) -> None:
    """The final errors, the budget, the time taken and the run folder, in two lines."""
    c, final = result.config, result.final
    errors = ", ".join(
        f"{key[:-6]} error {100 * value:.2f}%"
        for key, value in final.items()
        if key.endswith("_error") and "top5" not in key
    )
    minutes, seconds = divmod(round(result.wall_time_s), 60)
    print(
        f"{c.model}: {errors} after {c.iterations:,} iterations ({c.epochs:.1f} epochs, "
        f"{c.recipe} recipe) in {minutes}m{seconds:02d}s\n"
        f"run folder: {result.run_dir}  (report.html, model.safetensors, metrics.jsonl)"
    )


def _is_main_process() -> bool:
    """Rank 0 of a torchrun job, or the only process: the one that prints results."""
    return os.environ.get("RANK", "0") == "0"


def _description() -> str:
    """The help page's paragraph, with the recipes' summaries."""
    recipes = "; ".join(f"'{r.name}': {r.summary}" for r in RECIPES.values())
    return paragraph(
        "Train a network with a recipe. The whole data set is decoded once (cached), held "
        "on the training device and augmented there batch by batch (pad 4, random crop, "
        "horizontal flip), in the precision and memory layout measured fastest for this "
        "network on this device (--precision auto). The run folder "
        "holds the weights (model.safetensors), the metrics, the newest checkpoints and "
        "report.html, everything on one page (docs/training.md lists every file). Ctrl-C (or "
        "SIGTERM) stops after the current step with a checkpoint; "
        f"--resume continues bit for bit. Recipes: {recipes}. Any recipe setting can be "
        "overridden by its flag. Large image folders (ImageNet) stream from disk instead "
        "(--loader stream, the imagenet-paper recipe's default): DataLoader workers decode "
        "the files and make the paper's views (shorter side in --scale-range, a --crop-size "
        "crop, flip, PCA --lighting). Several processes: start the same command with "
        "torchrun; each process (one per GPU, or CPU processes over gloo) computes a part "
        "of the --batch-size, which is the total over all of them."
    )


_EPILOG = (
    "data (--data):\n" + "".join(line + "\n" for line in epilog_lines()) + "\nexamples:\n"
    "  reslearn train --data cifar10 --model resnet20                paper recipe, 64k it\n"
    "  reslearn train --data cifar10 --model resnet20 --recipe fast  30 epochs\n"
    "  reslearn train --data cifar10 --model resnet110 --val-split 5000 --out runs/r110\n"
    "  reslearn train --data cifar10 --iterations 8000     paper milestones scaled to 8k\n"
    "  reslearn train --resume runs/r110                   continue after Ctrl-C\n"
    "  reslearn train --data flowers/ --model resnet50 --init torchvision:resnet50 "
    "--backbone-lr-scale 0.1\n"
    "  reslearn train --data imagenet/ --model resnet50 --recipe imagenet-paper "
    "--out runs/r50\n"
    "  torchrun --nproc_per_node=8 -m reslearn train --data imagenet/ --model resnet50 \\\n"
    "      --recipe imagenet-paper --out runs/r50          8 GPUs, 32 images each per step\n"
    "  torchrun --nproc_per_node=2 --max-restarts=3 -m reslearn train ... --out runs/x\n"
    "      a failed process restarts the job from the last checkpoint in runs/x\n"
    "  reslearn train --data imagenet/ --recipe imagenet-paper --accumulate 4 ...  "
    "256 as 4 x 64\n"
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = commands.add_parser(
        "train",
        help="train a network on CIFAR-10/100, Fashion-MNIST or an image folder",
        description=_description(),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _what_to_train(parser.add_argument_group("what to train"))
    _pretrained_start(parser.add_argument_group("starting from pretrained weights"))
    _run_folder(parser.add_argument_group("run folder"))
    _optimisation(parser.add_argument_group("optimisation (defaults come from the recipe)"))
    _data(parser.add_argument_group("data"))
    _processes(parser.add_argument_group("several processes and small memory"))
    _speed(parser.add_argument_group("speed"))
    parser.set_defaults(func=run)


def _what_to_train(what: argparse._ArgumentGroup) -> None:
    """--data, --model, --set, --recipe."""
    what.add_argument("--data", metavar="SPEC", help="the data set (see below)")
    what.add_argument("--model", metavar="NAME", help="a model from 'reslearn models' (resnet20)")
    what.add_argument(
        "--set",
        action="append",
        type=parse_option,
        metavar="KEY=VALUE",
        help="a model option, e.g. shortcut=B or zero_init_residual=true; repeatable "
        "(num_classes and in_channels come from the data)",
    )
    what.add_argument(
        "--recipe", choices=list(RECIPES), help="the schedule and its defaults (paper)"
    )


def _pretrained_start(start: argparse._ArgumentGroup) -> None:
    """--init and how the pretrained backbone trains."""
    start.add_argument(
        "--init",
        metavar="SOURCE",
        help="torchvision:resnet50 (ImageNet weights, downloaded), a torchvision .pth or a "
        "reslearn .safetensors; a head of another size is replaced",
    )
    start.add_argument(
        "--freeze-backbone", action="store_true", help="train only the final linear layer"
    )
    start.add_argument(
        "--backbone-lr-scale", type=float, metavar="F", help="backbone lr = F x lr (1)"
    )


def _run_folder(where: argparse._ArgumentGroup) -> None:
    """--out, --resume and what may happen to an existing folder."""
    where.add_argument(
        "--out", metavar="DIR", help="run folder (runs/<model>-<data>-<recipe>-<time>)"
    )
    where.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped run exactly")
    where.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out (only a folder reslearn made; what goes is printed)",
    )
    where.add_argument(
        "--allow-data-change",
        action="store_true",
        help="with --resume: continue although images were added, removed or changed since "
        "the run started (never other classes)",
    )
    where.add_argument("--quiet", action="store_true", help="log lines instead of a progress bar")
    where.add_argument(
        "--tensorboard",
        nargs="?",
        const=True,
        metavar="DIR",
        help="also write TensorBoard events (the scalars of metrics.jsonl, then the curves and "
        "confusion matrix) into DIR (default RUN/tensorboard); give it again with --resume, "
        "and the stream continues without repeated steps. Needs pip install "
        "'reslearn[tensorboard]'",
    )


def _optimisation(sched: argparse._ArgumentGroup) -> None:
    """The schedule and SGD's settings; their defaults come from the recipe."""
    sched.add_argument("--iterations", type=int, metavar="N", help="SGD steps (paper: 64000)")
    sched.add_argument("--epochs", type=float, metavar="E", help="passes over the data (fast: 30)")
    sched.add_argument("--batch-size", type=int, metavar="B", help="images per step (128)")
    sched.add_argument("--lr", type=float, help="base learning rate (paper 0.1, fast 0.2)")
    sched.add_argument(
        "--schedule", choices=SCHEDULES, help="lr schedule (paper step, fast onecycle)"
    )
    sched.add_argument(
        "--milestones",
        type=int_list,
        metavar="I,J",
        help="step schedule: iterations where lr is multiplied by --lr-gamma (paper: 50%% "
        "and 75%% of --iterations, i.e. 32000,48000 of 64000)",
    )
    sched.add_argument("--lr-gamma", type=float, metavar="G", help="lr factor at milestones (0.1)")
    sched.add_argument("--warmup-steps", type=int, metavar="N", help="onecycle warm-up (15%%)")
    sched.add_argument(
        "--low-lr-warmup",
        action=argparse.BooleanOptionalAction,
        help="the paper's start at lr/10 until training error < 80%% (on for 110+ layers)",
    )
    sched.add_argument(
        "--plateau-patience",
        type=int,
        metavar="N",
        help="plateau schedule: evaluations without improvement before lr /10 (5)",
    )
    sched.add_argument(
        "--plateau-threshold",
        type=float,
        metavar="E",
        help="plateau schedule: error decrease that counts as improvement (0.001)",
    )
    sched.add_argument("--momentum", type=float, help="SGD momentum (0.9)")
    sched.add_argument(
        "--nesterov", action=argparse.BooleanOptionalAction, help="Nesterov momentum"
    )
    sched.add_argument(
        "--weight-decay", type=float, metavar="WD", help="L2 (paper 1e-4, fast 5e-4)"
    )
    sched.add_argument("--label-smoothing", type=float, metavar="EPS", help="(paper 0, fast 0.1)")
    sched.add_argument("--seed", type=int, help="seed of init, data order, augmentation, split (0)")


def _data(data: argparse._ArgumentGroup) -> None:
    """The validation split, normalisation, augmentation, decoding and the loader."""
    data.add_argument(
        "--val-split",
        type=int,
        metavar="N",
        help="hold out N training images for validation (the paper's 45k/5k: 5000); the "
        "indices depend only on --seed and are saved in split.json",
    )
    data.add_argument(
        "--normalization",
        choices=NORMALIZATIONS,
        help="per-pixel mean subtraction (the paper; the default), per-channel mean/std, or "
        "imagenet (torchvision's fixed mean/std; the default with torchvision --init weights)",
    )
    data.add_argument("--pad", type=int, metavar="PX", help="augmentation padding (4; 0 = none)")
    data.add_argument("--flip", action=argparse.BooleanOptionalAction, help="random h-flips (on)")
    data.add_argument("--image-size", type=int, metavar="PX", help="resize images to PX x PX")
    data.add_argument("--cache-dir", metavar="DIR", help="decoded-array cache (~/.cache/reslearn)")
    data.add_argument(
        "--skip-bad-images",
        action="store_true",
        default=None,
        help="skip unreadable image files (reported) instead of stopping",
    )
    data.add_argument(
        "--workers", type=int, metavar="N", help="decoding processes (CPU count, at most 8)"
    )
    data.add_argument(
        "--loader",
        choices=LOADERS,
        help="memory: decode the data set once and keep it on the device (CIFAR sizes); "
        "stream: DataLoader workers read the image folder every epoch (imagenet-paper)",
    )
    data.add_argument("--crop-size", type=int, metavar="PX", help="stream: training crop (224)")
    data.add_argument(
        "--scale-range",
        type=int,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="stream: random shorter side (256 480)",
    )
    data.add_argument(
        "--lighting", type=float, metavar="STD", help="stream: PCA colour noise std (0.1; 0 off)"
    )
    data.add_argument(
        "--decode",
        choices=DECODES,
        help="stream: decode JPEGs in the DataLoader workers, or on the training device in "
        "batches (nvJPEG on a GPU; the workers then only read files); auto: on a GPU when "
        "training there",
    )


def _processes(many: argparse._ArgumentGroup) -> None:
    """Gradient accumulation and batch norm across processes."""
    many.add_argument(
        "--accumulate",
        type=int,
        metavar="K",
        help="split each process's share of the batch into K micro-batches whose gradients "
        "add up (1); the step is the same, the memory K times smaller",
    )
    many.add_argument(
        "--sync-bn",
        action="store_true",
        default=None,
        help="batch norm statistics over all GPU processes (SyncBatchNorm; NCCL only)",
    )


def _speed(speed: argparse._ArgumentGroup) -> None:
    """Device, precision, memory layout, compilation and how often to log, evaluate and save."""
    speed.add_argument("--device", choices=DEVICES, help="where to train (auto: CUDA if present)")
    speed.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto (default): time a few steps of this network and batch under bf16 autocast, "
        "fp16 autocast + GradScaler (GPUs without bf16) and fp32 (TF32 on GPUs), in both "
        "layouts, and train in the fastest (fp32 within 3%%); cached per device, model, batch "
        "and image size in ~/.cache/reslearn/precision.json. Or force one.",
    )
    speed.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="force the NHWC (or with --no-channels-last the NCHW) memory format; by default "
        "measured with the precision",
    )
    speed.add_argument("--compile", action="store_true", default=None, help="torch.compile the net")
    speed.add_argument("--log-every", type=int, metavar="N", help="log every N iterations (100)")
    speed.add_argument("--eval-every", type=int, metavar="N", help="evaluate every N it (1 epoch)")
    speed.add_argument(
        "--checkpoint-every", type=int, metavar="N", help="checkpoint every N it (each evaluation)"
    )
    speed.add_argument("--eval-batch-size", type=int, metavar="B", help="(1000)")
