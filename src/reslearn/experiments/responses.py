"""Layer responses (Fig. 7): the standard deviation of every 3x3 layer's response on the test
set, for plain and residual networks trained here or given as weights."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from reslearn.analysis import layer_responses
from reslearn.device import resolve_device
from reslearn.experiments import paper
from reslearn.experiments.base import ExperimentSettings, Table
from reslearn.experiments.common import claim
from reslearn.experiments.networks import NetworkExperiment, labels, open_named
from reslearn.open_trained import open_for_analysis
from reslearn.report.tables import network_label
from reslearn.rundir import WEIGHTS

_CHUNK = 500  # images per forward pass


class Responses(NetworkExperiment):
    """Fig. 7 for plain-20/56 and ResNet-20/56/110 (--models), trained here or --weights."""

    name = "responses"
    title = "Layer responses of plain and residual networks (Fig. 7)"
    description = (
        "std of every 3x3 layer's response (after BN, before the addition and ReLU) on the "
        "test set for plain20/56 and resnet20/56/110 (--models), trained here or given with "
        "--weights NAME=FILE or NAME=reslearn:NAME"
    )
    default_models = ("plain20", "plain56", "resnet20", "resnet56", "resnet110")

    def analyse(self, settings, runs, records) -> dict[str, Any]:
        device = resolve_device(settings.device)
        trained_here = {run.planned.config.model: run.run_dir / WEIGHTS for run in runs}
        samples: dict[tuple, Any] = {}  # one test sample per input size and channels
        measured = [
            measure_responses(
                name, settings.weights.get(name) or trained_here[name], settings,
                samples, device=device, trained_here=name not in settings.weights,
            )  # fmt: skip
            for name in self.models(settings)
        ]
        return {"responses": measured, "claims": _claims(measured), "paper": {"fig7": paper.FIG7}}

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        plot_responses(results["responses"], root / "responses.png")
        return [
            (
                "responses.png",
                "Standard deviation of each 3x3 layer's response (after BN, before the addition "
                "and ReLU) on the test set: top, in layer order; bottom, sorted by magnitude. "
                "Dashed: plain networks; solid: ResNets.",
            )
        ]

    def tables(self, results: dict[str, Any]) -> list[Table]:
        rows = [
            (
                r["model"],
                str(len(r["layers"])),
                f"{r['mean_std']:.3f}",
                f"{max(x['std'] for x in r['layers']):.3f}",
                f"{min(x['std'] for x in r['layers']):.3f}",
                "trained here" if r["trained_here"] else r["weights"],
            )
            for r in results["responses"]
        ]
        return [
            Table(
                "Response std per network (mean over its 3x3 layers)",
                ("network", "3x3 layers", "mean std", "largest", "smallest", "weights"),
                rows,
            )
        ]


def measure_responses(
    name: str,
    path: str | Path,
    settings: ExperimentSettings,
    samples: dict[tuple, Any],
    *,
    device: Any,
    trained_here: bool,
) -> dict[str, Any]:
    """Fig. 7's numbers for the network ``name`` in the weights file ``path``: each 3x3 layer's
    response std and mean |response| on the test images (``--max-images`` of them: one sample
    per input size and channels, kept in ``samples`` so that every network sees the same)."""
    opened = open_named(name, path, device)
    trained = opened.trained
    key = (trained.image_size, trained.in_channels)
    opened = open_for_analysis(
        opened, data=settings.data, count=settings.max_images, cache_dir=settings.cache_dir,
        workers=settings.workers, sample=samples.get(key),
    )  # fmt: skip
    images = samples[key] = opened.images
    print(f"responses: measuring {name} on {len(images.images):,} test images", file=sys.stderr)
    layers = layer_responses(trained.model, opened.batches(_CHUNK))
    stds = [layer.std for layer in layers]
    return {
        "model": name,
        **labels(name),
        "weights": str(path),
        "trained_here": trained_here,
        "images": len(images.images),
        "layers": [
            {"index": x.index, "name": x.name, "std": x.std, "mean_abs": x.mean_abs}
            for x in layers
        ],
        "mean_std": sum(stds) / len(stds),
    }


def _claims(measured: list[dict]) -> list[dict]:
    by_name = {m["model"]: m for m in measured}
    claims = []
    for m in measured:
        plain = by_name.get(f"plain{m['depth']}")
        if m["family"] == "resnet" and plain is not None:
            claims.append(
                claim(
                    f"ResNet-{m['depth']} responds less than plain-{m['depth']}",
                    m["mean_std"] < plain["mean_std"],
                    f"mean std {m['mean_std']:.3f} vs {plain['mean_std']:.3f}",
                )
            )
    resnets = sorted((m for m in measured if m["family"] == "resnet"), key=lambda m: m["depth"])
    for shallow, deep in zip(resnets, resnets[1:]):
        claims.append(
            claim(
                f"ResNet-{deep['depth']}'s layers respond less than ResNet-{shallow['depth']}'s",
                deep["mean_std"] < shallow["mean_std"],
                f"mean std {deep['mean_std']:.3f} vs {shallow['mean_std']:.3f}",
            )
        )
    return claims


def plot_responses(measured: list[dict], path: Path) -> None:
    """Fig. 7: each network's layer response stds in layer order and sorted."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 7.0), dpi=120)
    by_layer, by_size = figure.subplots(2, 1)
    for index, m in enumerate(measured):
        stds = [x["std"] for x in m["layers"]]
        style = "--" if m["family"] == "plain" else "-"
        label = network_label(m)
        by_layer.plot(range(1, len(stds) + 1), stds, style, color=f"C{index}", label=label)
        by_size.plot(
            range(1, len(stds) + 1), sorted(stds, reverse=True), style, color=f"C{index}",
            label=label,
        )  # fmt: skip
    by_layer.set_xlabel("layer index (original)")
    by_size.set_xlabel("layer index (sorted by magnitude)")
    for axes in (by_layer, by_size):
        axes.set_ylabel("std")
        axes.grid(True, linewidth=0.3)
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
