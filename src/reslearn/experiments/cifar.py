"""The paper's CIFAR-10 section as one experiment over one pool of runs: plain-20/32/44/56,
ResNet-20/32/44/56 (shortcut A) and ResNet-20 with shortcuts B and C, over seeds; every network
trained once, and Fig. 6, Table 6, Fig. 7 and the shortcut comparison all built from the pool,
each claim decided with a 95% interval over seeds (``claim_statistics``)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from reslearn.choices import EXPERIMENTS
from reslearn.device import resolve_device
from reslearn.experiments import claim_statistics as stats
from reslearn.experiments import paper
from reslearn.experiments.base import Experiment, ExperimentSettings, PlannedRun, Table
from reslearn.experiments.common import cifar_model, machine_label, mean_std, percent, runs_where
from reslearn.experiments.degradation import Degradation
from reslearn.experiments.responses import measure_responses, plot_responses
from reslearn.experiments.run_record import MEASURED, ensure_measured
from reslearn.experiments.shortcuts import Shortcuts
from reslearn.experiments.table6 import Table6, plot_errors_by_depth
from reslearn.report.tables import network_label
from reslearn.rundir import WEIGHTS

#: The shortcut options compared on the shallowest ResNet beside the pool's option A.
EXTRA_SHORTCUTS = ("B", "C")
_SELECTION = (
    "the final weights of every run; nothing is selected on the test set (with --val-split N "
    "the held-out validation images are reported beside it, and only they may select)"
)


class Cifar(Experiment):
    """Sec. 4.2 on CIFAR-10: one pool of plain and residual runs, every claim from it."""

    name = "cifar"
    title = "The paper's CIFAR-10 section: Fig. 6, Table 6, Fig. 7 and shortcuts, over seeds"
    description = EXPERIMENTS["cifar"]
    default_depths = (20, 32, 44, 56)
    analyses_finished_runs = True
    default_seeds = (0, 1, 2)

    def check(self, settings: ExperimentSettings) -> None:
        depths = settings.depths or self.default_depths
        bad = [d for d in depths if d < 8 or (d - 2) % 6]
        if bad:
            raise ValueError(
                f"--depths must be of the form 6n+2 (20, 32, 44, 56, 110); got {bad[0]}"
            )
        if len(depths) < 2:
            raise ValueError("cifar compares depths: give at least two --depths")
        if settings.models or settings.weights:
            raise ValueError("cifar trains its own pool: --models and --weights are for responses")

    def plan(self, settings: ExperimentSettings) -> list[PlannedRun]:
        depths = sorted(settings.depths or self.default_depths)
        runs = []
        for seed in settings.seeds:  # a seed at a time: a stopped suite has whole seeds done
            for depth in depths:
                runs.append(_run(settings, "plain", depth, seed, None))
                runs.append(_run(settings, "resnet", depth, seed, "A"))
            for option in EXTRA_SHORTCUTS:
                runs.append(_run(settings, "resnet", depths[0], seed, option))
        return runs

    def analyse(self, settings, runs, records) -> dict[str, Any]:
        pooled = [r for r in records if r.get("shortcut") in (None, "A")]
        resnets = [r for r in pooled if r["family"] == "resnet"]
        shallow = min(r["depth"] for r in records)
        shortcut_runs = runs_where(records, family="resnet", depth=shallow)
        responses = _responses(settings, runs)
        return {
            "degradation": Degradation().analyse(settings, runs, pooled)["summary"],
            "table6": Table6().analyse(settings, runs, resnets)["summary"],
            "shortcuts": Shortcuts().analyse(settings, runs, shortcut_runs)["summary"],
            "responses": responses,
            "networks": _network_errors(records),
            "seed_minutes": _seed_minutes(records),
            "claims": _claims(pooled, shortcut_runs, responses),
            "selection": _SELECTION,
        }

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        pooled = [r for r in results["runs"] if r.get("shortcut") in (None, "A")]
        shown = Degradation().figures(
            {**results, "runs": pooled, "summary": results["degradation"]}, root
        )
        plot_errors_by_depth(results["table6"], root / "table6.png")
        first = min(r["seed"] for r in results["responses"])
        plot_responses([r for r in results["responses"] if r["seed"] == first],
                       root / "responses.png")  # fmt: skip
        return [
            *shown,
            ("table6.png", "ResNet test error against depth, mean ± std over seeds, beside "
                           "the paper's Table 6 and a PyTorch reproduction of its recipe (mean "
                           f"± std of {paper.PYTORCH_REPRODUCTION_RUNS} runs, where it has the "
                           "depth)."),  # fmt: skip
            ("responses.png", f"Fig. 7 (seed {first}): the std of each 3x3 layer's response "
                              "(after BN, before the addition); dashed: plain, solid: ResNets."),
        ]  # fmt: skip

    def tables(self, results: dict[str, Any]) -> list[Table]:
        data = results["data"]
        return [
            *([_networks_table(results["networks"])] if "networks" in results else []),
            *Table6().tables({"summary": results["table6"], "data": data}),
            *Degradation().tables({"summary": results["degradation"]}),
            *Shortcuts().tables({"summary": results["shortcuts"]}),
            _responses_table(results["responses"]),
            _claims_table(results["claims"]),
            *([_seeds_table(results["seed_minutes"])] if "seed_minutes" in results else []),
        ]


def _run(settings, family: str, depth: int, seed: int, shortcut: str | None) -> PlannedRun:
    """One run of the pool: option A is the networks' default (no option given); the pooled
    plain and option-A runs have Fig. 7's responses measured when they finish."""
    options = {"shortcut": shortcut} if shortcut not in (None, "A") else {}
    suffix = f"-{shortcut}" if options else ""
    model = cifar_model(family, depth)
    return PlannedRun(
        name=f"{family}{depth}{suffix}-s{seed}",
        config=settings.train_config(model, seed, **options),
        labels={"family": family, "depth": depth, "seed": seed, "shortcut": shortcut},
        measure=None if options else partial(_measure_responses, settings, model),
    )


