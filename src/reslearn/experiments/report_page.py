"""report.html of an experiment, drawn from its results.json and its runs' metrics: the budget
up front, the paper's claims checked, figures, tables with the paper's numbers, the runs,
settings, environment and the command that reproduces it; report.md beside it says the same in
Markdown (figures linked), and ``results_markdown`` gives its claims and tables for a doc."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from reslearn.experiments import get_experiment
from reslearn.experiments.base import REPORT_FILE, RESULTS_FILE
from reslearn.experiments.claim_statistics import binomial_se
from reslearn.experiments.common import machine_label, percent, yes_no
from reslearn.experiments.settings import settings_argv
from reslearn.jsonfile import read_json
from reslearn.report.html import HtmlPage
from reslearn.report.markdown import MarkdownPage

#: The Markdown twin of report.html, beside it.
MARKDOWN_FILE = "report.md"


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
    """(Re)draw the figures and write ``root/report.html`` and its Markdown twin
    ``root/report.md`` from ``root/results.json``; returns report.html's path."""
    root = Path(root)
    path = root / RESULTS_FILE
    if not path.is_file():
        raise ValueError(f"{root} has no {RESULTS_FILE}; run 'reslearn reproduce' into it first")
    results = read_json(path, fix="run the same 'reslearn reproduce' command again to rewrite it")
    title, subtitle = results["title"], f"reslearn reproduce {results['experiment']}: {root}"
    html, markdown = HtmlPage(title, subtitle), MarkdownPage(title, subtitle, base=root)
    page = _BothPages(html, markdown)
    text, kind = budget_text(results["budget"])
    page.note(text, kind)
    _claims(page, results)
    _figures_and_tables(page, results, root)
    _runs(page, results["runs"])
    _reproduce_and_settings(page, results, root)
    markdown.write(root / MARKDOWN_FILE)
    return html.write(root / REPORT_FILE)


def results_markdown(results: dict[str, Any]) -> str:
    """An experiment's claims tally and tables in Markdown, as its report shows them: what a
    doc quotes from results.json (no figures, no title)."""
    page = MarkdownPage("")
    claims = results.get("claims") or []
    if claims:
        page.paragraph(f"Of the paper's claims, {claims_tally(claims)}.")
    for table in get_experiment(results["experiment"]).tables(results):
        page.table(table.header, table.rows, table.caption)
    return "\n\n".join(page.parts[1:]) + "\n"


def claims_tally(claims: list[dict[str, Any]]) -> str:
    """The claims counted, e.g. "12 of 21 hold with this budget, 2 fail, 7 are not decided"
    (claims checked on one run only hold or not: no failures or undecided are counted)."""
    held = sum(c["holds"] for c in claims)
    tally = f"{held} of {len(claims)} hold with this budget"
    if any("verdict" in c for c in claims):  # decided over seeds, with intervals
        failed = sum(c.get("verdict") == "fails" for c in claims)
        tally += f", {failed} fail, {len(claims) - held - failed} are not decided"
    return tally


class _BothPages:
    """Every call made on both pages, so report.html and report.md say the same."""

    def __init__(self, *pages: HtmlPage | MarkdownPage) -> None:
        self.pages = pages

    def __getattr__(self, name: str):
        def on_both(*args: Any, **kwargs: Any) -> None:
            for page in self.pages:
                getattr(page, name)(*args, **kwargs)

        return on_both


def _claims(page: HtmlPage, results: dict[str, Any]) -> None:
    """The paper's claims, checked against ours, and what the paper says."""
    claims = results.get("claims") or []
    if claims:
        page.heading("Published claims, checked")
        caption = claims_tally(claims)
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
                machine_label(r),
                r.get("precision") or "-",
                r["run_dir"],
            )
            for r in runs
        ],
        "Every training run, with the binomial standard error of its test error (one run on "
        "its test images), the machine and precision it trained in; each folder has its own "
        "report.html",
    )  # fmt: skip


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
