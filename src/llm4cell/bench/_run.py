"""The arena: a grid of annotators by datasets, stored item by item, with a leaderboard.

A bench config names the annotators and the datasets (see :mod:`._config`); the datasets
are loaded into units (:mod:`._datasets`); every annotator is built for every dataset
through the backend registry (:func:`llm4cell.annotators.build_backend`, task
``"puzzles"`` for puzzles, ``"clusters"`` otherwise, with the dataset's label set and the
seed as context); answers become scored rows (:mod:`._items`).

Three baselines always run beside the annotators: ``random`` (a random type from the
dataset's true types; for puzzles a random permutation), ``most-frequent`` (the most
frequent true type; for puzzles that type in every position) and ``knowledge`` (added
when the config does not list it).

Every scored item becomes one row of an SQLite store (``results.sqlite`` in the output
folder) keyed by a run key (a hash of the annotator's and the dataset's configuration)
and the item id. Work goes in chunks, each committed as it finishes; a re-run skips
stored items, so an interrupted bench resumes where it stopped (LLM responses are also
in the response cache). When every run is complete the outputs are written: the item
table (``items.csv``), the leaderboard (``leaderboard.md``, ``leaderboard.csv``), the
plots (``agreement.png``, ``reliability.png``, ``puzzles_by_n.png``) and a
self-contained ``report.html``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from .._errors import BackendError, InputError, Llm4cellError
from .._io import check_outputs, write_set
from .._records import Annotation
from ..annotators._registry import build_backend
from ..llm._options import BASELINES, LLMOptions
from ..llm._runner import usage_totals
from ._config import BenchConfig, dataset_path, load_config, redact_tree, redact_urls, resolve_path
from ._datasets import Dataset, Unit, load_dataset
from ._items import annotation_rows, puzzle_rows
from ._report import (
    leaderboard,
    leaderboard_markdown,
    plot_agreement,
    plot_puzzle_accuracy,
    plot_reliability,
    render_html_report,
)
from ._store import ResultStore, now, refuse_overwriting_inputs

__all__ = ["BenchConfig", "BenchResult", "load_config", "run_bench"]

Progress = Callable[[str, int, int], None]
#: Every file a bench writes in its output folder (the store's journal files included).
OUTPUT_NAMES = ("results.sqlite", "results.sqlite-wal", "results.sqlite-shm",
                "results.sqlite-journal", "items.csv", "leaderboard.csv", "leaderboard.md",
                "agreement.png", "reliability.png", "puzzles_by_n.png", "report.html")


# --------------------------------------------------------------------- annotators


@dataclass
class _Entrant:
    """One annotator of the grid (a config entry with one strategy, or a baseline)."""

    name: str
    backend: str
    options: dict[str, Any]
    baseline: bool = False
    cache_path: Path | None = None  # options.cache_path resolved against the config folder

    def key_payload(self) -> dict[str, Any]:
        return {"backend": self.backend, "options": self.options}

    def public_payload(self) -> dict[str, Any]:
        """The key payload as stored and shown: URLs without credentials."""
        return redact_tree(self.key_payload())

    def llm_options(self) -> LLMOptions:
        """The LLMOptions of this annotator (validated; the config's cache path resolved)."""
        data = {**self.options, "name": self.name}
        if self.cache_path is not None:
            data["cache_path"] = self.cache_path
        try:
            return LLMOptions.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ()))
            msg = f"annotator {self.name!r}: options.{where}: {redact_urls(str(err['msg']))}"
            raise InputError(msg) from None


