"""``reslearn eval``: error rates, per-class accuracy and a confusion matrix of trained weights."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reslearn.choices import (
    CPU_INFERENCE_BATCH,
    DEVICES,
    GPU_INFERENCE_BATCH,
    MULTISCALE_SIDES,
    PRECISIONS,
    VIEWS,
)
from reslearn.commands.arguments import count, natural, paragraph, sizes
from reslearn.errors import one_line
from reslearn.text import display_name

if TYPE_CHECKING:
    from reslearn.evaluate import Evaluation
    from reslearn.precision import Choice

_TABLE_ROWS = 20  # classes up to which the whole per-class table is printed


def _say(choice: Choice, args: argparse.Namespace) -> None:
    """The precision's warnings, and how it was chosen unless forced or --json."""
    for note in choice.notes:
        print(f"warning: {note}", file=sys.stderr)
    if choice.source != "forced" and not args.json:
        print(choice.describe(), file=sys.stderr)


def _summary(trained, weights, data_name, split, result: Evaluation, png: Path) -> str:
    from reslearn.report import format_table

    lines = [
        f"model        {trained.name} ({weights})",
        f"data         {data_name} ({split} split, {result.count:,} images)",
        f"top-1 error  {result.top1_error:.2%}",
        f"top-{min(5, len(trained.classes))} error  {result.top5_error:.2%}",
        f"loss         {result.loss:.4f}",
        "",
    ]
    counts = result.confusion.sum(1)
    order = list(range(len(trained.classes)))
    if len(order) > _TABLE_ROWS:
        ranked = [2.0 if math.isnan(a) else a for a in result.per_class_accuracy]  # absent last
        order = sorted(order, key=ranked.__getitem__)[:10]
        lines.append(f"lowest per-class accuracy ({len(trained.classes)} classes; all: --json)")
    accuracy = ["-" if math.isnan(a) else f"{100 * a:.2f}" for a in result.per_class_accuracy]
    rows = [(display_name(trained.classes[i]), f"{counts[i]:,}", accuracy[i]) for i in order]
    lines += [format_table(("class", "images", "accuracy %"), rows), "", f"confusion matrix: {png}"]
    return display_name("\n".join(lines))  # folder names may hold bytes that are not UTF-8


def _evaluate_views(args, opened) -> int:
    """The paper's test views on an image folder, streamed: one evaluation per view."""
    from reslearn.data.sources import default_workers, list_image_folder
    from reslearn.evaluate import choose_precision, default_batch, evaluate_view

    trained = opened.trained
    spec = _data_spec(args, opened.settings)
    listing = list_image_folder(spec)
    if args.split not in listing.splits:
        raise ValueError(f"data '{spec}' has no {args.split} split; try --split train")
    files, labels = listing.splits[args.split]
    trained.check_data(spec, listing.classes)
    if trained.in_channels != 3:
        raise ValueError(f"--views needs an RGB network; this one takes {trained.in_channels}")
    shape = (3, trained.image_size[0], trained.image_size[0])
    batch = default_batch(args.batch_size, opened.device)
    choice = choose_precision(
        trained, None, precision=args.precision, batch=min(batch, len(files)), shape=shape
    )
    _say(choice, args)
    workers = args.workers if args.workers is not None else default_workers()
    skip_bad = args.skip_bad_images or bool(opened.settings.get("skip_bad_images", False))
    results = {}
    for view in args.views:
        results[view] = evaluate_view(
            trained, files, labels, view, batch=batch, precision=choice.precision,
            workers=workers, skip_bad=skip_bad, sides=args.scales, progress=not args.json,
        )  # fmt: skip
    _print_views(args, opened, spec, listing, results)
    return 0


