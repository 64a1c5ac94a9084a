"""README says what the code does: its Python examples run, and its model table is current."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def fenced_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.mark.parametrize("index", range(len(fenced_blocks("python"))))
def test_python_examples_run(index: int) -> None:
    exec(compile(fenced_blocks("python")[index], f"README.md python block {index}", "exec"), {})


def test_model_table_is_current() -> None:
    marker = "<!-- output of `reslearn models`"
    block = README.split(marker, 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    actual = subprocess.run(
        [sys.executable, "-m", "reslearn", "models"], capture_output=True, text=True, check=True
    ).stdout
    assert block.strip() == actual.strip()


def test_stage_table_is_current() -> None:
    block = README.split("$ reslearn models resnet50 --stages\n", 1)[1].split("```", 1)[0]
    actual = subprocess.run(
        [sys.executable, "-m", "reslearn", "models", "resnet50", "--stages"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert block.strip() == actual.strip()


def test_the_two_commands_are_what_ci_runs() -> None:
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in README and "make run" in README
    assert ci.strip().splitlines()[-1] == "make test"
