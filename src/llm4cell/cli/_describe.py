"""``llm4cell describe``: :func:`llm4cell.describe_type`, one cell type explained."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .._errors import Llm4cellError
from ..knowledge._catalog import describe_type
from ._app import DebugOpt, fail, out

__all__ = ["describe_cmd"]


def describe_cmd(
    name: Annotated[str, typer.Argument(help='A CL ID or a name ("CD8 T", "Treg").')],
    n_markers: Annotated[int, typer.Option(help="Markers to show.")] = 15,
    debug: DebugOpt = False,
) -> None:
    """Describe a cell type: its Cell Ontology term, levels and strongest markers."""
    try:
        d = describe_type(name, n_markers=n_markers)
    except Llm4cellError as e:
        fail(e, debug)
    out.print(f"[bold]{d.label}[/bold] ({d.ontology_id}), matched from {d.matched_from}",
              highlight=False)
    if d.definition:
        out.print(d.definition, highlight=False)
    facts = Table(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column(overflow="fold")
    facts.add_row("synonyms", "; ".join(d.synonyms) or "-")
    facts.add_row("parents", "; ".join(f"{lab} ({i})" for i, lab in d.parents) or "-")
    facts.add_row("children", "; ".join(f"{lab} ({i})" for i, lab in d.children) or "-")
    facts.add_row("lineage / family", f"{d.lineage or '-'} / {d.family or '-'}")
    facts.add_row("engine can answer it", "yes" if d.answerable else "no (not in the "
                  "marker database)")
    facts.add_row("sources (cellconsensus)", str(d.n_sources))
    facts.add_row("strongest markers (relative support)",
                  ", ".join(f"{g} {v:.2f}" for g, v in d.markers) or "-")
    out.print(facts)
