"""The shift probes that several experiments run on their trained networks: each run's weights
on one random sample of test images (the same for every run), shift consistency and accuracy
under shift (``reslearn.analysis.shift.measure_invariance``)."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from typing import Any

import torch

from reslearn.analysis.shift import measure_invariance
from reslearn.data.device_data import to_device_uint8
from reslearn.data.sources import load_eval_sample
from reslearn.device import resolve_device
from reslearn.experiments.settings import ExperimentSettings
from reslearn.rundir import WEIGHTS
from reslearn.weights import load_weights

MAX_SHIFT = 8
DEFAULT_IMAGES = 2000  # test images for the probes (--max-images)


def shift_probes(
    settings: ExperimentSettings, runs: list, experiment: str
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(run, the probe's report as a dict) for each finished run, in order."""
    device = resolve_device(settings.device)
    sample = None
    for run in runs:
        trained = load_weights(run.run_dir / WEIGHTS, device)
        if sample is None:
            sample = load_eval_sample(
                settings.data, image_size=trained.image_size[0],
                count=settings.max_images or DEFAULT_IMAGES, cache_dir=settings.cache_dir,
                workers=settings.workers,
            )  # fmt: skip
        trained.check_data(settings.data, sample.classes, channels=sample.images.shape[3])
        print(f"{experiment}: shift probes for {run.planned.name}", file=sys.stderr)
        x = trained.normalizer(to_device_uint8(sample.images, device)).float()
        y = torch.as_tensor(sample.labels, dtype=torch.int64, device=device)
        max_shift = min(MAX_SHIFT, min(x.shape[-2:]) - 1)
        report = measure_invariance(trained.model, x, y, max_shift=max_shift)
        yield run, dataclasses.asdict(report)
