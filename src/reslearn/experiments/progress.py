"""Where an unfinished experiment stands: which planned runs have finished (their test errors,
minutes and machines), which one is training or was interrupted, which are still to train or
will be trained again, and about how many minutes are left. ``reslearn report`` shows this for
an experiment folder without results.json (a suite trained in slices across sessions); nothing
is trained or written."""

from __future__ import annotations

import dataclasses
import functools
import statistics
from pathlib import Path
from typing import Any

from reslearn.errors import UserError
from reslearn.experiments import get_experiment
from reslearn.experiments.base import (
    EXPERIMENT_FILE,
    FinishedRun,
    PlannedRun,
    check_same_settings,
)
from reslearn.experiments.common import machine_label, percent, yes_no
from reslearn.experiments.report_page import reproduce_command
from reslearn.experiments.run_record import damage
from reslearn.experiments.settings import ExperimentSettings
from reslearn.jsonfile import read_json_record
from reslearn.report.tables import format_table
from reslearn.rundir import (
    METRICS,
    checkpoint_step,
    is_finished,
    is_run,
    latest_checkpoint,
    read_config,
    read_summary,
)
from reslearn.rundir.lock import holder_of

FINISHED, TRAINING, INTERRUPTED, DAMAGED, TO_TRAIN, OTHER_SETTINGS = (
    "finished", "training now", "interrupted", "to train again", "to train",
    "other settings",
)  # fmt: skip


def experiment_progress(root: str | Path) -> dict[str, Any]:
    """The state of every planned run of the experiment in ``root`` (its experiment.json),
    with the minutes trained and an estimate of the minutes left."""
    root = Path(root)
    path, fix = root / EXPERIMENT_FILE, "run its 'reslearn reproduce' command again"
    record = read_json_record(path, ("settings",), fix=fix)
    experiment = get_experiment(str(record.get("experiment")))
    known = {f.name for f in dataclasses.fields(ExperimentSettings)}
    try:
        settings = ExperimentSettings(**{k: v for k, v in record["settings"].items()
                                         if k in known})  # fmt: skip
    except TypeError:  # a required setting missing
        raise UserError(f"'{path}' is damaged: its settings have no data; {fix}") from None
    planned = experiment.plan(settings)
    runs = [_state(run, root / "runs" / run.name) for run in planned]
    done = [r for r in runs if r["state"] == FINISHED]
    left = [r for r in runs if r["state"] != FINISHED]
    for run in left:
        run["minutes_left"] = _minutes_left(run, done)
    estimates = [r["minutes_left"] for r in left if r["minutes_left"] is not None]
    return {
        "experiment": experiment.name,
        "title": experiment.title,
        "root": str(root),
        "settings": settings.as_dict(),
        "runs": runs,
        "finished": len(done),
        "planned": len(runs),
        "minutes_trained": sum(r["minutes"] or 0 for r in done),
        "minutes_left": sum(estimates),
        "without_estimate": len(left) - len(estimates),
        "held_by": holder_of(root),
        **_so_far(experiment, settings, planned, runs, root),
    }


def _so_far(experiment, settings, planned, runs, root: Path) -> dict[str, Any]:
    """The experiment's claims over the seeds whose runs have all finished (for experiments
    whose analysis only reads the runs' files): {} when none has, or when the analysis would
    measure networks."""
    if not experiment.analyses_finished_runs:
        return {}
    finished = {r["name"] for r in runs if r["state"] == FINISHED}
    seeds = [seed for seed in settings.seeds
             if all(p.name in finished for p in planned if p.labels.get("seed") == seed)]
    if not seeds or len(seeds) == len(settings.seeds):
        return {}
    subset = dataclasses.replace(settings, seeds=seeds)
    done = [FinishedRun(p, root / "runs" / p.name, reused=True) for p in experiment.plan(subset)]
    records = [run.record(root) for run in done]
    claims = experiment.analyse(subset, done, records).get("claims") or []
    return {"seeds_finished": seeds, "claims_so_far": claims}


def _state(run: PlannedRun, run_dir: Path) -> dict[str, Any]:
    """One planned run's state on disk, as ``reproduce`` would find it."""
    iterations = run.config.iterations
    state = {"name": run.name, "model": run.config.model, "options": run.config.model_options,
             "iterations": iterations, "state": TO_TRAIN, "why": None, "step": 0,
             "test_error": None, "minutes": None, "machine": None}  # fmt: skip
    if not is_run(run_dir):
        return state
    config = read_config(run_dir, needs=("resolved", "environment"))
    iterations = config["resolved"]["iterations"]
    state.update(iterations=iterations, machine=machine_label(config["environment"]))
    try:
        check_same_settings(run, run_dir)
    except ValueError as error:  # reproduce refuses the folder until it is moved or deleted
        state.update(state=OTHER_SETTINGS, why=str(error))
        return state
    if is_finished(run_dir):
        problem = damage(run_dir, iterations=iterations, measured_needed=run.measure is not None)
        if problem is None:
            summary = read_summary(run_dir) or {}
            seconds = summary.get("train_seconds")
            state.update(state=FINISHED, step=iterations, test_error=summary.get("test_error"),
                         minutes=seconds / 60 if seconds else None)  # fmt: skip
        else:
            state.update(state=DAMAGED, why=problem)
        return state
    holder = holder_of(run_dir)
    if holder is not None:
        state.update(state=TRAINING, why=f"trained by {holder}", step=_last_step(run_dir))
        return state
    checkpoint = latest_checkpoint(run_dir)
    step = checkpoint_step(checkpoint) if checkpoint else 0
    state.update(state=INTERRUPTED if step else TO_TRAIN, step=step or 0,
                 why=f"resumes from step {step:,}" if step else "no checkpoint: starts again")
    return state  # fmt: skip