def _print_views(args, opened, spec: str, listing, results: dict[str, Evaluation]) -> None:
    """Each view's numbers (a table, or JSON), then its confusion matrix."""
    from reslearn.report import format_table

    trained, weights = opened.trained, opened.weights
    pngs = {view: _confusion_path(args, opened, f"-{view}") for view in results}
    if args.json:
        views = {
            view: {**result.as_dict(trained.classes), "confusion_png": str(pngs[view])}
            for view, result in results.items()
        }
        head = {"model": trained.name, "weights": str(weights), "data": spec, "split": args.split}
        print(json.dumps({**head, "views": views}), flush=True)
    else:
        k = min(5, len(trained.classes))
        rows = [(view, _view_detail(view, trained.image_size[0], args.scales),
                 f"{100 * r.top1_error:.2f}", f"{100 * r.top5_error:.2f}", f"{r.loss:.4f}")
                for view, r in results.items()]  # fmt: skip
        images = len(listing.splits[args.split][0])
        print(display_name(f"model  {trained.name} ({weights})\ndata   {listing.name} "
                           f"({args.split} split, {images:,} images)\n"))  # fmt: skip
        print(format_table(("view", "what", "top-1 %", f"top-{k} %", "loss"), rows), flush=True)
    for view, result in results.items():
        title = f"{trained.name} on {listing.name} ({args.split}, {view}): "
        _save_confusion(result, trained.classes, pngs[view], title)


def _save_confusion(result: Evaluation, classes: list[str], png: Path, title: str) -> None:
    """The optional figure, drawn after the numbers are out: a failed write is a warning."""
    from reslearn.report import plot_confusion

    title += f"top-1 error {result.top1_error:.2%}"
    try:
        plot_confusion(result.confusion, classes, png, title=title)
    except OSError as error:
        print(
            f"reslearn eval: warning: the confusion matrix was not written ({one_line(error)}); "
            "the evaluation above is complete; give --out FILE.png to write it elsewhere",
            file=sys.stderr,
        )


def _confusion_path(args: argparse.Namespace, opened, view: str = "") -> Path:
    """--out (with --views OUT-VIEW.png), else confusion[-VIEW][-train].png in the run
    folder, else WEIGHTS-confusion[-VIEW][-train].png beside a weights file."""
    split = "" if args.split == "test" else f"-{args.split}"
    if args.out:
        out = Path(args.out)
        return out.with_name(f"{out.stem}{view}{out.suffix or '.png'}") if view else out
    if opened.run_dir is not None:
        return opened.run_dir / f"confusion{view}{split}.png"
    return _beside(opened.weights, f"-confusion{view}{split}.png")


def _beside(weights: Path, tail: str) -> Path:
    """A file named after the weights, beside them; for a name (``reslearn:resnet20-cifar10``,
    ``akamaster:resnet20``), in the current folder without the prefix."""
    if ":" in weights.name and not weights.exists():
        return Path(weights.name.split(":", 1)[1] + tail)
    return weights.with_name(weights.stem + tail)


def _data_spec(args: argparse.Namespace, settings: dict) -> str:
    """--data, else the data the run was trained on."""
    spec = args.data or settings.get("data")
    if not isinstance(spec, str) or not spec:
        raise ValueError("--data is required with a weights file (a run directory knows its data)")
    return spec


def _view_detail(view: str, crop: int, scales) -> str:
    shorter = round(crop * 256 / 224)
    if view == "center":
        return f"centre {crop} of shorter side {shorter}"
    if view == "10crop":
        return f"4 corners + centre, and flips ({crop} of {shorter})"
    return "whole image, shorter side " + "/".join(map(str, scales)) + ", scores averaged"


def run(args: argparse.Namespace) -> int:
    """Evaluate weights on a data split; print a summary or JSON, then save the confusion PNG
    (the numbers come first: a figure that cannot be written costs a warning, not them)."""
    from reslearn.device import resolve_device
    from reslearn.evaluate import evaluate_opened
    from reslearn.open_trained import open_for_analysis, open_weights

    opened = open_weights(args.weights, resolve_device(args.device))
    if args.views:
        return _evaluate_views(args, opened)
    opened = open_for_analysis(
        opened, data=_data_spec(args, opened.settings), split=args.split,
        cache_dir=args.cache_dir, skip_bad_images=args.skip_bad_images, progress=not args.json,
        check_size=True,
    )  # fmt: skip
    result, _ = evaluate_opened(
        opened, batch_size=args.batch_size, precision=args.precision,
        on_choice=lambda choice: _say(choice, args),
    )  # fmt: skip
    trained, weights, spec = opened.trained, opened.weights, opened.data
    png = _confusion_path(args, opened)
    if args.json:
        head = {"model": trained.name, "weights": str(weights), "data": spec, "split": args.split}
        print(json.dumps({**head, **result.as_dict(trained.classes), "confusion_png": str(png)}))
    else:
        print(_summary(trained, weights, opened.data_name, args.split, result, png))
    sys.stdout.flush()
    title = f"{trained.name} on {opened.data_name} ({args.split}): "
    _save_confusion(result, trained.classes, png, title)
    return 0


