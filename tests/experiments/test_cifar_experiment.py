"""`reproduce cifar`: one pool of runs, every figure and claim built from it, the claims decided
over seeds against the runs' own numbers."""

import dataclasses
import json
import shutil
import statistics

import pytest

from reslearn.errors import SettingError
from reslearn.experiments import ExperimentSettings, get_experiment, run_experiment
from reslearn.experiments.claim_statistics import HOLDS, UNDECIDED, mean_interval
from reslearn.experiments.report_page import results_markdown, write_experiment_report

pytestmark = [pytest.mark.trains, pytest.mark.slow]  # 12 tiny trainings


@pytest.fixture(scope="module")
def pool(tmp_path_factory, tiny_data):
    out = tmp_path_factory.mktemp("cifar")
    settings = ExperimentSettings(
        data=str(tiny_data), iterations=4, batch_size=16, depths=[20, 32], seeds=[0, 1],
        precision="fp32", cache_dir=str(tmp_path_factory.getbasetemp() / "experiment-cache"),
    )  # fmt: skip
    results = run_experiment(
        get_experiment("cifar"), settings, out, quiet=True, draw=write_experiment_report
    )
    return out, results, settings


def test_every_network_is_trained_once_per_seed(pool):
    out, results, _ = pool
    names = sorted(r["name"] for r in results["runs"])
    expected = [f"{n}-s{s}" for n in ("plain20", "plain32", "resnet20", "resnet20-B",
                                      "resnet20-C", "resnet32") for s in (0, 1)]  # fmt: skip
    assert names == sorted(expected)
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(expected)
    # the figures and tables all come from this pool
    for figure in ("degradation.png", "table6.png", "responses.png", "report.html"):
        assert (out / figure).is_file(), figure
    assert {r["model"] for r in results["responses"]} == {"plain20", "plain32", "resnet20",
                                                          "resnet32"}  # fmt: skip


def test_the_claims_are_the_runs_own_numbers_decided_over_seeds(pool):
    _, results, _ = pool
    runs = {r["name"]: r for r in results["runs"]}
    claim = next(c for c in results["claims"] if c["claim"].startswith("ResNet-32 ends with a "
                                                                        "lower test error"))
    differences = [runs[f"plain32-s{s}"]["test_error"] - runs[f"resnet32-s{s}"]["test_error"]
                   for s in (0, 1)]  # fmt: skip
    assert claim["differences"] == pytest.approx(differences)
    mean, low, high = mean_interval(differences)
    assert (claim["mean_difference"], claim["ci_low"]) == pytest.approx((mean, low))
    expected = HOLDS if min(differences) > 0 and low > 0 else claim["verdict"]
    assert claim["verdict"] == expected
    noise = [c for c in results["claims"] if c["below_seed_noise"]]
    assert len(noise) == 2 and all(c["verdict"] == UNDECIDED for c in noise)  # B vs A, C vs B
    table6 = {row["depth"]: row for row in results["table6"]}
    errors = [runs[f"resnet20-s{s}"]["test_error"] for s in (0, 1)]
    assert table6[20]["test_error_mean"] == pytest.approx(statistics.fmean(errors))
    assert table6[20]["reproduction_test_error"] == (8.51, 0.22)  # drawn beside Table 6
    assert table6[32]["reproduction_test_error"] is None
    assert results["selection"].startswith("the final weights")
    json.dumps(results)  # results.json is plain JSON


def test_the_report_shows_each_verdict_and_interval(pool):
    out, results, _ = pool
    page = (out / "report.html").read_text()
    for claim in results["claims"]:
        assert claim["verdict"] in page
    assert "95% CI" in page or "no interval" in page
    assert "±" in page  # the binomial standard error beside each run's test error


def test_every_network_is_shown_by_seed_beside_the_paper_and_the_reproduction(pool):
    out, results, _ = pool
    runs = {r["name"]: r for r in results["runs"]}
    rows = {n["network"]: n for n in results["networks"]}
    assert list(rows) == ["plain-20", "plain-32", "ResNet-20", "ResNet-32", "ResNet-20 (B)",
                          "ResNet-20 (C)"]  # fmt: skip
    errors = [runs[f"resnet20-s{s}"]["test_error"] for s in (0, 1)]
    resnet20 = rows["ResNet-20"]
    assert resnet20["test_errors"] == {"0": errors[0], "1": errors[1]}
    assert resnet20["mean"] == pytest.approx(statistics.fmean(errors))
    assert resnet20["std"] == pytest.approx(statistics.stdev(errors))
    assert resnet20["paper"] == pytest.approx(0.0875)  # Table 6
    assert resnet20["reproduction"] == pytest.approx([0.0851, 0.0022])  # 5 PyTorch runs
    assert rows["plain-20"]["reproduction"] == pytest.approx([0.0978, 0.0013])
    assert rows["plain-32"]["paper"] is None and rows["plain-32"]["reproduction"] is None
    assert rows["ResNet-20 (B)"]["paper"] is None  # Table 6 is option A
    assert rows["ResNet-20 (C)"]["test_errors"]["1"] == runs["resnet20-C-s1"]["test_error"]
    seeds = {s["seed"]: s for s in results["seed_minutes"]}
    assert sorted(seeds) == [0, 1] and seeds[1]["runs"] == 6
    seconds = sum(r["train_seconds"] for r in results["runs"] if r["seed"] == 1)
    assert seeds[1]["minutes"] == pytest.approx(seconds / 60)
    assert {p.split(" + ")[0] for p in seeds[1]["precisions"]} == {"fp32"}
    # report.md shows every table as results_markdown gives it to the docs
    report = (out / "report.md").read_text()
    tables = results_markdown(results).split("\n\n")[1:]
    assert len(tables) >= 14 and all(part in report for part in tables)
    assert f"| ResNet-20 | {100 * errors[0]:.2f} | {100 * errors[1]:.2f} |" in report


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"depths": [20, 30]}, "6n\\+2"),
        ({"depths": [20]}, "at least two"),
    ],
)
def test_bad_depths_are_refused_before_training(tiny_data, tmp_path, overrides, message):
    settings = ExperimentSettings(data=str(tiny_data), iterations=4, **overrides)
    with pytest.raises(ValueError, match=message):
        run_experiment(get_experiment("cifar"), settings, tmp_path / "x", quiet=True)
    assert not (tmp_path / "x").exists()


