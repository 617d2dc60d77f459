"""The ``llm4cell`` command line: each command mirrors one Python function."""

from __future__ import annotations

from ._arena import bench_cmd, puzzles_app
from ._main import app, main

app.add_typer(puzzles_app, name="puzzles")
app.command("bench")(bench_cmd)

__all__ = ["app", "main"]
