"""``reslearn export``: a trained network as ONNX, TorchScript or a torch.export program."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reslearn.choices import EXPORT_FORMATS, EXPORT_SUFFIXES
from reslearn.commands.arguments import check_output, count, paragraph

if TYPE_CHECKING:
    import numpy as np


def _format(args: argparse.Namespace, out: Path) -> str:
    if args.format is not None:
        return args.format
    for name, suffix in EXPORT_SUFFIXES.items():
        if out.suffix == suffix:
            return name
    raise ValueError(f"give --format ({', '.join(EXPORT_FORMATS)}); {out.name} does not say which")


def _check_images(args, opened) -> tuple[np.ndarray, str]:
    """Real test images when the data is known (--data, or the run's), else random pixels."""
    import numpy as np

    if opened.images is None:
        height, width = opened.trained.image_size
        rng = np.random.default_rng(0)
        pixels = rng.integers(0, 256, (args.images, height, width, opened.trained.in_channels))
        return pixels.astype(np.uint8), "random images (give --data for real ones)"
    return opened.images.images, f"test images of {opened.data}"


def run(args: argparse.Namespace) -> int:
    """Export, check against PyTorch, and say how close it came."""
    from reslearn.export import export
    from reslearn.open_trained import open_for_analysis

    out = Path(args.output)
    check_output(out, overwrite=args.overwrite, example="model.onnx")
    fmt = _format(args, out)
    opened = open_for_analysis(args.weights, data=args.data, count=args.images, check_size=True)
    trained = opened.trained
    images, what = _check_images(args, opened)
    report = export(
        trained, out, format=fmt, images=images, dynamic_batch=args.dynamic_batch,
        with_preprocessing=args.with_preprocessing,
    )  # fmt: skip
    takes = "uint8 images (N, C, H, W)" if report.uint8_input else "normalised float images"
    batch = "any batch" if report.dynamic_batch else "a batch of 1"
    print(
        f"{out}: {fmt}, {trained.name}, takes {takes}, {batch}; largest difference from "
        f"PyTorch on {report.images} {what}: {report.max_abs_difference:.2g}",
        file=sys.stdout,
    )
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``export`` subcommand."""
    parser = commands.add_parser(
        "export",
        help="write a trained network as ONNX, TorchScript or a torch.export program",
        description=paragraph(
            "Write trained weights (a run folder, a .safetensors file, an akamaster .th file or "
            "name) for use outside reslearn: ONNX (run by onnxruntime; needs pip install "
            "'reslearn[export]'), TorchScript (libtorch) or a torch.export ExportedProgram "
            "(.pt2). --with-preprocessing puts the input normalisation into the graph, so the "
            "exported model takes uint8 images (N, C, H, W). Before the file is put in place "
            "the export runs on real test images (--data, or the run's own data) and must "
            "match PyTorch's fp32 logits within 1e-4; otherwise nothing is written."
        ),
        epilog="examples:\n"
        "  reslearn export runs/r20 -o r20.onnx --with-preprocessing --dynamic-batch\n"
        "  reslearn export model.safetensors -o model.pt2 --data cifar10\n"
        "  reslearn export akamaster:resnet56 -o r56.pt --format torchscript",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("weights", metavar="WEIGHTS_OR_RUN", help="weights file, run or name")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write")
    parser.add_argument(
        "--format", choices=EXPORT_FORMATS, help="(default: from FILE's suffix: .onnx, .pt, .pt2)"
    )
    parser.add_argument(
        "--dynamic-batch", action="store_true", help="any batch size (default: a batch of 1)"
    )
    parser.add_argument(
        "--with-preprocessing", action="store_true", help="take uint8 images; normalise inside"
    )
    parser.add_argument("--data", metavar="SPEC", help="images to check on (the run's data)")
    parser.add_argument(
        "--images", type=count, default=16, metavar="N", help="images to check on (16)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    parser.set_defaults(func=run)
