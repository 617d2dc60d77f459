"""The arena's commands: ``llm4cell puzzles build|solve|score`` and ``llm4cell bench``.

Registered on the main app by :mod:`llm4cell.cli` (which this module imports from).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from .._errors import Llm4cellError
from ._main import (
    _DEFAULT,
    ApiKeyEnvOpt,
    ApiKeyOpt,
    BackendOpt,
    BaseUrlOpt,
    CacheOpt,
    ConcurrencyOpt,
    JsonModeChoice,
    JsonModeOpt,
    NoCacheOpt,
    PricesOpt,
    RetriesOpt,
    SpeciesChoice,
    TimeoutOpt,
    _fail,
    _llm_options,
    _usage_line,
    err,
    out,
)

puzzles_app = typer.Typer(
    no_args_is_help=True,
    help="CellPuzzles (Cell-o1's batch-level task): build puzzles from labelled data, "
         "solve them with any backend, score the answers.",
)

DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")]


def _check_outputs(outputs: list[Path], inputs: list[tuple[str, Path | None]],
                   flags: list[str]) -> None:
    """Before any work: no output is an input (the message names which), no two outputs
    are one file, none is a folder and each folder takes new files."""
    from .._io import check_outputs
    from ..bench._store import refuse_overwriting_inputs

    refuse_overwriting_inputs(outputs, inputs)
    check_outputs(outputs, flags=flags)


def _bar() -> Progress:
    return Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


@puzzles_app.command("build")
def build_cmd(
    data: Annotated[Path, typer.Argument(help="Labelled .h5ad (or 10x) file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Puzzles JSONL to write.")],
    label_col: Annotated[str, typer.Option(help="obs column with the true cell types.")],
    donor_col: Annotated[str | None, typer.Option(
        help="obs column with donors (default: all cells are one donor).")] = None,
    batch_col: Annotated[str | None, typer.Option(
        help="obs column with batches, grouped within donors.")] = None,
    context_cols: Annotated[list[str] | None, typer.Option(
        help="obs column(s) for the context sentence (repeatable or comma-separated), "
             "e.g. sex, development_stage, disease.")] = None,
    label_id_col: Annotated[str | None, typer.Option(
        help="obs column with the labels' CL IDs (default: LABEL_COL_ontology_term_id "
             "when present).")] = None,
    n_min: Annotated[int, typer.Option(help="Smallest puzzle (cells = candidates).")] = 8,
    n_max: Annotated[int, typer.Option(help="Largest puzzle.")] = 15,
    top_genes: Annotated[int, typer.Option(help="Top expressed genes per cell.")] = 50,
    per_n: Annotated[int, typer.Option(help="Puzzles per size N.")] = 40,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    tissue: Annotated[str | None, typer.Option(help="Tissue, written into each puzzle.")] = None,
    species: Annotated[SpeciesChoice, typer.Option(help="Species of the gene symbols.")
                       ] = SpeciesChoice.human,
    layer: Annotated[str | None, typer.Option(help="Layer to take expression from.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Draw puzzles of N cells of N distinct types per donor from a labelled dataset."""
    try:
        from .._io import read_data
        from ..puzzles._puzzles import build_puzzles, write_puzzles

        _check_outputs([output], [("the data", data)], ["-o"])
        cols = [c.strip() for v in (context_cols or []) for c in v.split(",") if c.strip()]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            with err.status(f"Reading {data}"):
                adata = read_data(data)
            with err.status("Drawing puzzles"):
                puzzles = build_puzzles(
                    adata, label_col=label_col, donor_col=donor_col, batch_col=batch_col,
                    context_cols=cols, label_id_col=label_id_col, n_min=n_min, n_max=n_max,
                    top_genes=top_genes, per_n=per_n, seed=seed, tissue=tissue,
                    species=species.value, layer=layer, source=data.name,
                )
        write_puzzles(puzzles, output)
    except Llm4cellError as e:
        _fail(e, debug)
        return
    by_n: dict[int, int] = {}
    for p in puzzles:
        by_n[p.n] = by_n.get(p.n, 0) + 1
    groups = len({(p.donor, p.batch) for p in puzzles})
    sizes = ", ".join(f"N={n}: {k}" for n, k in sorted(by_n.items()))
    err.print(f"{len(puzzles)} puzzles from {groups} donor group(s) ({sizes})")
    unmapped = sorted({c for p in puzzles for c, i in p.candidate_ids.items() if i is None})
    if unmapped:
        err.print(f"labels without a Cell Ontology ID (exact match only): {unmapped}",
                  highlight=False)
    err.print(f"Wrote {output}")


