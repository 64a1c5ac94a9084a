"""``reslearn convert``: weights published in another format, as a reslearn weights file."""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from reslearn.choices import AKAMASTER_FILES, AKAMASTER_REPOSITORY
from reslearn.commands.arguments import check_output, paragraph

FORMATS = ("akamaster",)


def run(args: argparse.Namespace) -> int:
    """Read the file in its format, check it, and write the reslearn file."""
    from reslearn.hub import weights_path
    from reslearn.hub.akamaster import read_akamaster
    from reslearn.weights import save_weights

    out = Path(args.output)
    check_output(out, overwrite=args.overwrite, example="resnet20.safetensors")
    source = weights_path(args.file)  # akamaster:NAME is fetched first
    trained = read_akamaster(source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    extra = {
        "converted_from": f"{AKAMASTER_REPOSITORY}: {source.name} (sha256 {digest})",
        "license": trained.metadata["license"],
    }
    save_weights(
        out, trained.model, classes=trained.classes, normalizer=trained.normalizer,
        image_size=trained.image_size, extra=extra,
    )  # fmt: skip
    print(f"{trained.name} ({source.name}) -> {out}: {len(trained.classes)} classes, ImageNet "
          "mean/std normalisation, option-A zeros on both sides (zero_pad=both)")  # fmt: skip
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``convert`` subcommand."""
    names = ", ".join(f"akamaster:{name}" for name in AKAMASTER_FILES)
    parser = commands.add_parser(
        "convert",
        help="turn weights published elsewhere into a reslearn weights file",
        description=paragraph(
            "Read weights published in another format and write them as one reslearn "
            ".safetensors file, which eval, predict, cam, shift and --init take. 'akamaster': "
            f"the .th files of {AKAMASTER_REPOSITORY} (the most used pretrained CIFAR-10 "
            f"ResNets), or their names ({names}; downloaded once into the cache and checked "
            "against the sha256 prefix in their file names). Their option-A shortcut puts the zero "
            "channels on both sides of the channel axis and their inputs are normalised with "
            "ImageNet's mean and std: the converted file records both, so the network computes "
            "what theirs computes. (eval, predict, cam and shift also take the .th file or the "
            "name directly.)"
        ),
        epilog="examples:\n"
        "  reslearn convert akamaster resnet20-12fca82f.th -o resnet20.safetensors\n"
        "  reslearn convert akamaster akamaster:resnet56 -o resnet56.safetensors",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("format", choices=FORMATS, help="the file's format: akamaster")
    parser.add_argument("file", metavar="FILE_OR_NAME", help="a .th file, or akamaster:resnet20")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="the .safetensors")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    parser.set_defaults(func=run)
