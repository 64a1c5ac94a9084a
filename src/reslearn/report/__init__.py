"""Presenting results: text tables, training curves, confusion matrices and a run's report page
(``draw_run``: everything drawn from a run folder's files)."""

from reslearn.report.confusion import plot_confusion
from reslearn.report.curves import plot_curves
from reslearn.report.run_report import draw_run, write_run_report
from reslearn.report.tables import format_count, format_table, model_table, stage_table

__all__ = [
    "draw_run",
    "format_count",
    "format_table",
    "model_table",
    "plot_confusion",
    "plot_curves",
    "stage_table",
    "write_run_report",
]
