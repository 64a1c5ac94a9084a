"""Running an experiment: a planned set of training runs, each trained once into
``OUT/runs/<name>`` and reused (or resumed) when the experiment is run again, then analysed
into ``results.json`` and a report page.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from reslearn.atomic import atomic_write
from reslearn.choices import BUDGETS
from reslearn.experiments.run_record import Measure, damage, ensure_measured
from reslearn.experiments.settings import WHERE_NOT_WHAT, ExperimentSettings
from reslearn.jsonfile import read_json
from reslearn.models import create_model
from reslearn.report import draw_run
from reslearn.report.draw_guard import draw_run_guarded
from reslearn.rundir import (
    METRICS,
    is_finished,
    is_run,
    latest_checkpoint,
    read_config,
    read_summary,
    write_json,
)
from reslearn.rundir.lock import LOCK_FILE, FolderLock
from reslearn.train.config import TrainConfig
from reslearn.train.metrics import read_metrics
from reslearn.train.run import train

EXPERIMENT_FILE, RESULTS_FILE, REPORT_FILE = "experiment.json", "results.json", "report.html"


class Launcher(Protocol):
    """Trains an experiment's runs elsewhere than in this process (``experiments.launch``)."""

    def ensure_all(self, planned: list[PlannedRun], root: Path) -> list[FinishedRun]:
        """Reuse, resume or train each run into ``root/runs``; returns them all, finished."""
        ...


@dataclass
class PlannedRun:
    """One training run of an experiment: its folder name, settings and what it stands for."""

    name: str
    config: TrainConfig
    labels: dict[str, Any]  # e.g. {"family": "plain", "depth": 20, "seed": 0}
    #: what the analysis measures of the trained network, taken when the run finishes and kept
    #: in its measured.json (``run_record``), so that the analysis needs no weights
    measure: Measure | None = None


@dataclass
class FinishedRun:
    """A trained run on disk."""

    planned: PlannedRun
    run_dir: Path
    reused: bool

    def summary(self) -> dict[str, Any]:
        """The run's summary.json."""
        summary = read_summary(self.run_dir)
        if summary is None:
            raise FileNotFoundError(f"{self.run_dir} has not finished (no summary.json)")
        return summary

    def record(self, root: Path) -> dict[str, Any]:
        """Everything results.json keeps about this run."""
        saved = read_config(self.run_dir, needs=("data", "resolved", "environment"))
        summary = self.summary()
        metrics = read_metrics(self.run_dir / METRICS)
        train_errors = [r["train_error"] for r in metrics if "train_error" in r]
        config = self.planned.config
        model = create_model(
            config.model,
            num_classes=len(saved["data"]["classes"]),
            in_channels=saved["data"]["channels"],
            **saved["resolved"]["model_options"],  # as built (a run may add some, e.g. map_size)
        )
        resolved = saved["resolved"]
        return {
            "name": self.planned.name,
            **self.planned.labels,
            "model": config.model,
            "model_options": config.model_options,
            "parameters": sum(p.numel() for p in model.parameters()),
            "iterations": resolved["iterations"],
            "epochs": round(resolved["epochs"], 2),
            "milestones": resolved["milestones"],
            # the last logging window's error on augmented training batches (Fig. 6's curve)
            "final_train_error": train_errors[-1] if train_errors else None,
            "test_error": summary.get("test_error"),
            # the test images behind test_error: its binomial standard error's n
            "test_images": (saved["data"].get("eval_images") or {}).get("test"),
            "test_top5_error": summary.get("test_top5_error"),
            "val_error": summary.get("val_error"),
            "train_seconds": summary.get("train_seconds"),
            # where it trained: runs of one pool may come from different machines
            "device_name": saved["environment"].get("device_name"),
            "cpu_family": saved["environment"].get("cpu_family"),
            "precision": _precision_of(saved.get("precision")),
            "run_dir": str(self.run_dir.relative_to(root)),
            "reused": self.reused,
        }


def _precision_of(chosen: dict[str, Any] | None) -> str | None:
    """A run's arithmetic as config.json recorded it, e.g. ``fp32 + channels_last``."""
    if not chosen:
        return None
    layout = " + channels_last" if chosen.get("channels_last") else ""
    return f"{chosen['precision']}{layout}"


