"""The arena: a grid of annotators by datasets, stored item by item, with a leaderboard.

A bench config (TOML or YAML) names the annotators and the datasets::

    [bench]
    name = "example arena"
    output = "arena_results"      # folder, relative to the config file
    seed = 0

    [[annotators]]
    backend = "knowledge"

    [[annotators]]
    name = "qwen"                 # default: the backend spec (+ strategy)
    backend = "openai:qwen2.5:7b"
    strategies = ["zero-shot", "cot"]   # one annotator per strategy
    options = { base_url = "http://127.0.0.1:8080/v1", max_tokens = 128 }

    [[datasets]]
    name = "gptcelltype"
    kind = "markers"              # a marker table (id optional) with a truth column
    path = "markers.csv"
    truth_col = "manual_CLID"     # CL IDs or free text
    mouse_when = { column = "dataset", values = ["MCA"] }
    sample = 200                  # a seeded sample of rows (or limit = first rows)

    [[datasets]]
    name = "pbmc68k"
    kind = "h5ad"                 # labelled cells
    path = "scanpy:pbmc68k_reduced"   # or a file
    label_col = "bulk_labels"
    groupby = "louvain"           # clusters (default: the labels themselves)
    level = "cell"                # cluster (majority label) or cell (every cell scored)
    tissue = "blood"

    [[datasets]]
    name = "puzzles"
    kind = "puzzles"              # llm4cell puzzles JSONL or Cell-o1 records
    path = "puzzles.jsonl"

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
import re
import sys
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._errors import BackendError, InputError, Llm4cellError
from .._records import Annotation, MarkerQuery
from ..llm._runner import usage_totals
from ._store import ResultStore, now, refuse_overwriting_inputs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["BenchConfig", "BenchResult", "load_config", "run_bench"]

Progress = Callable[[str, int, int], None]
_CL = re.compile(r"CL[:_]\d{7}")
BASELINES = ("random", "most-frequent")
#: Every file a bench writes in its output folder (the store's journal files included).
OUTPUT_NAMES = ("results.sqlite", "results.sqlite-wal", "results.sqlite-shm",
                "results.sqlite-journal", "items.csv", "leaderboard.csv", "leaderboard.md",
                "agreement.png", "reliability.png", "puzzles_by_n.png", "report.html")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]+")


def _redact_urls(text: str) -> str:
    """``text`` with every URL that holds user info, a query or a fragment made safe.

    Such URLs may carry credentials (``http://user:KEY@host``, ``?api_key=...``); they
    are cut to scheme, host, port and path before anything is written or shown.
    """
    from ..llm._options import safe_url

    def fix(m: re.Match[str]) -> str:
        url = m.group(0)
        try:
            parts = urlsplit(url)
            risky = bool(parts.username or parts.password or parts.query or parts.fragment)
        except ValueError:
            return "<invalid url>"
        return safe_url(url) if risky else url

    return _URL.sub(fix, text)


def _redact_tree(value: Any) -> Any:
    """A JSON-like value with :func:`_redact_urls` applied to every string in it."""
    if isinstance(value, str):
        return _redact_urls(value)
    if isinstance(value, dict):
        return {k: _redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_tree(v) for v in value]
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BenchSettings(_Strict):
    """``[bench]``: name, output folder, seed, chunk size."""

    name: str = "llm4cell bench"
    output: str = "bench_results"
    seed: int = 0
    chunk_size: int = Field(default=20, ge=1)


class AnnotatorConfig(_Strict):
    """One ``[[annotators]]`` entry (expanded to one annotator per strategy)."""

    name: str | None = Field(default=None, min_length=1)
    backend: str
    strategies: list[Literal["zero-shot", "cot"]] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _valid_options(self) -> AnnotatorConfig:
        from ..llm._options import LLMOptions

        if "api_key" in self.options:
            msg = ("api_key may not be written in a config file; put the key in an "
                   "environment variable and name it with api_key_env")
            raise ValueError(msg)
        # the options are LLMOptions fields, checked (base_url included) before any work;
        # the message names the option, never its value (a URL may hold credentials)
        try:
            LLMOptions.model_validate(dict(self.options))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ()))
            what = _redact_urls(str(err.get("msg", "")).removeprefix("Value error, "))
            msg = f"options.{where}: {what}" if where else f"options: {what}"
            raise ValueError(msg) from None
        return self


class DatasetConfig(_Strict):
    """One ``[[datasets]]`` entry."""

    name: str = Field(min_length=1)
    kind: Literal["markers", "h5ad", "puzzles"]
    path: str
    # markers
    truth_col: str | None = None
    id_col: str | None = None
    tissue: str | None = None
    species: Literal["human", "mouse"] = "human"
    mouse_when: dict[str, Any] | None = None
    n_markers: int = Field(default=50, ge=1)
    # h5ad
    label_col: str | None = None
    label_id_col: str | None = None
    groupby: str | None = None
    level: Literal["cluster", "cell"] = "cluster"
    resolution: float = Field(default=1.0, gt=0)
    layer: str | None = None
    # puzzles drawn from labelled data (path to .h5ad or scanpy:...; needs label_col)
    donor_col: str | None = None
    batch_col: str | None = None
    context_cols: list[str] = Field(default_factory=list)
    n_min: int = Field(default=8, ge=2)
    n_max: int = Field(default=15, ge=2)
    per_n: int = Field(default=40, ge=1)
    top_genes: int = Field(default=50, ge=1)
    # any
    limit: int | None = Field(default=None, ge=1)
    sample: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _needs(self) -> DatasetConfig:
        if self.kind == "markers" and not self.truth_col:
            msg = "a markers dataset needs truth_col (the column of true types)"
            raise ValueError(msg)
        if self.kind == "h5ad" and not self.label_col:
            msg = "an h5ad dataset needs label_col (the obs column of true types)"
            raise ValueError(msg)
        if self.kind == "puzzles" and self.builds_puzzles and not self.label_col:
            msg = "puzzles drawn from labelled data need label_col (the obs column of types)"
            raise ValueError(msg)
        if self.name.strip().lower() == "overall":
            msg = "'overall' names the total; call the dataset something else"
            raise ValueError(msg)
        if not self.name.strip():
            msg = "a dataset name may not be blank"
            raise ValueError(msg)
        if self.mouse_when is not None and not (
                isinstance(self.mouse_when.get("column"), str)
                and isinstance(self.mouse_when.get("values"), list)):
            msg = ("mouse_when needs a column name and a list of values, e.g. "
                   'mouse_when = { column = "dataset", values = ["MCA"] }')
            raise ValueError(msg)
        return self


    @property
    def builds_puzzles(self) -> bool:
        """A puzzles dataset whose path is labelled data (puzzles drawn at load)."""
        p = self.path.lower()
        return self.kind == "puzzles" and (p.startswith("scanpy:") or p.endswith(".h5ad"))


class BenchConfig(_Strict):
    """A whole bench configuration (see the module docstring)."""

    bench: BenchSettings = Field(default_factory=BenchSettings)
    annotators: list[AnnotatorConfig] = Field(default_factory=list)
    datasets: list[DatasetConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> BenchConfig:
        names = [d.name for d in self.datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            msg = f"dataset names must be unique, repeated: {dup}"
            raise ValueError(msg)
        return self


def load_config(path: str | os.PathLike[str]) -> tuple[BenchConfig, str]:
    """Read and validate a bench config (TOML, or YAML with PyYAML installed).

    Returns
    -------
    The config and its text.

    Raises
    ------
    InputError
        For missing files, syntax errors and invalid entries (the message names them).
    """
    p = Path(path)
    if p.is_dir():
        msg = f"the config {str(p)!r} is a folder; give the .toml or .yaml file"
        raise InputError(msg)
    if not p.is_file():
        msg = f"cannot read {str(p)!r}: no such file; check the path"
        raise InputError(msg)
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        msg = f"the config {str(p)!r} must end in .toml, .yaml or .yml"
        raise InputError(msg)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        msg = f"the config {str(p)!r} is not UTF-8 text; give a TOML or YAML file"
        raise InputError(msg) from None
    except OSError as e:
        msg = f"cannot read {str(p)!r}: {e.strerror or type(e).__name__}; check the file"
        raise InputError(msg) from None
    if not text.strip():
        msg = (f"the config {str(p)!r} is empty; see docs/arena.md or benchmarks/arena.toml "
               "for an example")
        raise InputError(msg)
    data = _parse_yaml(text, p) if suffix in (".yaml", ".yml") else _parse_toml(text, p)
    if not isinstance(data, dict):
        msg = (f"the config {str(p)!r} must be a table of bench, annotators and datasets "
               "(see docs/arena.md)")
        raise InputError(msg)
    try:
        return BenchConfig.model_validate(data), text
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ()))
        what = str(err.get("msg", "")).removeprefix("Value error, ")
        msg = f"{p.name}: {where}: {what}" if where else f"{p.name}: {what}"
        raise InputError(msg) from None


def _parse_toml(text: str, p: Path) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        msg = f"cannot parse {str(p)!r}: {' '.join(str(e).split())}; fix the TOML"
        raise InputError(msg) from None


def _parse_yaml(text: str, p: Path) -> Any:
    """YAML through ``yaml.safe_load``: tags such as ``!!python/...`` are refused, never run."""
    try:
        import yaml
    except ImportError:
        msg = "reading a YAML config needs PyYAML: pip install pyyaml, or use TOML"
        raise InputError(msg) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(e, yaml.constructor.ConstructorError):
            problem = (f"{problem}; only plain YAML is read (tags such as !!python/... are "
                       "refused)")
        msg = f"cannot parse {str(p)!r}{where}: {' '.join(str(problem).split())}"
        raise InputError(msg) from None


# ----------------------------------------------------------------------- datasets


@dataclass
class _Truth:
    item_id: str
    text: str
    ids: list[str]
    weight: float = 1.0


@dataclass
class _Unit:
    """What one annotator call answers: a cluster query or a puzzle, with its truths."""

    id: str
    query: MarkerQuery | None = None
    puzzle: Any = None
    truths: list[_Truth] = field(default_factory=list)


@dataclass
class _Dataset:
    config: DatasetConfig
    units: list[_Unit]
    vocabulary: list[tuple[str, str | None, float]]  # (label, CL ID, weight)
    fingerprint: str = ""  # size and modification time of the data file

    def item_ids(self) -> set[str]:
        return {t.item_id for u in self.units for t in u.truths}

    @property
    def kind(self) -> str:
        if self.config.kind == "h5ad":
            return f"h5ad-{self.config.level}"
        return self.config.kind


def _resolve_path(raw: str, base: Path, what: str = "the path") -> Path:
    """A config path: relative to the config's folder, or absolute as written.

    Raises
    ------
    InputError
        For a relative path that climbs out of the config's folder with ``..``.
    """
    text = os.path.expanduser(raw)
    if Path(text).is_absolute():
        return Path(text)
    norm = os.path.normpath(text) if text else "."
    if norm == os.pardir or norm.startswith(os.pardir + os.sep):
        msg = (f"{what} {raw!r} climbs out of the config's folder with '..'; paths in a "
               "config are relative to its folder: move the file under it or write an "
               "absolute path")
        raise InputError(msg)
    return base / norm


def _dataset_path(cfg: DatasetConfig, base: Path) -> Path | None:
    """The file of a dataset (None for ``scanpy:`` data)."""
    if cfg.path.startswith("scanpy:"):
        return None
    return _resolve_path(cfg.path, base, f"dataset {cfg.name!r}: path")


def _truth_ids(value: object, tissue: str | None) -> list[str]:
    """CL IDs in a truth cell (several allowed), else the matcher's term for the text."""
    from ..ontology._graph import load_ontology
    from ..ontology._matcher import get_matcher

    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    text = str(value).strip()
    if not text or text.lower() in ("na", "nan", "none"):
        return []
    onto = load_ontology()
    found = [onto.resolve(m.replace("_", ":")) for m in _CL.findall(text)]
    ids = [t for t in found if t]
    if ids or _CL.search(text):
        return list(dict.fromkeys(ids))
    got = get_matcher().match(text, tissue=tissue).ontology_id
    return [got] if got else []


def _subset(df: pd.DataFrame, cfg: DatasetConfig, seed: int) -> pd.DataFrame:
    if cfg.sample is not None and cfg.sample < len(df):
        df = df.sample(n=cfg.sample, random_state=seed).sort_index()
    if cfg.limit is not None:
        df = df.iloc[: cfg.limit]
    return df


def _load_markers(cfg: DatasetConfig, path: Path, seed: int) -> _Dataset:
    from .._io import read_table
    from ..annotation._markers import read_marker_table

    df = read_table(path, "marker table")
    if cfg.truth_col not in df.columns:
        msg = (f"dataset {cfg.name!r}: truth_col {cfg.truth_col!r} is not a column of "
               f"{path.name}; choose one of {list(df.columns)[:12]}")
        raise InputError(msg)
    df = df.reset_index(drop=True)
    if cfg.id_col is not None:
        if cfg.id_col not in df.columns:
            msg = f"dataset {cfg.name!r}: id_col {cfg.id_col!r} is not a column of {path.name}"
            raise InputError(msg)
        df["id"] = df[cfg.id_col].astype(str)
    elif not any(c in df.columns for c in ("id", "cluster", "group", "cluster_id")):
        df.insert(0, "id", [f"row{i}" for i in range(len(df))])
    if cfg.mouse_when:
        col = cfg.mouse_when.get("column")
        values = {str(v) for v in cfg.mouse_when.get("values", [])}
        if col not in df.columns:
            msg = f"dataset {cfg.name!r}: mouse_when column {col!r} is not in {path.name}"
            raise InputError(msg)
        df["species"] = np.where(df[col].astype(str).isin(values), "mouse", cfg.species)
    df = _subset(df, cfg, seed)
    _, queries = read_marker_table(df.drop(columns=[cfg.truth_col]).astype(str)
                                   if cfg.truth_col != "id" else df,
                                   tissue=cfg.tissue, species=cfg.species,
                                   n_markers=cfg.n_markers)
    units = []
    for q, truth in zip(queries, df[cfg.truth_col].tolist(), strict=True):
        text = "" if pd.isna(truth) else str(truth)
        units.append(_Unit(id=q.id, query=q,
                           truths=[_Truth(q.id, text, _truth_ids(truth, q.tissue))]))
    vocab = Counter((t.text, t.ids[0] if t.ids else None) for u in units for t in u.truths)
    return _Dataset(cfg, units, [(lab, tid, float(w)) for (lab, tid), w in vocab.items()])


def _read_h5ad(cfg: DatasetConfig, base: Path) -> Any:
    from .._io import read_data

    path = _dataset_path(cfg, base)
    if path is None:
        import scanpy as sc

        name = cfg.path.split(":", 1)[1]
        if name != "pbmc68k_reduced":
            msg = (f"only scanpy:pbmc68k_reduced ships inside scanpy (no download here); "
                   f"got {cfg.path!r}: give a file path")
            raise InputError(msg)
        return sc.datasets.pbmc68k_reduced()
    return read_data(path)


def _fingerprint(cfg: DatasetConfig, base: Path) -> str:
    """What identifies the data behind a dataset (an edited file gets new run keys)."""
    path = _dataset_path(cfg, base)
    if path is None:
        from importlib import metadata

        return f"{cfg.path}@scanpy-{metadata.version('scanpy')}"
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _load_h5ad(cfg: DatasetConfig, base: Path, seed: int) -> _Dataset:
    import warnings

    from ..preprocess._preprocess import cluster, prepare_expression, rank_markers
    from ..puzzles._puzzles import _candidate_ids, _id_column

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        adata = _read_h5ad(cfg, base)
    label_col = str(cfg.label_col)
    for col, what in ((label_col, "label_col"), (cfg.groupby, "groupby")):
        if col is not None and col not in adata.obs.columns:
            msg = (f"dataset {cfg.name!r}: {what} {col!r} is not an obs column; choose one of "
                   f"{list(adata.obs.columns)[:12]}")
            raise InputError(msg)
    expr = prepare_expression(adata, layer=cfg.layer, species=cfg.species)
    work = expr.adata
    labels = adata.obs[label_col].astype(str).where(adata.obs[label_col].notna(), None)
    if cfg.groupby is not None:
        groups = adata.obs[cfg.groupby].astype(str)
    elif cfg.level == "cluster":
        groups = labels.fillna("unlabelled")
    else:
        groups = pd.Series(cluster(work, resolution=cfg.resolution, random_state=seed),
                           index=adata.obs_names).astype(str)
    work.obs["_group"] = groups.to_numpy()
    markers = rank_markers(work, "_group", n_markers=25)
    id_col = _id_column(adata, label_col, cfg.label_id_col)
    id_map = None
    if id_col is not None:
        pairs = pd.DataFrame({"l": labels, "i": adata.obs[id_col].astype(str)}).dropna()
        id_map = dict(pairs.drop_duplicates("l").itertuples(index=False))
    names = sorted(set(labels.dropna()))
    cl = _candidate_ids(names, id_map, cfg.tissue)
    table = pd.DataFrame({"g": groups.to_numpy(), "l": labels.to_numpy()}).dropna()
    counts = table.groupby(["g", "l"], observed=True).size()
    units = []
    for g in sorted(markers, key=str):
        if g not in counts.index.get_level_values(0):
            continue
        per_label = counts.loc[g].sort_values(ascending=False)
        df = markers[g]
        q = MarkerQuery(id=str(g), genes=tuple(df["gene"]), tissue=cfg.tissue,
                        species=cfg.species, n_cells=int(per_label.sum()))
        if cfg.level == "cluster":
            top = str(per_label.index[0])
            truths = [_Truth(str(g), top, [cl[top]] if cl.get(top) else [], 1.0)]
        else:
            truths = [_Truth(f"{g}|{lab}", str(lab), [cl[lab]] if cl.get(lab) else [], float(k))
                      for lab, k in per_label.items()]
        units.append(_Unit(id=str(g), query=q, truths=truths))
    if cfg.sample is not None or cfg.limit is not None:
        keep = _subset(pd.DataFrame(index=range(len(units))), cfg, seed).index
        units = [units[i] for i in keep]
    vocab: Counter[tuple[str, str | None]] = Counter()
    for u in units:
        for t in u.truths:
            vocab[(t.text, t.ids[0] if t.ids else None)] += t.weight
    return _Dataset(cfg, units, [(lab, tid, float(w)) for (lab, tid), w in vocab.items()])


def _load_puzzles(cfg: DatasetConfig, base: Path, seed: int) -> _Dataset:
    from ..puzzles._puzzles import build_puzzles, read_puzzles

    if cfg.builds_puzzles:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            adata = _read_h5ad(cfg, base)
        puzzles = build_puzzles(
            adata, label_col=str(cfg.label_col), donor_col=cfg.donor_col,
            batch_col=cfg.batch_col, context_cols=cfg.context_cols,
            label_id_col=cfg.label_id_col, n_min=cfg.n_min, n_max=cfg.n_max,
            top_genes=cfg.top_genes, per_n=cfg.per_n, seed=seed, tissue=cfg.tissue,
            species=cfg.species, layer=cfg.layer, source=Path(cfg.path).name,
        )
    else:
        path = _dataset_path(cfg, base)
        if path is None or not path.is_file():
            msg = f"dataset {cfg.name!r}: cannot read {str(path)!r}: no such file; check path"
            raise InputError(msg)
        puzzles = read_puzzles(path)
    unlabelled = [p.id for p in puzzles if p.answer is None]
    if unlabelled:
        msg = (f"dataset {cfg.name!r}: puzzles without answers cannot be scored "
               f"({unlabelled[:3]}); give labelled puzzles")
        raise InputError(msg)
    keep = _subset(pd.DataFrame(index=range(len(puzzles))), cfg, seed).index
    puzzles = [puzzles[i] for i in keep]
    units = [_Unit(id=p.id, puzzle=p, truths=[_Truth(p.id, " | ".join(p.answer or ()), [])])
             for p in puzzles]
    vocab: Counter[tuple[str, str | None]] = Counter()
    for p in puzzles:
        for a in p.answer or ():
            vocab[(a, p.candidate_id(a))] += 1
    return _Dataset(cfg, units, [(lab, tid, float(w)) for (lab, tid), w in vocab.items()])


def _load_dataset(cfg: DatasetConfig, base: Path, seed: int) -> _Dataset:
    try:
        return _load_dataset_unnamed(cfg, base, seed)
    except InputError as e:
        if str(e).startswith("dataset "):
            raise
        msg = f"dataset {cfg.name!r}: {e}"
        raise InputError(msg) from None


def _load_dataset_unnamed(cfg: DatasetConfig, base: Path, seed: int) -> _Dataset:
    if cfg.kind == "h5ad":
        ds = _load_h5ad(cfg, base, seed)
    elif cfg.kind == "puzzles":
        ds = _load_puzzles(cfg, base, seed)
    else:
        path = _dataset_path(cfg, base)
        if path is None or not path.is_file():
            msg = f"dataset {cfg.name!r}: cannot read {str(path)!r}: no such file; check path"
            raise InputError(msg)
        ds = _load_markers(cfg, path, seed)
    if not ds.units:
        msg = f"dataset {cfg.name!r} holds no items to score; check its file and filters"
        raise InputError(msg)
    ds.fingerprint = _fingerprint(cfg, base)
    return ds


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
        return _redact_tree(self.key_payload())

    def llm_options(self) -> Any:
        """The LLMOptions of this annotator (validated; the config's cache path resolved)."""
        from ..llm._options import LLMOptions

        data = {**self.options, "name": self.name}
        if self.cache_path is not None:
            data["cache_path"] = self.cache_path
        try:
            return LLMOptions.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ()))
            msg = f"annotator {self.name!r}: options.{where}: {_redact_urls(str(err['msg']))}"
            raise InputError(msg) from None


