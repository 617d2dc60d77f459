"""Bench configs: the pydantic models, reading TOML or YAML, and the path rules.

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

Paths in a config are relative to the config's folder (absolute ones as written; ``..``
refused: :func:`resolve_path`). URLs that may carry credentials are cut to scheme, host,
port and path (:func:`redact_urls`) in every message, record and output.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .._errors import InputError
from ..llm._options import LLMOptions, safe_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "AnnotatorConfig",
    "BenchConfig",
    "BenchSettings",
    "DatasetConfig",
    "dataset_path",
    "load_config",
    "redact_tree",
    "redact_urls",
    "resolve_path",
]

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s\"'<>`]+")


def redact_urls(text: str) -> str:
    """``text`` with every URL that holds user info, a query or a fragment made safe.

    Such URLs may carry credentials (``http://user:KEY@host``, ``?api_key=...``); they
    are cut to scheme, host, port and path before anything is written or shown.
    """
    def fix(m: re.Match[str]) -> str:
        url = m.group(0)
        try:
            parts = urlsplit(url)
            risky = bool(parts.username or parts.password or parts.query or parts.fragment)
        except ValueError:
            return "<invalid url>"
        return safe_url(url) if risky else url

    return _URL.sub(fix, text)


def redact_tree(value: Any) -> Any:
    """A JSON-like value with :func:`redact_urls` applied to every string in it."""
    if isinstance(value, str):
        return redact_urls(value)
    if isinstance(value, dict):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_tree(v) for v in value]
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
            what = redact_urls(str(err.get("msg", "")).removeprefix("Value error, "))
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


# -------------------------------------------------------------------------- paths


def resolve_path(raw: str, base: Path, what: str = "the path") -> Path:
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


def dataset_path(cfg: DatasetConfig, base: Path) -> Path | None:
    """The file of a dataset (None for ``scanpy:`` data)."""
    if cfg.path.startswith("scanpy:"):
        return None
    return resolve_path(cfg.path, base, f"dataset {cfg.name!r}: path")
