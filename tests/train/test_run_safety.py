"""Nothing lost, nothing silent: --overwrite deletes only run folders, one process per run
folder, non-finite weights are never written, a resumed run checks its data and its
checkpoints, a full disk is reported with the way to resume, a resumed log equals the
uninterrupted one."""

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

import reslearn.train.checkpoint as checkpoint_module
from reslearn.cli import main
from reslearn.rundir.lock import LOCK_FILE, FolderInUse, FolderLock, holder_of
from reslearn.rundir.marker import MARKER, read_marker, write_failure
from reslearn.train import TrainConfig, Trainer, TrainingStopped, train
from reslearn.train.checkpoint import list_checkpoints, load_checkpoint
from reslearn.train.fingerprint import data_change

pytestmark = pytest.mark.trains  # runs the trainer (pytest -m "not trains" leaves it out)


def _config(data, tmp_path, **settings):
    base = dict(
        model="resnet20",
        iterations=8,
        batch_size=8,
        log_every=4,
        eval_every=8,
        checkpoint_every=4,
        precision="fp32",
        channels_last=False,
        cache_dir=str(tmp_path / "cache"),
    )
    return TrainConfig(data=str(data), **{**base, **settings})


@pytest.fixture
def small(tmp_path, write_image_folder):
    """3 classes of 8 training and 4 test images, 16 px: a folder a test may change."""
    classes = ["class0", "class1", "class2"]
    return write_image_folder(tmp_path / "small", classes, {"train": 8, "test": 4})


# -- 1. --overwrite ---------------------------------------------------------------------------


def test_overwrite_never_deletes_a_folder_that_merely_has_a_config_json(small, tmp_path):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "config.json").write_text('{"name": "app"}')
    (project / "src" / "main.py").write_text("x")
    with pytest.raises(ValueError, match="only a reslearn run folder.*choose another --out"):
        train(_config(small, tmp_path), project, overwrite=True, quiet=True)
    assert (project / "src" / "main.py").read_text() == "x"
    assert sorted(p.name for p in project.iterdir()) == ["config.json", "src"]  # nothing added


def test_overwrite_replaces_a_marked_run_and_says_what_it_removes(small, tmp_path, capsys):
    run = tmp_path / "run"
    train(_config(small, tmp_path), run, quiet=True)
    first = read_marker(run)
    assert (
        first is not None
        and json.loads((run / "config.json").read_text())["run_id"] == (first["run_id"])
    )
    (run / "notes.txt").write_text("mine, but in the run folder")
    capsys.readouterr()
    train(_config(small, tmp_path), run, overwrite=True, quiet=True)
    said = capsys.readouterr().err
    assert f"--overwrite: removing from {run}:" in said and "notes.txt" in said
    assert "checkpoints/" in said and "model.safetensors" in said
    assert not (run / "notes.txt").exists() and (run / "model.safetensors").exists()
    assert read_marker(run)["run_id"] != first["run_id"]


def test_a_run_without_a_marker_counts_when_its_config_is_reslearns(small, tmp_path):
    run = tmp_path / "run"
    train(_config(small, tmp_path), run, quiet=True)
    (run / MARKER).unlink()  # as left by a reslearn version before markers
    train(_config(small, tmp_path), run, overwrite=True, quiet=True)
    assert read_marker(run) is not None


def test_a_failed_start_leaves_no_folder_behind(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match="not found"):
        train(_config(tmp_path / "missing", tmp_path), out, quiet=True)
    assert not out.exists()


# -- 2. one process per run folder ------------------------------------------------------------