def test_a_budget_is_a_named_recipe_and_length():
    flags = {f.name: None for f in dataclasses.fields(ExperimentSettings)}
    laptop = ExperimentSettings.from_flags({**flags, "data": "x", "budget": "laptop"},
                                           default_seeds=(0,))  # fmt: skip
    assert (laptop.recipe, laptop.iterations) == ("fast", 3900)
    paper = ExperimentSettings.from_flags({**flags, "data": "x", "budget": "paper"},
                                          default_seeds=(0,))  # fmt: skip
    assert (paper.recipe, paper.iterations) == ("paper", 64_000)
    with pytest.raises(SettingError, match="^unknown budget 'gpu'; budgets: paper, laptop$"):
        ExperimentSettings.from_flags({**flags, "data": "x", "budget": "gpu"}, default_seeds=(0,))
    clash = "^budget laptop sets iterations: give the budget or iterations, not both$"
    with pytest.raises(SettingError, match=clash):
        ExperimentSettings.from_flags({**flags, "data": "x", "budget": "laptop",
                                       "iterations": 10}, default_seeds=(0,))  # fmt: skip


def _committed_copy(out, folder):
    """The pool as git would carry it: no checkpoints, no lock, no weights above seed 0."""
    shutil.copytree(out, folder, ignore=shutil.ignore_patterns("checkpoints", ".reslearn-lock"))
    for run in (folder / "runs").glob("*-s1"):
        (run / "model.safetensors").unlink()
    return folder


def test_a_committed_pool_is_analysed_without_the_weights_of_seeds_above_0(pool, tmp_path,
                                                                           capsys):  # fmt: skip
    out, results, settings = pool
    for run in results["runs"]:  # Fig. 7 was measured when each pooled run finished
        measured = json.loads((out / run["run_dir"] / "measured.json").read_text())
        assert ("measurements" in measured) == (run["shortcut"] in (None, "A"))
        assert len(measured["weights_sha256"]) == 64
    copy = _committed_copy(out, tmp_path / "committed")
    capsys.readouterr()
    again = run_experiment(get_experiment("cifar"), settings, copy, quiet=True)
    assert capsys.readouterr().err.count("finished earlier, reused") == 12
    assert again["responses"] == results["responses"]
    assert again["claims"] == results["claims"]
    assert [r["test_error"] for r in again["runs"]] == [r["test_error"] for r in results["runs"]]
    # fp32 as asked; the memory format is measured per run (channels_last where it is faster)
    assert {r["precision"].split(" + ")[0] for r in again["runs"]} == {"fp32"}
    assert all(r["device_name"] for r in again["runs"])


@pytest.mark.parametrize(
    ("run", "spoil", "phrase"),
    [
        ("resnet20-s1", lambda d: (d / "metrics.jsonl").write_bytes(
            (d / "metrics.jsonl").read_bytes()[:-10]), "metrics.jsonl is truncated"),
        ("plain32-s0", lambda d: (d / "model.safetensors").write_bytes(b"x" * 64),
         "does not match the sha256"),
        ("plain20-s1", lambda d: (d / "summary.json").unlink(), "has no summary.json"),
    ],
)  # fmt: skip
def test_a_damaged_committed_run_is_named_and_trained_again(pool, tmp_path, capsys, run, spoil,
                                                            phrase):  # fmt: skip
    out, _, settings = pool
    copy = _committed_copy(out, tmp_path / "committed")
    spoil(copy / "runs" / run)
    capsys.readouterr()
    again = run_experiment(get_experiment("cifar"), settings, copy, quiet=True)
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if f"{run}:" in x)
    assert phrase in line and str(copy / "runs" / run) in line
    assert err.count("finished earlier, reused") == 11
    retrained = next(r for r in again["runs"] if r["name"] == run)
    assert not retrained["reused"] and retrained["test_error"] is not None
    assert (copy / "runs" / run / "model.safetensors").stat().st_size > 64