def _measure_responses(settings: ExperimentSettings, model: str, run_dir: Path) -> dict:
    """Fig. 7's numbers for one finished run, for its measured.json (picklable for the
    launchers' jobs: a module-level function of the settings, the model and the folder)."""
    device = resolve_device(settings.device)
    record = measure_responses(model, run_dir / WEIGHTS, settings, {}, device=device,
                               trained_here=True)  # fmt: skip
    record["weights"] = WEIGHTS  # the file in the run's own folder, wherever that is now
    return {"responses": record}


def _responses(settings: ExperimentSettings, runs) -> list[dict[str, Any]]:
    """Fig. 7's numbers for every pooled plain and option-A network, every seed, as each run's
    measured.json kept them when it finished (no weights are read here)."""
    measured = []
    for run in runs:
        if run.planned.measure is None:
            continue
        kept = ensure_measured(run.run_dir, run.planned.measure)
        if not kept or "measurements" not in kept:
            raise ValueError(
                f"{run.run_dir} has no {MEASURED} with Fig. 7's responses and no {WEIGHTS} to "
                "measure them; delete the folder to train it again"
            )
        measured.append({**kept["measurements"]["responses"], "seed": run.planned.labels["seed"]})
    return measured


def _by_seed(records: list[dict], key: str, **labels: Any) -> dict[int, float]:
    return {r["seed"]: r[key] for r in runs_where(records, **labels) if r.get(key) is not None}