def _description() -> str:
    """The help page's paragraph, wrapped to the terminal."""
    return paragraph(
        "Evaluate trained weights (a model.safetensors file, or the run directory that "
        "holds it) on the test split of a data set: top-1 and top-5 error, mean "
        "cross-entropy, per-class accuracy, and the confusion matrix saved as a PNG "
        "(colours: the share of each true class; counts in the cells for up to 20 "
        "classes). Images are resized to the size the network was trained on and "
        "normalised with the statistics stored in the weights; the data's classes must be "
        "the network's, in the same order. A run directory remembers its data; a bare "
        "weights file needs --data."
    )


_EPILOG = (
    "examples:\n"
    "  reslearn eval runs/r110                            the run's own test split\n"
    "  reslearn eval runs/r110 --json                     machine-readable\n"
    "  reslearn eval runs/r110 --split train              the training error\n"
    "  reslearn eval model.safetensors --data cifar10     a bare weights file\n"
    "  reslearn eval model.safetensors --data ~/photos --out photos-confusion.png\n"
    "  reslearn eval runs/r50 --views center 10crop multiscale   the paper's ImageNet tests"
)


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``eval`` subcommand."""
    parser = commands.add_parser(
        "eval",
        help="measure trained weights on a data set: error rates and a confusion matrix",
        description=_description(),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _what_to_measure(parser)
    _how_to_run(parser)
    _test_views(parser)
    _output(parser)
    parser.set_defaults(func=run)


def _what_to_measure(parser: argparse.ArgumentParser) -> None:
    """The weights, the data and its split."""
    parser.add_argument(
        "weights", metavar="WEIGHTS_OR_RUN", help="a .safetensors weights file or a run directory"
    )
    parser.add_argument(
        "--data", metavar="SPEC", help="the data set (default: the run's; required for a file)"
    )
    parser.add_argument(
        "--split", choices=("test", "train"), default="test", help="which split (default: test)"
    )


def _how_to_run(parser: argparse.ArgumentParser) -> None:
    """Batch, device, precision and how the images are read."""
    parser.add_argument(
        "--batch-size", type=count, metavar="N",
        help=f"images per forward pass (default: {GPU_INFERENCE_BATCH} on a GPU, "
        f"{CPU_INFERENCE_BATCH} on a CPU, where larger batches run slower)",
    )
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto: cuda if present")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="auto (default: the fastest of bf16, fp16 and fp32 on this device, measured on "
        "this network and cached), or force bf16 / fp16 autocast or full fp32",
    )
    parser.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave out image files that cannot be decoded instead of stopping",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="where decoded image folders are cached (default: the run's, else $RESLEARN_CACHE "
        "or ~/.cache/reslearn)",
    )


def _test_views(parser: argparse.ArgumentParser) -> None:
    """--views of image folders, streamed from disk."""
    parser.add_argument(
        "--views",
        nargs="+",
        choices=VIEWS,
        metavar="VIEW",
        help="image folders: stream the files and test each view, reported separately: "
        "center (the centre crop of shorter side 256/224 x the crop), 10crop (corners, centre "
        "and their flips, softmax averaged), multiscale (the whole image at each of --scales, "
        "fully convolutional, softmax averaged)",
    )
    parser.add_argument(
        "--scales",
        type=sizes,
        default=list(MULTISCALE_SIDES),
        metavar="S,S",
        help="multiscale: shorter sides (224,256,384,480,640)",
    )
    parser.add_argument(
        "--workers", type=natural, metavar="N", help="--views: decoding processes (CPU count)"
    )


def _output(parser: argparse.ArgumentParser) -> None:
    """What is printed and where the confusion matrix goes."""
    parser.add_argument("--json", action="store_true", help="print only JSON")
    parser.add_argument(
        "--out",
        metavar="PNG",
        help="where to save the confusion matrix (default: confusion.png in the run directory, "
        "or WEIGHTS-confusion.png beside a weights file; with --views one per view, PNG-VIEW.png "
        "or confusion-VIEW.png); written after the numbers, a failure is only a warning",
    )
