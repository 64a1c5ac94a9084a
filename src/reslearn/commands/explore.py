"""``reslearn explore``: an interactive page to shift images and watch a network (or two)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from reslearn.choices import DEVICES
from reslearn.commands.arguments import check_output, count, paragraph

_DEFAULT_IMAGES = 8


def _open_networks(args: argparse.Namespace, device) -> list:
    """The network and, with --compare, the second one, each as (opened weights, label)."""
    from reslearn.explore import check_comparable
    from reslearn.open_trained import open_weights

    targets = list(filter(None, (args.weights, args.compare)))
    networks = [(open_weights(target, device), str(target)) for target in targets]
    for opened, _ in networks[1:]:
        check_comparable(networks[0][0].trained, opened.trained)
    return networks


def _page_images(args: argparse.Namespace, networks: list) -> list:
    """The images to show: the files given, else a random sample of the data's test split
    (--data, or the data of the first run that knows it)."""
    from reslearn.explore import PageImage
    from reslearn.open_trained import open_for_analysis

    if args.images and args.data:
        raise ValueError("give image files or --data, not both")
    first = networks[0][0]
    if args.images:
        pixels = open_for_analysis(first, files=args.images).images.images
        return [PageImage(Path(p).name, image) for p, image in zip(args.images, pixels)]
    known = [opened.settings.get("data") for opened, _ in networks if opened.settings.get("data")]
    spec = args.data or (known[0] if known else None)
    if not spec:
        raise ValueError("give image files, or --data with a weights file (a run knows its data)")
    sample = open_for_analysis(first, data=spec, count=args.count).images
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
    from reslearn.explore import check_settings, explore_page

    out = Path(args.out)
    check_output(out, overwrite=args.overwrite, example="explore.html")
    networks = _open_networks(args, resolve_device(args.device))
    check_settings(networks[0][0].trained, max_shift=args.max_shift, channels=args.channels)
    images = _page_images(args, networks)
    print(f"exploring {len(images)} image(s), shifts up to {args.max_shift} px", file=sys.stderr)
    command = _command(args)
    pairs = [(opened.trained, label) for opened, label in networks]
    page = explore_page(
        pairs, images, max_shift=args.max_shift, channels=args.channels, command=command
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
