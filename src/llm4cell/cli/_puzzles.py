"""``llm4cell puzzles build|solve|score``: CellPuzzles, Cell-o1's batch-level task."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .._errors import Llm4cellError
from .._io import check_outputs, read_data, write_set
from ..annotators._registry import build_backend
from ..bench._store import refuse_overwriting_inputs
from ..puzzles._build import build_puzzles
from ..puzzles._io import read_answers, read_puzzles, write_answers, write_puzzles
from ..puzzles._records import Puzzle, PuzzleAnswer
from ..puzzles._score import score_puzzles
from ..puzzles._solve import solve_puzzles
from ._app import DebugOpt, SpeciesChoice, err, fail, out, progress_bar
from ._llm_options import BackendOpt, LLMFlags, llm_flags, usage_line

__all__ = ["build_cmd", "puzzles_app", "score_cmd", "solve_cmd"]

puzzles_app = typer.Typer(
    no_args_is_help=True,
    help="CellPuzzles (Cell-o1's batch-level task): build puzzles from labelled data, "
         "solve them with any backend, score the answers.",
)

#: The LLM flags of ``puzzles solve``: no batches, strategies or combiner settings.
_SOLVE_FLAGS = ("base_url", "api_key_env", "api_key", "concurrency", "timeout", "retries",
                "max_tokens", "json_mode", "cache", "no_cache", "prices")


def _check_outputs(outputs: list[Path], inputs: list[tuple[str, Path | None]],
                   flags: list[str]) -> None:
    """Before any work: no output is an input (the message names which), no two outputs
    are one file, none is a folder and each folder takes new files."""
    refuse_overwriting_inputs(outputs, inputs)
    check_outputs(outputs, flags=flags)


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
        fail(e, debug)
    _print_built(puzzles)
    err.print(f"Wrote {output}")


def _print_built(puzzles: list[Puzzle]) -> None:
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


@llm_flags(only=_SOLVE_FLAGS, help_text={
    "max_tokens": "Output tokens per cell (a puzzle of N cells may use N times as many)."})
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
    debug: DebugOpt = False,
    *,
    llm: LLMFlags,
) -> None:
    """Solve puzzles: knowledge (assignment), random, an LLM, hybrid: or consensus:."""
    try:
        _check_outputs([output], [("the puzzles", puzzles_path), ("--prices", llm["prices"]),
                                  ("--cache", llm["cache"])], ["-o"])
        puzzles = read_puzzles(puzzles_path)
        options = llm.options(backend, offline=("knowledge", "random"))
        # built here (not by solve_puzzles) to name it and report its LLM usage after
        solver = build_backend(backend, options, task="puzzles",
                               assignment=not no_assignment, seed=seed)
        with progress_bar() as bar:
            task = bar.add_task(f"Solving {len(puzzles)} puzzles ({solver.name})",
                                total=len(puzzles))

            def tick(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            answers = solve_puzzles(puzzles, backend=solver, progress=tick)
        write_answers(answers, output)
    except Llm4cellError as e:
        fail(e, debug)
    _print_solved(answers, solver.name, usage_line(solver.provenance()), output)


def _print_solved(answers: list[PuzzleAnswer], name: str, usage: str | None,
                  output: Path) -> None:
    ok = sum(a.format_ok for a in answers)
    unique = sum(a.unique for a in answers)
    err.print(f"{len(answers)} puzzles solved by {name}: {ok} well-formed, "
              f"{unique} with unique labels", highlight=False)
    if usage:
        err.print(usage, highlight=False)
    if all(a.answer is not None for a in answers):
        row = score_puzzles(answers).summary.iloc[0]
        err.print(f"cell-level accuracy {row['cell_accuracy']:.3f}, batch-level accuracy "
                  f"{row['batch_accuracy']:.3f} (llm4cell puzzles score {output})",
                  highlight=False)
    err.print(f"Wrote {output}")


#: Puzzle summary column -> table header, in the order shown.
_SCORE_HEADERS = {"n_puzzles": "puzzles", "cell_accuracy": "cell acc",
                  "batch_accuracy": "batch acc", "format_compliance": "format ok",
                  "uniqueness": "unique", "agreement": "CL agree", "full_match": "CL full"}


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
        fail(e, debug)
    backends = sorted({a.backend for a in answers})
    table = Table(title=f"llm4cell puzzles score ({', '.join(backends)})")
    table.add_column("N")
    for h in _SCORE_HEADERS.values():
        table.add_column(h, justify="right")
    for key, row in scores.summary.iterrows():
        table.add_row(str(key), *[str(int(row[c])) if c == "n_puzzles" else f"{row[c]:.3f}"
                                  for c in _SCORE_HEADERS])
    Console(width=max(out.width, 110)).print(table)
    err.print("cell acc: positions right; batch acc: puzzles fully right; a malformed answer "
              "scores 0; CL agree: Cell Ontology agreement 1/0.5/0 per cell.", style="dim")
    for path in (json_out, csv_out):
        if path is not None:
            err.print(f"Wrote {path}")