def _claims(pooled: list[dict], shortcut_runs: list[dict], responses: list[dict]) -> list[dict]:
    """Every claim of the section that must be decided, then those below seed noise."""
    depths = sorted({r["depth"] for r in pooled})
    train, test = "final_train_error", "test_error"
    claims = [
        stats.decide(f"plain-{deep} ends with a higher training error than plain-{shallow} "
                     "(degradation)", _by_seed(pooled, train, family="plain", depth=shallow),
                     _by_seed(pooled, train, family="plain", depth=deep))
        for shallow, deep in zip(depths, depths[1:])
    ]  # fmt: skip
    for depth in depths:
        for key, what in ((train, "training"), (test, "test")):
            claims.append(stats.decide(
                f"ResNet-{depth} ends with a lower {what} error than plain-{depth}",
                _by_seed(pooled, key, family="resnet", depth=depth),
                _by_seed(pooled, key, family="plain", depth=depth),
            ))  # fmt: skip
    low, high = depths[0], depths[-1]
    claims.append(stats.decide(
        f"ResNet-{high} ends with a lower test error than ResNet-{low} (better with depth)",
        _by_seed(pooled, test, family="resnet", depth=high),
        _by_seed(pooled, test, family="resnet", depth=low),
    ))  # fmt: skip
    points = [(r["seed"], r["depth"], r[test]) for r in runs_where(pooled, family="resnet")
              if r.get(test) is not None]  # fmt: skip
    claims.append(stats.decide_slope(
        f"ResNet test error falls with depth over {low}-{high} layers (every run)", points
    ))  # fmt: skip
    claims += _response_claims(responses, depths)
    return claims + _below_noise_claims(pooled, shortcut_runs, depths)


def _response_claims(responses: list[dict], depths: list[int]) -> list[dict]:
    """Fig. 7: residual layers respond less than plain ones, and less in deeper ResNets."""

    def responds_less(claim: str, lower: dict, higher: dict) -> dict:
        return stats.decide(
            f"{claim} (Fig. 7)", _by_seed(responses, "mean_std", **lower),
            _by_seed(responses, "mean_std", **higher), unit="in mean std", scale=1.0,
        )  # fmt: skip

    claims = [
        responds_less(f"ResNet-{d}'s 3x3 layers respond less than plain-{d}'s",
                      dict(family="resnet", depth=d), dict(family="plain", depth=d))
        for d in depths
    ]  # fmt: skip
    low, high = depths[0], depths[-1]
    claims.append(responds_less(f"ResNet-{high}'s 3x3 layers respond less than ResNet-{low}'s",
                                dict(family="resnet", depth=high),
                                dict(family="resnet", depth=low)))  # fmt: skip
    return claims


def _below_noise_claims(pooled, shortcut_runs, depths) -> list[dict]:
    """Claims whose margin in the paper is below seed noise: intervals, never verdicts."""
    claims = []
    if 44 in depths and 56 in depths:  # Table 6: 7.17 vs 6.97
        claims.append(stats.decide(
            "ResNet-56 ends with a lower test error than ResNet-44 (0.2 points in Table 6)",
            _by_seed(pooled, "test_error", family="resnet", depth=56),
            _by_seed(pooled, "test_error", family="resnet", depth=44), below_noise=True,
        ))  # fmt: skip
    for better, worse, margin in (("B", "A", "0.5"), ("C", "B", "0.3")):  # Table 3, ImageNet
        claims.append(stats.decide(
            f"shortcut {better} ends with a lower test error than {worse} ({margin} points "
            "in Table 3, on ImageNet)",
            _by_seed(shortcut_runs, "test_error", shortcut=better),
            _by_seed(shortcut_runs, "test_error", shortcut=worse), below_noise=True,
        ))  # fmt: skip
    return claims


def _network_errors(records: list[dict]) -> list[dict[str, Any]]:
    """Every network's test error, each seed's and the mean ± std over seeds, beside the
    paper's (Table 6: ResNets, one run each) and the five-run PyTorch reproduction's, where
    they give one; plain nets first, then ResNets by depth, then the extra shortcuts."""
    kinds = dict.fromkeys((r["family"], r["depth"], r.get("shortcut")) for r in records)
    order = sorted(kinds, key=lambda k: (k[2] in EXTRA_SHORTCUTS, k[0] != "plain", k[1], k[2]))
    rows = []
    for family, depth, shortcut in order:
        group = sorted(runs_where(records, family=family, depth=depth, shortcut=shortcut),
                       key=lambda r: r["seed"])  # fmt: skip
        mean, std, count = mean_std(r["test_error"] for r in group)
        model = cifar_model(family, depth)
        extra = shortcut in EXTRA_SHORTCUTS
        table6 = paper.TABLE6.get(depth) if family == "resnet" and not extra else None
        reproduction = None if extra else paper.PYTORCH_REPRODUCTION.get(model)
        rows.append({
            "network": network_label({"family": family, "depth": depth})
                       + (f" ({shortcut})" if extra else ""),
            "model": model,
            "shortcut": shortcut,
            "test_errors": {str(r["seed"]): r["test_error"] for r in group},
            "mean": mean,
            "std": std,
            "runs": count,
            "paper": table6[0] / 100 if table6 else None,
            "reproduction": [v / 100 for v in reproduction] if reproduction else None,
        })  # fmt: skip
    return rows


