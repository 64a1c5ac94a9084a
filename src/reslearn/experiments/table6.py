"""Table 6: CIFAR-10 test error of ResNet-20/32/44/56/110 over several seeds, beside the
paper's numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reslearn.experiments import paper
from reslearn.experiments.base import Experiment, ExperimentSettings, PlannedRun, Table
from reslearn.experiments.common import cifar_model, load_curves, mean_std, percent, runs_where
from reslearn.report.curves import plot_curves


class Table6(Experiment):
    """ResNets by depth, mean ± std over --seeds."""

    name = "table6"
    title = "CIFAR-10 test error of ResNets by depth (Table 6)"
    description = (
        "resnet20/32/44/56/110 (--depths; 1202 optional) over --seeds (0 1 2), mean ± std of "
        "the test error beside Table 6; --val-split 5000 gives the paper's 45k/5k split"
    )
    default_depths = (20, 32, 44, 56, 110)
    analyses_finished_runs = True
    default_seeds = (0, 1, 2)

    def plan(self, settings: ExperimentSettings) -> list[PlannedRun]:
        return [
            PlannedRun(
                name=f"resnet{depth}-s{seed}",
                config=settings.train_config(cifar_model("resnet", depth), seed),
                labels={"family": "resnet", "depth": depth, "seed": seed},
            )
            for depth in sorted(settings.depths or self.default_depths)
            for seed in settings.seeds
        ]

    def analyse(self, settings, runs, records) -> dict[str, Any]:
        rows = []
        for depth in sorted({r["depth"] for r in records}):
            group = runs_where(records, depth=depth)
            errors = [r["test_error"] for r in group]
            mean, std, n = mean_std(errors)
            known = [e for e in errors if e is not None]
            paper_error, paper_params = paper.TABLE6.get(depth, (None, None))
            rows.append(
                {
                    "depth": depth,
                    "runs": n,
                    "test_error_mean": mean,
                    "test_error_std": std,
                    "test_error_best": min(known) if known else None,
                    "val_error_mean": mean_std(r["val_error"] for r in group)[0],
                    "parameters": group[0]["parameters"],
                    "iterations": group[0]["iterations"],
                    "paper_test_error": paper_error,
                    "paper_parameters_m": paper_params,
                    # (mean, std) % of the PyTorch reproduction's runs, where it has this depth
                    "reproduction_test_error": paper.PYTORCH_REPRODUCTION.get(f"resnet{depth}"),
                }
            )
        return {
            "summary": rows,
            "paper": {
                "table6": {str(k): v for k, v in paper.TABLE6.items()},
                "resnet110_mean_std": paper.TABLE6_RESNET110_MEAN_STD,
            },
        }

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        plot_errors_by_depth(results["summary"], root / "table6.png")
        records = results["runs"]
        first_seed = min(r["seed"] for r in records)
        curves = load_curves(root, runs_where(records, seed=first_seed), "ResNet-{depth}")
        plot_curves(
            curves,
            root / "curves.png",
            title=f"ResNets on {results['data']} (seed {first_seed})",
            milestones=results["budget"]["milestones"],
        )
        return [
            (
                "table6.png",
                "Test error against depth: ours (mean ± std over seeds, log-scaled depth axis), "
                "the paper's Table 6 and a PyTorch reproduction of its recipe (mean ± std of "
                f"{paper.PYTORCH_REPRODUCTION_RUNS} runs, where it has the depth).",
            ),
            ("curves.png", "Training (dashed) and test (bold) error of the first seed's runs."),
        ]

    def tables(self, results: dict[str, Any]) -> list[Table]:
        with_val = any(s["val_error_mean"] is not None for s in results["summary"])
        rows = [
            (
                f"ResNet-{s['depth']}",
                f"{s['parameters'] / 1e6:.2f} M",
                str(s["runs"]),
                percent(s["test_error_mean"], s["test_error_std"]),
                percent(s["test_error_best"]),
                *([percent(s["val_error_mean"])] if with_val else []),
                f"{s['iterations']:,}",
                _paper_cell(s["depth"]),
            )
            for s in results["summary"]
        ]
        header = ("network", "params", "runs", "test error", "best",
                  *(["val error"] if with_val else []), "iterations", "paper")  # fmt: skip
        return [
            Table(
                f"{results['data']} test error (%): ours (mean ± sample std over seeds, and the "
                "best run) beside Table 6 (CIFAR-10, 64,000 iterations)",
                header,
                rows,
            )
        ]


def _paper_cell(depth: int) -> str:
    if depth not in paper.TABLE6:
        return "-"
    error, _ = paper.TABLE6[depth]
    if depth == 110:
        mean, std = paper.TABLE6_RESNET110_MEAN_STD
        return f"{error:.2f} (best of 5; {mean:.2f} ± {std:.2f})"
    return f"{error:.2f}"


def plot_errors_by_depth(summary: list[dict], path: Path) -> None:
    """Test error against depth (mean ± std over seeds) beside Table 6 and, where it has the
    depth, the PyTorch reproduction (mean ± std of its runs)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=120)
    axes = figure.add_subplot()
    depths = [s["depth"] for s in summary]
    means = [
        100 * s["test_error_mean"] if s["test_error_mean"] is not None else float("nan")
        for s in summary
    ]
    stds = [100 * (s["test_error_std"] or 0) for s in summary]
    lengths = sorted({s["iterations"] for s in summary})
    ours = f"reslearn, {', '.join(f'{i:,}' for i in lengths)} iterations (mean ± std over seeds)"
    axes.errorbar(depths, means, yerr=stds, fmt="-o", capsize=4, label=ours)
    known = [(s["depth"], s["paper_test_error"]) for s in summary if s["paper_test_error"]]
    if known:
        label = f"paper (Table 6), {paper.PAPER_ITERATIONS:,} iterations"
        axes.plot(*zip(*known), "s--", color="0.4", label=label)
    reproduced = [(s["depth"], *s["reproduction_test_error"]) for s in summary
                  if s.get("reproduction_test_error")]  # fmt: skip
    if reproduced:
        depth, mean, std = zip(*reproduced, strict=True)
        axes.errorbar(depth, mean, yerr=std, fmt="D", color="0.6", capsize=4,
                      label=f"PyTorch reproduction ({paper.PYTORCH_REPRODUCTION_RUNS} runs)")
    axes.set_xscale("log")
    axes.set_xticks(depths, [str(d) for d in depths])
    axes.minorticks_off()
    axes.set_xlabel("depth (layers)")
    axes.set_ylabel("test error (%)")
    axes.grid(True, linewidth=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path)