class Experiment:
    """An experiment: which runs to train, and what to compute and show from them.

    Subclasses set the class attributes and implement ``plan``, ``analyse``, ``figures`` and
    ``tables``; ``run_experiment`` and the report do the rest. ``analyses_finished_runs``: its
    ``analyse`` only reads the finished runs' files (measures nothing, writes nothing), so
    ``reslearn report`` can show the claims over the seeds finished so far.
    """

    name: str = ""
    title: str = ""
    description: str = ""
    default_depths: tuple[int, ...] = ()
    default_seeds: tuple[int, ...] = (0,)
    analyses_finished_runs: bool = False

    def check(self, settings: ExperimentSettings) -> None:
        """Raise a one-line ValueError for settings this experiment cannot use."""

    def plan(self, settings: ExperimentSettings) -> list[PlannedRun]:
        """The runs to train (in this order)."""
        raise NotImplementedError

    def analyse(
        self, settings: ExperimentSettings, runs: list[FinishedRun], records: list[dict]
    ) -> dict[str, Any]:
        """Experiment-specific results (tables' numbers, claims), added to results.json."""
        return {}

    def analyse_in(
        self,
        settings: ExperimentSettings,
        runs: list[FinishedRun],
        records: list[dict],
        root: Path,
    ) -> dict[str, Any]:
        """``analyse``, for an analysis that keeps its measurements in the experiment folder
        ``root`` as they finish, so that a stopped one goes on where it stopped."""
        return self.analyse(settings, runs, records)

    def figures(self, results: dict[str, Any], root: Path) -> list[tuple[str, str]]:
        """Draw the figures into ``root``; returns (file name, caption) pairs."""
        return []

    def tables(self, results: dict[str, Any]) -> list[Table]:
        """The tables of the report."""
        return []


@dataclass
class Table:
    """A report table: a caption, a header and rows of display strings."""

    caption: str
    header: Sequence[str]
    rows: list[Sequence[str]]


def run_experiment(
    experiment: Experiment,
    settings: ExperimentSettings,
    out: str | Path,
    *,
    quiet: bool = False,
    command: Sequence[str] | None = None,
    draw: Callable[[Path], Any] | None = None,
    launcher: Launcher | None = None,
) -> dict[str, Any]:
    """Train every planned run that is not finished yet, then write results.json into ``out``
    and hand the folder to ``draw`` (the command line's: report.html, through
    ``reslearn.experiments.report_page.write_experiment_report``); returns the results.

    A finished run (summary.json present) is reused; an interrupted one is resumed from its
    checkpoint. A run trained with other settings is an error, never silently mixed in. The
    folder is locked meanwhile: a second process running an experiment in it is refused
    (and each run's own folder is locked by its training).

    ``launcher`` trains the runs in parallel (``reslearn.experiments.launch``: processes on
    this machine, or SLURM jobs); without one they train here, one after the other.
    """
    experiment.check(settings)
    planned = experiment.plan(settings)
    for run in planned:
        run.config.validate()
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ValueError(f"--out {root} is a file; give a folder")
    lock = FolderLock(root, what="experiment")
    try:
        results = _run_planned(
            experiment, settings, planned, root, quiet=quiet, command=command, launcher=launcher
        )
        if draw is not None:
            draw(root)
        return results
    except BaseException:
        if lock.created and [p.name for p in root.iterdir()] == [LOCK_FILE]:
            with contextlib.suppress(OSError):  # a folder made for nothing goes again
                lock.path.unlink()
                root.rmdir()
        raise
    finally:
        lock.release()


def _run_planned(
    experiment: Experiment,
    settings: ExperimentSettings,
    planned: list[PlannedRun],
    root: Path,
    *,
    quiet: bool,
    command: Sequence[str] | None,
    launcher: Launcher | None,
) -> dict[str, Any]:
    """``run_experiment``'s work, with the folder locked."""
    for run in planned:  # before anything is written: a mismatch leaves the folder as it was
        if is_run(root / "runs" / run.name):
            check_same_settings(run, root / "runs" / run.name)
    _claim_folder(root, experiment.name, settings, command)
    if launcher is not None:
        finished = launcher.ensure_all(planned, root)
    else:
        finished = [
            ensure_run(run, root / "runs" / run.name, quiet=quiet, label=f"[{n}/{len(planned)}]")
            for n, run in enumerate(planned, 1)
        ]
    records = [run.record(root) for run in finished]
    results = {
        "experiment": experiment.name,
        "title": experiment.title,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings.as_dict(),
        "command": shlex.join(command) if command else None,
        "data": _data_name(finished, settings),
        "budget": _budget(records, settings),
        "environment": _environment(finished),
        "runs": records,
        **experiment.analyse_in(settings, finished, records, root),
    }
    text = (json.dumps(results, indent=2) + "\n").encode()
    atomic_write(root / RESULTS_FILE, lambda f: f.write(text), durable=False)
    return results


def _claim_folder(
    root: Path, name: str, settings: ExperimentSettings, command: Sequence[str] | None
) -> None:
    """Make ``root`` this experiment's folder, refusing one that holds something else."""
    marker = root / EXPERIMENT_FILE
    if root.exists() and not root.is_dir():
        raise ValueError(f"--out {root} is a file; give a folder")
    if marker.is_file():
        existing = read_json(marker).get("experiment")
        if existing != name:
            raise ValueError(
                f"{root} holds the '{existing}' experiment; give '{name}' another --out"
            )
    elif root.is_dir() and any(p.name != LOCK_FILE for p in root.iterdir()):
        raise ValueError(
            f"{root} is not empty and is not an experiment folder; choose another --out"
        )
    root.mkdir(parents=True, exist_ok=True)
    record = {"experiment": name, "settings": settings.as_dict(), "command": list(command or [])}
    write_json(marker, record)


