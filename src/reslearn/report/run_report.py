"""report.html of one training run: final errors, curves, confusion matrix, per-class accuracy,
settings and environment, from the files in the run folder (also for an unfinished run)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import numpy as np

from reslearn.jsonfile import read_json
from reslearn.report.confusion import plot_confusion
from reslearn.report.curves import plot_curves
from reslearn.report.html import HtmlPage
from reslearn.rundir import (
    CONFUSION,
    CURVES,
    EVALUATION,
    METRICS,
    REPORT,
    read_config,
    read_summary,
)
from reslearn.rundir.lock import holder_of
from reslearn.train.metrics import read_metrics

_FIX = "restore it from a copy, or train the run again"


def draw_run(run_dir: str | Path) -> Path:
    """Everything drawn from a run folder's files: curves.png, confusion.png (once the final
    evaluation is written) and report.html; also for an unfinished run. Returns the report."""
    run_dir = Path(run_dir)
    draw_curves(run_dir)
    draw_confusion(run_dir)
    return write_run_report(run_dir)


def draw_curves(run_dir: str | Path) -> None:
    """curves.png from metrics.jsonl (also after an interrupted run), with the lr drops."""
    run_dir = Path(run_dir)
    resolved = read_config(run_dir, needs=("resolved",))["resolved"]
    path = run_dir / METRICS
    records = read_metrics(path) if path.exists() else []
    if not records:
        return
    drops = resolved.get("milestones") or ()
    if resolved.get("schedule") == "plateau":  # the drops happened where the error stalled
        drops = [r["step"] for r in records if r.get("event") == "lr dropped on plateau"]
    plot_curves(
        [(resolved["model"], records)],
        run_dir / CURVES,
        title=f"{resolved['model']}, {resolved['recipe']} recipe",
        milestones=drops,
    )


def draw_confusion(run_dir: str | Path) -> None:
    """confusion.png from evaluation.json (nothing before the run's final evaluation)."""
    run_dir = Path(run_dir)
    evaluation = _read(run_dir / EVALUATION)
    if evaluation is None:
        return
    model = read_config(run_dir, needs=("resolved",))["resolved"]["model"]
    plot_confusion(
        np.asarray(evaluation["confusion"]),
        evaluation["classes"],
        run_dir / CONFUSION,
        title=f"{model}, {evaluation['split']} split: {100 * evaluation['top1_error']:.2f}% error",
    )


def _read(path: Path) -> Any:
    return read_json(path, fix=_FIX) if path.is_file() else None


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from the run's files and return its path."""
    run_dir = Path(run_dir)
    config = read_config(run_dir, needs=("resolved", "data", "environment"))
    resolved, data = config["resolved"], config["data"]
    summary = read_summary(run_dir)
    metrics = read_metrics(run_dir / METRICS) if (run_dir / METRICS).is_file() else []
    page = HtmlPage(
        f"{resolved['model']} on {data['name']}",
        f"reslearn training run, {resolved['recipe']} recipe: {run_dir.resolve()}",
    )
    _result(page, run_dir, resolved, data, summary, metrics)
    if metrics:
        if not (run_dir / CURVES).is_file():
            draw_curves(run_dir)
        page.figure(
            run_dir / CURVES,
            "Training error (dashed, augmented batches) and test error (bold) against "
            "iterations; grey verticals mark learning-rate drops.",
        )
    _per_class(page, run_dir)
    _settings(page, config)
    return page.write(run_dir / REPORT)


def _result(page: HtmlPage, run_dir: Path, resolved, data, summary, metrics) -> None:
    page.heading("Result")
    train_errors = [r["train_error"] for r in metrics if "train_error" in r]
    if summary is None:
        step = metrics[-1]["step"] if metrics else 0
        if holder_of(run_dir) is not None:  # its training holds the folder's lock: running
            page.note(
                f"In progress: step {step:,} of {resolved['iterations']:,}. This page is "
                "redrawn as training goes (at evaluations, at most once a minute): reload it.",
                "",
            )
        else:
            page.note(
                f"Unfinished: logged up to step {step:,} of {resolved['iterations']:,}. "
                f"Continue with 'reslearn train --resume {run_dir}'.",
                "warning",
            )
    evaluations = [r for r in metrics if "test_error" in r or "val_error" in r]
    last = summary or (evaluations[-1] if evaluations else {})
    facts = {
        "test error": _pct(last.get("test_error")),
        "test top-5 error": _pct(last.get("test_top5_error")),
        "validation error": _pct(last.get("val_error")),
        "training error (last logging window, augmented batches)": _pct(
            train_errors[-1] if train_errors else None
        ),
        "iterations": f"{resolved['iterations']:,} ({resolved['epochs']:.1f} epochs of "
        f"{data['train_images']:,} images, batch {resolved['batch_size']})",
    }
    if summary is not None:
        facts["training time"] = f"{summary['train_seconds'] / 60:.1f} min" + (
            " (over several resumed sessions)" if summary.get("resumed") else ""
        )
    page.definitions({k: v for k, v in facts.items() if v != "-"})


def _per_class(page: HtmlPage, run_dir: Path) -> None:
    evaluation = _read(run_dir / EVALUATION)
    if evaluation is None:
        return
    page.heading(f"Per class ({evaluation['split']} split, {evaluation['count']:,} images)")
    if (run_dir / CONFUSION).is_file():
        page.figure(run_dir / CONFUSION, "Confusion matrix: rows are true classes.")
    accuracy = evaluation["per_class_accuracy"]
    rows = sorted(
        ((name, _pct(acc)) for name, acc in accuracy.items()),
        key=lambda row: float(row[1].rstrip("%")) if row[1] != "-" else 101.0,
    )
    page.table(("class", "accuracy"), rows, "Per-class accuracy, lowest first")


def _settings(page: HtmlPage, config: dict[str, Any]) -> None:
    resolved, data = config["resolved"], config["data"]
    page.heading("Settings")
    page.paragraph(
        "Data: "
        f"{data['name']} ({data['source']}), {data['train_images']:,} training images of "
        f"{'x'.join(map(str, data['image_size']))} pixels, {len(data['classes'])} classes."
    )
    page.code(json.dumps(resolved, indent=2))
    page.heading("Environment")
    environment = dict(config["environment"])
    command = environment.pop("command", None)
    page.definitions(environment)
    if command:
        page.paragraph("The command that started this run:")
        page.code(_command_line(command))


def _command_line(argv: list[str]) -> str:
    """``reslearn train ...`` for the CLI's argv (script or ``-m``), else the argv as it was."""
    if argv and Path(argv[0]).name in ("reslearn", "__main__.py"):
        return shlex.join(["reslearn", *argv[1:]])
    return shlex.join(argv)
