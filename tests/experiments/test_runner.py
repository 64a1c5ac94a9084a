"""Experiments create their runs, reuse finished ones, resume interrupted ones, refuse runs
trained with other settings, and aggregate what the runs recorded."""

import dataclasses
import json
import shutil
import statistics

import pytest

from reslearn.experiments import get_experiment, run_experiment
from reslearn.experiments.report_page import write_experiment_report
from reslearn.train.metrics import read_metrics

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


@pytest.fixture(scope="module")
def degradation(tmp_path_factory, tiny_data):
    from reslearn.experiments import ExperimentSettings

    out = tmp_path_factory.mktemp("degradation")
    settings = ExperimentSettings(
        data=str(tiny_data),
        iterations=4,
        batch_size=16,
        depths=[32, 20],
        cache_dir=str(tmp_path_factory.getbasetemp() / "experiment-cache"),
    )
    results = run_experiment(
        get_experiment("degradation"), settings, out, quiet=True, draw=write_experiment_report
    )
    return out, settings, results


def test_degradation_trains_every_run_and_aggregates(degradation):
    out, _, results = degradation
    names = [r["name"] for r in results["runs"]]
    assert names == ["plain20-s0", "plain32-s0", "resnet20-s0", "resnet32-s0"]
    for record in results["runs"]:
        run_dir = out / record["run_dir"]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert record["test_error"] == summary["test_error"]
        metrics = read_metrics(run_dir / "metrics.jsonl")
        train_errors = [m["train_error"] for m in metrics if "train_error" in m]
        assert record["final_train_error"] == train_errors[-1]
        assert record["iterations"] == 4 and record["milestones"] == [2, 3]
    assert results["budget"]["iterations"] == 4
    assert not results["budget"]["full_paper_recipe"]
    assert [(s["family"], s["depth"]) for s in results["summary"]] == [
        ("plain", 20), ("plain", 32), ("resnet", 20), ("resnet", 32),
    ]  # fmt: skip
    plain = {s["depth"]: s for s in results["summary"] if s["family"] == "plain"}
    degraded = results["claims"][0]
    assert degraded["holds"] == (plain[32]["final_train_error"] > plain[20]["final_train_error"])
    saved = json.loads((out / "results.json").read_text())
    assert saved["summary"] == results["summary"]
    for name in ("degradation.png", "final-errors.png", "report.html"):
        assert (out / name).stat().st_size > 0


def test_a_second_call_reuses_finished_runs(degradation, capsys):
    out, settings, _ = degradation
    weights = out / "runs" / "plain20-s0" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    run_experiment(
        get_experiment("degradation"), settings, out, quiet=True, draw=write_experiment_report
    )
    assert capsys.readouterr().err.count("finished earlier, reused") == 4
    assert weights.stat().st_mtime_ns == before


def test_an_interrupted_run_is_resumed_and_others_reused(degradation, capsys):
    out, settings, _ = degradation
    interrupted = out / "runs" / "resnet32-s0"
    (interrupted / "summary.json").unlink()  # as if stopped after its last checkpoint
    (interrupted / "model.safetensors").unlink()
    fresh = out / "runs" / "plain32-s0"
    for item in fresh.iterdir():  # as if stopped before its first checkpoint
        if item.name != "config.json":
            shutil.rmtree(item) if item.is_dir() else item.unlink()
    results = run_experiment(
        get_experiment("degradation"), settings, out, quiet=True, draw=write_experiment_report
    )
    err = capsys.readouterr().err
    assert "resnet32-s0: resuming" in err
    assert "plain32-s0: restarting" in err
    assert err.count("reused") == 2
    assert (interrupted / "model.safetensors").is_file()
    assert all(r["test_error"] is not None for r in results["runs"])


def test_a_run_trained_with_other_settings_is_refused(degradation):
    out, settings, _ = degradation
    marker = (out / "experiment.json").read_text()
    other = dataclasses.replace(settings, iterations=6)  # the module's settings stay as they are
    with pytest.raises(ValueError, match=r"plain20-s0 was trained with iterations=4 \(now 6\)"):
        run_experiment(get_experiment("degradation"), other, out, quiet=True)
    assert (out / "experiment.json").read_text() == marker  # nothing was written
    assert settings.iterations == 4


def test_another_experiments_folder_or_a_foreign_folder_is_refused(degradation, settings, tmp_path):
    out, _, _ = degradation
    with pytest.raises(ValueError, match="holds the 'degradation' experiment"):
        run_experiment(get_experiment("shortcuts"), settings(), out, quiet=True)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and is not an experiment folder"):
        run_experiment(get_experiment("shortcuts"), settings(), tmp_path, quiet=True)


