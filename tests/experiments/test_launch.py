"""The launchers train an experiment's runs in parallel with the same results as the inline loop,
name a failed job with its log while keeping the others, and resume a killed sweep."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from reslearn.cli import main
from reslearn.experiments import get_experiment, run_experiment
from reslearn.experiments.launch import JobsFailed, LocalLauncher, SlurmLauncher
from reslearn.rundir.lock import FolderLock

pytestmark = pytest.mark.trains

RUNS = ["resnet20-A-s0", "resnet20-B-s0", "resnet20-C-s0"]


@pytest.fixture
def fp32(settings):
    """The tiny settings in fp32: no measured precision choice that could differ by process."""
    return lambda: settings(precision="fp32")


def _numbers(out):
    """What results.json says of each run, the figures a launcher must not change."""
    results = json.loads((out / "results.json").read_text())
    return {
        r["name"]: (r["test_error"], r["final_train_error"], r["parameters"])
        for r in results["runs"]
    }


@pytest.fixture(scope="module")
def inline_numbers(tmp_path_factory, tiny_data):
    """The shortcuts experiment trained here, one thread, one run after the other."""
    from reslearn.experiments import ExperimentSettings

    out = tmp_path_factory.mktemp("inline")
    cache = tmp_path_factory.getbasetemp() / "experiment-cache"
    settings = ExperimentSettings(
        data=str(tiny_data), iterations=4, batch_size=16, cache_dir=str(cache),
        precision="fp32",
    )  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each launched job trains: the same arithmetic, bit for bit
    try:
        run_experiment(get_experiment("shortcuts"), settings, out, quiet=True)
    finally:
        torch.set_num_threads(threads)
    return _numbers(out)


def test_the_local_launcher_gives_the_inline_numbers(fp32, tmp_path, inline_numbers, capsys):
    out = tmp_path / "local"
    launcher = LocalLauncher(jobs=2, threads=1)
    run_experiment(get_experiment("shortcuts"), fp32(), out, quiet=True, launcher=launcher)
    assert sorted(_numbers(out)) == RUNS
    assert _numbers(out) == inline_numbers
    err = capsys.readouterr().err
    assert "training 3 of 3 runs, 2 at a time" in err and err.count(": finished (log: ") == 3
    for name in RUNS:  # each job's own output went to its log, not the terminal
        assert "training (4 iterations)" in (out / "logs" / f"{name}.log").read_text()
    # a second call reuses all three, with no job started
    run_experiment(get_experiment("shortcuts"), fp32(), out, quiet=True, launcher=launcher)
    err = capsys.readouterr().err
    assert err.count("finished earlier, reused") >= 3 and "at a time" not in err


def test_submitits_local_cluster_gives_the_inline_numbers(fp32, tmp_path, inline_numbers):
    pytest.importorskip("submitit")
    out = tmp_path / "slurm"
    launcher = SlurmLauncher(jobs=2, gpus_per_job=0, cpus_per_job=1, cluster="local")
    run_experiment(get_experiment("shortcuts"), fp32(), out, quiet=True, launcher=launcher)
    assert _numbers(out) == inline_numbers


def test_a_failed_job_is_named_with_its_log_and_the_others_are_kept(settings, tmp_path, capsys):
    out = tmp_path / "failing"
    launcher = LocalLauncher(jobs=2, threads=1)
    run_experiment(get_experiment("shortcuts"), settings(), out, quiet=True, launcher=launcher)
    for name in ("resnet20-A-s0", "resnet20-B-s0"):
        shutil.rmtree(out / "runs" / name)
    blocked = FolderLock(out / "runs" / "resnet20-B-s0")  # another process "trains" it
    try:
        with pytest.raises(JobsFailed) as failure:
            run_experiment(
                get_experiment("shortcuts"), settings(), out, quiet=True, launcher=launcher
            )
    finally:
        blocked.release()
    message = str(failure.value)
    assert "1 of 2 jobs failed: resnet20-B-s0" in message
    assert str(out / "logs" / "resnet20-B-s0.log") in message and "\n" not in message
    assert "in use by another reslearn process" in capsys.readouterr().err
    log = (out / "logs" / "resnet20-B-s0.log").read_text()  # why, not only on the terminal
    assert "resnet20-B-s0: FAILED: " in log and "in use by another reslearn process" in log
    assert (out / "runs" / "resnet20-A-s0" / "summary.json").exists()
    assert (out / "runs" / "resnet20-C-s0" / "summary.json").exists()
    # the rerun trains only the failed run
    run_experiment(get_experiment("shortcuts"), settings(), out, quiet=True, launcher=launcher)
    err = capsys.readouterr().err
    assert "training 1 of 3 runs" in err and err.count("finished earlier, reused") >= 2
    assert sorted(_numbers(out)) == RUNS


def _reproduce(tiny_data, out, *extra):
    return [
        sys.executable, "-m", "reslearn", "reproduce", "shortcuts", "--data", str(tiny_data),
        "--batch-size", "16", "--out", str(out), "--quiet", *extra,
    ]  # fmt: skip


@pytest.mark.subprocess
@pytest.mark.slow
def test_a_killed_sweep_resumes_on_the_rerun(tiny_data, tmp_path):
    out = tmp_path / "killed"
    command = _reproduce(tiny_data, out, "--iterations", "400", "--launcher", "local",
                         "--jobs", "2")  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    try:
        while not list(out.glob("runs/*/checkpoints/*.pt")):
            assert job.poll() is None, job.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.05)
    finally:
        os.killpg(job.pid, signal.SIGKILL)  # the experiment and its jobs, with no warning
        job.communicate()
    assert not (out / "results.json").exists()
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    logs = "".join(log.read_text() for log in (out / "logs").glob("*.log"))
    assert "resuming the interrupted run" in logs
    assert sorted(_numbers(out)) == RUNS
    for name in RUNS:
        summary = json.loads((out / "runs" / name / "summary.json").read_text())
        assert summary["iterations"] == 400


@pytest.mark.subprocess
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_experiment_alone_stops_every_job_at_a_checkpoint(
    tiny_data, tmp_path, signum
):
    psutil = pytest.importorskip("psutil")
    out = tmp_path / "stopped"
    command = _reproduce(tiny_data, out, "--iterations", "5000", "--eval-every", "20",
                         "--precision", "fp32", "--launcher", "local", "--jobs", "2")  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(
        command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 240
    try:
        while len({p.parts[-3] for p in out.glob("runs/*/checkpoints/*.pt")}) < 2:
            assert job.poll() is None, job.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the two jobs did not reach a checkpoint"
            time.sleep(0.05)
        processes = psutil.Process(job.pid).children(recursive=True)
        os.kill(job.pid, signum)  # the experiment's process alone, not its group
        try:  # the jobs stop now, not after 5000 steps
            _, err = job.communicate(timeout=120)
        except subprocess.TimeoutExpired as late:
            pytest.fail(f"running 120 s after {signum!r}: {(late.stderr or b'')[-3000:]!r}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
    err = err.decode()
    assert job.returncode == 128 + signum, err[-3000:]
    name = signal.Signals(signum).name
    assert f"stopped by {name}: " in err and "each running job stopped" not in err, err[-3000:]
    assert err.count("stopped at a checkpoint (step ") == 4, err[-3000:]  # per job, then the sum
    assert "resnet20-C-s0 not started" in err
    assert not (out / "results.json").exists()
    for run in ("resnet20-A-s0", "resnet20-B-s0"):
        assert not (out / "runs" / run / "summary.json").exists()
        assert "stopped by SIGTERM after step" in (out / "logs" / f"{run}.log").read_text()
    psutil.wait_procs(processes, timeout=10)
    assert [p.pid for p in processes if p.is_running()] == []  # no process left behind


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--launcher", "local", "--jobs", "0"], "--jobs must be at least 1; got 0"),
        (["--jobs", "2"], "--jobs needs --launcher local or slurm"),
        (["--launcher", "slurm"], "sbatch"),
    ],
)
def test_bad_launcher_flags_are_refused_in_one_line(tiny_data, tmp_path, monkeypatch, capsys,
                                                    flags, expected):  # fmt: skip
    pytest.importorskip("submitit")
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    out = tmp_path / "out"
    code = main(["reproduce", "shortcuts", "--data", str(tiny_data), "--out", str(out), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and expected in err and "\n" not in err
    assert not out.exists()  # refused before the folder was made
