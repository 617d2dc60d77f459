"""The arena: annotators x datasets -> a stored, resumable run -> leaderboard, plots, report.

``_config`` (the config models, reading, path rules), ``_datasets`` (dataset loaders),
``_items`` (scored rows), ``_run`` (entrants, the run loop, :func:`run_bench`),
``_store`` (the SQLite store) and ``_report`` (leaderboard, plots, HTML).
"""

from __future__ import annotations

from ._config import BenchConfig, load_config
from ._report import (
    LEADERBOARD_COLUMNS,
    leaderboard,
    leaderboard_markdown,
    write_html_report,
)
from ._run import BenchResult, run_bench

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
