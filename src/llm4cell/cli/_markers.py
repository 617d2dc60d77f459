"""``llm4cell markers``: :func:`llm4cell.annotate_markers` on a marker table file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from .._errors import Llm4cellError
from .._io import check_outputs, write_csv
from ..annotation._markers import annotate_markers, check_n_markers
from ._app import DebugOpt, SpeciesChoice, err, fail, out, progress_bar
from ._llm_options import BackendOpt, LLMFlags, llm_flags, usage_line

__all__ = ["markers_cmd"]


@llm_flags()
def markers_cmd(
    markers: Annotated[
        Path,
        typer.Argument(help="Marker table: id + markers, Seurat FindAllMarkers or scanpy "
                       "rank_genes_groups export (CSV/TSV)."),
    ],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Predictions CSV to write.")
    ] = Path("predictions.csv"),
    backend: BackendOpt = "knowledge",
    tissue: Annotated[
        str | None, typer.Option(help="Tissue for rows without a tissue column value.")
    ] = None,
    species: Annotated[
        SpeciesChoice, typer.Option(help="Species for rows without a species value.")
    ] = SpeciesChoice.human,
    n_markers: Annotated[int, typer.Option(help="At most this many genes per cluster.")] = 50,
    debug: DebugOpt = False,
    *,
    llm: LLMFlags,
) -> None:
    """Annotate marker gene lists (no expression data) with Cell Ontology terms."""
    try:
        check_n_markers(n_markers)
        check_outputs([output], [markers], flags=["-o"])
        options = llm.options(backend)
        with progress_bar() as bar:
            task = bar.add_task(f"Annotating {markers.name} ({backend})", total=None)

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            table = annotate_markers(markers, backend=backend, backend_options=options,
                                     tissue=tissue, species=species.value,
                                     n_markers=n_markers, progress=tick)
        write_csv(table, output)
    except Llm4cellError as e:
        fail(e, debug)
    _print_table(table, backend)
    usage = usage_line(table.attrs.get("provenance"))
    if usage:
        err.print(usage, highlight=False)
    err.print(f"Wrote {output}")


def _print_table(table: pd.DataFrame, backend: str) -> None:
    summary = Table(title=f"llm4cell markers ({backend})")
    for col in ("id", "label", "CL ID", "confidence"):
        summary.add_column(col)
    for _, r in table.iterrows():
        summary.add_row(str(r["id"]), str(r["label"]), str(r["ontology_id"]),
                        f"{float(r['confidence']):.2f}")
    Console(width=max(out.width, 120)).print(summary)
