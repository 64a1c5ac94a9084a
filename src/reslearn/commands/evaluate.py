"""``reslearn eval``: error rates, per-class accuracy and a confusion matrix of trained weights."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reslearn.choices import CPU_INFERENCE_BATCH, DEVICES, MULTISCALE_SIDES, PRECISIONS, VIEWS
from reslearn.commands.common import count, natural, paragraph, sizes
from reslearn.rundir import resolve_weights
from reslearn.text import display_name

if TYPE_CHECKING:
    from reslearn.evaluate import Evaluation
    from reslearn.weights import TrainedModel

_TABLE_ROWS = 20  # classes up to which the whole per-class table is printed
_CHUNK = 8192  # images normalised on the device at a time
_GPU_BATCH = 500  # --batch-size's default on a GPU (a CPU's: CPU_INFERENCE_BATCH)


def _data_spec(args: argparse.Namespace, config: dict) -> str:
    """--data, else the data the run was trained on."""
    spec = args.data or config.get("data")
    if not isinstance(spec, str) or not spec:
        raise ValueError("--data is required with a weights file (a run directory knows its data)")
    return spec


def _load_split(args: argparse.Namespace, trained: TrainedModel, config: dict):
    """(data spec, dataset name, the split's ImageArrays), checked against the network."""
    from reslearn.data import load_dataset

    spec = _data_spec(args, config)
    dataset = load_dataset(
        spec,
        image_size=trained.image_size[0],
        cache_dir=args.cache_dir or config.get("cache_dir"),
        skip_bad_images=args.skip_bad_images or bool(config.get("skip_bad_images", False)),
        workers=config.get("workers"),
        progress=not args.json,
    )
    arrays = dataset.test if args.split == "test" else dataset.train
    if arrays is None:
        raise ValueError(f"data '{spec}' has no {args.split} split; try --split train")
    _, height, width, channels = arrays.images.shape
    trained.check_data(spec, arrays.classes, channels=channels, image_size=(height, width))
    return spec, getattr(dataset, "name", spec), arrays


def _evaluate_arrays(trained: TrainedModel, arrays, args: argparse.Namespace) -> Evaluation:
    """Chunks of uint8 images go to the device and are normalised there; then the metrics."""
    import torch

    from reslearn.data.device_data import to_device_uint8
    from reslearn.evaluate import evaluate_logits, inference_model, predict_logits

    device = trained.normalizer.mean.device
    shape = (trained.in_channels, *trained.image_size)
    batch = _batch_size(args, device)
    net = inference_model(trained.model)  # folded once: measured and run as it is
    precision = _precision(args, trained, device, min(batch, len(arrays.images)), shape, net)
    logits = []
    for start in range(0, len(arrays.images), _CHUNK):
        chunk = to_device_uint8(arrays.images[start : start + _CHUNK], device)
        inputs = trained.normalizer(chunk)  # channels_last memory already
        logits.append(
            predict_logits(net, inputs, batch_size=batch, precision=precision)
        )
    labels = torch.as_tensor(arrays.labels, dtype=torch.int64)
    return evaluate_logits(torch.cat(logits), labels, num_classes=len(trained.classes))


def _batch_size(args, device) -> int:
    """--batch-size, or the fastest batch for this device."""
    from reslearn.evaluate import inference_batch

    return args.batch_size or inference_batch(_GPU_BATCH, device)


def _precision(args, trained: TrainedModel, device, batch: int, shape, net=None) -> str:
    """``--precision`` as given, or (auto, the default) the fastest inference precision measured
    on this network as inference runs it (``net``, else made here), batch and device (cached),
    said in one line unless --json."""
    from reslearn.evaluate import inference_model
    from reslearn.precision import choose_for_model

    choice = choose_for_model(
        net if net is not None else inference_model(trained.model), device=device,
        precision=args.precision or "auto",
        channels_last=True, batch_size=batch, input_shape=shape, train=False,
        describe={"model": trained.name, "options": trained.metadata.get("options")},
    )  # fmt: skip
    for note in choice.notes:
        print(f"warning: {note}", file=sys.stderr)
    if choice.source != "forced" and not args.json:
        print(choice.describe(), file=sys.stderr)
    return choice.precision


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


def _evaluate_views(args, trained: TrainedModel, weights: Path, run_dir, config: dict) -> int:
    """The paper's test views on an image folder, streamed: one evaluation per view."""
    from reslearn.data.sources import default_workers, list_image_folder
    from reslearn.data.stream_eval import StreamEval
    from reslearn.evaluate import evaluate_logits, view_scores
    from reslearn.report import format_table, plot_confusion

    spec = _data_spec(args, config)
    listing = list_image_folder(spec)
    if args.split not in listing.splits:
        raise ValueError(f"data '{spec}' has no {args.split} split; try --split train")
    files, labels = listing.splits[args.split]
    trained.check_data(spec, listing.classes)
    if trained.in_channels != 3:
        raise ValueError(f"--views needs an RGB network; this one takes {trained.in_channels}")
    device = trained.normalizer.mean.device
    shape = (3, trained.image_size[0], trained.image_size[0])
    batch = _batch_size(args, device)
    precision = _precision(args, trained, device, min(batch, len(files)), shape)
    workers = args.workers if args.workers is not None else default_workers()
    skip_bad = args.skip_bad_images or bool(config.get("skip_bad_images", False))
    results, rows = {}, []
    for view in args.views:
        evaluation = StreamEval(
            files, labels, trained.normalizer, view=view, crop=trained.image_size[0],
            workers=workers, batch_size=batch, skip_bad=skip_bad, sides=args.scales,
        )  # fmt: skip
        scores, targets = view_scores(
            trained.model, evaluation.batches(device, progress=not args.json),
            precision=precision, channels_last=True,
        )  # fmt: skip
        result = evaluate_logits(scores, targets, num_classes=len(trained.classes))
        base = run_dir / "confusion" if run_dir is not None else weights.with_suffix("")
        png = Path(f"{base}-{view}{'' if args.split == 'test' else '-' + args.split}.png")
        title = f"{trained.name} on {listing.name} ({args.split}, {view}): "
        title += f"top-1 error {result.top1_error:.2%}"
        plot_confusion(result.confusion, trained.classes, png, title=title)
        results[view] = {**result.as_dict(trained.classes), "confusion_png": str(png)}
        rows.append((view, _view_detail(view, trained.image_size[0], args.scales),
                     f"{100 * result.top1_error:.2f}", f"{100 * result.top5_error:.2f}",
                     f"{result.loss:.4f}"))  # fmt: skip
    if args.json:
        head = {"model": trained.name, "weights": str(weights), "data": spec, "split": args.split}
        print(json.dumps({**head, "views": results}))
    else:
        k = min(5, len(trained.classes))
        print(display_name(f"model  {trained.name} ({weights})\ndata   {listing.name} "
                           f"({args.split} split, {len(files):,} images)\n"))  # fmt: skip
        print(format_table(("view", "what", "top-1 %", f"top-{k} %", "loss"), rows))
    return 0


def _view_detail(view: str, crop: int, scales) -> str:
    shorter = round(crop * 256 / 224)
    if view == "center":
        return f"centre {crop} of shorter side {shorter}"
    if view == "10crop":
        return f"4 corners + centre, and flips ({crop} of {shorter})"
    return "whole image, shorter side " + "/".join(map(str, scales)) + ", scores averaged"


def run(args: argparse.Namespace) -> int:
    """Evaluate weights on a data split; print a summary or JSON and save the confusion PNG."""
    from reslearn.device import resolve_device
    from reslearn.hub import load_trained
    from reslearn.report import plot_confusion

    weights, run_dir, config = resolve_weights(args.weights)
    trained = load_trained(weights, device=resolve_device(args.device))
    if args.views:
        return _evaluate_views(args, trained, weights, run_dir, config)
    spec, data_name, arrays = _load_split(args, trained, config)
    result = _evaluate_arrays(trained, arrays, args)
    suffix = "" if args.split == "test" else f"-{args.split}"
    if args.out:
        png = Path(args.out)
    elif run_dir is not None:
        png = run_dir / f"confusion{suffix}.png"
    else:
        png = weights.with_name(f"{weights.stem}-confusion{suffix}.png")
    title = f"{trained.name} on {data_name} ({args.split}): top-1 error {result.top1_error:.2%}"
    plot_confusion(result.confusion, trained.classes, png, title=title)
    if args.json:
        head = {"model": trained.name, "weights": str(weights), "data": spec, "split": args.split}
        print(json.dumps({**head, **result.as_dict(trained.classes), "confusion_png": str(png)}))
    else:
        print(_summary(trained, weights, data_name, args.split, result, png))
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
        help=f"images per forward pass (default: {_GPU_BATCH} on a GPU, {CPU_INFERENCE_BATCH} "
        "on a CPU, where larger batches run slower)",
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
        "or WEIGHTS-confusion.png beside a weights file; with --views one per view, "
        "confusion-VIEW.png)",
    )
