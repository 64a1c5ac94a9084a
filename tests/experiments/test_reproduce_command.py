"""The command an experiment's report prints parses back, through reslearn's own command line,
to the settings that produced the results."""

import shlex

import pytest

import reslearn.commands.reproduce as reproduce
from reslearn.cli import main
from reslearn.experiments import ExperimentSettings
from reslearn.experiments.report import reproduce_command


class _Captured(ValueError):
    """Stops `reslearn reproduce` once it has said what it would run (a one-line error)."""


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
    ],
)
def test_the_reproduce_command_parses_back_to_the_same_settings(
    tmp_path, monkeypatch, experiment, settings
):
    root = tmp_path / "my experiments" / experiment
    command = reproduce_command({"experiment": experiment, "settings": settings.as_dict()}, root)
    argv = shlex.split(command)
    assert argv[:3] == ["reslearn", "reproduce", experiment]

    seen = []

    def capture(experiment_, settings_, out, **_):
        seen.append((experiment_.name, settings_, out))
        raise _Captured("captured")

    monkeypatch.setattr(reproduce, "run_experiment", capture)
    assert main(argv[1:]) == 2  # stopped by the capture, after parsing everything
    ((name, parsed, out),) = seen
    assert name == experiment and str(out) == str(root)
    assert parsed.as_dict() == settings.as_dict()
