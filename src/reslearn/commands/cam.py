"""``reslearn cam``: class activation maps (CAM or Grad-CAM) of image files, as overlays."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from reslearn.choices import DEVICES, INTERPOLATIONS
from reslearn.commands.arguments import count, paragraph
from reslearn.text import display_name, display_names


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _target(class_name: str | None, classes: list[str]) -> int | None:
    """The index of ``--class``, given as the class is named or as it is printed."""
    if class_name is None:
        return None
    shown = display_names(classes)
    if class_name in classes:
        return classes.index(class_name)
    if class_name in shown:
        return shown.index(class_name)
    raise ValueError(f"unknown class {class_name!r}; classes: {', '.join(shown)}")


def run(args: argparse.Namespace) -> int:
    """Write one overlay PNG per image and class, and predictions.json."""
    from reslearn.analysis.cam import class_activation_maps, grad_cam, normalize_maps
    from reslearn.analysis.upsample import upsample
    from reslearn.atomic import atomic_write, check_writable
    from reslearn.device import resolve_device
    from reslearn.open_trained import open_for_analysis
    from reslearn.report.overlay import save_map_figure

    if args.layer and args.method == "cam":
        raise ValueError("--layer applies to Grad-CAM; add --method gradcam")
    out = Path(args.out)
    check_writable(out / "predictions.json")  # refused before any work
    opened = open_for_analysis(args.weights, files=args.images, device=resolve_device(args.device))
    trained = opened.trained
    target = _target(args.class_name, trained.classes)
    images, x = opened.images.images, opened.inputs()
    if args.method == "cam":
        result = class_activation_maps(trained.model, x, target=target, topk=args.topk)
    else:
        result = grad_cam(trained.model, x, layer=args.layer, target=target, topk=args.topk)
    heat = normalize_maps(upsample(result.maps, trained.image_size, args.interpolation)).cpu()

    records = []
    for i, path in enumerate(args.images):
        entries = []
        for k in range(result.classes.shape[1]):
            name = trained.classes[int(result.classes[i, k])]
            probability = float(result.probabilities[i, k])
            png = out / f"{i:03d}-{_safe(Path(path).stem)}-{k + 1}-{_safe(name)}.png"
            save_map_figure(
                images[i],
                heat[i, k].numpy(),
                png,
                title=f"{Path(path).name}: {name} ({probability:.1%}), {args.method} at "
                f"{result.layer}, {args.interpolation}",
            )
            entries.append({"class": name, "probability": probability, "map": png.name})
        records.append({"image": str(path), "maps": entries})
        line = f"{path}: " + ", ".join(f"{e['class']} {e['probability']:.1%}" for e in entries)
        print(display_name(line))  # class names are folder names: any bytes
    summary = {
        "weights": str(opened.weights),
        "method": args.method,
        "layer": result.layer,
        "interpolation": args.interpolation,
        "images": records,
    }
    text = (json.dumps(summary, indent=2) + "\n").encode()
    atomic_write(out / "predictions.json", lambda file: file.write(text), durable=False)
    print(f"{sum(len(r['maps']) for r in records)} maps in {out}", file=sys.stderr)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``cam`` subcommand."""
    parser = commands.add_parser(
        "cam",
        help="class activation maps (CAM, Grad-CAM) of images, as overlay PNGs",
        description=paragraph(
            "Where does the network see the class? CAM (Zhou et al. 2016) weights the last "
            "feature map by the classifier's row for a class; Grad-CAM (Selvaraju et al. 2017) "
            "weights any stage's or block's feature map by the averaged gradient of the class "
            "score, so it also works inside plain networks. The coarse map (8x8 for a CIFAR "
            "ResNet) is up-sampled to the image with --interpolation, scaled to [0, 1] and "
            "written as image | map | overlay, one PNG per image and class, with "
            "predictions.json."
        ),
        epilog="examples:\n"
        "  reslearn cam runs/r20 cat.png dog.png -o cams/\n"
        "  reslearn cam runs/r20 cat.png -o cams/ --topk 3 --interpolation nearest\n"
        "  reslearn cam runs/p20 cat.png -o cams/ --method gradcam --layer layer2\n"
        "  reslearn cam runs/r20 cat.png -o cams/ --class dog      why not a dog?\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("weights", metavar="WEIGHTS_OR_RUN")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--method", choices=("cam", "gradcam"), default="cam", help="(cam)")
    parser.add_argument(
        "--layer", metavar="NAME", help="Grad-CAM layer: layer1 ... or layer2.0 (last stage)"
    )
    parser.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="map this class (default: the top predictions)",
    )
    parser.add_argument(
        "--topk",
        type=count,
        default=1,
        metavar="K",
        help="maps for the K most probable classes (1)",
    )
    parser.add_argument(
        "--interpolation",
        choices=INTERPOLATIONS,
        default="bilinear",
        help="up-sampling of the map (bilinear)",
    )
    parser.add_argument("--device", choices=DEVICES, default="cpu", help="(cpu)")
    parser.set_defaults(func=run)