def test_table6_mean_and_std_over_seeds(settings, tmp_path):
    results = run_experiment(
        get_experiment("table6"), settings(depths=[20], seeds=[0, 1]), tmp_path, quiet=True,
        draw=write_experiment_report,
    )  # fmt: skip
    (row,) = results["summary"]
    errors = [r["test_error"] for r in results["runs"]]
    assert len(errors) == 2 and row["runs"] == 2
    assert row["test_error_mean"] == pytest.approx(statistics.fmean(errors))
    assert row["test_error_std"] == pytest.approx(statistics.stdev(errors))
    assert row["test_error_best"] == min(errors)
    assert row["paper_test_error"] == 8.75 and row["parameters"] == 269_722 - 64 * 7 - 7
    assert "8.75" in (tmp_path / "report.html").read_text()


def test_shortcut_options_differ_only_in_their_shortcuts(settings, tmp_path):
    results = run_experiment(get_experiment("shortcuts"), settings(), tmp_path, quiet=True)
    params = {s["shortcut"]: s["parameters"] for s in results["summary"]}
    assert params["A"] == 269_722 - 64 * 7 - 7  # 3 classes instead of 10
    assert params["A"] < params["B"] < params["C"]
    assert [r["model_options"] for r in results["runs"]] == [
        {"shortcut": "A"}, {"shortcut": "B"}, {"shortcut": "C"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    "name,overrides,message",
    [
        ("degradation", {"depths": [20]}, "at least two --depths"),
        ("degradation", {"depths": [20, 21]}, "no CIFAR plain network of depth 21"),
        ("responses", {"models": ["resnet21"]}, "unknown model 'resnet21'"),
        ("responses", {"weights": {"resnet20": "/no/such.safetensors"}}, "no such file"),
    ],
)
def test_bad_settings_fail_before_any_training(settings, tmp_path, name, overrides, message):
    with pytest.raises(ValueError, match=message):
        run_experiment(get_experiment(name), settings(**overrides), tmp_path / "x", quiet=True)
    assert not (tmp_path / "x").exists()


def test_unknown_experiment_lists_the_known():
    with pytest.raises(
        ValueError, match="experiments: cifar, degradation, table6, responses, shortcuts, antialias"
    ):
        get_experiment("fig8")


def test_antialias_compares_shift_consistency_with_and_without_blur(settings, tmp_path):
    results = run_experiment(
        get_experiment("antialias"), settings(max_images=12), tmp_path, quiet=True,
        draw=write_experiment_report,
    )  # fmt: skip
    assert [r["name"] for r in results["runs"]] == ["resnet20-s0", "resnet20-antialias-s0"]
    assert [r["model_options"] for r in results["runs"]] == [{}, {"antialias": True}]
    assert [p["antialias"] for p in results["probes"]] == [False, True]
    assert all(p["images"] == 12 for p in results["probes"])
    assert len(results["claims"]) == 2  # circular and zero shifts
    assert (tmp_path / "shift-accuracy.png").stat().st_size > 0


def test_pooling_compares_three_heads_on_one_body(settings, tmp_path):
    results = run_experiment(
        get_experiment("pooling"), settings(max_images=12), tmp_path, quiet=True,
        draw=write_experiment_report,
    )  # fmt: skip
    assert [r["name"] for r in results["runs"]] == [
        "resnet20-avg-s0", "resnet20-max-s0", "resnet20-flatten-s0",
    ]  # fmt: skip
    heads = {p["pool"]: p for p in results["probes"]}
    # the flattened 64 x m x m last map feeds the classifier (3 classes), m = image side / 4
    saved = json.loads((tmp_path / "runs" / "resnet20-flatten-s0" / "config.json").read_text())
    side = saved["data"]["image_size"][0]
    assert saved["resolved"]["model_options"] == {"pool": "flatten", "map_size": side // 4}
    extra = 3 * 64 * ((side // 4) ** 2 - 1)
    assert heads["flatten"]["parameters"] - heads["avg"]["parameters"] == extra
    assert heads["avg"]["parameters"] == heads["max"]["parameters"]
    assert [heads[h]["cam"] for h in ("avg", "max", "flatten")] == [True, False, False]
    assert len(results["claims"]) == 3 and all(p["images"] == 12 for p in heads.values())
    page = (tmp_path / "report.html").read_text()
    assert "no (needs GAP; Grad-CAM works)" in page and "global max pooling" in page
    assert "Test accuracy against shift size" in page and "data:image/png" in page
    for figure in ("shift-accuracy.png", "curves.png"):
        assert (tmp_path / figure).stat().st_size > 0
