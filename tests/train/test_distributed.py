"""Several processes through torchrun on the CPU (gloo): the same weights as one process with
the same global batch, rank 0 alone writing, and a killed worker restarting the job from its
last checkpoint."""

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

from reslearn.train.checkpoint import list_checkpoints

pytestmark = [
    pytest.mark.trains,
    pytest.mark.skipif(
        not torch.distributed.is_available(), reason="this torch has no torch.distributed"
    ),
]


def _settings(data, tmp_path, *extra):
    return [
        "--data", str(data), "--model", "resnet20", "--batch-size", "16", "--precision", "fp32",
        "--cache-dir", str(tmp_path / "cache"), "--quiet", "--workers", "0", *extra,
    ]  # fmt: skip


def _env():
    # one thread per process: two processes on two cores, and the same kernels in both runs
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _torchrun(args, *, nproc=2, restarts=0, **options):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        f"--nproc_per_node={nproc}", f"--max-restarts={restarts}", "--monitor-interval=0.2",
        "-m", "reslearn", "train", *args,
    ]  # fmt: skip
    return subprocess.Popen(command, env=_env(), text=True, **options)


def _parameters(run: Path) -> dict[str, torch.Tensor]:
    """The trained parameters (BN running statistics are left out: under DDP they are rank
    0's, with accumulation they have seen every micro-batch)."""
    state = load_file(run / "model.safetensors")
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


def _steps(run: Path) -> list[int]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in lines if "train_loss" in r]


def _two_against_one(common: list[str], tmp_path: Path) -> str:
    """Train ``common`` with 2 gloo processes into tmp_path/two and with 1 process and
    --accumulate 2 into tmp_path/one; check that their parameters agree; return the 2-process
    job's output."""
    two = _torchrun([*common, "--out", str(tmp_path / "two")], stdout=subprocess.PIPE)
    out, _ = two.communicate(timeout=300)
    assert two.returncode == 0
    one = subprocess.run(
        [sys.executable, "-m", "reslearn", "train", *common, "--accumulate", "2",
         "--out", str(tmp_path / "one")],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr
    a, b = _parameters(tmp_path / "two"), _parameters(tmp_path / "one")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    return out


@pytest.mark.subprocess
def test_two_processes_match_one_with_the_same_global_batch(image_folder, tmp_path):
    common = _settings(image_folder, tmp_path, "--iterations", "8", "--log-every", "2")
    out = _two_against_one(common, tmp_path)
    assert out.count("test error") == 1  # only rank 0 prints the result
    config = json.loads((tmp_path / "two" / "config.json").read_text())
    assert config["environment"]["processes"] == 2
    assert _steps(tmp_path / "two") == [2, 4, 6, 8]  # one writer: no line twice
    # the logged training loss and error cover both processes' images
    for key in ("train_loss", "train_error"):
        logged = [_logged(tmp_path / run, key) for run in ("two", "one")]
        assert logged[0] == pytest.approx(logged[1], rel=1e-4), key


def _logged(run: Path, key: str) -> list[float]:
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r[key] for r in lines if key in r]


def _worker_pids(parent: int) -> dict[int, int]:
    """{rank: pid} of torchrun's worker processes."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid != parent:
                continue
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        ranks = [e[5:] for e in environ if e.startswith(b"RANK=")]
        if ranks:
            found[int(ranks[0])] = int(stat.parent.name)
    return found


@pytest.mark.subprocess
def test_a_killed_worker_restarts_the_job_from_its_last_checkpoint(image_folder, tmp_path):
    common = _settings(
        image_folder, tmp_path, "--iterations", "240", "--log-every", "20",
        "--eval-every", "80", "--checkpoint-every", "20",
    )  # fmt: skip
    run = tmp_path / "killed"
    job = _torchrun([*common, "--out", str(run)], restarts=1, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 240
    while not (run / "checkpoints" / "step-0000040.pt").exists():
        assert job.poll() is None, job.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    pids = _worker_pids(job.pid)
    assert set(pids) == {0, 1}
    os.kill(pids[1], signal.SIGKILL)
    out, err = job.communicate(timeout=300)
    # torchrun's own W/E log lines left out of the failure message, the workers' kept
    own = [line for line in err.splitlines() if not line.startswith(("W1", "E1"))]
    assert job.returncode == 0, "\n".join(own)[-4000:]
    assert "resuming" in err  # the restarted rank 0 said where it continued from
    summary = json.loads((run / "summary.json").read_text())
    assert summary["resumed"] is True and summary["iterations"] == 240
    steps = _steps(run)
    assert steps == list(range(20, 241, 20))  # the log continues from the checkpoint, no repeats
    assert list_checkpoints(run / "checkpoints")[-1].name == "step-0000240.pt"

    # the same job without the kill ends with the same weights
    whole = tmp_path / "whole"
    clean = _torchrun([*common, "--out", str(whole)], stdout=subprocess.PIPE)
    clean.communicate(timeout=300)
    assert clean.returncode == 0
    a, b = _parameters(run), _parameters(whole)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


@pytest.mark.subprocess
def test_a_streamed_image_folder_splits_the_same_way(photo_folder, tmp_path):
    common = [
        "--data", str(photo_folder), "--model", "resnet18", "--recipe", "imagenet-paper",
        "--crop-size", "64", "--scale-range", "72", "96", "--batch-size", "8",
        "--iterations", "4", "--log-every", "2", "--precision", "fp32", "--channels-last",
        "--workers", "1", "--quiet",
    ]  # fmt: skip
    _two_against_one(common, tmp_path)
    # each process evaluated half of the 12 test images; merged, the count is whole
    evaluation = json.loads((tmp_path / "two" / "evaluation.json").read_text())
    assert evaluation["count"] == 12 and sum(map(sum, evaluation["confusion"])) == 12
    # and they equal one process evaluating the saved weights on the same centre views
    alone = subprocess.run(
        [sys.executable, "-m", "reslearn", "eval", str(tmp_path / "two"), "--views", "center",
         "--json", "--workers", "0"],
        env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr
    centre = json.loads(alone.stdout)["views"]["center"]
    assert centre["confusion"] == evaluation["confusion"]
    assert centre["loss"] == pytest.approx(evaluation["loss"], rel=1e-5)
