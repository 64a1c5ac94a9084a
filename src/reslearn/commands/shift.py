"""``reslearn shift``: how shift-invariant and shift-equivariant a trained network is."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from reslearn.choices import DEVICES
from reslearn.commands.arguments import count, paragraph


def run(args: argparse.Namespace) -> int:
    """Measure, write shift.json and shift.png, print the headline numbers."""
    from reslearn.analysis.shift import measure_equivariance, measure_invariance
    from reslearn.atomic import atomic_write, check_writable
    from reslearn.device import resolve_device
    from reslearn.open_trained import open_for_analysis
    from reslearn.report.shift_plots import plot_shift_report

    out = Path(args.out)
    check_writable(out / "shift.json")  # refused before any work
    opened = open_for_analysis(
        args.weights, data=args.data, count=args.images, device=resolve_device(args.device)
    )
    if opened.images is None:
        raise ValueError("--data is required with a weights file (a run directory knows its data)")
    trained, weights, spec = opened.trained, opened.weights, opened.data
    x, y = opened.inputs(), opened.labels()
    print(f"measuring {trained.name} on {len(x):,} images", file=sys.stderr)
    invariance = measure_invariance(trained.model, x, y, max_shift=args.max_shift)
    shifts = sorted({1, 2, 3, 4, args.max_shift} - {0})
    equivariance = measure_equivariance(trained.model, x[: args.equivariance_images], shifts)
    results = {
        "weights": str(weights),
        "model": trained.name,
        "data": spec,
        "invariance": dataclasses.asdict(invariance),
        "equivariance": equivariance,
    }
    text = (json.dumps(results, indent=2) + "\n").encode()
    atomic_write(out / "shift.json", lambda file: file.write(text), durable=False)
    plot_shift_report(results, out / "shift.png", title=f"{trained.name} on {spec}")
    _print_headline(invariance, equivariance, args.max_shift)
    print(f"results: {out / 'shift.json'}, {out / 'shift.png'}")
    return 0


def _print_headline(invariance, equivariance: dict, max_shift: int) -> None:
    """Accuracy, consistency and the lowest accuracy per mode; equivariance errors per stage."""
    print(f"accuracy {invariance.accuracy:.2%} unshifted")
    for mode, value in invariance.consistency.items():
        worst = min(invariance.accuracy_by_shift[mode])
        print(f"{mode:>8} shifts up to {max_shift} px: consistency {value:.2%}, "
              f"lowest accuracy {worst:.2%}")  # fmt: skip
    for name, entry in equivariance.items():
        errors = ", ".join(f"{s}px {e:.3f}" for s, e in zip(entry["shifts"], entry["error"]))
        print(f"equivariance error {name} (stride {entry['stride']}): {errors}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``shift`` subcommand."""
    parser = commands.add_parser(
        "shift",
        help="shift invariance (consistency, accuracy against shift) and per-stage equivariance",
        description=paragraph(
            "Invariance: how often two random shifts of an image get the same class "
            "(consistency, Zhang 2019) and accuracy against shift size, for circular shifts and "
            "for shifts that fill the border with the training mean; the same for small "
            "rotations and scale changes. Equivariance: for every stage, "
            "||F(T x) - T' F(x)|| / ||F(x)||, where T' shifts the feature map by the input "
            "shift divided by the stage's stride, so that shifts that are and are not "
            "multiples of the stride can be compared. Writes shift.json and shift.png."
        ),
    )
    parser.add_argument("weights", metavar="WEIGHTS_OR_RUN")
    parser.add_argument("--data", metavar="SPEC", help="data set (a run directory knows its own)")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--max-shift", type=count, default=8, metavar="PX", help="largest shift (8)"
    )
    parser.add_argument(
        "--images", type=count, default=2000, metavar="N",
        help="test images, a random sample (2000)",
    )  # fmt: skip
    parser.add_argument(
        "--equivariance-images", type=count, default=256, metavar="N",
        help="images for the equivariance error (256)",
    )  # fmt: skip
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="(cpu)")
    parser.set_defaults(func=run)
