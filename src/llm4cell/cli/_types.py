"""``llm4cell types``: :func:`llm4cell.list_types`, the types the engine can name."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .._errors import Llm4cellError
from .._io import check_outputs, write_csv
from ..knowledge._catalog import list_types
from ._app import DebugOpt, err, fail, out

__all__ = ["types_cmd"]


def types_cmd(
    tissue: Annotated[
        str | None, typer.Option(help="Only types that may occur in this tissue.")
    ] = None,
    search: Annotated[
        str | None, typer.Option(help="Only types whose name or a synonym has a word "
                                 "starting with this text.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Also write the table as CSV.")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """List the Cell Ontology types the knowledge engine can name."""
    try:
        if output is not None:
            check_outputs([output], [], flags=["-o"])
        table = list_types(tissue=tissue, search=search)
        if output is not None:
            write_csv(table, output)
    except Llm4cellError as e:
        fail(e, debug)
    view = Table(title=f"{len(table)} cell types", title_justify="left")
    for col in ("ontology_id", "label", "lineage", "family", "n_sources", "top_markers"):
        view.add_column(col.replace("_", " "), overflow="fold")
    for row in table.itertuples(index=False):
        view.add_row(*(str(v) for v in row))
    out.print(view)
    if output is not None:
        err.print(f"Wrote {output}")
