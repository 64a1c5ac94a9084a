"""`reslearn report` on an experiment that has not finished: every planned run's state as
`reproduce` would find it (finished, training now, interrupted, damaged, to train), the minutes
left from the finished runs of the same network, and nothing trained or written."""

import json
import shutil

import pytest

from reslearn.cli import main
from reslearn.experiments import get_experiment, run_experiment
from reslearn.experiments.common import percent
from reslearn.experiments.progress import (
    DAMAGED,
    FINISHED,
    INTERRUPTED,
    OTHER_SETTINGS,
    TO_TRAIN,
    TRAINING,
    experiment_progress,
)
from reslearn.rundir.lock import FolderLock

pytestmark = pytest.mark.trains  # 8 runs of 3 steps


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_data):
    from reslearn.experiments import ExperimentSettings

    out = tmp_path_factory.mktemp("progress") / "degradation"
    settings = ExperimentSettings(
        data=str(tiny_data), iterations=3, batch_size=16, depths=[20, 32], seeds=[0, 1],
        precision="fp32", cache_dir=str(tmp_path_factory.getbasetemp() / "experiment-cache"),
    )  # fmt: skip
    run_experiment(get_experiment("degradation"), settings, out, quiet=True)
    return out


def _files(folder):
    return sorted((str(p.relative_to(folder)), p.stat().st_mtime_ns) for p in folder.rglob("*"))


def test_every_run_is_shown_as_reproduce_would_find_it(finished, tmp_path, capsys):
    root = tmp_path / "suite"
    shutil.copytree(finished, root)
    (root / "results.json").unlink()  # as if the suite had not finished
    runs = root / "runs"
    shutil.rmtree(runs / "resnet32-s1")  # never started
    (runs / "plain32-s1" / "summary.json").unlink()  # stopped after its last checkpoint
    metrics = runs / "plain20-s1" / "metrics.jsonl"
    metrics.write_text(metrics.read_text()[:-5])  # a torn last line
    (runs / "resnet20-s1" / "summary.json").unlink()
    with FolderLock(runs / "resnet20-s1"):  # being trained by another process
        before = _files(root)
        progress = experiment_progress(root)
        assert main(["report", str(root)]) == 0
        assert _files(root) == before  # nothing trained, nothing written
    states = {r["name"]: r for r in progress["runs"]}
    assert list(states) == [f"{f}{d}-s{s}" for f in ("plain", "resnet") for d in (20, 32)
                            for s in (0, 1)]  # fmt: skip
    assert {n for n, r in states.items() if r["state"] == FINISHED} == {
        "plain20-s0", "plain32-s0", "resnet20-s0", "resnet32-s0"}  # fmt: skip
    assert states["resnet32-s1"]["state"] == TO_TRAIN
    assert states["plain32-s1"]["state"] == INTERRUPTED and states["plain32-s1"]["step"] == 3
    assert states["plain20-s1"]["state"] == DAMAGED
    assert "truncated" in states["plain20-s1"]["why"]
    assert states["resnet20-s1"]["state"] == TRAINING
    assert progress["finished"] == 4 and progress["planned"] == 8
    # what is left: the median minutes of the same network's finished runs, for what remains
    resnet32 = states["resnet32-s0"]["minutes"]
    assert states["resnet32-s1"]["minutes_left"] == pytest.approx(resnet32)
    assert states["plain32-s1"]["minutes_left"] == pytest.approx(0)  # its last step is saved
    trained = sum(states[n]["minutes"] for n in ("plain20-s0", "plain32-s0", "resnet20-s0",
                                                 "resnet32-s0"))  # fmt: skip
    assert progress["minutes_trained"] == pytest.approx(trained)
    shown = capsys.readouterr().out
    assert "4 of 8 runs finished" in shown
    assert "plain20-s1: its metrics.jsonl is truncated" in shown
    assert "resnet20-s1: trained by pid" in shown
    assert "reslearn reproduce degradation --data" in shown and f"--out {root}" in shown
    assert "results.json and report.html are written when every run has finished" in shown
    # the claims so far: over seed 0, the one seed whose runs have all finished
    assert progress["seeds_finished"] == [0]
    runs = {r["name"]: r for r in json.loads((finished / "results.json").read_text())["runs"]}
    degradation = progress["claims_so_far"][0]
    assert degradation["claim"].startswith("plain-32 ends with a higher training error")
    assert degradation["evidence"] == (f"{percent(runs['plain32-s0']['final_train_error'])}% vs "
                                       f"{percent(runs['plain20-s0']['final_train_error'])}%")
    assert "So far, over the seeds whose runs have all finished (0)" in shown


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"experiment": "cif', "not valid JSON"),
        ("[1]", "it has no settings record"),
        ('{"experiment": "cifar", "settings": {}}', "its settings have no data"),
        ('{"experiment": "fig8", "settings": {"data": "x"}}', "unknown experiment 'fig8'"),
    ],
)
def test_a_damaged_experiment_record_is_one_line(tmp_path, capsys, content, message):
    (tmp_path / "experiment.json").write_text(content)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_network_not_finished_once_is_estimated_by_its_multiply_adds(finished, tmp_path,
                                                                      capsys):  # fmt: skip
    import statistics

    from reslearn.models.complexity import profile_model

    root = tmp_path / "suite"
    shutil.copytree(finished, root)
    (root / "results.json").unlink()
    for name in ("resnet32-s0", "resnet32-s1"):
        shutil.rmtree(root / "runs" / name)
    progress = experiment_progress(root)
    states = {r["name"]: r for r in progress["runs"]}
    timed = [r for r in states.values() if r["state"] == FINISHED]
    per_mac = statistics.median(r["minutes"] / profile_model(r["model"]).macs for r in timed)
    expected = per_mac * profile_model("resnet32").macs
    assert states["resnet32-s0"]["estimated_by_size"] is True
    assert states["resnet32-s0"]["minutes_left"] == pytest.approx(expected)
    assert "estimated_by_size" not in states["resnet20-s1"]  # finished: no estimate needed
    assert main(["report", str(root)]) == 0
    assert "scaled by its multiply-adds" in capsys.readouterr().out
    # before any run has finished there is nothing to estimate from
    for run in (root / "runs").iterdir():
        shutil.rmtree(run)
    empty = experiment_progress(root)
    assert empty["finished"] == 0 and empty["without_estimate"] == 8


def test_a_run_trained_with_other_settings_is_named_as_reproduce_would_refuse_it(
    finished, tmp_path, capsys
):
    root = tmp_path / "suite"
    shutil.copytree(finished, root)
    (root / "results.json").unlink()
    config = root / "runs" / "plain20-s0" / "config.json"
    record = json.loads(config.read_text())
    record["settings"]["weight_decay"] = 0.5
    config.write_text(json.dumps(record))
    states = {r["name"]: r for r in experiment_progress(root)["runs"]}
    assert states["plain20-s0"]["state"] == OTHER_SETTINGS
    assert "weight_decay=0.5" in states["plain20-s0"]["why"]
    assert main(["report", str(root)]) == 0
    assert "plain20-s0: " in capsys.readouterr().out