def _cli(*args):
    return subprocess.Popen(
        [sys.executable, "-m", "reslearn", "train", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, process, what):
    deadline = time.time() + 120
    while not condition():
        assert process.poll() is None, f"exited before {what}: {process.communicate()}"
        assert time.time() < deadline, f"no {what} after 120 s"
        time.sleep(0.02)


def _lock_holder(folder):
    try:
        return json.loads((folder / LOCK_FILE).read_text()).get("pid")
    except (OSError, ValueError):
        return None


@pytest.mark.subprocess
def test_a_second_process_in_the_same_run_folder_is_refused(small, tmp_path):
    run = tmp_path / "run"
    args = ["--data", str(small), "--model", "resnet20", "--iterations", "8", "--batch-size",
            "8", "--precision", "fp32", "--no-channels-last", "--cache-dir",
            str(tmp_path / "cache"), "--quiet"]  # fmt: skip
    first = _cli(*args, "--out", str(run))
    _wait_for(lambda: (run / "config.json").is_file(), first, "config.json")
    assert _lock_holder(run) == first.pid
    first.send_signal(signal.SIGSTOP)  # holds the lock for as long as the test needs
    try:
        for other in (args + ["--out", str(run)], args + ["--out", str(run), "--overwrite"],
                      ["--resume", str(run)]):  # fmt: skip
            second = _cli(*other)
            _, err = second.communicate(timeout=120)
            assert second.returncode == 2, err
            assert len(err.strip().splitlines()) == 1, err
            assert "in use by another reslearn process" in err and f"pid {first.pid}" in err
    finally:
        first.send_signal(signal.SIGCONT)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert holder_of(run) is None


@pytest.mark.subprocess
def test_the_lock_goes_with_a_killed_process(small, tmp_path):
    run = tmp_path / "run"
    process = _cli("--data", str(small), "--model", "resnet20", "--iterations", "100000",
                   "--batch-size", "8", "--precision", "fp32", "--no-channels-last",
                   "--cache-dir", str(tmp_path / "cache"), "--quiet",
                   "--out", str(run))  # fmt: skip
    _wait_for(lambda: (run / "config.json").is_file(), process, "config.json")
    assert holder_of(run).startswith(f"pid {process.pid},")
    process.kill()
    process.communicate(timeout=60)
    assert holder_of(run) is None
    with FolderLock(run) as lock:
        assert lock.held


def test_lock_in_process_and_for_experiments(tmp_path):
    from reslearn.experiments import get_experiment
    from reslearn.experiments.base import ExperimentSettings, run_experiment

    with FolderLock(tmp_path / "a"):
        with pytest.raises(FolderInUse, match=f"pid {os.getpid()}"):
            FolderLock(tmp_path / "a")
    FolderLock(tmp_path / "a").release()  # free again

    out = tmp_path / "experiment"
    with FolderLock(out, what="experiment"):
        settings = ExperimentSettings(data=str(tmp_path / "missing"), iterations=8)
        with pytest.raises(FolderInUse, match=f"in use .*pid {os.getpid()}"):
            run_experiment(get_experiment("degradation"), settings, out)
    assert not (out / "experiment.json").exists()


# -- 3. non-finite weights --------------------------------------------------------------------


def test_a_huge_lr_stops_before_writing_non_finite_weights(small, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingStopped, match="weights became non-finite by step 1") as stop:
        train(_config(small, tmp_path, iterations=1, lr=1e300), run, quiet=True)
    assert stop.value.checkpoint is None and stop.value.exit_code == 1
    assert not (run / "model.safetensors").exists() and not list_checkpoints(run / "checkpoints")


def test_non_finite_buffers_keep_the_last_good_checkpoint(small, tmp_path, monkeypatch):
    original = Trainer.train_step

    def poisoned(self, step):  # the loss stays finite: BN uses batch statistics in training
        result = original(self, step)
        if step == 5:
            self.model.bn1.running_var.fill_(float("inf"))
        return result

    monkeypatch.setattr(Trainer, "train_step", poisoned)
    run = tmp_path / "run"
    with pytest.raises(TrainingStopped, match="non-finite by step 8 .*bn1.running_var") as stop:
        train(_config(small, tmp_path), run, quiet=True)
    assert stop.value.checkpoint.endswith("step-0000004.pt")
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-0000004.pt"]
    assert not (run / "model.safetensors").exists()
    state = load_checkpoint(run / "checkpoints" / "step-0000004.pt")
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


# -- 4. the data of a resumed run -------------------------------------------------------------


def test_resume_refuses_changed_data_and_allows_changed_images_when_asked(small, tmp_path):
    run = tmp_path / "run"
    train(_config(small, tmp_path), run, quiet=True)
    fingerprint = json.loads((run / "config.json").read_text())["data"]["fingerprint"]
    assert fingerprint["classes"] == ["class0", "class1", "class2"]
    assert fingerprint["counts"] == {"train": [8, 8, 8], "test": [4, 4, 4]}

    extra = small / "train" / "class1" / "extra.png"
    shutil.copy(small / "train" / "class1" / "000.png", extra)
    with pytest.raises(ValueError, match=r"changed since .*class1 8 -> 9.*--allow-data-change"):
        train(None, resume=run, quiet=True)
    extra.unlink()
    (small / "train" / "class0" / "000.png").write_bytes(
        (small / "train" / "class0" / "001.png").read_bytes()
    )  # the same number of images, one of them another
    with pytest.raises(ValueError, match="same number of images, but other ones"):
        train(None, resume=run, quiet=True)
    train(None, resume=run, quiet=True, allow_data_change=True)
    record = json.loads((run / "config.json").read_text())
    assert record["data_changes"][0]["step"] == 8
    assert record["data"]["fingerprint"] != fingerprint
    train(None, resume=run, quiet=True)  # the new data is now the run's

    for split in ("train", "test"):
        shutil.copytree(small / split / "class2", small / split / "class3")
    with pytest.raises(ValueError, match="classes .* changed .*added class3.*train a new one"):
        train(None, resume=run, quiet=True, allow_data_change=True)


def test_data_change_compares_runs_saved_before_fingerprints():
    saved = {"classes": ["a", "b"], "train_images": 10}
    now = {"classes": ["a", "b"], "counts": {"train": [5, 6]}, "digest": "x", "digest_of": "y"}
    assert data_change(saved, now) is None  # sizes are compared by the run (legacy_sizes_change)
    assert data_change(saved, {**now, "classes": ["b", "a"]})[0] == "classes"


# -- 5. a checkpoint of another run -----------------------------------------------------------


def test_a_checkpoint_of_another_run_is_passed_over(small, tmp_path, write_image_folder):
    run, other = tmp_path / "run", tmp_path / "other"
    train(_config(small, tmp_path, checkpoint_every=8), run, quiet=True)
    four = write_image_folder(tmp_path / "four", ["a", "b", "c", "d"], {"train": 6, "test": 2})
    train(_config(four, tmp_path, checkpoint_every=8), other, quiet=True)
    own = list_checkpoints(run / "checkpoints")[-1]
    foreign = list_checkpoints(other / "checkpoints")[-1]
    intruder = run / "checkpoints" / "step-0000009.pt"

    shutil.copy(foreign, intruder)  # another run's id: not this run's
    with pytest.warns(UserWarning, match="step-0000009.pt is not this run's.*falling back"):
        train(None, resume=run, quiet=True)

    state = load_checkpoint(foreign)  # this run's id, another network: does not fit
    state["run_id"] = load_checkpoint(own)["run_id"]
    torch.save(state, intruder)
    with pytest.warns(UserWarning, match="step-0000009.pt does not fit this run.*size mismatch"):
        result = train(None, resume=run, quiet=True)
    assert result.final["step"] == 8


# -- 9. a full disk ---------------------------------------------------------------------------


class _FullFile(io.RawIOBase):
    """A file on a disk that fills up after its first kilobyte."""

    written = 0

    def writable(self):
        return True

    def write(self, data):
        self.written += len(data)
        if self.written > 1000:
            raise OSError(errno.ENOSPC, "No space left on device")
        return len(data)


@pytest.mark.parametrize("how", ["torch", "oserror"])
def test_a_full_disk_at_a_checkpoint_says_so_and_how_to_resume(
    small, tmp_path, monkeypatch, capsys, how
):
    original, calls = checkpoint_module.atomic_write, []

    def filling_up(path, write, **kwargs):
        calls.append(path)
        if len(calls) < 2:
            return original(path, write, **kwargs)
        if how == "torch":
            write(_FullFile())  # torch.save's own RuntimeError ("unexpected pos ...")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint_module, "atomic_write", filling_up)
    run = tmp_path / "run"
    code = main(["train", *_args(small, tmp_path), "--out", str(run)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"no space left on {run / 'checkpoints'}" in err
    assert "step-0000004.pt" in err and f"resume with:     reslearn train --resume {run}" in err
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step-0000004.pt"]
    assert not (run / "model.safetensors").exists()


def _args(data, tmp_path):
    return ["--data", str(data), "--model", "resnet20", "--iterations", "8", "--batch-size", "8",
            "--log-every", "4", "--checkpoint-every", "4", "--precision", "fp32",
            "--no-channels-last", "--cache-dir", str(tmp_path / "cache"), "--quiet"]  # fmt: skip


def test_write_failure_names_the_folder(tmp_path):
    with pytest.raises(RuntimeError, match="unexpected pos") as raised:
        torch.save({"x": torch.zeros(1000)}, _FullFile())
    assert write_failure(raised.value, tmp_path) == f"no space left on {tmp_path}"
    bare = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    assert write_failure(bare, tmp_path).startswith(f"no space left on {tmp_path}?")
    assert write_failure(RuntimeError("size mismatch"), tmp_path) is None


# -- 15. the logging window across a resume ---------------------------------------------------


def test_the_resumed_log_equals_the_uninterrupted_one(small, tmp_path):
    run = tmp_path / "run"
    config = _config(small, tmp_path, iterations=12, checkpoint_every=6, eval_every=12)
    train(config, run, quiet=True)

    def records():
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [
            (r["step"], r["train_loss"], r["train_error"])
            for r in map(json.loads, lines)
            if "train_loss" in r
        ]

    whole = records()
    assert [step for step, *_ in whole] == [4, 8, 12]
    (run / "checkpoints" / "step-0000012.pt").unlink()  # as if stopped at step 6, mid-window
    train(None, resume=run, quiet=True)
    assert records() == whole


def test_temporary_files_a_crash_left_are_removed_when_the_run_is_opened(small, tmp_path):
    import tempfile

    run = tmp_path / "run"
    train(_config(small, tmp_path, iterations=4), run, quiet=True)
    # as a kill -9 mid-write leaves them: atomic.py's names beside curves.png and a checkpoint
    left = [
        tempfile.mkstemp(prefix=".curves.png.", suffix=".tmp", dir=run)[1],
        tempfile.mkstemp(prefix=".step-4.pt.", suffix=".tmp", dir=run / "checkpoints")[1],
    ]
    kept = [run / "notes.tmp", run / ".curves.png.mine", run / ".hidden.tmp",
            run / "mine.curves.png.abcdefgh.tmp", run / ".x.abcdefgh.tmp.bak"]  # fmt: skip
    for path in kept:
        path.write_text("the user's")
    train(None, resume=run, quiet=True)
    assert [path for path in left if os.path.exists(path)] == []
    assert all(path.read_text() == "the user's" for path in kept)  # never another's file
