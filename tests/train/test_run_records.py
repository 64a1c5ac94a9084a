"""What a run records about itself beyond its metrics: the lr drops marked in curves.png, and
the source revision (and whether its tracked files were changed) in config.json."""

import json
import subprocess
from pathlib import Path

import matplotlib.axes
import pytest

import reslearn
from reslearn.cli import main
from reslearn.train import TrainConfig, train

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


def _cli_train(data, out, *extra: str) -> None:
    """``reslearn train`` through the command line, which draws the run's figures."""
    args = [
        "train",
        "--data",
        str(data),
        "--out",
        str(out),
        "--model",
        "resnet20",
        "--batch-size",
        "16",
        "--log-every",
        "2",
        "--precision",
        "fp32",
        "--no-channels-last",
        "--cache-dir",
        str(out.parent / "cache"),
        "--quiet",
        *extra,
    ]
    assert main(args) == 0  # fmt: skip


def _record_vertical_lines(monkeypatch) -> list[float]:
    drawn: list[float] = []
    real = matplotlib.axes.Axes.axvline

    def recording(self, x=0, *args, **kwargs):
        drawn.append(x)
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "axvline", recording)
    return drawn


def test_curves_mark_the_plateau_drops_where_they_happened(image_folder, tmp_path, monkeypatch):
    # No evaluation can improve on the first by 0.9, so with patience 1 the lr drops after
    # every evaluation but the first: at steps 8 and 12 (evaluations at 4, 8, 12).
    drawn = _record_vertical_lines(monkeypatch)
    run = tmp_path / "run"
    _cli_train(image_folder, run, "--iterations", "12", "--eval-every", "4", "--schedule",
               "plateau", "--plateau-patience", "1", "--plateau-threshold", "0.9")  # fmt: skip
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    events = [r["step"] for r in records if r.get("event") == "lr dropped on plateau"]
    assert events == [8, 12]
    assert drawn == [8, 12]  # curves.png: one vertical line per drop, where it happened
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_mark_the_step_schedules_milestones(image_folder, tmp_path, monkeypatch):
    drawn = _record_vertical_lines(monkeypatch)
    _cli_train(image_folder, tmp_path / "run", "--iterations", "12", "--eval-every", "12",
               "--milestones", "5,9")  # fmt: skip
    assert drawn == [5, 9]


def _git(folder: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


@pytest.mark.subprocess
def test_config_records_the_git_revision_and_whether_the_tree_was_clean(
    image_folder, tmp_path, monkeypatch
):
    # reslearn's source folder, as far as the run can tell, is a package in a repository made
    # here: its revision is known, and so is whether its tracked files were changed
    repository = tmp_path / "checkout"
    package = repository / "src" / "reslearn"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("# reslearn\n")
    _git(repository, "init", "-q")
    _git(repository, "add", ".")
    _git(repository, "commit", "-q", "-m", "first")
    revision = _git(repository, "rev-parse", "HEAD")
    monkeypatch.setattr(reslearn, "__file__", str(package / "__init__.py"))

    def environment(name: str) -> dict:
        config = TrainConfig(data=str(image_folder), model="resnet20", iterations=2,
                             batch_size=16, eval_every=2, precision="fp32",
                             channels_last=False, cache_dir=str(tmp_path / "cache"))  # fmt: skip
        result = train(config, tmp_path / name, quiet=True)
        return json.loads((result.run_dir / "config.json").read_text())["environment"]

    clean = environment("clean")
    assert (clean["git_revision"], clean["git_dirty"]) == (revision, False)
    (package / "notes.txt").write_text("a scratch file is not part of the code that ran\n")
    assert environment("untracked")["git_dirty"] is False
    (package / "__init__.py").write_text("# reslearn, edited\n")
    dirty = environment("dirty")
    assert (dirty["git_revision"], dirty["git_dirty"]) == (revision, True)
    # outside a checkout both are null, and the run still starts
    monkeypatch.setattr(reslearn, "__file__", str(tmp_path / "elsewhere" / "__init__.py"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    outside = environment("outside")
    assert outside["git_revision"] is None and outside["git_dirty"] is None
