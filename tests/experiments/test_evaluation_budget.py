"""A budgeted experiment run evaluates on the test set at most ten times, and never more often
than every 100 steps: at 20 iterations the evaluations (10,000 CIFAR images each) cost many
times the training (issue 18); the paper's own budget keeps its evaluation once per epoch."""

import pytest

from reslearn.experiments import ExperimentSettings, get_experiment
from reslearn.experiments.base import ensure_run
from reslearn.train.metrics import read_metrics


def _evaluated_steps(iterations: int, eval_every: int) -> list[int]:
    """The steps the training loop evaluates at: every ``eval_every`` steps and the last."""
    return sorted({*range(eval_every, iterations + 1, eval_every), iterations})


@pytest.mark.parametrize("iterations", [1, 2, 19, 20, 25, 99, 100, 101, 150, 999, 1001, 6400])
def test_budgeted_runs_evaluate_at_most_ten_times_and_100_steps_apart(iterations):
    settings = ExperimentSettings(data="cifar10", iterations=iterations)
    config = settings.train_config("resnet20", 0)
    steps = _evaluated_steps(iterations, config.eval_every)
    assert len(steps) <= 10 and steps[-1] == iterations
    before_last = [0, *steps[:-1]]
    assert all(b - a >= 100 for a, b in zip(before_last, before_last[1:]))
    if iterations >= 1000:  # long enough for the ten points of a curve
        assert len(steps) == 10


def test_the_papers_budget_and_a_given_interval_are_kept():
    assert ExperimentSettings(data="cifar10").train_config("resnet20", 0).eval_every is None
    given = ExperimentSettings(data="cifar10", iterations=20, eval_every=2)
    assert given.train_config("resnet20", 0).eval_every == 2


def test_a_short_experiment_run_evaluates_once(settings, tmp_path):
    # 25 steps used to mean an evaluation every 2nd step: 13 of them in metrics.jsonl
    (run,) = [r for r in get_experiment("shortcuts").plan(settings(iterations=25))
              if r.labels["shortcut"] == "A"]  # fmt: skip
    finished = ensure_run(run, tmp_path / run.name, quiet=True, label="[1/1]")
    metrics = read_metrics(finished.run_dir / "metrics.jsonl")
    assert [r["step"] for r in metrics if "test_error" in r] == [25]
