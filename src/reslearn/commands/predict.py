"""``reslearn predict``: the most probable classes of image files under trained weights."""

from __future__ import annotations

import argparse
import json

from reslearn.choices import DEVICES
from reslearn.commands.arguments import count, paragraph
from reslearn.text import display_name


def run(args: argparse.Namespace) -> int:
    """Classify each image; print the top-k classes with probabilities, or JSON."""
    from reslearn.device import resolve_device
    from reslearn.open_trained import open_for_analysis
    from reslearn.predict import classify

    opened = open_for_analysis(args.weights, files=args.images, device=resolve_device(args.device))
    ranked = classify(opened.trained, opened.images.images, topk=args.topk)
    if args.json:
        out = [
            {
                "image": path,
                "predictions": [{"class": name, "probability": p} for name, p in predictions],
            }
            for path, predictions in zip(args.images, ranked)
        ]
        print(json.dumps(out, indent=2))
    else:
        blocks = [
            "\n".join([path, *(f"  {p:7.2%}  {name}" for name, p in predictions)])
            for path, predictions in zip(args.images, ranked)
        ]
        print(display_name("\n\n".join(blocks)))  # class names are folder names: any bytes
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``predict`` subcommand."""
    parser = commands.add_parser(
        "predict",
        help="classify image files with trained weights",
        description=paragraph(
            "Classify image files with trained weights (a model.safetensors file, or the run "
            "directory that holds it) and print each image's most probable classes with their "
            "softmax probabilities. Any format Pillow reads works: images are converted to "
            "the network's channels (RGB or grey; transparency on white), scaled so their "
            "shorter side matches the training size and centre-cropped, then normalised with "
            "the statistics stored in the weights."
        ),
        epilog="examples:\n"
        "  reslearn predict runs/r110 cat.png dog.jpg          a run directory works too\n"
        "  reslearn predict model.safetensors photos/*.jpg --topk 3\n"
        "  reslearn predict model.safetensors bird.png --json --device cpu",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "weights", metavar="WEIGHTS", help="a .safetensors weights file or a run directory"
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    parser.add_argument(
        "--topk", type=count, default=5, metavar="K", help="classes to show per image (5)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="auto: cuda if present")
    parser.set_defaults(func=run)
