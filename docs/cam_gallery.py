"""Draw README's CAM gallery: a few test images, each with its CAM up-sampled by nearest,
bilinear and bicubic interpolation (the predicted class's map, over the image).

    .venv/bin/python docs/cam_gallery.py RUN_OR_WEIGHTS IMAGE... -o docs/images/cam-gallery.png
"""

from __future__ import annotations

import argparse

from matplotlib.figure import Figure

from reslearn.analysis.cam import class_activation_maps, normalize_maps
from reslearn.analysis.upsample import INTERPOLATIONS, upsample
from reslearn.data.device_data import to_device_uint8
from reslearn.predict import load_images
from reslearn.report.overlay import blend
from reslearn.rundir import resolve_weights
from reslearn.weights import load_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("images", nargs="+")
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args()
    weights, _, _ = resolve_weights(args.weights)
    trained = load_weights(weights)
    images = load_images(args.images, trained)
    result = class_activation_maps(
        trained.model, trained.normalizer(to_device_uint8(images, "cpu"))
    )
    figure = Figure(figsize=(2.0 * (1 + len(INTERPOLATIONS)), 2.1 * len(images)), dpi=100)
    grid = figure.subplots(len(images), 1 + len(INTERPOLATIONS), squeeze=False)
    for row, image in enumerate(images):
        name = trained.classes[int(result.classes[row, 0])]
        grid[row, 0].imshow(image, interpolation="nearest")
        grid[row, 0].set_title(f"{name} {float(result.probabilities[row, 0]):.0%}", fontsize=9)
        for col, mode in enumerate(INTERPOLATIONS, 1):
            heat = normalize_maps(upsample(result.maps[row, 0], trained.image_size, mode)).numpy()
            grid[row, col].imshow(blend(image, heat), interpolation="nearest")
            if row == 0:
                grid[row, col].set_title(mode, fontsize=9)
    for axes in grid.flat:
        axes.axis("off")
    figure.tight_layout()
    figure.savefig(args.out)


if __name__ == "__main__":
    main()