def _entrants(cfg: BenchConfig) -> list[_Entrant]:
    out: list[_Entrant] = []
    for a in cfg.annotators:
        strategies: Sequence[str | None] = a.strategies or [None]
        for s in strategies:
            opts = dict(a.options)
            if s is not None:
                opts["strategy"] = s
            base = _redact_urls(a.name or a.backend)
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


class _VocabBaseline:
    """``random`` / ``most-frequent`` over a dataset's true types."""

    def __init__(self, kind: str, dataset: _Dataset, seed: int) -> None:
        self.kind = kind
        self.name = kind
        self.seed = seed
        from ..ontology._graph import load_ontology

        onto = load_ontology()
        vocab = sorted(dataset.vocabulary, key=lambda v: (-v[2], v[0]))
        self.texts = [lab for lab, _, _ in vocab]
        # shown as the CL term name when there is one (truth columns may hold bare IDs)
        self.labels = [(onto.label(tid) if tid else lab, tid) for lab, tid, _ in vocab]

    def _rng(self, uid: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(uid.encode())])

    def annotate(self, queries: Sequence[MarkerQuery]) -> list[Annotation]:
        out = []
        for q in queries:
            if self.kind == "random":
                lab, tid = self.labels[int(self._rng(q.id).integers(len(self.labels)))]
                how = f"random choice among the dataset's {len(self.labels)} true types"
            else:
                lab, tid = self.labels[0]
                how = "the dataset's most frequent true type"
            out.append(Annotation(id=q.id, label=lab, ontology_id=tid, confidence=0.0,
                                  evidence=how, backend=self.name))
        return out

    def solve(self, puzzles: Sequence[Any], progress: Any = None) -> list[Any]:
        from ..puzzles._solvers import RandomSolver, _answer

        if self.kind == "random":
            return RandomSolver(self.seed).solve(puzzles)
        rank = {lab.casefold(): k for k, lab in enumerate(self.texts)}
        out = []
        for p in puzzles:
            top = min(p.candidates, key=lambda c: (rank.get(c.casefold(), len(rank)), c))
            out.append(_answer(p, self.name, [top] * p.n,
                               reasoning="the most frequent type in every position"))
        return out

    def provenance(self) -> dict[str, object]:
        return {"backend": self.name, "seed": self.seed}


