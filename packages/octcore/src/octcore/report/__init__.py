"""``invoke report``: results.csv, per-configuration summaries, paired tests, figures, report.md.

Reads only the run directory (``plan.json`` and ``jobs/<id>/``), so it works on a
finished run, on one still running, and on one copied from another machine.
"""

from octcore.report.build import Report, write_report

__all__ = ["Report", "write_report"]
