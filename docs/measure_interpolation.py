"""Measure what the three up-sampling modes do to class activation maps (docs/questions.md, 5):
how far un-clipped bicubic leaves each map's range, how much the modes differ once scaled to
[0, 1], and how often bilinear's peak stays in the cell of nearest's peak.

    .venv/bin/python docs/measure_interpolation.py reslearn:resnet20-cifar10 \\
        --data data/cifar10-jpeg --images 1000
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from reslearn.analysis.cam import class_activation_maps, normalize_maps
from reslearn.analysis.upsample import INTERPOLATIONS, upsample
from reslearn.data.device_data import to_device_uint8
from reslearn.data.sources import load_eval_sample
from reslearn.hub import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--data", required=True)
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    trained = load_trained(args.weights)
    size = trained.image_size
    sample = load_eval_sample(args.data, image_size=size[0], count=args.images)
    x = trained.normalizer(to_device_uint8(sample.images, "cpu")).float()
    maps = class_activation_maps(trained.model, x).maps[:, 0]
    cubic = F.interpolate(maps[:, None], size=size, mode="bicubic", align_corners=False)[:, 0]
    low, high = maps.amin((1, 2)), maps.amax((1, 2))
    over = torch.maximum(cubic.amax((1, 2)) - high, low - cubic.amin((1, 2))) / (high - low)
    print(f"un-clipped bicubic leaves the map's range on {(over > 1e-6).float().mean():.1%} of "
          f"{len(maps)} maps: by {over.median():.1%} of the range at the median, {over.max():.1%} "
          "at most")  # fmt: skip
    heat = {mode: normalize_maps(upsample(maps, size, mode)) for mode in INTERPOLATIONS}
    for a, b in (("nearest", "bilinear"), ("bilinear", "bicubic")):
        print(f"{a} vs {b}: {(heat[a] - heat[b]).abs().mean():.3f} per pixel on [0, 1]")
    block = size[0] // maps.shape[1], size[1] // maps.shape[2]

    def peak_cell(h: torch.Tensor) -> torch.Tensor:
        peak = h.flatten(1).argmax(1)
        return (peak // size[1] // block[0]) * maps.shape[2] + peak % size[1] // block[1]

    same = (peak_cell(heat["bilinear"]) == peak_cell(heat["nearest"])).float().mean()
    print(f"bilinear's peak lies in the cell of nearest's peak for {same:.1%} of the maps")


if __name__ == "__main__":
    main()
