"""``llm4cell annotate``: :func:`llm4cell.run_annotation` on a file; the result writes
itself (:meth:`~llm4cell.AnnotationResult.write`, one set) and the command prints from it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Any

import anndata as ad
import scanpy as sc
import typer
from rich.table import Table

from .._errors import InputError, Llm4cellError
from .._io import check_outputs, read_data
from ..annotation._annotate import run_annotation
from ..annotation._checks import check_params
from ..annotation._keys import DEFAULT_KEY
from ..annotation._result import AnnotationResult
from ._app import DebugOpt, SpeciesChoice, err, fail, out
from ._llm_options import BackendOpt, LLMFlags, llm_flags, usage_line

__all__ = ["annotate_cmd"]


@llm_flags()
def annotate_cmd(
    data: Annotated[
        Path | None,
        typer.Argument(help="Input: .h5ad file, 10x .h5 file or 10x mtx folder."),
    ] = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Annotated .h5ad to write (never the input).")
    ] = Path("annotated.h5ad"),
    tissue: Annotated[
        str | None, typer.Option(help="Tissue of origin, e.g. blood, liver, lung.")
    ] = None,
    species: Annotated[
        SpeciesChoice, typer.Option(help="Species of the gene symbols.")
    ] = SpeciesChoice.human,
    groupby: Annotated[
        str | None, typer.Option(help="obs column with your clusters (default: Leiden).")
    ] = None,
    backend: BackendOpt = "knowledge",
    report: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report here.")
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(help="Per-group CSV table (default: OUTPUT with .csv suffix)."),
    ] = None,
    key_added: Annotated[str, typer.Option(help="Prefix of the obs keys written.")
                         ] = DEFAULT_KEY,
    overwrite_key: Annotated[
        bool, typer.Option("--overwrite-key",
                           help="Replace obs columns of --key-added that exist already "
                                "(otherwise refused).")
    ] = False,
    layer: Annotated[
        str | None, typer.Option(help="Layer with counts or log-normalised values to use.")
    ] = None,
    resolution: Annotated[float, typer.Option(help="Leiden resolution.")] = 1.0,
    n_markers: Annotated[int, typer.Option(help="Marker genes per group.")] = 25,
    random_state: Annotated[int, typer.Option(help="Seed for PCA, neighbours, Leiden.")] = 0,
    demo: Annotated[
        bool, typer.Option("--demo", help="Run on scanpy's bundled pbmc68k_reduced data.")
    ] = False,
    debug: DebugOpt = False,
    *,
    llm: LLMFlags,
) -> None:
    """Annotate cell types of DATA with Cell Ontology labels, confidence and evidence."""
    try:
        options = llm.options(backend)
        _annotate(
            data, output, tissue=tissue, species=species.value, groupby=groupby,
            backend=backend, backend_options=options, report=report, csv=csv,
            key_added=key_added, layer=layer, resolution=resolution, n_markers=n_markers,
            random_state=random_state, demo=demo, overwrite=overwrite_key,
        )
    except Llm4cellError as e:
        fail(e, debug)


def _annotate(
    data: Path | None, output: Path, *, demo: bool, report: Path | None, csv: Path | None,
    overwrite: bool, **kwargs: Any,
) -> None:
    """Check everything that can be checked, read, annotate, then write the output set."""
    check_params(**{k: kwargs[k] for k in ("key_added", "resolution", "n_markers",
                                           "random_state", "species")})
    if demo == (data is not None):
        msg = "give either DATA or --demo (exactly one)"
        raise InputError(msg)
    if output.suffix.lower() != ".h5ad":
        msg = f"the output {str(output)!r} must end in .h5ad"
        raise InputError(msg)
    csv_path = csv if csv is not None else output.with_suffix(".csv")
    check_outputs([output, csv_path, report], [data], flags=["-o", "--csv", "--report"])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", category=ad.ImplicitModificationWarning)
        if demo:
            adata = sc.datasets.pbmc68k_reduced()
            source = "demo: scanpy's pbmc68k_reduced (PBMCs), tissue blood"
            if kwargs.get("tissue") is None:
                kwargs["tissue"] = "blood"
        else:
            with err.status(f"Reading {data}"):
                adata = read_data(data)  # type: ignore[arg-type]
            source = str(data)
        result = run_annotation(adata, overwrite=overwrite, progress=True, **kwargs)
        result.to_adata(adata, overwrite=overwrite)
        with err.status(f"Writing {output}"):
            result.write(adata, h5ad=output, csv=csv_path, report=report)
    err.print(f"Annotated {adata.n_obs} cells x {adata.n_vars} genes from {source}")
    _print_summary(result)
    usage = usage_line(result.provenance.get("annotator"))
    if usage:
        err.print(usage, highlight=False)
    err.print(f"Wrote {output}")
    err.print(f"Wrote {csv_path}")
    if report is not None:
        err.print(f"Wrote {report}")


def _print_summary(result: AnnotationResult) -> None:
    """The result's summary: one row per label, most cells first."""
    table = Table(title="llm4cell annotation", show_lines=False)
    for col in ("label", "CL ID", "groups", "cells", "confidence"):
        table.add_column(col)
    for _, r in result.summary().iterrows():
        table.add_row(str(r["label"]), str(r["ontology_id"]), str(r["n_groups"]),
                      str(r["n_cells"]), f"{float(r['mean_confidence']):.2f}")
    out.print(table)
