"""The command an experiment's report prints parses back, through reslearn's own command line,
to the settings that produced the results."""

import dataclasses
import shlex

import pytest

import reslearn.experiments
from reslearn.cli import main
from reslearn.experiments import ExperimentSettings
from reslearn.experiments.report_page import reproduce_command
from reslearn.experiments.settings import WHERE_NOT_WHAT

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


class _Captured(ValueError):
    """Stops `reslearn reproduce` once it has said what it would run (a one-line error)."""


def _parsed(monkeypatch, argv):
    """(experiment name, settings, out) that `reslearn reproduce ARGV` hands run_experiment."""
    seen = []

    def capture(experiment_, settings_, out, **_):
        seen.append((experiment_.name, settings_, out))
        raise _Captured("captured")

    monkeypatch.setattr(reslearn.experiments, "run_experiment", capture)
    assert main(argv) == 2  # stopped by the capture, after parsing everything
    ((name, parsed, out),) = seen
    return name, parsed, out


#: Every setting away from its default (the where-not-what ones apart), as no experiment would
#: use them together: a field without its flag, or a flag spelled otherwise, fails the round trip.
_EVERY_SETTING = ExperimentSettings(
    data="my data",
    budget="laptop",  # its recipe and iterations, as from_flags fills them in
    recipe="fast",
    iterations=3900,
    seeds=[5],
    depths=[8],
    models=["resnet8"],
    weights={"resnet8": "w.safetensors"},
    max_images=7,
    grid=5,
    subset=30,
    val_split=3,
    batch_size=2,
    eval_every=4,
    precision="fp16",
)


def test_every_setting_is_away_from_its_default_in_the_round_trip_case():
    defaults = ExperimentSettings(data="")
    for f in dataclasses.fields(ExperimentSettings):
        if f.name not in WHERE_NOT_WHAT:
            assert getattr(_EVERY_SETTING, f.name) != getattr(defaults, f.name), f.name


@pytest.mark.parametrize(
    ("experiment", "settings"),
    [
        ("degradation", ExperimentSettings(data="cifar10")),
        (
            "table6",
            ExperimentSettings(
                data="/data/my cifar/cifar-10-batches-py",
                recipe="fast",
                iterations=1200,
                seeds=[0, 3, 7],
                depths=[20, 56],
                val_split=5000,
                batch_size=64,
                eval_every=100,
                precision="fp32",
            ),  # fmt: skip
        ),
        (
            "responses",
            ExperimentSettings(
                data="cifar10",
                models=["plain20", "resnet20"],
                max_images=500,
                weights={"resnet56": "/w/r 56.safetensors", "plain56": "p56.safetensors"},
                precision="bf16",
            ),  # fmt: skip
        ),
        ("shortcuts", _EVERY_SETTING),
    ],
)
def test_the_reproduce_command_parses_back_to_the_same_settings(
    tmp_path, monkeypatch, experiment, settings
):
    root = tmp_path / "my experiments" / experiment
    command = reproduce_command({"experiment": experiment, "settings": settings.as_dict()}, root)
    argv = shlex.split(command)
    assert argv[:3] == ["reslearn", "reproduce", experiment]

    name, parsed, out = _parsed(monkeypatch, argv[1:])
    assert name == experiment and str(out) == str(root)
    assert parsed.as_dict() == settings.as_dict()


def test_where_the_runs_trained_stays_out_of_the_command(tmp_path, monkeypatch):
    """device, workers and cache_dir reach the settings from their flags, but the printed
    command leaves them out: the same results come from another machine's defaults."""
    _, given, _ = _parsed(
        monkeypatch,
        ["reproduce", "table6", "--data", "cifar10", "--device", "cpu", "--workers", "3",
         "--cache-dir", "/my cache", "--out", str(tmp_path / "x")],
    )  # fmt: skip
    assert (given.device, given.workers, given.cache_dir) == ("cpu", 3, "/my cache")
    assert given.seeds == [0, 1, 2]  # no --seeds: table6's own

    command = reproduce_command({"experiment": "table6", "settings": given.as_dict()}, tmp_path)
    argv = shlex.split(command)
    assert not {"--device", "--workers", "--cache-dir"} & set(argv)
    _, parsed, _ = _parsed(monkeypatch, argv[1:])
    where = {name: getattr(ExperimentSettings(data=""), name) for name in WHERE_NOT_WHAT}
    assert parsed == dataclasses.replace(given, **where)


def test_an_older_results_file_without_newer_settings_still_gives_a_command(tmp_path):
    """results.json written before a setting existed: the missing one is left unset."""
    settings = {"data": "cifar10", "recipe": "paper", "seeds": [0], "depths": [20]}
    command = reproduce_command({"experiment": "degradation", "settings": settings}, tmp_path)
    assert shlex.split(command) == [
        "reslearn", "reproduce", "degradation", "--data", "cifar10", "--seeds", "0",
        "--depths", "20", "--out", str(tmp_path),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "flags,message",
    [
        (["--depths", "20", "--seeds", "0", "0"], "--seeds 0 0 gives 0 more than once"),
        (["--seeds", "3", "1", "3", "1", "2"], "--seeds 3 1 3 1 2 gives 3, 1 more than once"),
        (["--depths", "20", "32", "20"], "--depths 20 32 20 gives 20 more than once"),
    ],
)
def test_a_repeated_seed_or_depth_is_refused_before_any_run(tmp_path, monkeypatch, capsys,
                                                            flags, message):  # fmt: skip
    """One run per network and seed: a repeated seed would reuse that run and count it twice
    in the mean and spread (runs: 2, std 0.0)."""
    started = []
    monkeypatch.setattr(reslearn.experiments, "run_experiment", lambda *a, **k: started.append(a))
    out = tmp_path / "table6"
    assert main(["reproduce", "table6", "--data", "cifar10", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "give each value once" in err
    assert started == [] and not out.exists()
    with pytest.raises(ValueError, match="seeds 5 5 gives 5 more than once"):
        ExperimentSettings(data="cifar10", seeds=[5, 5])
    assert ExperimentSettings(data="cifar10", seeds=[0, 1], depths=[20, 32]).seeds == [0, 1]


def test_pretrained_measures_the_shipped_suite_networks_and_trains_the_others(
    monkeypatch, capsys
):
    argv = ["reproduce", "lesion", "--pretrained", "--models", "resnet56", "plain20",
            "resnet110", "--weights", "plain20=my.safetensors"]  # fmt: skip
    _, settings, _ = _parsed(monkeypatch, argv)
    # given weights win; resnet110 is not shipped, so it trains (and the user is told)
    assert settings.weights == {"plain20": "my.safetensors",
                                "resnet56": "reslearn:resnet56-cifar10-laptop"}  # fmt: skip
    assert "ships no resnet110" in capsys.readouterr().err
    _, settings, _ = _parsed(monkeypatch, ["reproduce", "landscape", "--pretrained"])
    measured = ("plain20", "plain56", "resnet20", "resnet56")  # landscape's default models
    assert settings.weights == {m: f"reslearn:{m}-cifar10-laptop" for m in measured}


def test_pretrained_is_refused_by_an_experiment_that_trains_its_own(capsys):
    assert main(["reproduce", "cifar", "--pretrained"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--pretrained" in err and "lesion" in err and "\n" not in err
