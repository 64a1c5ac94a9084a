"""A signal while a finished run's report is drawn (after the training loop gave back SIGINT
and SIGTERM) ends with the loop's stop line, saying the weights and summary are intact and how
to draw the report again; a report that cannot be written is a warning, not a failed run."""

import errno
import os
import signal
import time

import pytest

import reslearn.report.draw_guard as draw_guard
from reslearn.atomic import WriteError
from reslearn.cli import main
from reslearn.report.draw_guard import ReportStopped, draw_run_guarded


def _signal_self(signum):
    def draw(run_dir):
        os.kill(os.getpid(), signum)
        time.sleep(5)  # the handler interrupts this
        raise AssertionError(f"{signal.Signals(signum).name} did not stop the drawing")

    return draw


@pytest.fixture
def guarded_signals():
    """SIGINT and SIGTERM caught by the test while it runs, so that a guard that let one
    through fails the test instead of ending pytest; yields the signals the test received."""
    received = []
    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.signal(s, lambda n, f: received.append(n)) for s in signals}
    yield received
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_while_drawing_is_a_stop_with_its_line(tmp_path, monkeypatch, guarded_signals,
                                                         signum):  # fmt: skip
    monkeypatch.setattr(draw_guard, "draw_run", _signal_self(signum))
    with pytest.raises(ReportStopped) as info:
        draw_run_guarded(tmp_path)
    name = signal.Signals(signum).name
    assert str(info.value).startswith(f"stopped by {name} while drawing the report of {tmp_path}")
    assert info.value.exit_code == 128 + signum and not info.value.resumable
    assert guarded_signals == []  # the guard, not the test's handler, took it
    handler = signal.getsignal(signum)
    assert callable(handler) and handler.__name__ == "<lambda>"  # the test's own, restored


def test_a_report_that_cannot_be_written_is_a_warning(tmp_path, monkeypatch):
    def unwritable(run_dir):
        raise WriteError(errno.EROFS, "read-only file system", str(tmp_path / "report.html"))

    monkeypatch.setattr(draw_guard, "draw_run", unwritable)
    with pytest.warns(UserWarning, match=r"report\.html: read-only file system\); the run's"):
        assert draw_run_guarded(tmp_path) is None


@pytest.mark.trains
def test_sigterm_while_a_finished_runs_report_is_drawn(
    tmp_path,
    monkeypatch,
    capsys,
    write_image_folder,
    guarded_signals,
):
    data = write_image_folder(tmp_path / "data", ["a", "b", "c"], {"train": 4, "test": 2})
    monkeypatch.setattr(draw_guard, "draw_run", _signal_self(signal.SIGTERM))
    run = tmp_path / "run"
    argv = ["train", "--data", str(data), "--iterations", "2", "--batch-size", "4",
            "--precision", "fp32", "--device", "cpu", "--out", str(run), "--quiet"]  # fmt: skip
    assert main(argv) == 128 + signal.SIGTERM
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"reslearn train: stopped by SIGTERM after step 2 of 2, while drawing the report: the "
        f"weights and summary.json in {run} are intact; draw the report again with: "
        f"reslearn report {run}"
    )
    assert (run / "model.safetensors").is_file() and (run / "summary.json").is_file()
    assert not (run / "report.html").exists() and guarded_signals == []
    monkeypatch.undo()
    assert main(["report", str(run)]) == 0
    assert (run / "report.html").is_file() and (run / "confusion.png").is_file()
