"""``llm4cell bench``: the arena, from one config file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .._errors import Llm4cellError
from ..bench._run import run_bench
from ._app import DebugOpt, err, fail, out, progress_bar

__all__ = ["bench_cmd"]

#: Leaderboard column -> table header, in the order shown.
_COLUMNS = {"agreement": "agree", "full_match": "full", "hierarchical_f1": "hF1",
            "ece": "ECE", "batch_accuracy": "puzzle batch acc", "requests": "requests",
            "tokens": "tokens", "cost_usd": "cost $"}


def bench_cmd(
    config: Annotated[Path, typer.Argument(
        help="Bench config (.toml, or .yaml with PyYAML): [bench], [[annotators]], "
             "[[datasets]]; see docs/arena.md.")],
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", help="Output folder (default: [bench] output in the config).")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Run annotators x datasets, store every item, write leaderboard, plots and report.

    A re-run skips the items already stored, so an interrupted bench resumes.
    """
    try:
        with progress_bar() as bar:
            task = bar.add_task("Loading datasets and checking backends", total=None)

            def tick(label: str, done: int, total: int) -> None:
                bar.update(task, description=label, completed=done, total=total)

            result = run_bench(config, output=output, progress=tick)
    except Llm4cellError as e:
        fail(e, debug)
    except KeyboardInterrupt:
        err.print("interrupted: the finished items are stored; re-run the same command to "
                  "resume", highlight=False)
        raise typer.Exit(code=130) from None
    _print_overall(result.leaderboard)
    err.print(f"{result.computed} units computed, {result.skipped} found done in the store",
              highlight=False)
    for name in ("leaderboard_md", "leaderboard_csv", "report", "items", "store"):
        err.print(f"Wrote {result.outputs[name]}")


def _cell(column: str, value: Any) -> str:
    if value != value:  # NaN
        return "–"
    if column in ("requests", "tokens"):
        return f"{int(value):,}"
    return f"{float(value):.4f}" if column == "cost_usd" else f"{float(value):.3f}"


def _print_overall(board: Any) -> None:
    overall = board[board["dataset"] == "overall"]
    table = Table(title="llm4cell bench: overall (macro mean over datasets)")
    table.add_column("annotator")
    for h in _COLUMNS.values():
        table.add_column(h, justify="right")
    for _, r in overall.iterrows():
        table.add_row(str(r["annotator"]), *[_cell(c, r[c]) for c in _COLUMNS])
    Console(width=max(out.width, 120)).print(table)