def _build(entrant: _Entrant, dataset: _Dataset, seed: int, check: bool) -> Any:
    """The annotator (or puzzle solver) of an entrant for a dataset."""
    if entrant.baseline and entrant.backend in BASELINES:
        return _VocabBaseline(entrant.backend, dataset, seed)
    opts = entrant.llm_options() if entrant.backend != "knowledge" else None
    if dataset.config.kind == "puzzles":
        from ..puzzles._solvers import get_solver

        return get_solver(entrant.backend, opts, seed=seed, check=check)
    from ..annotators._registry import get_annotator

    return get_annotator(entrant.backend, opts, check=check)


def _run_key(entrant: _Entrant, dataset: _Dataset, seed: int) -> str:
    payload = json.dumps({"annotator": entrant.key_payload(),
                          "dataset": dataset.config.model_dump(),
                          "data": dataset.fingerprint, "seed": seed},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------- scoring


def _best_scores(pred_ids: list[str | None], truths: list[list[str]]) -> pd.DataFrame:
    """score_pairs against each truth's IDs, keeping the best alternative per row."""
    from ..metrics._metrics import score_pairs

    flat_pred: list[str | None] = []
    flat_truth: list[str | None] = []
    owner: list[int] = []
    for k, (p, ids) in enumerate(zip(pred_ids, truths, strict=True)):
        for t in ids or [None]:
            flat_pred.append(p)
            flat_truth.append(t)
            owner.append(k)
    table = score_pairs(flat_pred, flat_truth)
    table["owner"] = owner
    table["_a"] = table["agreement"].fillna(-1)
    best = table.sort_values(["owner", "_a"], ascending=[True, False], kind="stable"
                             ).groupby("owner").head(1)
    return best.set_index("owner").sort_index().drop(columns="_a")


def _annotation_rows(units: list[_Unit], answers: dict[str, Annotation]) -> list[dict[str, Any]]:
    rows = []
    pred_ids: list[str | None] = []
    truths: list[list[str]] = []
    for u in units:
        a = answers[u.id]
        for t in u.truths:
            rows.append({
                "unit_id": u.id, "item_id": t.item_id, "prediction": a.label,
                "pred_id": a.ontology_id or "", "truth": t.text,
                "truth_id": ",".join(t.ids), "confidence": a.confidence, "weight": t.weight,
                "evidence": a.evidence[:500],
            })
            pred_ids.append(a.ontology_id)
            truths.append(t.ids)
    scores = _best_scores(pred_ids, truths)
    for k, row in enumerate(rows):
        for c in ("agreement", "full_match", "partial_match", "hierarchical_f1",
                  "lca_similarity"):
            row[c] = scores.at[k, c]
    return rows


def _puzzle_rows(units: list[_Unit], answers: list[Any]) -> list[dict[str, Any]]:
    from ..puzzles._puzzles import score_puzzles

    scores = score_puzzles(answers)
    per_cell = scores.per_cell.groupby("id", sort=False)[
        ["agreement", "full_match", "partial_match", "hierarchical_f1", "lca_similarity"]
    ].mean()
    per_puzzle = scores.per_puzzle.set_index("id")
    rows = []
    for u, a in zip(units, answers, strict=True):
        pp = per_puzzle.loc[a.id]
        conf = float(np.mean(a.confidence)) if a.confidence else float("nan")
        rows.append({
            "unit_id": u.id, "item_id": u.id,
            "prediction": " | ".join(a.prediction) if a.prediction else "",
            "pred_id": "", "truth": u.truths[0].text, "truth_id": "", "confidence": conf,
            "weight": 1.0, "n": a.n, "cell_accuracy": pp["cell_accuracy"],
            "batch_correct": float(pp["batch_correct"]), "format_ok": float(a.format_ok),
            "unique_labels": float(a.unique and a.prediction is not None),
            "evidence": (a.error or a.reasoning)[:500],
            "requests": a.requests, "cache_hits": a.cache_hits,
            "prompt_tokens": a.prompt_tokens, "completion_tokens": a.completion_tokens,
            **{c: per_cell.at[a.id, c] for c in per_cell.columns},
        })
    return rows


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


def _chunks(seq: list[_Unit], size: int) -> Iterator[list[_Unit]]:
    for i in range(0, len(seq), size):
        yield seq[i: i + size]


def _run_one(store: ResultStore, run_key: str, entrant: _Entrant, ds: _Dataset, runner: Any,
             todo: list[_Unit], chunk_size: int, tick: Callable[[int], None]) -> None:
    kind = ds.kind
    for chunk in _chunks(todo, chunk_size):
        before = usage_totals(runner.provenance())
        t0 = time.perf_counter()
        if ds.config.kind == "puzzles":
            answers = runner.solve([u.puzzle for u in chunk])
            rows = _puzzle_rows(chunk, answers)
        else:
            asked = [u.query for u in chunk if u.query is not None and u.query.genes]
            got = {a.id: a for a in runner.annotate(asked)} if asked else {}
            for u in chunk:
                if u.id not in got:
                    got[u.id] = Annotation(id=u.id, label="unknown", ontology_id=None,
                                           confidence=0.0, evidence="no marker genes",
                                           backend=entrant.name)
            rows = _annotation_rows(chunk, got)
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
                     backend=_redact_urls(entrant.backend), dataset=ds.config.name, kind=kind,
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
        text = _redact_urls(str(e))
        if text == str(e):
            raise
        raise type(e)(text) from None


def _plan_paths(cfg: BenchConfig, config: Path, output: str | os.PathLike[str] | None,
                entrants: list[_Entrant]) -> Path:
    """Resolve and check every path before any work; return the output folder.

    Config paths are relative to the config's folder (absolute ones as written, ``..``
    refused); the output folder must be writable and no output may be an input.
    """
    from .._io import check_outputs

    base = config.resolve().parent
    out_dir = (Path(output) if output is not None
               else _resolve_path(cfg.bench.output, base, "[bench] output"))
    inputs: list[tuple[str, Path | None]] = [("the config", config)]
    inputs += [(f"dataset {d.name!r}", _dataset_path(d, base)) for d in cfg.datasets]
    for e in entrants:
        raw = e.options.get("cache_path")
        if raw:
            e.cache_path = _resolve_path(str(raw), base, f"annotator {e.name!r}: cache_path")
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
    import shutil
    import tempfile

    from .._io import write_set
    from ._report import (
        leaderboard_markdown,
        plot_agreement,
        plot_puzzle_accuracy,
        plot_reliability,
        render_html_report,
    )

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
    from ._report import leaderboard

    cfg, text = load_config(config)
    base = Path(config).resolve().parent
    seed = cfg.bench.seed
    entrants = _entrants(cfg)
    out_dir = _plan_paths(cfg, Path(config), output, entrants)
    datasets = [_load_dataset(d, base, seed) for d in cfg.datasets]
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
                             _redact_tree(runner.provenance()), len(ds.units), complete=True)
        keys = [k for k, *_ in plan]
        items = store.items(keys)
        prov = _redact_tree(store.provenance(keys))
    finally:
        store.close()
    # rows carry the annotator's current name (the name is not part of the run key, and
    # rows stored by an older version may hold an unredacted one)
    items["annotator"] = items["run_key"].map({k: e.name for k, e, *_ in plan})
    items["backend"] = items["run_key"].map({k: _redact_urls(e.backend) for k, e, *_ in plan})
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
                             config_text=_redact_urls(text), provenance=prov)
    skipped = sum(s for *_, s in plan)
    return BenchResult(items, board, outputs, computed, skipped)