@puzzles_app.command("solve")
def solve_cmd(
    puzzles_path: Annotated[Path, typer.Argument(
        metavar="PUZZLES", help="Puzzles: llm4cell JSONL, or Cell-o1 records (JSON/JSONL/"
                                "Parquet with user_msg/question and assistant_msg/answer).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Answers JSONL to write.")],
    backend: BackendOpt = "knowledge",
    no_assignment: Annotated[bool, typer.Option(
        "--no-assignment", help="knowledge: each cell's best candidate, without the "
                                "one-to-one assignment (for comparison).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the random backend.")] = 0,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    api_key: ApiKeyOpt = None,
    concurrency: ConcurrencyOpt = _DEFAULT["concurrency"],
    timeout: TimeoutOpt = _DEFAULT["timeout"],
    retries: RetriesOpt = _DEFAULT["retries"],
    max_tokens: Annotated[int, typer.Option(
        help="Output tokens per cell (a puzzle of N cells may use N times as many).",
        rich_help_panel="LLM backends")] = _DEFAULT["max_tokens"],
    json_mode: JsonModeOpt = JsonModeChoice.auto,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
    prices: PricesOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Solve puzzles: knowledge (assignment), random, an LLM, hybrid: or consensus:."""
    try:
        from ..puzzles._puzzles import read_puzzles, write_answers
        from ..puzzles._solvers import get_solver

        _check_outputs([output], [("the puzzles", puzzles_path), ("--prices", prices),
                                  ("--cache", cache)], ["-o"])
        puzzles = read_puzzles(puzzles_path)
        options = None
        if backend.strip().lower() not in ("knowledge", "random"):
            options = _llm_options(
                backend, base_url=base_url, api_key_env=api_key_env, api_key=api_key,
                concurrency=concurrency, timeout=timeout, retries=retries,
                max_tokens=max_tokens, json_mode=json_mode, cache=cache, no_cache=no_cache,
                no_discuss=False, prices=prices,
            )
        solver = get_solver(backend, options, assignment=not no_assignment, seed=seed)
        with _bar() as bar:
            task = bar.add_task(f"Solving {len(puzzles)} puzzles ({solver.name})",
                                total=len(puzzles))

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            answers = solver.solve(puzzles, progress=tick)
        write_answers(answers, output)
    except Llm4cellError as e:
        _fail(e, debug)
        return
    ok = sum(a.format_ok for a in answers)
    unique = sum(a.unique for a in answers)
    err.print(f"{len(answers)} puzzles solved by {solver.name}: {ok} well-formed, "
              f"{unique} with unique labels", highlight=False)
    usage = _usage_line(solver.provenance())
    if usage:
        err.print(usage, highlight=False)
    if all(a.answer is not None for a in answers):
        from ..puzzles._puzzles import score_puzzles

        row = score_puzzles(answers).summary.iloc[0]
        err.print(f"cell-level accuracy {row['cell_accuracy']:.3f}, batch-level accuracy "
                  f"{row['batch_accuracy']:.3f} (llm4cell puzzles score {output})",
                  highlight=False)
    err.print(f"Wrote {output}")


@puzzles_app.command("score")
def score_cmd(
    answers_path: Annotated[Path, typer.Argument(
        metavar="ANSWERS", help="Answers JSONL written by `llm4cell puzzles solve`.")],
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the summary (overall and by N) as JSON.")] = None,
    csv_out: Annotated[Path | None, typer.Option(
        "--csv", help="Write the per-cell results as CSV.")] = None,
    debug: DebugOpt = False,
) -> None:
    """Cell-level and batch-level accuracy, format compliance, uniqueness, by N."""
    try:
        from .._io import write_set
        from ..puzzles._puzzles import read_answers, score_puzzles

        chosen = [(p, f) for p, f in ((json_out, "--json"), (csv_out, "--csv"))
                  if p is not None]
        _check_outputs([p for p, _ in chosen], [("the answers", answers_path)],
                       [f for _, f in chosen])
        answers = read_answers(answers_path)
        scores = score_puzzles(answers)
        summary = scores.summary.reset_index().to_json(orient="records", indent=1)
        writers = {
            "--json": lambda p: p.write_text(summary, encoding="utf-8"),
            "--csv": lambda p: scores.per_cell.to_csv(p, index=False),
        }
        write_set([(p, writers[f]) for p, f in chosen])  # both files or neither
    except Llm4cellError as e:
        _fail(e, debug)
        return
    backends = sorted({a.backend for a in answers})
    table = Table(title=f"llm4cell puzzles score ({', '.join(backends)})")
    heads = {"n_puzzles": "puzzles", "cell_accuracy": "cell acc", "batch_accuracy": "batch acc",
             "format_compliance": "format ok", "uniqueness": "unique",
             "agreement": "CL agree", "full_match": "CL full"}
    table.add_column("N")
    for h in heads.values():
        table.add_column(h, justify="right")
    for key, row in scores.summary.iterrows():
        table.add_row(str(key), *[str(int(row[c])) if c == "n_puzzles" else f"{row[c]:.3f}"
                                  for c in heads])
    Console(width=max(out.width, 110)).print(table)
    err.print("cell acc: positions right; batch acc: puzzles fully right; a malformed answer "
              "scores 0; CL agree: Cell Ontology agreement 1/0.5/0 per cell.", style="dim")
    for path in (json_out, csv_out):
        if path is not None:
            err.print(f"Wrote {path}")


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
        from ..bench._run import run_bench

        with _bar() as bar:
            task = bar.add_task("Loading datasets and checking backends", total=None)

            def tick(label: str, done: int, total: int) -> None:
                bar.update(task, description=label, completed=done, total=total)

            result = run_bench(config, output=output, progress=tick)
    except Llm4cellError as e:
        _fail(e, debug)
        return
    except KeyboardInterrupt:
        err.print("interrupted: the finished items are stored; re-run the same command to "
                  "resume", highlight=False)
        raise typer.Exit(code=130) from None
    board = result.leaderboard
    overall = board[board["dataset"] == "overall"]
    table = Table(title="llm4cell bench: overall (macro mean over datasets)")
    cols = {"agreement": "agree", "full_match": "full", "hierarchical_f1": "hF1",
            "ece": "ECE", "batch_accuracy": "puzzle batch acc", "requests": "requests",
            "tokens": "tokens", "cost_usd": "cost $"}
    table.add_column("annotator")
    for h in cols.values():
        table.add_column(h, justify="right")
    for _, r in overall.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if v != v:  # NaN
                cells.append("–")
            elif c in ("requests", "tokens"):
                cells.append(f"{int(v):,}")
            else:
                cells.append(f"{float(v):.4f}" if c == "cost_usd" else f"{float(v):.3f}")
        table.add_row(str(r["annotator"]), *cells)
    Console(width=max(out.width, 120)).print(table)
    err.print(f"{result.computed} units computed, {result.skipped} found done in the store",
              highlight=False)
    for name in ("leaderboard_md", "leaderboard_csv", "report", "items", "store"):
        err.print(f"Wrote {result.outputs[name]}")
