"""The degradation problem (Fig. 6): plain and residual CIFAR networks of growing depth, same
recipe and seed. Deeper plain networks train worse; residual ones do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reslearn.experiments import paper
from reslearn.experiments.base import Experiment, ExperimentSettings, PlannedRun, Table
from reslearn.experiments.common import (
    cifar_model,
    claim,
    load_curves,
    mean_std,
    percent,
    runs_where,
)
from reslearn.report.curves import plot_curve_panels
from reslearn.report.tables import network_label

FAMILIES = (("plain", "plain"), ("resnet", "ResNet"))  # (label, display name)
_PANEL_TITLES = {"plain": "plain networks", "resnet": "ResNets"}


class Degradation(Experiment):
    """Fig. 6: plain-20/32/44/56 against ResNet-20/32/44/56."""

    name = "degradation"
    title = "The degradation problem: plain vs. residual networks (Fig. 6)"
    description = (
        "plain and residual CIFAR networks at depths 20, 32, 44, 56 (--depths), same recipe "
        "and seed; Fig. 6's curves, final training and test errors"
    )
    default_depths = (20, 32, 44, 56)
    analyses_finished_runs = True

    def check(self, settings: ExperimentSettings) -> None:
        if len(settings.depths or self.default_depths) < 2:
            raise ValueError("degradation compares depths: give at least two --depths")

    def plan(self, settings: ExperimentSettings) -> list[PlannedRun]:
        depths = sorted(settings.depths or self.default_depths)
        return [
            PlannedRun(
                name=f"{family}{depth}-s{seed}",
                config=settings.train_config(cifar_model(family, depth), seed),
                labels={"family": family, "depth": depth, "seed": seed},
            )
            for family, _ in FAMILIES
            for depth in depths
            for seed in settings.seeds
        ]

    def analyse(self, settings, runs, records) -> dict[str, Any]:
        depths = sorted({r["depth"] for r in records})
        summary = []
        for family, _ in FAMILIES:
            for depth in depths:
                group = runs_where(records, family=family, depth=depth)
                train, train_std, n = mean_std(r["final_train_error"] for r in group)
                test, test_std, _ = mean_std(r["test_error"] for r in group)
                summary.append(
                    {
                        "family": family,
                        "depth": depth,
                        "runs": n,
                        "final_train_error": train,
                        "final_train_error_std": train_std,
                        "test_error": test,
                        "test_error_std": test_std,
                    }
                )

        def value(family: str, depth: int, key: str) -> float:
            return next(s[key] for s in summary if s["family"] == family and s["depth"] == depth)

        low, high = depths[0], depths[-1]
        claims = [
            claim(
                f"plain-{high} ends with a higher training error than plain-{low} (degradation)",
                value("plain", high, "final_train_error")
                > value("plain", low, "final_train_error"),
                f"{percent(value('plain', high, 'final_train_error'))}% vs "
                f"{percent(value('plain', low, 'final_train_error'))}%",
            ),
            claim(
                f"ResNet-{high} ends with a lower training error than plain-{high}",
                value("resnet", high, "final_train_error")
                < value("plain", high, "final_train_error"),
                f"{percent(value('resnet', high, 'final_train_error'))}% vs "
                f"{percent(value('plain', high, 'final_train_error'))}%",
            ),
            claim(
                f"ResNet-{high} ends with a lower test error than plain-{high}",
                value("resnet", high, "test_error") < value("plain", high, "test_error"),
                f"{percent(value('resnet', high, 'test_error'))}% vs "
                f"{percent(value('plain', high, 'test_error'))}%",
            ),
            claim(
                f"ResNet-{high} ends with a lower test error than ResNet-{low} (better with depth)",
                value("resnet", high, "test_error") < value("resnet", low, "test_error"),
                f"{percent(value('resnet', high, 'test_error'))}% vs "
                f"{percent(value('resnet', low, 'test_error'))}%",
            ),
        ]
        return {"summary": summary, "claims": claims, "paper": {"fig6": paper.FIG6}}

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        records = results["runs"]
        first_seed = min(r["seed"] for r in records)
        panels = [
            (
                _PANEL_TITLES[family],
                load_curves(
                    root,
                    sorted(
                        runs_where(records, family=family, seed=first_seed),
                        key=lambda r: r["depth"],
                    ),
                    f"{title}-{{depth}}",
                ),
            )
            for family, title in FAMILIES
        ]
        plot_curve_panels(
            panels, root / "degradation.png", milestones=results["budget"]["milestones"]
        )
        caption = (
            f"Training on {results['data']} (seed {first_seed}): dashed lines are training "
            "error (augmented batches, averaged over each logging window), bold lines test "
            "error. Left: plain networks; right: ResNets. Grey verticals: learning-rate drops."
        )
        _plot_final_errors(results["summary"], root / "final-errors.png")
        return [
            ("degradation.png", caption),
            ("final-errors.png", "Final training and test error against depth."),
        ]

    def tables(self, results: dict[str, Any]) -> list[Table]:
        rows = []
        for s in results["summary"]:
            paper_error = paper.TABLE6.get(s["depth"]) if s["family"] == "resnet" else None
            rows.append(
                (
                    network_label(s),
                    str(s["runs"]),
                    percent(s["final_train_error"], s["final_train_error_std"]),
                    percent(s["test_error"], s["test_error_std"]),
                    f"{paper_error[0]:.2f}" if paper_error else "-",
                )
            )
        return [
            Table(
                "Final errors (%); the paper's column is Table 6 after the full 64k-iteration "
                "recipe (it gives no table for plain nets)",
                ("network", "runs", "training error", "test error", "paper test error"),
                rows,
            )
        ]


def _plot_final_errors(summary: list[dict], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=120)
    axes = figure.add_subplot()
    for index, (family, title) in enumerate(FAMILIES):
        rows = [s for s in summary if s["family"] == family]
        depths = [s["depth"] for s in rows]
        for key, style, name in (
            ("final_train_error", "--o", "train"),
            ("test_error", "-o", "test"),
        ):
            values = [100 * s[key] if s[key] is not None else float("nan") for s in rows]
            axes.plot(depths, values, style, color=f"C{index}", label=f"{title} {name}")
    axes.set_xlabel("depth (layers)")
    axes.set_ylabel("final error (%)")
    axes.set_xticks(sorted({s["depth"] for s in summary}))
    axes.grid(True, linewidth=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
