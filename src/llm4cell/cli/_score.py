"""``llm4cell score``: predictions against the truth on the Cell Ontology graph."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from .._errors import Llm4cellError
from .._io import check_outputs, write_set
from ..metrics._score import score
from ._app import DebugOpt, err, fail, out

__all__ = ["score_cmd"]

#: Summary column -> table header, in the order shown.
_HEADERS = {
    "n": "n", "n_unscored": "unscored", "agreement": "agree", "full_match": "full",
    "partial_match": "partial", "hierarchical_f1": "hF1", "lca_similarity": "LCA",
    "exact_match": "exact", "rouge1_f1": "ROUGE1", "ece": "ECE",
}


def score_cmd(
    pred: Annotated[
        Path, typer.Argument(help="Predictions: CSV/TSV table, or an annotated .h5ad.")
    ],
    truth: Annotated[
        Path | None,
        typer.Option(help="Table of true labels (omit when PRED holds the truth column)."),
    ] = None,
    id_col: Annotated[str | None, typer.Option(help="Column joining PRED and TRUTH.")] = None,
    pred_col: Annotated[
        str | None, typer.Option(help="Predicted cell type column (CL IDs or text).")
    ] = None,
    truth_col: Annotated[
        str | None, typer.Option(help="True cell type column (CL IDs or text).")
    ] = None,
    tissue_col: Annotated[
        str | None, typer.Option(help="Tissue column, used to map ambiguous text.")
    ] = None,
    confidence_col: Annotated[
        str | None, typer.Option(help="Confidence column in [0, 1] (adds calibration).")
    ] = None,
    weight_col: Annotated[
        str | None, typer.Option(help="Row weight column, e.g. n_cells (cell-weighted means).")
    ] = None,
    by: Annotated[
        list[str] | None, typer.Option(help="Break results down by this column (repeatable).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write summary and per-row results as JSON.")
    ] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="Write the per-row results as CSV.")
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Score predictions against the truth on the Cell Ontology graph."""
    try:
        check_outputs([csv_out, json_out], [pred, truth], flags=["--csv", "--json"])
        result = score(
            pred, truth, id_col=id_col, pred_col=pred_col, truth_col=truth_col,
            tissue_col=tissue_col, confidence_col=confidence_col, weight_col=weight_col,
            by=by,
        )
        writers: list[tuple[Path, Any]] = []
        if csv_out is not None:
            writers.append((csv_out, lambda p: result.rows.to_csv(p, index=False)))
        if json_out is not None:
            doc = result.to_json()
            writers.append((json_out, lambda p: p.write_text(doc, encoding="utf-8")))
        write_set(writers)
    except (Llm4cellError, ValueError) as e:
        fail(e, debug)
    _print_scores(result)
    for path in (json_out, csv_out):
        if path is not None:
            err.print(f"Wrote {path}")


def _print_scores(result: Any) -> None:
    summary = result.summary
    params = result.params
    table = Table(title=f"llm4cell score: {params['pred_col']} vs {params['truth_col']} "
                        f"(Cell Ontology {params['cl_version']})")
    show = [c for c in _HEADERS if c in summary.columns]
    table.add_column("group", overflow="fold")
    for c in show:
        table.add_column(_HEADERS[c], justify="right", no_wrap=True)
    for idx, row in summary.iterrows():
        name = " / ".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
        cells = []
        for c in show:
            v = row[c]
            cells.append(str(int(v)) if c in ("n", "n_unscored") else f"{float(v):.3f}")
        table.add_row(name, *cells)
    wide = Console(width=max(out.width, 150))
    wide.print(table)
    wide.print(
        "agree: ontology agreement 1/0.5/0; full/partial: share of 1 and 0.5; hF1: "
        "hierarchical F1; LCA: Wu-Palmer similarity; exact/ROUGE1: SOAR text metrics; "
        "ECE: calibration error. Rules: llm4cell.metrics.",
        style="dim",
    )
