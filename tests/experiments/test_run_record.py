"""measured.json: a finished run's weights digest and measurements, and the checks that name a
damaged committed run instead of reusing it."""

import hashlib
import json

import pytest

from reslearn.experiments.run_record import (
    MEASURED,
    damage,
    ensure_measured,
    read_measured,
)

ITERATIONS = 6


@pytest.fixture
def run_dir(tmp_path):
    """A finished run's files as a committed folder holds them, measured."""
    folder = tmp_path / "plain20-s1"
    folder.mkdir()
    (folder / "summary.json").write_text(json.dumps({"test_error": 0.5}) + "\n")
    lines = [{"step": s, "train_error": 0.9} for s in (2, 4, 6)] + [{"step": 6, "test": 0.5}]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (folder / "model.safetensors").write_bytes(b"weights" * 100)
    calls = []

    def measure(path):
        calls.append(path)
        return {"responses": {"mean_std": 0.25}}

    ensure_measured(folder, measure)
    assert calls == [folder]
    return folder


def test_ensure_measured_records_the_digest_and_measurements_once(run_dir):
    measured = read_measured(run_dir)
    expected = hashlib.sha256((run_dir / "model.safetensors").read_bytes()).hexdigest()
    assert measured == {
        "weights_sha256": expected,
        "measurements": {"responses": {"mean_std": 0.25}},
    }

    def never(path):
        raise AssertionError("measured again")

    assert ensure_measured(run_dir, never) == measured  # kept: not measured again
    (run_dir / "model.safetensors").unlink()
    assert ensure_measured(run_dir, never) == measured  # no weights needed once measured


def test_a_whole_run_is_reusable_with_or_without_its_weights(run_dir):
    assert damage(run_dir, iterations=ITERATIONS, measured_needed=True) is None
    (run_dir / "model.safetensors").unlink()  # a seed above 0, committed without weights
    assert damage(run_dir, iterations=ITERATIONS, measured_needed=True) is None


def _truncate_metrics(run_dir, cut):
    path = run_dir / "metrics.jsonl"
    path.write_bytes(path.read_bytes()[:cut])


@pytest.mark.parametrize(
    ("spoil", "phrase"),
    [
        (lambda d: (d / "summary.json").write_text('{"test_err'), "summary.json is damaged"),
        (lambda d: (d / "metrics.jsonl").unlink(), "no metrics.jsonl"),
        (lambda d: _truncate_metrics(d, -5), "last line is cut"),
        (lambda d: _truncate_metrics(d, 64), "ends at step 4 of 6"),
        (lambda d: (d / "metrics.jsonl").write_text('{"step": 2}\nnot json\n{"step": 6}\n'),
         "damaged at line 2"),
        (lambda d: (d / "model.safetensors").write_bytes(b"other" * 100),
         "model.safetensors does not match the sha256 in measured.json"),
        (lambda d: (d / MEASURED).write_text("{"), "measured.json is damaged"),
    ],
)  # fmt: skip
def test_a_damaged_run_is_named_with_what_is_wrong(run_dir, spoil, phrase):
    spoil(run_dir)
    problem = damage(run_dir, iterations=ITERATIONS, measured_needed=True)
    assert problem is not None and phrase in problem and "\n" not in problem


def test_a_run_without_weights_needs_its_measurements(run_dir):
    (run_dir / "model.safetensors").unlink()
    measured = read_measured(run_dir)
    (run_dir / MEASURED).write_text(json.dumps({"weights_sha256": measured["weights_sha256"]}))
    assert "holds no measurements" in damage(run_dir, iterations=ITERATIONS, measured_needed=True)
    assert damage(run_dir, iterations=ITERATIONS, measured_needed=False) is None  # shortcut B/C
    (run_dir / MEASURED).unlink()
    problem = damage(run_dir, iterations=ITERATIONS, measured_needed=False)
    assert problem == "it has no model.safetensors and no measured.json"
