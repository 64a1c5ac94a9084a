"""Training runs end to end on tiny data: what a run leaves behind, stops, resumes, failures."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from reslearn.data.device_data import DeviceData
from reslearn.data.normalize import Normalizer
from reslearn.models import create_model
from reslearn.precision.setting import FP32_CHANNELS_LAST
from reslearn.report import draw_run
from reslearn.train import TrainConfig, Trainer, TrainingStopped, train
from reslearn.train.checkpoint import list_checkpoints
from reslearn.weights import load_weights

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


def _config(data, tmp_path, **settings):
    base = dict(
        model="resnet20",
        iterations=24,
        batch_size=16,
        log_every=4,
        eval_every=12,
        cache_dir=str(tmp_path / "cache"),
    )
    return TrainConfig(data=str(data), **{**base, **settings})


def config_git(run):
    """The recorded source revision: a commit when reslearn runs from a checkout."""
    environment = json.loads((run / "config.json").read_text())["environment"]
    assert "git_revision" in environment and "git_dirty" in environment
    if environment["git_revision"] is None:  # installed from a wheel: nothing to record
        return environment["git_dirty"] is None
    return len(environment["git_revision"]) == 40 and isinstance(environment["git_dirty"], bool)


def test_a_run_leaves_everything_behind(image_folder, tmp_path):
    drawn = []
    result = train(
        _config(image_folder, tmp_path, val_split=16), tmp_path / "run", quiet=True,
        draw=lambda folder: drawn.append(draw_run(folder)),
    )  # fmt: skip
    run = result.run_dir
    assert drawn == [run / "report.html"]
    for name in (
        "config.json",
        "metrics.jsonl",
        "model.safetensors",
        "curves.png",
        "confusion.png",
        "evaluation.json",
        "summary.json",
        "split.json",
        "report.html",
    ):
        assert (run / name).is_file(), name
    assert config_git(run)
    config = json.loads((run / "config.json").read_text())
    assert config["resolved"]["iterations"] == 24
    assert config["environment"]["torch"] == torch.__version__
    assert config["data"]["train_images"] == 96 - 16
    assert len(json.loads((run / "split.json").read_text())["val_indices"]) == 16
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "train_loss" in r] == [4, 8, 12, 16, 20, 24]
    evals = [r for r in records if "test_error" in r]
    assert [r["step"] for r in evals] == [12, 24] and all("val_error" in r for r in evals)
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == [
        "step-0000012.pt",
        "step-0000024.pt",
    ]
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trained = load_weights(run / "model.safetensors")
    assert trained.classes == ["class0", "class1", "class2"]
    assert result.final["test_error"] == evals[-1]["test_error"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test_error"] == result.final["test_error"] and not summary["resumed"]


def test_training_learns_the_tiny_task(image_folder, tmp_path):
    config = _config(image_folder, tmp_path, recipe="fast", iterations=60, eval_every=60)
    result = train(config, tmp_path / "run", quiet=True)
    assert result.final["test_error"] < 0.34  # chance is 0.67: the colour decides the class


def test_existing_output_folder_is_refused(image_folder, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("finished work")
    with pytest.raises(ValueError, match="--resume .* or --overwrite"):
        train(_config(image_folder, tmp_path), out, quiet=True)
    assert (out / "keep.txt").exists()


def test_overwrite_replaces_a_run_but_never_another_folder(image_folder, tmp_path):
    out = tmp_path / "run"
    train(_config(image_folder, tmp_path), out, quiet=True)
    (out / "old.txt").write_text("from the first run")
    train(_config(image_folder, tmp_path), out, overwrite=True, quiet=True)
    assert not (out / "old.txt").exists() and (out / "model.safetensors").exists()
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_text("precious")
    with pytest.raises(ValueError, match="only a reslearn run folder"):
        train(_config(image_folder, tmp_path), other, overwrite=True, quiet=True)
    assert (other / "holiday.jpg").exists()


def test_non_finite_loss_stops_without_writing_bad_weights(image_folder, tmp_path, monkeypatch):
    original = Trainer.train_step

    def poisoned(self, step):
        if step == 17:
            for p in self.model.parameters():
                p.data.fill_(float("nan"))
        return original(self, step)

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingStopped, match="non-finite at step 18") as stop:
        train(_config(image_folder, tmp_path), run, quiet=True)
    assert stop.value.checkpoint.endswith("step-0000012.pt")
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-0000012.pt"]
    assert not (run / "model.safetensors").exists()


def test_low_lr_warmup_ends_when_training_error_is_below_80_percent(tmp_path):
    config = _config("x", tmp_path, iterations=1000, low_lr_warmup=True, precision="fp32")
    config = config.resolve(96, setting=FP32_CHANNELS_LAST)
    images = torch.randint(0, 256, (96, 3, 16, 16), dtype=torch.uint8)
    data = DeviceData(images, torch.zeros(96), Normalizer.fit(images))
    trainer = Trainer(config, create_model("resnet20", num_classes=10), data)
    assert trainer.lr_at(0) == pytest.approx(0.01)
    for step in range(20):
        trainer.schedule.observe_training_error(step, 0.9)
    assert trainer.schedule.warmup_active
    # the window holds the last 20 errors: after k errors of 0.5 its mean is
    # (0.9 (20 - k) + 0.5 k) / 20 = 0.9 - 0.02 k, first below 0.8 at k = 6, i.e. after step 25
    step = 20
    while trainer.schedule.warmup_active:  # as train_step does: only while the warm-up lasts
        assert step < 40, "the warm-up did not end"
        assert trainer.lr_at(step) == pytest.approx(0.01)
        trainer.schedule.observe_training_error(step, 0.5)
        step += 1
    assert trainer.schedule.warmup_ended_at == 26 and step == 26
    assert trainer.lr_at(26) == pytest.approx(0.1)


def _cli(*args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    return subprocess.Popen(
        [sys.executable, "-m", "reslearn", "train", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.subprocess
def test_resume_after_sigterm_is_bit_exact(image_folder, tmp_path):
    common = [
        "--data",
        str(image_folder),
        "--model",
        "resnet20",
        "--iterations",
        "150",
        "--batch-size",
        "8",
        "--log-every",
        "1",
        "--eval-every",
        "1000",
        "--checkpoint-every",
        "1000",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--quiet",
        "--precision",  # both runs the same: auto may choose differently on a busy machine
        "fp32",
    ]
    reference = _cli(*common, "--out", str(tmp_path / "whole"))
    out, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err

    stopped = _cli(*common, "--out", str(tmp_path / "cut"))
    metrics = tmp_path / "cut" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.exists() and metrics.read_text().count("\n") >= 5:
            break
        time.sleep(0.02)
    stopped.send_signal(signal.SIGTERM)
    out, err = stopped.communicate(timeout=120)
    assert stopped.returncode == 128 + signal.SIGTERM, err
    assert "resume with:" in err and "--resume" in err
    cut_at = int(err.split("after step ")[1].split()[0])
    assert 5 <= cut_at < 150

    resumed = _cli("--resume", str(tmp_path / "cut"), "--quiet")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    cut = load_file(tmp_path / "cut" / "model.safetensors")
    assert whole.keys() == cut.keys()
    for key in whole:
        assert torch.equal(whole[key], cut[key]), key

    # the log of the resumed run equals the uninterrupted one, line for line (but the speeds)
    def steps(path):
        lines = [json.loads(x) for x in Path(path).read_text().splitlines()]
        return [(r["step"], r.get("train_loss"), r.get("test_error")) for r in lines]

    assert steps(metrics) == steps(tmp_path / "whole" / "metrics.jsonl")
    summaries = [json.loads((tmp_path / r / "summary.json").read_text()) for r in ("whole", "cut")]
    assert [s["resumed"] for s in summaries] == [False, True]
    assert summaries[0]["test_error"] == summaries[1]["test_error"]


@pytest.mark.subprocess
def test_resume_refuses_new_settings(image_folder, tmp_path):
    process = _cli("--resume", str(tmp_path), "--lr", "0.5")
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and "drop --lr" in err and "Traceback" not in err


@pytest.mark.subprocess
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "-0.1"], "--lr must be a positive number"),
        (["--batch-size", "0"], "--batch-size must be a positive number"),
        (["--iterations", "100", "--milestones", "50,200"], "milestone 200 is outside"),
        (["--model", "resnet21"], "resnet21"),
        (["--set", "num_classes=5"], "model option num_classes comes from the data (the number"),
        (["--set", "in_channels=1"], "model option in_channels comes from the data (the data's"),
    ],
)
def test_bad_settings_fail_before_any_work(args, message, tmp_path):
    process = _cli("--data", str(tmp_path / "missing"), *args)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
