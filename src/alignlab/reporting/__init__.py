"""The self-contained HTML report: claims table, metrics across seeds, learning curves, figures
and provenance, in one file that opens offline."""

from alignlab.reporting.html import render_report, write_report

__all__ = ["render_report", "write_report"]
