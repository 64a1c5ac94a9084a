"""The report follows a run as it trains: redrawn at evaluations, "in progress" until done."""

import pytest

from reslearn.report import draw_run
from reslearn.train import TrainConfig, train
from reslearn.train.live_report import LiveRedraw, tee

pytestmark = pytest.mark.trains


def test_the_page_says_in_progress_at_each_evaluation_then_the_result(image_folder, tmp_path):
    pages = []

    def redraw(run_dir):
        draw_run(run_dir)
        pages.append((run_dir / "report.html").read_text())

    config = TrainConfig(
        data=str(image_folder), model="resnet20", iterations=24, batch_size=16, log_every=4,
        eval_every=8, precision="fp32", channels_last=True, cache_dir=str(tmp_path / "c"),
    )  # fmt: skip
    run = tmp_path / "run"
    train(config, run, quiet=True, draw=draw_run, redraw=redraw, redraw_every_s=0)
    # evaluations at 8 and 16 redraw; the one at 24 is the finished run's own drawing
    assert len(pages) == 2
    assert "In progress: step 8 of 24" in pages[0] and "In progress: step 16 of 24" in pages[1]
    final = (run / "report.html").read_text()
    assert "In progress" not in final and "Unfinished" not in final


def test_redraws_are_rate_limited_and_never_fail_the_run(tmp_path):
    calls = []

    def draw(run_dir):
        calls.append(run_dir)
        raise OSError("disk full")  # swallowed: a live figure is never a failure

    live = LiveRedraw(draw, tmp_path, total=100, every_s=3600)
    log = tee(None, live)
    log({"step": 10, "test_error": 0.5})
    log({"step": 20, "test_error": 0.4})  # within the hour: skipped
    log({"step": 30, "train_error": 0.4})  # not an evaluation
    log({"step": 100, "test_error": 0.3})  # the last step: the run draws it
    assert calls == [tmp_path]
