"""The ``llm4cell`` command line: each command mirrors one Python function.

One module per command (``_annotate``, ``_markers``, ``_score``, ``_puzzles``, ``_bench``,
``_types``, ``_describe``);
``_app`` holds the app, its error handling and :func:`main`, ``_llm_options`` the LLM
flags shared by ``annotate``, ``markers`` and ``puzzles solve``. The commands are put
together here, in the order ``llm4cell --help`` lists them.
"""

from __future__ import annotations

from . import _annotate, _bench, _describe, _markers, _puzzles, _score, _types
from ._app import app, main

app.command("annotate")(_annotate.annotate_cmd)
app.command("markers")(_markers.markers_cmd)
app.command("score")(_score.score_cmd)
app.add_typer(_puzzles.puzzles_app, name="puzzles")
app.command("bench")(_bench.bench_cmd)
app.command("types")(_types.types_cmd)
app.command("describe")(_describe.describe_cmd)

_puzzles.puzzles_app.command("build")(_puzzles.build_cmd)
_puzzles.puzzles_app.command("solve")(_puzzles.solve_cmd)
_puzzles.puzzles_app.command("score")(_puzzles.score_cmd)

__all__ = ["app", "main"]