def ensure_run(run: PlannedRun, run_dir: Path, *, quiet: bool, label: str) -> FinishedRun:
    """Reuse, resume or train one run, then keep what the analysis measures of it; returns it
    finished. A finished run whose files were damaged is named and trained again."""
    what = f"{label} {run.name}"
    reused = False
    draw = {"draw": draw_run_guarded, "redraw": draw_run}
    if is_finished(run_dir):
        check_same_settings(run, run_dir)
        iterations = read_config(run_dir, needs=("resolved",))["resolved"]["iterations"]
        problem = damage(run_dir, iterations=iterations, measured_needed=run.measure is not None)
        if problem is None:
            print(f"{what}: finished earlier, reused ({run_dir})", file=sys.stderr)
            reused = True
        else:
            print(f"{what}: {run_dir} cannot be reused: {problem}; training it again",
                  file=sys.stderr)  # fmt: skip
            train(run.config, run_dir, overwrite=True, quiet=quiet, **draw)
    elif is_run(run_dir):
        check_same_settings(run, run_dir)
        if latest_checkpoint(run_dir) is not None:
            print(f"{what}: resuming the interrupted run", file=sys.stderr)
            train(None, resume=run_dir, quiet=quiet, **draw)
        else:  # stopped before its first checkpoint, or a committed folder lost its summary
            print(f"{what}: restarting ({run_dir} has no summary.json and no checkpoint to "
                  "resume from)", file=sys.stderr)  # fmt: skip
            train(run.config, run_dir, overwrite=True, quiet=quiet, **draw)
    else:
        iterations = f"{run.config.iterations:,} iterations" if run.config.iterations else "recipe"
        print(f"{what}: training ({iterations})", file=sys.stderr)
        train(run.config, run_dir, quiet=quiet, **draw)
    ensure_measured(run_dir, run.measure)
    return FinishedRun(run, run_dir, reused=reused)


def _comparable(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with what was left to defaults spelled out: a run saved before a setting existed
    had that setting's default, and an unset normalization is the one it resolves to."""
    out = {**TrainConfig(data="").as_dict(), **settings}
    if out["normalization"] is None:
        out["normalization"] = TrainConfig(**out).resolve_normalization()
    return out


def check_same_settings(run: PlannedRun, run_dir: Path) -> None:
    """Refuse (ValueError, one line) a run folder trained with other settings than ``run``."""
    saved = _comparable(read_config(run_dir)["settings"])
    wanted = _comparable(run.config.as_dict())
    differences = [
        f"{key}={saved[key]!r} (now {wanted[key]!r})"
        for key in wanted
        if key not in WHERE_NOT_WHAT and saved[key] != wanted[key]
    ]
    if differences:
        raise ValueError(
            f"{run_dir} was trained with {', '.join(differences)}; use another --out, "
            f"or delete {run_dir} to train it again"
        )


def _budget(records: list[dict], settings: ExperimentSettings) -> dict[str, Any]:
    from reslearn.experiments.paper import PAPER_ITERATIONS

    iterations = sorted({r["iterations"] for r in records})
    epochs = sorted({r["epochs"] for r in records})
    full = settings.recipe == "paper" and iterations == [PAPER_ITERATIONS]

    def one_or_all(values: list) -> Any:
        return values[0] if len(values) == 1 else (values or None)

    preset = BUDGETS.get(settings.budget or "")
    return {
        "preset": settings.budget,
        "differs_from_paper": preset["differs"] if preset else None,
        "recipe": settings.recipe,
        "iterations": one_or_all(iterations),
        "epochs": one_or_all(epochs),
        "milestones": records[0]["milestones"] if records else [],
        "paper_iterations": PAPER_ITERATIONS,
        "fraction_of_paper": round(max(iterations) / PAPER_ITERATIONS, 4) if iterations else 0,
        "full_paper_recipe": full,
    }


def _environment(runs: list[FinishedRun]) -> dict[str, Any]:
    """Where the runs were trained (each run's config.json records its own)."""
    if not runs:  # every network was given as weights: this machine measured them
        import platform

        import torch

        from reslearn.version import __version__

        return {"torch": torch.__version__, "python": platform.python_version(),
                "reslearn": __version__}  # fmt: skip
    seen: dict[str, Any] = {}
    for run in runs:
        environment = read_config(run.run_dir, needs=("environment",))["environment"]
        for key in ("device_name", "device", "threads", "torch", "python", "reslearn"):
            seen.setdefault(key, set()).add(str(environment.get(key)))
        seen.setdefault("git_revision", set()).add(str(environment.get("git_revision")))
    return {key: ", ".join(sorted(values)) for key, values in seen.items()}


def _data_name(runs: list[FinishedRun], settings: ExperimentSettings) -> str:
    """The data set's name as the runs recorded it (e.g. cifar10-jpeg), else as given."""
    for run in runs:
        return read_config(run.run_dir, needs=("data",))["data"]["name"]
    return settings.data
