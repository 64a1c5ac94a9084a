"""``reslearn report``: (re)write the report.html of a training run or an experiment; for an
experiment that has not finished, say where it stands."""

from __future__ import annotations

import argparse
from pathlib import Path

from reslearn.commands.arguments import paragraph
from reslearn.rundir import CONFIG


def run(args: argparse.Namespace) -> int:
    """Write the page and print where it is."""
    from reslearn.experiments.base import EXPERIMENT_FILE, RESULTS_FILE
    from reslearn.experiments.report_page import write_experiment_report
    from reslearn.report.run_report import draw_run

    folder = Path(args.folder)
    if (folder / RESULTS_FILE).is_file():
        path = write_experiment_report(folder)
    elif (folder / EXPERIMENT_FILE).is_file():  # started, not finished: where it stands
        from reslearn.experiments.progress import experiment_progress, format_progress

        print(format_progress(experiment_progress(folder)))
        return 0
    elif (folder / CONFIG).is_file():
        path = draw_run(folder)  # the figures too: a stop while drawing may have left them out
    elif not folder.is_dir():
        raise ValueError(f"{folder}: no such folder")
    else:
        raise ValueError(
            f"{folder} is neither a training run ({CONFIG}) nor an experiment ({RESULTS_FILE})"
        )
    print(path)
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = commands.add_parser(
        "report",
        help="write report.html for a run folder or an experiment folder",
        description=paragraph(
            "Regenerate the static report page (report.html, self-contained: open it from "
            "disk in any browser) of a 'reslearn train' run folder (curves, final errors, "
            "confusion matrix, per-class accuracy, settings, environment) or of a 'reslearn "
            "reproduce' experiment folder (figures, tables beside the paper's numbers, the "
            "budget, the command). Also works on an unfinished run. For an experiment that "
            "has not finished (a suite trained in slices), it prints where it stands instead: "
            "each planned run finished (test error, minutes, machine), training, interrupted "
            "or still to train, the minutes left, and the command that goes on."
        ),
    )
    parser.add_argument("folder", metavar="RUN_OR_EXPERIMENT_DIR")
    parser.set_defaults(func=run)
