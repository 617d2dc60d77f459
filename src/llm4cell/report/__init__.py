"""HTML reports."""

from __future__ import annotations

from ._annotation import render_report, write_report

__all__ = [
    "render_report",
    "write_report",
]
