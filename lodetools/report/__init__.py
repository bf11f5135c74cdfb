"""The HTML report of a run folder."""

from lodetools.report.html import build_report

__all__ = ["build_report"]
