"""The ``llm4cell`` command line: each command mirrors one Python function."""

from __future__ import annotations

import contextlib
import enum
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.core
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from .._errors import Llm4cellError
from ..llm._options import LLMOptions

err = Console(stderr=True)
out = Console()

# typer vendors click (typer._click) in recent versions and uses click itself before.
_click: Any = getattr(typer.core, "_click", None)
if _click is None:  # pragma: no cover - older typer
    import click as _click


def _error_line(message: str) -> None:
    """Print ``error: MESSAGE`` on one stderr line."""
    text = escape(" ".join(message.split()))
    err.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except _click.exceptions.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # the help is the answer
            raise
        where = e.ctx.command_path if e.ctx is not None else "llm4cell"
        _error_line(f"{e.format_message()} (see {where} --help)")
        raise typer.Exit(e.exit_code) from None


class _OneLineErrors(TyperGroup):
    """Usage errors (unknown option, bad value, missing argument) as one stderr line and
    exit code 2, as every other error of llm4cell."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with _one_line_usage_errors():
            return super().invoke(ctx)


app = typer.Typer(
    cls=_OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Cell type annotation with curated knowledge, the Cell Ontology and language models.",
)


class SpeciesChoice(str, enum.Enum):
    human = "human"
    mouse = "mouse"


class StrategyChoice(str, enum.Enum):
    zero_shot = "zero-shot"
    cot = "cot"


class WhenChoice(str, enum.Enum):
    always = "always"
    uncertain = "uncertain"


class JsonModeChoice(str, enum.Enum):
    auto = "auto"
    json_schema = "json_schema"
    json_object = "json_object"
    none = "none"


_LLM = "LLM backends"
BackendOpt = Annotated[str, typer.Option(
    help="Backend spec: knowledge (offline default), openai:MODEL, anthropic:MODEL, "
         "llamacpp:PATH.gguf, hybrid:SPEC, consensus:SPEC,SPEC,...")]
BaseUrlOpt = Annotated[str | None, typer.Option(
    help="OpenAI-compatible server URL (default: OPENAI_BASE_URL, else OpenAI).",
    rich_help_panel=_LLM)]
ApiKeyEnvOpt = Annotated[str | None, typer.Option(
    help="Environment variable holding the API key (default OPENAI_API_KEY / "
         "ANTHROPIC_API_KEY). Keys are never written anywhere.", rich_help_panel=_LLM)]
ApiKeyOpt = Annotated[str | None, typer.Option(
    help="API key (better: the environment variable, which stays out of shell history). "
         "Never written to outputs or logs.", rich_help_panel=_LLM, show_default=False)]
StrategyOpt = Annotated[StrategyChoice, typer.Option(
    help="zero-shot, or cot (reason step by step, then summarise).", rich_help_panel=_LLM)]
BatchOpt = Annotated[int, typer.Option(help="Clusters per request.", rich_help_panel=_LLM)]
ConcurrencyOpt = Annotated[int, typer.Option(help="Requests in flight at once.",
                                             rich_help_panel=_LLM)]
TimeoutOpt = Annotated[float, typer.Option(help="Seconds per request.", rich_help_panel=_LLM)]
RetriesOpt = Annotated[int, typer.Option(
    help="Retries after rate limits, server errors and timeouts (exponential backoff).",
    rich_help_panel=_LLM)]
MaxTokensOpt = Annotated[int, typer.Option(help="Output tokens per cluster.",
                                           rich_help_panel=_LLM)]
JsonModeOpt = Annotated[JsonModeChoice, typer.Option(
    help="Structured-output mode of the server (auto detects it).", rich_help_panel=_LLM)]
CacheOpt = Annotated[Path | None, typer.Option(
    help="Response cache file (default: $LLM4CELL_CACHE_DIR or ~/.cache/llm4cell).",
    rich_help_panel=_LLM)]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Bypass the response cache.",
                                          rich_help_panel=_LLM)]
WhenOpt = Annotated[WhenChoice, typer.Option(
    help="hybrid: ask the LLM always, or only where the knowledge confidence is low.",
    rich_help_panel=_LLM)]
BelowOpt = Annotated[float, typer.Option(
    help="hybrid with --llm-when uncertain: the confidence threshold.", rich_help_panel=_LLM)]
NoDiscussOpt = Annotated[bool, typer.Option(
    "--no-discuss", help="consensus: skip the discussion round.", rich_help_panel=_LLM)]
PricesOpt = Annotated[Path | None, typer.Option(
    help="Price table (JSON/TOML, USD per million tokens) overriding the shipped one.",
    rich_help_panel=_LLM)]


#: The LLM flags shared by ``annotate`` and ``markers`` (typer needs them in each
#: signature; their defaults come from LLMOptions so the two cannot drift).
_LLM_FLAGS = ("base_url", "api_key_env", "api_key", "strategy", "batch_size", "concurrency",
              "timeout", "retries", "max_tokens", "json_mode", "cache", "no_cache",
              "llm_when", "uncertain_below", "no_discuss", "prices")
_DEFAULT = {k: f.default for k, f in LLMOptions.model_fields.items()}


def _llm_options(backend: str, **kw: object) -> object:
    """LLMOptions from the CLI flags (None for the knowledge backend)."""
    if backend.strip().lower() == "knowledge":
        return None
    from ..llm._runner import load_prices

    prices = kw.pop("prices")
    no_cache = kw.pop("no_cache")
    no_discuss = kw.pop("no_discuss")
    data = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in kw.items()}
    data["cache_path"] = data.pop("cache")
    data["cache"] = not no_cache
    data["discuss"] = not no_discuss
    if prices is not None:
        data["prices"] = load_prices(prices)  # type: ignore[arg-type]
    try:
        return LLMOptions.model_validate(data)
    except ValueError as e:
        from .._errors import InputError

        first = e.errors()[0]  # type: ignore[attr-defined]
        opt = "--" + str(first["loc"][0]).replace("_", "-")
        msg = f"{opt}: {first['msg']}"
        raise InputError(msg) from None


def _usage_line(prov: object) -> str | None:
    """One line of LLM accounting from a provenance record (summed over members)."""
    from ..llm._runner import usage_totals

    if not _has_usage(prov):
        return None
    t = usage_totals(prov)
    line = (f"LLM: {int(t['requests'])} requests, {int(t['cache_hits'])} cache hits, "
            f"{int(t['retries'])} retries, {int(t['prompt_tokens']):,} prompt + "
            f"{int(t['completion_tokens']):,} completion tokens")
    if t["cost_usd"] == t["cost_usd"]:  # not NaN: some price is known
        line += f", cost ${t['cost_usd']:.4f}"
    return line


def _has_usage(x: object) -> bool:
    if isinstance(x, dict):
        return isinstance(x.get("usage"), dict) or any(_has_usage(v) for v in x.values())
    if isinstance(x, list):
        return any(_has_usage(v) for v in x)
    return False


def _fail(e: BaseException, debug: bool) -> None:
    if debug:
        raise e
    _error_line(str(e))
    raise typer.Exit(code=2)


@app.callback()
def _main() -> None:
    """llm4cell: Cell Ontology-grounded cell type labels, offline by default."""


@app.command()
def annotate(
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
    key_added: Annotated[str, typer.Option(help="Prefix of the obs keys written.")] = "cell_type",
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
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    api_key: ApiKeyOpt = None,
    strategy: StrategyOpt = StrategyChoice.zero_shot,
    batch_size: BatchOpt = _DEFAULT["batch_size"],
    concurrency: ConcurrencyOpt = _DEFAULT["concurrency"],
    timeout: TimeoutOpt = _DEFAULT["timeout"],
    retries: RetriesOpt = _DEFAULT["retries"],
    max_tokens: MaxTokensOpt = _DEFAULT["max_tokens"],
    json_mode: JsonModeOpt = JsonModeChoice.auto,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    llm_when: WhenOpt = WhenChoice.always,
    uncertain_below: BelowOpt = _DEFAULT["uncertain_below"],
    no_discuss: NoDiscussOpt = False,
    prices: PricesOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
) -> None:
    """Annotate cell types of DATA with Cell Ontology labels, confidence and evidence."""
    try:
        options = _llm_options(backend, **{k: v for k, v in locals().items()
                                           if k in _LLM_FLAGS})
        _annotate(
            data, output, tissue=tissue, species=species.value, groupby=groupby,
            backend=backend, backend_options=options, report=report, csv=csv,
            key_added=key_added, layer=layer, resolution=resolution, n_markers=n_markers,
            random_state=random_state, demo=demo, overwrite=overwrite_key,
        )
    except Llm4cellError as e:
        _fail(e, debug)


def _annotate(
    data: Path | None, output: Path, *, demo: bool, report: Path | None, csv: Path | None,
    overwrite: bool, **kwargs: Any,
) -> None:
    """Check everything that can be checked, read, annotate, then write the output set."""
    from .._errors import InputError
    from .._io import check_outputs, read_data
    from ..annotation._annotate import check_params

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

    import anndata as ad

    from ..annotation._annotate import run_annotation, write_outputs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", category=ad.ImplicitModificationWarning)
        if demo:
            import scanpy as sc

            adata = sc.datasets.pbmc68k_reduced()
            source = "demo: scanpy's pbmc68k_reduced (PBMCs), tissue blood"
            if kwargs.get("tissue") is None:
                kwargs["tissue"] = "blood"
        else:
            with err.status(f"Reading {data}"):
                adata = read_data(data)  # type: ignore[arg-type]
            source = str(data)
        result, expr = run_annotation(adata, overwrite=overwrite, progress=True, **kwargs)
        result.to_adata(adata, overwrite=overwrite)
        with err.status(f"Writing {output}"):
            write_outputs(adata, result, expr, h5ad=output, csv=csv_path, report=report,
                          random_state=kwargs["random_state"])
    err.print(f"Annotated {adata.n_obs} cells x {adata.n_vars} genes from {source}")
    _print_summary(adata, str(kwargs.get("key_added", "cell_type")))
    usage = _usage_line(adata.uns["llm4cell"].get("annotator"))
    if usage:
        err.print(usage, highlight=False)
    err.print(f"Wrote {output}")
    err.print(f"Wrote {csv_path}")
    if report is not None:
        err.print(f"Wrote {report}")


def _print_summary(adata: object, key: str) -> None:
    groups = adata.uns["llm4cell"]["groups"]  # type: ignore[attr-defined]
    table = Table(title="llm4cell annotation", show_lines=False)
    for col in ("group", "cells", "label", "CL ID", "confidence"):
        table.add_column(col)
    for g, r in groups.iterrows():
        table.add_row(str(g), str(r["n_cells"]), str(r["label"]), str(r["ontology_id"]),
                      f"{float(r['confidence']):.2f}")
    out.print(table)


@app.command("markers")
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
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    api_key: ApiKeyOpt = None,
    strategy: StrategyOpt = StrategyChoice.zero_shot,
    batch_size: BatchOpt = _DEFAULT["batch_size"],
    concurrency: ConcurrencyOpt = _DEFAULT["concurrency"],
    timeout: TimeoutOpt = _DEFAULT["timeout"],
    retries: RetriesOpt = _DEFAULT["retries"],
    max_tokens: MaxTokensOpt = _DEFAULT["max_tokens"],
    json_mode: JsonModeOpt = JsonModeChoice.auto,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    llm_when: WhenOpt = WhenChoice.always,
    uncertain_below: BelowOpt = _DEFAULT["uncertain_below"],
    no_discuss: NoDiscussOpt = False,
    prices: PricesOpt = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
) -> None:
    """Annotate marker gene lists (no expression data) with Cell Ontology terms."""
    try:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        from .._io import check_outputs, write_csv
        from ..annotation._markers import annotate_markers, check_n_markers

        check_n_markers(n_markers)
        check_outputs([output], [markers], flags=["-o"])
        options = _llm_options(backend, **{k: v for k, v in locals().items()
                                           if k in _LLM_FLAGS})
        with Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as bar:
            task = bar.add_task(f"Annotating {markers.name} ({backend})", total=None)

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            table = annotate_markers(markers, backend=backend, backend_options=options,  # type: ignore[arg-type]
                                     tissue=tissue, species=species.value,
                                     n_markers=n_markers, progress=tick)
        write_csv(table, output)
    except Llm4cellError as e:
        _fail(e, debug)
        return
    summary = Table(title=f"llm4cell markers ({backend})")
    for col in ("id", "label", "CL ID", "confidence"):
        summary.add_column(col)
    for _, r in table.iterrows():
        summary.add_row(str(r["id"]), str(r["label"]), str(r["ontology_id"]),
                        f"{float(r['confidence']):.2f}")
    Console(width=max(out.width, 120)).print(summary)
    usage = _usage_line(table.attrs.get("provenance"))
    if usage:
        err.print(usage, highlight=False)
    err.print(f"Wrote {output}")


@app.command("score")
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
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")] = False,
) -> None:
    """Score predictions against the truth on the Cell Ontology graph."""
    try:
        from .._io import check_outputs, write_set
        from ..metrics._score import score

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
        _fail(e, debug)
        return
    _print_scores(result)
    for path in (json_out, csv_out):
        if path is not None:
            err.print(f"Wrote {path}")


def _print_scores(result: object) -> None:
    summary = result.summary  # type: ignore[attr-defined]
    params = result.params  # type: ignore[attr-defined]
    table = Table(title=f"llm4cell score: {params['pred_col']} vs {params['truth_col']} "
                        f"(Cell Ontology {params['cl_version']})")
    headers = {
        "n": "n", "n_unscored": "unscored", "agreement": "agree", "full_match": "full",
        "partial_match": "partial", "hierarchical_f1": "hF1", "lca_similarity": "LCA",
        "exact_match": "exact", "rouge1_f1": "ROUGE1", "ece": "ECE",
    }
    show = [c for c in headers if c in summary.columns]
    table.add_column("group", overflow="fold")
    for c in show:
        table.add_column(headers[c], justify="right", no_wrap=True)
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


# The arena's commands reuse the option types above, so they register last.


def main() -> None:
    """Console-script entry point."""
    try:
        app(prog_name="llm4cell")
    except SystemExit as e:
        from .._io import failed_write_happened

        if failed_write_happened():
            # The error line is out and no output was left behind; leave without the
            # interpreter's teardown, in which HDF5 crashes after a failed h5ad write.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(e.code if isinstance(e.code, int) else 1)
        raise