def _seed_minutes(records: list[dict]) -> list[dict[str, Any]]:
    """The training minutes of each seed's runs and the machines they trained on."""
    seeds = []
    for seed in sorted({r["seed"] for r in records}):
        group = runs_where(records, seed=seed)
        seconds = [r["train_seconds"] for r in group if r.get("train_seconds")]
        seeds.append({
            "seed": seed,
            "runs": len(group),
            "minutes": sum(seconds) / 60 if seconds else None,
            "machines": sorted({machine_label(r) for r in group}),
            "precisions": sorted({r.get("precision") or "-" for r in group}),
        })  # fmt: skip
    return seeds


def _networks_table(networks: list[dict]) -> Table:
    seeds = sorted({s for n in networks for s in n["test_errors"]}, key=int)
    runs = paper.PYTORCH_REPRODUCTION_RUNS
    rows = [
        (n["network"], *(percent(n["test_errors"].get(s)) for s in seeds),
         percent(n["mean"], n["std"]), percent(n["paper"]),
         percent(*n["reproduction"]) if n["reproduction"] else "-")
        for n in networks
    ]  # fmt: skip
    return Table(
        "Every network's test error (%): each seed, the mean ± sample std over seeds, the "
        f"paper's (Table 6, one run at 64k iterations) and that of a {runs}-run PyTorch "
        "reproduction of the paper's recipe (mean ± std)",
        ("network", *(f"seed {s}" for s in seeds), "mean ± std", "paper",
         f"PyTorch reproduction ({runs} runs)"),
        rows,
    )  # fmt: skip


def _seeds_table(seeds: list[dict]) -> Table:
    rows = [
        (str(s["seed"]), str(s["runs"]), f"{s['minutes']:.0f}" if s["minutes"] else "-",
         ", ".join(s["machines"]), ", ".join(s["precisions"]))
        for s in seeds
    ]  # fmt: skip
    return Table(
        "Training time per seed (minutes, all of its runs, one after another) and where it "
        "trained",
        ("seed", "runs", "minutes", "trained on", "precision"),
        rows,
    )


def _responses_table(responses: list[dict]) -> Table:
    rows = []
    for name in dict.fromkeys(r["model"] for r in responses):
        stds = [r["mean_std"] for r in responses if r["model"] == name]
        rows.append((name, str(len(stds)), f"{sum(stds) / len(stds):.3f}",
                     f"{min(stds):.3f} - {max(stds):.3f}"))  # fmt: skip
    return Table("Fig. 7: the mean std of each network's 3x3 layer responses, over seeds",
                 ("network", "seeds", "mean std", "range over seeds"), rows)  # fmt: skip


def _claims_table(claims: list[dict]) -> Table:
    def interval(c: dict) -> str:
        if c["ci_low"] is None:
            return "-"
        scale = c["scale"]
        return f"[{scale * c['ci_low']:+.3g}, {scale * c['ci_high']:+.3g}]"

    rows = [
        (c["claim"], c["verdict"], interval(c),
         " ".join(f"s{s}:{'yes' if ok else 'no'}" for s, ok in c["per_seed"].items()) or "-",
         str(c["seeds_to_decide"] or "-"))
        for c in claims
    ]  # fmt: skip
    return Table(
        "Every claim, decided over seeds: 95% t-interval of the mean paired difference (on the "
        "paper's side when positive), each seed's own verdict, and the seeds that would decide "
        "a claim at the spread seen",
        ("claim", "verdict", "95% interval", "per seed", "seeds to decide"),
        rows,
    )