def _last_step(run_dir: Path) -> int:
    """The last step a training run logged (0 before its first log line)."""
    from reslearn.train.metrics import read_metrics

    path = run_dir / METRICS
    if not path.is_file():
        return 0
    return max((r["step"] for r in read_metrics(path) if isinstance(r.get("step"), int)),
               default=0)  # fmt: skip


def _minutes_left(run: dict[str, Any], done: list[dict[str, Any]]) -> float | None:
    """Minutes for the part of this run still to train: the median of the finished runs of
    the same network (other seeds), else the finished runs' median minutes per multiply-add
    scaled to this network; None before any run has finished."""
    total = run["iterations"]  # None: the recipe's own length, before the run resolved it
    remaining = 1 - min(run["step"], total) / total if total else 1.0
    timed = [r for r in done if r["minutes"]]
    same = [r["minutes"] for r in timed
            if r["model"] == run["model"] and r["options"] == run["options"]]  # fmt: skip
    if same:
        return statistics.median(same) * remaining
    if not timed:
        return None
    per_mac = statistics.median(r["minutes"] / _macs(r["model"], r["options"]) for r in timed)
    run["estimated_by_size"] = True
    return per_mac * _macs(run["model"], run["options"]) * remaining


@functools.cache
def _macs_cached(model: str, options: tuple) -> int:
    from reslearn.models.complexity import profile_model

    return profile_model(model, **dict(options)).macs


def _macs(model: str, options: dict[str, Any]) -> int:
    """A network's multiply-adds per image (built on the meta device: no compute)."""
    return _macs_cached(model, tuple(sorted(options.items())))


def _minutes_shown(run: dict[str, Any]) -> str:
    """A run's minutes left, with "~" where they are scaled from other networks' runs."""
    if run.get("minutes_left") is None:
        return "-"
    return ("~" if run.get("estimated_by_size") else "") + f"{run['minutes_left']:.0f}"


def format_progress(progress: dict[str, Any]) -> str:
    """The progress as the terminal shows it: one row per run, then what is left and the
    command that goes on."""
    rows = []
    for r in progress["runs"]:
        state = r["state"]
        if state in (TRAINING, INTERRUPTED) and r["step"]:
            state += f" (step {r['step']:,} of {r['iterations']:,})"
        rows.append((
            r["name"], state, percent(r["test_error"]),
            f"{r['minutes']:.0f}" if r["minutes"] else "-",
            _minutes_shown(r),
            r["machine"] or "-",
        ))  # fmt: skip
    lines = [
        f"{progress['title']}: {progress['finished']} of {progress['planned']} runs finished",
        "",
        format_table(("run", "state", "test error", "minutes", "minutes left", "trained on"),
                     rows),  # fmt: skip
        "",
    ]
    for r in progress["runs"]:
        if r["why"] and r["state"] in (DAMAGED, INTERRUPTED, TRAINING, OTHER_SETTINGS):
            lines.append(f"{r['name']}: {r['why']}")
    if progress.get("claims_so_far"):
        seeds = " ".join(map(str, progress["seeds_finished"]))
        lines += ["", f"So far, over the seeds whose runs have all finished ({seeds}); not the "
                      "result, which comes from every seed:",  # fmt: skip
                  format_table(("claim", "so far", "numbers"),
                               [(c["claim"], c.get("verdict") or yes_no(c["holds"]),
                                 c["evidence"]) for c in progress["claims_so_far"]]),
                  ""]  # fmt: skip
    left = progress["planned"] - progress["finished"]
    if left:
        estimate = f"about {progress['minutes_left']:.0f} minutes of training left"
        if any(r.get("estimated_by_size") for r in progress["runs"]):
            estimate += (" (~: a network not finished once yet, scaled by its multiply-adds "
                         "from the runs that have)")  # fmt: skip
        if progress["without_estimate"]:
            estimate += (f", and {progress['without_estimate']} runs without an estimate "
                         "until one run has finished")  # fmt: skip
        lines.append(f"{progress['minutes_trained']:.0f} minutes trained; {estimate}.")
        if progress["held_by"]:
            lines.append(f"The experiment is running now ({progress['held_by']}).")
        else:
            lines.append("Go on with the same command (finished runs are reused, an "
                         "interrupted one resumes):")  # fmt: skip
            lines.append("  " + reproduce_command(progress, Path(progress["root"])))
        lines.append("results.json and report.html are written when every run has finished.")
    return "\n".join(lines)
