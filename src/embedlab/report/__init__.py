"""HTML reports of benchmark records: matplotlib plots (inline SVG) and tables in one page.

>>> from embedlab.bench._record import read_records
>>> render_report(read_records("results.jsonl"), "report/")  # doctest: +SKIP
PosixPath('report/index.html')
"""

from __future__ import annotations

from embedlab.report._render import render_report

__all__ = ["render_report"]
