"""report.html of an experiment, drawn from its results.json and its runs' metrics: the budget
up front, the paper's claims checked, figures, tables with the paper's numbers, the runs,
settings, environment and the command that reproduces it."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from reslearn.experiments import get_experiment
from reslearn.experiments.base import REPORT_FILE, RESULTS_FILE
from reslearn.experiments.claim_statistics import binomial_se
from reslearn.experiments.common import percent, yes_no
from reslearn.experiments.settings import settings_argv
from reslearn.jsonfile import read_json
from reslearn.report.html import HtmlPage


def reproduce_command(results: dict[str, Any], root: Path) -> str:
    """The ``reslearn reproduce`` command line that gives these results."""
    flags = settings_argv(results["settings"])
    return shlex.join(["reslearn", "reproduce", results["experiment"], *flags, "--out", str(root)])


def budget_text(budget: dict[str, Any]) -> tuple[str, str]:
    """(sentence, note kind) describing the training budget against the paper's recipe."""
    if budget.get("preset"):
        kind = "ok" if budget["full_paper_recipe"] else "warning"
        return (
            f"Budget '{budget['preset']}'. What differs from the paper: "
            f"{budget['differs_from_paper']}.",
            kind,
        )
    iterations = budget["iterations"]
    if budget["full_paper_recipe"]:
        return (
            "Full paper recipe: 64,000 iterations at batch 128, lr 0.1 divided by 10 at 32k and "
            "48k. These numbers are comparable with the paper's.",
            "ok",
        )
    if iterations is None:
        return ("No training runs: every network was given as weights.", "")
    many = isinstance(iterations, list)
    shown = ", ".join(f"{i:,}" for i in iterations) if many else f"{iterations:,}"
    epochs = budget["epochs"]
    epochs_shown = (
        ", ".join(f"{e:g}" for e in epochs) if isinstance(epochs, list) else f"{epochs:g}"
    )
    drops = ", ".join(f"{m:,}" for m in budget["milestones"]) or "none"
    return (
        f"Budgeted run, not the paper's recipe: {shown} iterations ({epochs_shown} epochs) of the "
        f"'{budget['recipe']}' recipe, {100 * budget['fraction_of_paper']:.2g}% of the paper's "
        f"{budget['paper_iterations']:,}; learning-rate drops at {drops}. Errors are higher than "
        "the paper's; compare the order of the networks, not the values.",
        "warning",
    )


def write_experiment_report(root: str | Path) -> Path:
    """(Re)draw the figures and write ``root/report.html`` from ``root/results.json``."""
    root = Path(root)
    path = root / RESULTS_FILE
    if not path.is_file():
        raise ValueError(f"{root} has no {RESULTS_FILE}; run 'reslearn reproduce' into it first")
    results = read_json(path, fix="run the same 'reslearn reproduce' command again to rewrite it")
    page = HtmlPage(
        results["title"], f"reslearn reproduce {results['experiment']}: {root.resolve()}"
    )
    text, kind = budget_text(results["budget"])
    page.note(text, kind)
    _claims(page, results)
    _figures_and_tables(page, results, root)
    _runs(page, results["runs"])
    _reproduce_and_settings(page, results, root)
    return page.write(root / REPORT_FILE)


def _claims(page: HtmlPage, results: dict[str, Any]) -> None:
    """The paper's claims, checked against ours, and what the paper says."""
    claims = results.get("claims") or []
    if claims:
        page.heading("Published claims, checked")
        held = sum(c["holds"] for c in claims)
        decided = [c for c in claims if "verdict" in c]  # decided over seeds, with intervals
        caption = f"{held} of {len(claims)} hold with this budget"
        if decided:
            failed = sum(c["verdict"] == "fails" for c in decided)
            caption += f", {failed} fail, {len(claims) - held - failed} are not decided"
        page.table(
            ("claim", "holds here", "our numbers"),
            [(c["claim"], c.get("verdict") or yes_no(c["holds"]), c["evidence"]) for c in claims],
            caption,
            verdict_column=1,
        )
    for statement in (results.get("paper") or {}).values():
        if isinstance(statement, str):
            page.paragraph(f"The paper: {statement}")


def _figures_and_tables(page: HtmlPage, results: dict[str, Any], root: Path) -> None:
    """The experiment's figures (drawn into ``root``) and tables."""
    experiment = get_experiment(results["experiment"])
    figures = experiment.figures(results, root)
    if figures:
        page.heading("Figures")
        for name, caption in figures:
            page.figure(root / name, caption)
    tables = experiment.tables(results)
    if tables:
        page.heading("Tables")
        for table in tables:
            page.table(table.header, table.rows, table.caption)


def _runs(page: HtmlPage, runs: list[dict[str, Any]]) -> None:
    """One row per training run."""
    if not runs:
        return
    page.heading("Runs")
    page.table(
        ("run", "model", "seed", "iterations", "training error", "test error", "minutes",
         "trained on", "precision", "folder"),
        [
            (
                r["name"],
                r["model"],
                str(r["seed"]),
                f"{r['iterations']:,}",
                percent(r["final_train_error"]),
                _with_se(r["test_error"], r.get("test_images")),
                f"{r['train_seconds'] / 60:.1f}" if r.get("train_seconds") else "-",
                _machine(r),
                r.get("precision") or "-",
                r["run_dir"],
            )
            for r in runs
        ],
        "Every training run, with the binomial standard error of its test error (one run on "
        "its test images), the machine and precision it trained in; each folder has its own "
        "report.html",
    )  # fmt: skip


def _machine(run: dict[str, Any]) -> str:
    """Where a run trained: the device's name, and a CPU's family and model where recorded."""
    name = run.get("device_name") or "-"
    return f"{name} ({run['cpu_family']})" if run.get("cpu_family") else name


def _with_se(error: float | None, count: int | None) -> str:
    """A test error in percent with its single-run binomial standard error."""
    if error is None or not count:
        return percent(error)
    return f"{percent(error)} ± {100 * binomial_se(error, count):.2f}"


def _reproduce_and_settings(page: HtmlPage, results: dict[str, Any], root: Path) -> None:
    """The command that gives these results, the settings and the environment."""
    page.heading("Reproduce")
    page.code(reproduce_command(results, root))
    page.paragraph(
        "Finished runs are reused when the command is run again; an interrupted run resumes "
        "from its last checkpoint."
    )
    page.heading("Settings and environment")
    page.definitions({k: v for k, v in results["settings"].items() if v not in (None, [], {})})
    page.definitions(results["environment"])
    page.paragraph(f"Results created {results['created']}; every number is in {RESULTS_FILE}.")
