"""The command line: the model table, JSON output, and one-line errors."""

import json
import subprocess
import sys

import pytest

from reslearn.cli import main, parse_option


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reslearn", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.subprocess
def test_models_table_shows_measured_counts() -> None:
    result = run_cli("models")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "name",
        "family",
        "depth",
        "block",
        "shortcut",
        "layout",
        "params",
        "mult-adds",
        "input",
    ]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert rows["resnet20"][6] == "269,722"
    assert rows["resnet1202"][6] == "19,421,274"
    assert rows["resnet50"][7:9] == ["3.86", "G"]
    assert rows["resnet152"][7:9] == ["11.28", "G"]
    assert rows["plain56"][4] == "none"


def test_models_json(capsys) -> None:
    assert main(["models", "--json", "resnet50", "--set", "stride_in_1x1=false"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["layout"] == "v1.5"
    assert entry["macs"] == 4_089_184_256
    assert entry["parameters"] == 25_557_032


@pytest.mark.slow
def test_models_family_filter(capsys) -> None:
    assert main(["models", "--json", "--family", "cifar"]) == 0
    assert {e["family"] for e in json.loads(capsys.readouterr().out)} == {"cifar"}


@pytest.mark.subprocess
@pytest.mark.parametrize(
    "args,message",
    [
        (["models", "resnet19"], "unknown model 'resnet19'; did you mean"),
        (["models", "resnet20", "--set", "shortcut=D"], "shortcut must be one of"),
        (["models", "resnet18", "--set", "stride_in_1x1=true"], "applies only to bottleneck"),
        (["models", "resnet20", "--set", "depth"], "expected KEY=VALUE"),
        (["models", "resnet50", "--input-size", "8"], "too small"),
        (["models", "--family", "vgg"], "invalid choice"),
        (["train-all-the-things"], "invalid choice"),
    ],
)
def test_errors_are_one_line_without_traceback(args: list, message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


@pytest.mark.subprocess
def test_help_and_version() -> None:
    result = run_cli("models", "--help")
    assert result.returncode == 0 and "stride_in_1x1" in result.stdout
    assert run_cli("--version").stdout.startswith("reslearn ")


def test_parse_option_types() -> None:
    assert parse_option("stride_in_1x1=False") == ("stride_in_1x1", False)
    assert parse_option("num-classes=100") == ("num_classes", 100)
    assert parse_option("shortcut=B") == ("shortcut", "B")


def test_models_stages(capsys) -> None:
    assert main(["models", "resnet34", "--stages"]) == 0
    out = capsys.readouterr().out
    assert "layer4       3    512 x 7 x 7  13,114,368   642.25 M" in out
    assert main(["models", "resnet20", "--stages", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert [s["stage"] for s in entry["stages"]] == ["stem", "layer1", "layer2", "layer3", "head"]


# --- the error boundary: known failures are one line, bugs keep their traceback ---------------


def _raise(error: BaseException):
    def run(args):
        raise error

    return run


def test_known_errors_are_one_line_even_when_the_message_has_several(monkeypatch, capsys) -> None:
    from reslearn.commands import models

    monkeypatch.delenv("RESLEARN_DEBUG", raising=False)
    monkeypatch.setattr(models, "run", _raise(ValueError("'x.json' is damaged:\n  line 2\n")))
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err == "reslearn models: error: 'x.json' is damaged: line 2\n"
    monkeypatch.setattr(models, "run", _raise(FileNotFoundError("weights file 'w' does not exist")))
    assert main(["models"]) == 2
    assert capsys.readouterr().err == "reslearn models: error: weights file 'w' does not exist\n"


@pytest.mark.parametrize("how", ["flag before", "flag after", "environment"])
def test_debug_shows_the_traceback_of_known_errors(monkeypatch, capsys, how) -> None:
    from reslearn.commands import models

    monkeypatch.delenv("RESLEARN_DEBUG", raising=False)
    monkeypatch.setattr(models, "run", _raise(ValueError("bad value 7")))
    argv = {"flag before": ["--debug", "models"], "flag after": ["models", "--debug"]}
    if how == "environment":
        monkeypatch.setenv("RESLEARN_DEBUG", "1")
    assert main(argv.get(how, ["models"])) == 2
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)")
    assert err.endswith("ValueError: bad value 7\nreslearn models: error: bad value 7\n")


def test_a_bug_keeps_its_traceback_and_asks_for_a_report(monkeypatch, capsys) -> None:
    from reslearn.commands import models

    monkeypatch.delenv("RESLEARN_DEBUG", raising=False)
    monkeypatch.setattr(models, "run", _raise(TypeError("unsupported operand")))
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last)")
    assert "TypeError: unsupported operand\n" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("reslearn models: internal error") and "please report it" in last