def _entrants(cfg: BenchConfig) -> list[_Entrant]:
    out: list[_Entrant] = []
    for a in cfg.annotators:
        strategies: Sequence[str | None] = a.strategies or [None]
        for s in strategies:
            opts = dict(a.options)
            if s is not None:
                opts["strategy"] = s
            base = redact_urls(a.name or a.backend)
            name = f"{base} ({s})" if s is not None and len(strategies) > 1 else base
            out.append(_Entrant(name=name, backend=a.backend, options=opts))
    names = [e.name for e in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        msg = f"annotator names must be unique, repeated: {dup}; give each a name"
        raise InputError(msg)
    if not any(e.backend.strip().lower() == "knowledge" for e in out):
        out.insert(0, _Entrant("knowledge", "knowledge", {}, baseline=True))
    clash = [n for n in BASELINES if n in names]
    if clash:
        msg = f"annotator names {clash} are taken by the baselines; rename them"
        raise InputError(msg)
    return [*out, *(_Entrant(b, b, {}, baseline=True) for b in BASELINES)]


def _build(entrant: _Entrant, dataset: Dataset, seed: int, check: bool) -> Any:
    """The annotator (or puzzle solver) of an entrant for a dataset, from the registry.

    The dataset's label set and the seed are the context of the baselines.
    """
    task = "puzzles" if dataset.config.kind == "puzzles" else "clusters"
    opts = entrant.llm_options() if entrant.backend != "knowledge" else None
    return build_backend(entrant.backend, opts, task=task, check=check,
                         labels=dataset.vocabulary, seed=seed)


def _run_key(entrant: _Entrant, dataset: Dataset, seed: int) -> str:
    payload = json.dumps({"annotator": entrant.key_payload(),
                          "dataset": dataset.config.model_dump(),
                          "data": dataset.fingerprint, "seed": seed},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------ running


@dataclass
class BenchResult:
    """What :func:`run_bench` did and wrote.

    Attributes
    ----------
    items
        One row per item per annotator per dataset (the store's rows of this config).
    leaderboard
        The leaderboard table.
    outputs
        Name -> path of every file written.
    computed, skipped
        Units computed in this call, and units found done in the store.
    """

    items: pd.DataFrame
    leaderboard: pd.DataFrame
    outputs: dict[str, Path]
    computed: int
    skipped: int


def _chunks(seq: list[Unit], size: int) -> Iterator[list[Unit]]:
    for i in range(0, len(seq), size):
        yield seq[i: i + size]


def _run_one(store: ResultStore, run_key: str, entrant: _Entrant, ds: Dataset, runner: Any,
             todo: list[Unit], chunk_size: int, tick: Callable[[int], None]) -> None:
    kind = ds.kind
    for chunk in _chunks(todo, chunk_size):
        before = usage_totals(runner.provenance())
        t0 = time.perf_counter()
        if ds.config.kind == "puzzles":
            answers = runner.solve([u.puzzle for u in chunk])
            rows = puzzle_rows(chunk, answers)
        else:
            asked = [u.query for u in chunk if u.query is not None and u.query.genes]
            got = {a.id: a for a in runner.annotate(asked)} if asked else {}
            for u in chunk:
                if u.id not in got:
                    got[u.id] = Annotation(id=u.id, label="unknown", ontology_id=None,
                                           confidence=0.0, evidence="no marker genes",
                                           backend=entrant.name)
            rows = annotation_rows(chunk, got)
        took = time.perf_counter() - t0
        after = usage_totals(runner.provenance())
        delta = {k: after[k] - before[k] for k in after}
        share = 1.0 / len(chunk)
        created = now()
        rows_per_unit = Counter(r["unit_id"] for r in rows)
        for r in rows:
            # per-unit share of the chunk's usage and time (puzzles carry their own counts)
            unit_share = share / rows_per_unit[r["unit_id"]]
            if ds.config.kind != "puzzles":
                for k in ("requests", "cache_hits", "prompt_tokens", "completion_tokens"):
                    r[k] = delta[k] * unit_share
            r["cost_usd"] = delta["cost_usd"] * unit_share
            r["latency_s"] = took * unit_share
            r.update(run_key=run_key, annotator=entrant.name,
                     backend=redact_urls(entrant.backend), dataset=ds.config.name, kind=kind,
                     created=created)
            if entrant.baseline and entrant.backend in BASELINES:
                r["confidence"] = None  # baselines state no confidence
        store.add(rows)
        tick(len(chunk))


def run_bench(
    config: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    check: bool = True,
) -> BenchResult:
    """Run a bench config: every annotator on every dataset, then the outputs.

    Parameters
    ----------
    config
        Path of the TOML / YAML config (see the module docstring).
    output
        Output folder (default: ``[bench] output``, relative to the config file).
    progress
        Called as ``progress(description, done, total)`` as units finish.
    check
        Check every LLM backend before any work (key, server, model).

    Returns
    -------
    :class:`BenchResult`.

    Raises
    ------
    InputError
        For bad configs and datasets, paths that climb out of the config's folder, an
        output folder that cannot be written or would overwrite an input (all before
        any annotator runs).
    BackendError
        For unknown backends (before any work) and LLM failures mid-run (the finished
        chunks are stored: re-run the same command to resume).

    Notes
    -----
    Messages never hold a URL's credentials: they are cut out of every error, output
    file and store record.
    """
    try:
        return _run_bench(config, output=output, progress=progress, check=check)
    except Llm4cellError as e:
        text = redact_urls(str(e))
        if text == str(e):
            raise
        raise type(e)(text) from None


def _plan_paths(cfg: BenchConfig, config: Path, output: str | os.PathLike[str] | None,
                entrants: list[_Entrant]) -> Path:
    """Resolve and check every path before any work; return the output folder.

    Config paths are relative to the config's folder (absolute ones as written, ``..``
    refused); the output folder must be writable and no output may be an input.
    """
    base = config.resolve().parent
    out_dir = (Path(output) if output is not None
               else resolve_path(cfg.bench.output, base, "[bench] output"))
    inputs: list[tuple[str, Path | None]] = [("the config", config)]
    inputs += [(f"dataset {d.name!r}", dataset_path(d, base)) for d in cfg.datasets]
    for e in entrants:
        raw = e.options.get("cache_path")
        if raw:
            e.cache_path = resolve_path(str(raw), base, f"annotator {e.name!r}: cache_path")
            inputs.append((f"the cache of annotator {e.name!r}", e.cache_path))
    if out_dir.exists() and not out_dir.is_dir():
        msg = f"the output {str(out_dir)!r} is a file; give a folder"
        raise InputError(msg)
    refuse_overwriting_inputs([out_dir / n for n in OUTPUT_NAMES], inputs)
    # none is a folder, and the folder (or its nearest existing parent) takes new files
    check_outputs([out_dir / n for n in OUTPUT_NAMES])
    store = out_dir / "results.sqlite"
    if store.is_file() and store.stat().st_size > 0:
        with store.open("rb") as fh:
            head = fh.read(16)
        if head != b"SQLite format 3\x00":
            msg = (f"{str(store)!r} is not a bench store (not an SQLite file); move it away "
                   "or choose another output folder")
            raise InputError(msg)
    return out_dir


def _write_html(path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")


def _write_outputs(out_dir: Path, items: pd.DataFrame, board: pd.DataFrame, *, title: str,
                   config_text: str, provenance: dict[str, Any]) -> dict[str, Path]:
    """Write the output files all or nothing; name -> path of each (the store included).

    The figures are drawn in a scratch folder first (only those that apply), then every
    file goes to a temporary file beside its target and all are renamed at the end
    (:func:`llm4cell._io.write_set`): a failure leaves the previous set as it was.
    """
    plots = {
        "Agreement by annotator and dataset": ("agreement.png", plot_agreement),
        "Reliability (confidence vs agreement)": ("reliability.png", plot_reliability),
        "Puzzle accuracy by N": ("puzzles_by_n.png", plot_puzzle_accuracy),
    }
    table = items.drop(columns=["run_key"])
    markdown = leaderboard_markdown(board, title=title)
    with tempfile.TemporaryDirectory(prefix="llm4cell-bench-") as scratch:
        figures = {caption: plot(items, Path(scratch) / name)
                   for caption, (name, plot) in plots.items()}
        html = render_html_report(title=title, board=board, items=items,
                                  config_text=config_text, figures=figures,
                                  provenance=provenance)
        files: dict[str, tuple[Path, Callable[[Path], object]]] = {
            "items": (out_dir / "items.csv", lambda p: table.to_csv(p, index=False)),
            "leaderboard_csv": (out_dir / "leaderboard.csv",
                                lambda p: board.to_csv(p, index=False)),
            "leaderboard_md": (out_dir / "leaderboard.md",
                               lambda p: p.write_text(markdown, encoding="utf-8")),
        }
        for caption, (name, _) in plots.items():
            drawn = figures[caption]
            if drawn is not None:
                files[caption] = (out_dir / name,
                                  lambda p, src=drawn: shutil.copyfile(src, p))
        files["report"] = (out_dir / "report.html", lambda p: _write_html(p, html))
        write_set(list(files.values()))
    return {"store": out_dir / "results.sqlite",
            **{name: target for name, (target, _) in files.items()}}


def _run_bench(
    config: str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None,
    progress: Progress | None,
    check: bool,
) -> BenchResult:
    cfg, text = load_config(config)
    base = Path(config).resolve().parent
    seed = cfg.bench.seed
    entrants = _entrants(cfg)
    out_dir = _plan_paths(cfg, Path(config), output, entrants)
    datasets = [load_dataset(d, base, seed) for d in cfg.datasets]
    # build every runner first: unknown backends, keys and servers fail before any work
    runners = {(e.name, ds.config.name): _build(e, ds, seed, check)
               for e in entrants for ds in datasets}

    store = ResultStore(out_dir / "results.sqlite")
    try:
        plan = []
        for ds in datasets:
            for e in entrants:
                key = _run_key(e, ds, seed)
                done = store.done_items(key)
                # a unit is done when every one of its items is stored
                todo = [u for u in ds.units if not all(t.item_id in done for t in u.truths)]
                plan.append((key, e, ds, todo, len(ds.units) - len(todo)))
        total = sum(len(t) for _, _, _, t, _ in plan)
        done_count = 0
        computed = 0
        for key, e, ds, todo, _ in plan:
            runner = runners[(e.name, ds.config.name)]
            label = f"{e.name} on {ds.config.name}"

            def tick(k: int, label: str = label) -> None:
                nonlocal done_count, computed
                done_count += k
                computed += k
                if progress is not None:
                    progress(label, done_count, total)

            if progress is not None:
                progress(label, done_count, total)
            run_config = {"annotator": e.public_payload(), "dataset": ds.config.model_dump()}
            store.record_run(key, e.name, ds.config.name, run_config, None, len(ds.units),
                             complete=False)
            try:
                _run_one(store, key, e, ds, runner, todo, cfg.bench.chunk_size, tick)
            except BackendError as err:
                stored = sum(len(store.done_items(k)) for k, *_ in plan)
                msg = (f"{label}: {err}; {stored} finished items are stored in "
                       f"{store.path}: re-run the same command to resume")
                raise BackendError(msg) from None
            store.record_run(key, e.name, ds.config.name, run_config,
                             redact_tree(runner.provenance()), len(ds.units), complete=True)
        keys = [k for k, *_ in plan]
        items = store.items(keys)
        prov = redact_tree(store.provenance(keys))
    finally:
        store.close()
    # rows carry the annotator's current name (the name is not part of the run key, and
    # rows stored by an older version may hold an unredacted one)
    items["annotator"] = items["run_key"].map({k: e.name for k, e, *_ in plan})
    items["backend"] = items["run_key"].map({k: redact_urls(e.backend) for k, e, *_ in plan})
    # only the items the datasets hold now (a run key's rows are those of its data)
    current = {d.config.name: d.item_ids() for d in datasets}
    items = items[[i in current[d] for d, i in zip(items["dataset"], items["item_id"],
                                                    strict=True)]]

    order = {e.name: i for i, e in enumerate(entrants)}
    ds_order = {d.config.name: i for i, d in enumerate(datasets)}
    items = items.sort_values(
        ["dataset", "annotator", "item_id"],
        key=lambda s: s.map(ds_order) if s.name == "dataset" else
        (s.map(order) if s.name == "annotator" else s),
    ).reset_index(drop=True)
    board = leaderboard(items)
    outputs = _write_outputs(out_dir, items, board, title=cfg.bench.name,
                             config_text=redact_urls(text), provenance=prov)
    skipped = sum(s for *_, s in plan)
    return BenchResult(items, board, outputs, computed, skipped)
