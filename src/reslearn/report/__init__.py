"""Presenting results: text tables now; plots and the HTML run report as they land."""

from reslearn.report.confusion import plot_confusion
from reslearn.report.tables import format_count, format_table, model_table, stage_table

__all__ = ["format_count", "format_table", "model_table", "plot_confusion", "stage_table"]
