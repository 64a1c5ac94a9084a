"""`reslearn train --tensorboard`: the events read back equal metrics.jsonl, across a resume."""

from pathlib import Path

import pytest

from reslearn.report import draw_run
from reslearn.train import TrainConfig, Trainer, train
from reslearn.train.metrics import read_metrics

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

pytestmark = pytest.mark.trains


def _config(data, tmp_path, **settings):
    base = dict(
        model="resnet20", iterations=24, batch_size=16, log_every=4, eval_every=12,
        precision="fp32", channels_last=True, cache_dir=str(tmp_path / "cache"),
    )  # fmt: skip
    return TrainConfig(data=str(data), **{**base, **settings})


def _events(folder):
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def _scalars(events, tag):
    return [(e.step, e.value) for e in events.Scalars(tag)]


def _expected(run, key):
    return [(r["step"], r[key]) for r in read_metrics(run / "metrics.jsonl") if key in r]


def test_the_events_hold_the_same_scalars_as_metrics_jsonl(image_folder, tmp_path):
    run = tmp_path / "run"
    train(_config(image_folder, tmp_path), run, quiet=True, tensorboard=True, draw=draw_run)
    events = _events(run / "tensorboard")
    for tag, key in (("train/loss", "train_loss"), ("train/error", "train_error"),
                     ("train/lr", "lr"), ("test/error", "test_error"),
                     ("test/loss", "test_loss")):  # fmt: skip
        got, expected = _scalars(events, tag), _expected(run, key)
        assert [s for s, _ in got] == [s for s, _ in expected], tag
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6), tag
    assert {"curves", "confusion"} <= set(events.Tags()["images"])


def test_a_resumed_run_continues_the_stream_without_repeated_steps(
    image_folder, tmp_path, monkeypatch
):
    run, original = tmp_path / "run", Trainer.train_step

    def interrupted(self, step):
        if step == 17:  # after the checkpoint at 12 and the log line at 16
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(_config(image_folder, tmp_path), run, quiet=True, tensorboard=True)
    assert [s for s, _ in _scalars(_events(run / "tensorboard"), "train/loss")] == [4, 8, 12, 16]
    monkeypatch.setattr(Trainer, "train_step", original)
    train(None, resume=run, quiet=True, tensorboard=True)
    got = _scalars(_events(run / "tensorboard"), "train/loss")
    expected = _expected(run, "train_loss")
    assert [s for s, _ in got] == [s for s, _ in expected] == [4, 8, 12, 16, 20, 24]
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)


def test_without_tensorboard_the_flag_fails_before_training(image_folder, tmp_path, monkeypatch):
    import importlib.util

    from reslearn.errors import UserError

    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "tensorboard" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(UserError, match=r"pip install 'reslearn\[tensorboard\]'"):
        train(_config(image_folder, tmp_path), tmp_path / "run", quiet=True, tensorboard=True)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("how", ["a file", "read-only"])
def test_a_tensorboard_folder_that_cannot_be_written_is_refused_before_any_work(
    image_folder, tmp_path, monkeypatch, capsys, how
):
    import errno
    import os
    import tempfile

    from reslearn.cli import main

    board = tmp_path / "board"
    if how == "a file":
        board.write_text("not a folder")
    else:  # creating a file there fails as on a read-only mount
        board.mkdir()
        real = tempfile.mkstemp

        def mkstemp(suffix=None, prefix=None, dir=None, text=False):
            if dir is not None and Path(dir).resolve().is_relative_to(board.resolve()):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(Path(dir) / "x.tmp"))
            return real(suffix, prefix, dir, text)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    run = tmp_path / "run"
    code = main(["train", "--data", str(image_folder), "--out", str(run), "--iterations", "2",
                 "--batch-size", "16", "--tensorboard", str(board), "--quiet"])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and str(board) in err, err
    assert ("is a file" if how == "a file" else "read-only file system") in err
    assert not run.exists()  # --out as it was: the corrected command is not refused
