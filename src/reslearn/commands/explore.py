"""``reslearn explore``: an interactive page to shift images and watch a network (or two)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from reslearn.choices import DEVICES
from reslearn.commands.common import check_output, count, paragraph

_DEFAULT_IMAGES = 8


def _page_images(args: argparse.Namespace, trained, settings: dict) -> list:
    """The images to show: the files given, else a random sample of the data's test split."""
    from reslearn.data.sources import load_eval_sample
    from reslearn.explore import PageImage
    from reslearn.predict import load_images

    if args.images and args.data:
        raise ValueError("give image files or --data, not both")
    if args.images:
        pixels = load_images(args.images, trained)
        return [PageImage(Path(p).name, image) for p, image in zip(args.images, pixels)]
    spec = args.data or settings.get("data")
    if not spec:
        raise ValueError("give image files, or --data with a weights file (a run knows its data)")
    sample = load_eval_sample(
        spec, image_size=trained.image_size[0], count=args.count,
        cache_dir=settings.get("cache_dir"),
    )  # fmt: skip
    trained.check_data(spec, sample.classes, channels=sample.images.shape[3])
    return [
        PageImage(f"test image {i + 1}", image, sample.classes[label])
        for i, (image, label) in enumerate(zip(sample.images, sample.labels))
    ]


def _command(args: argparse.Namespace) -> str:
    """The command line that writes this page, for its footer."""
    words = ["reslearn", "explore", args.weights, *args.images, "-o", args.out]
    words += ["--data", args.data] if args.data else []
    words += ["--images", str(args.count)] if not args.images else []
    words += ["--compare", args.compare] if args.compare else []
    words += ["--max-shift", str(args.max_shift), "--channels", str(args.channels)]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    """Compute every view, write the page, say where it is and how large."""
    from reslearn.atomic import atomic_write
    from reslearn.device import resolve_device
    from reslearn.explore import check_comparable, check_settings, explore_page
    from reslearn.hub import load_trained
    from reslearn.rundir import resolve_weights

    out = Path(args.out)
    check_output(out, overwrite=args.overwrite, example="explore.html")
    device = resolve_device(args.device)
    networks, settings = [], {}
    for target in filter(None, (args.weights, args.compare)):
        weights, _, found = resolve_weights(target)
        settings = settings or found
        networks.append((load_trained(weights, device=device), str(target)))
    for trained, _ in networks[1:]:
        check_comparable(networks[0][0], trained)
    check_settings(networks[0][0], max_shift=args.max_shift, channels=args.channels)
    images = _page_images(args, networks[0][0], settings)
    print(f"exploring {len(images)} image(s), shifts up to {args.max_shift} px", file=sys.stderr)
    command = _command(args)
    page = explore_page(
        networks, images, max_shift=args.max_shift, channels=args.channels, command=command
    )
    atomic_write(out, lambda file: file.write(page.encode("utf-8")), durable=False)
    print(f"{out} ({out.stat().st_size / 1e6:.1f} MB): open it in a browser, no server needed")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``explore`` subcommand."""
    parser = commands.add_parser(
        "explore",
        help="an interactive page: shift images, watch predictions, CAM and feature maps",
        description=paragraph(
            "Move an image by up to --max-shift pixels, horizontally and vertically, with "
            "circular or zero-filled borders, and watch what the network does: the class "
            "probabilities (invariance: does the prediction hold?), the CAM of the top class "
            "(Grad-CAM for a network without global average pooling) drawn with nearest, "
            "bilinear or bicubic up-sampling, and a few channels of every stage beside the "
            "unshifted ones with the stage's equivariance error (equivariance: do the maps "
            "move with the image?). --compare puts a second network beside the first (e.g. "
            "one trained with antialias=True, or a plain net). Everything is computed here, "
            "with the functions of 'reslearn shift' and 'reslearn cam', and written into one "
            "self-contained HTML file (about 0.4 MB per 32x32 image and network) that opens "
            "from disk in any browser."
        ),
        epilog="examples:\n"
        "  reslearn explore runs/r20 -o explore.html              8 test images of the run's data\n"
        "  reslearn explore reslearn:resnet20-cifar10 cat.jpg dog.png -o explore.html\n"
        "  reslearn explore runs/r20 --compare runs/r20-antialias --images 12 -o compare.html\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "weights", metavar="WEIGHTS_OR_RUN",
        help="a run folder, a .safetensors file, or a name (reslearn:resnet20-cifar10)",
    )  # fmt: skip
    parser.add_argument("images", nargs="*", metavar="IMAGE", help="image files (any size, mode)")
    parser.add_argument("-o", "--out", required=True, metavar="FILE", help="the page to write")
    parser.add_argument("--data", metavar="SPEC", help="take test images from this data set")
    parser.add_argument(
        "--images", dest="count", type=count, default=_DEFAULT_IMAGES, metavar="N",
        help=f"how many test images to take from the data ({_DEFAULT_IMAGES})",
    )  # fmt: skip
    parser.add_argument("--compare", metavar="WEIGHTS_OR_RUN", help="a second network, beside")
    parser.add_argument(
        "--max-shift", type=count, default=8, metavar="PX", help="largest shift (8)"
    )
    parser.add_argument(
        "--channels", type=count, default=2, metavar="N",
        help="feature-map channels shown per stage, the most active (2)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing page")
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="(cpu)")
    parser.set_defaults(func=run)
