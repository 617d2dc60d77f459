"""The arena: annotators x datasets -> a stored, resumable run -> leaderboard, plots, report."""

from __future__ import annotations

from ._report import (
    LEADERBOARD_COLUMNS,
    leaderboard,
    leaderboard_markdown,
    write_html_report,
)
from ._run import BenchConfig, BenchResult, load_config, run_bench

__all__ = [
    "LEADERBOARD_COLUMNS",
    "BenchConfig",
    "BenchResult",
    "leaderboard",
    "leaderboard_markdown",
    "load_config",
    "run_bench",
    "write_html_report",
]
