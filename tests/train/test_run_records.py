"""What a run records about itself beyond its metrics: the lr drops marked in curves.png."""

import json

import matplotlib.axes

from reslearn.cli import main


def _cli_train(data, out, *extra: str) -> None:
    """``reslearn train`` through the command line, which draws the run's figures."""
    args = ["train", "--data", str(data), "--out", str(out), "--model", "resnet20",
            "--batch-size", "16", "--log-every", "2", "--precision", "fp32",
            "--no-channels-last", "--cache-dir", str(out.parent / "cache"), "--quiet", *extra]
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
