"""Presenting results: text tables, training curves and confusion matrices (the HTML run report
lands with the experiments)."""

from reslearn.report.confusion import plot_confusion
from reslearn.report.curves import plot_curves
from reslearn.report.tables import format_count, format_table, model_table, stage_table

__all__ = [
    "format_count",
    "format_table",
    "model_table",
    "plot_confusion",
    "plot_curves",
    "stage_table",
]
