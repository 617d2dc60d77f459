"""Bench datasets: marker tables, labelled AnnData (clusters or cells) and puzzles, each
loaded into units (what one annotator call answers) with their truths.

A unit is a cluster query or a puzzle; its truths are the items scored (one per cluster,
one per (cluster, true label) at cell level, weighted by cells, one per puzzle). A
dataset's label set (``vocabulary``) feeds the ``random`` and ``most-frequent`` baselines.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InputError
from .._io import read_data, read_table
from .._records import MarkerQuery
from ..annotation._markers import read_marker_table
from ..ontology._graph import load_ontology
from ..ontology._matcher import get_matcher
from ..preprocess._cluster import cluster
from ..preprocess._expression import prepare_expression
from ..preprocess._markers import rank_markers
from ..puzzles._build import build_puzzles, candidate_ids, id_column
from ..puzzles._io import read_puzzles
from ..puzzles._records import Puzzle
from ._config import DatasetConfig, dataset_path

__all__ = ["Dataset", "Truth", "Unit", "load_dataset"]

_CL = re.compile(r"CL[:_]\d{7}")


@dataclass
class Truth:
    """One scored item: its id, the true type as written, its CL IDs and its weight."""

    item_id: str
    text: str
    ids: list[str]
    weight: float = 1.0


@dataclass
class Unit:
    """What one annotator call answers: a cluster query or a puzzle, with its truths."""

    id: str
    query: MarkerQuery | None = None
    puzzle: Puzzle | None = None
    truths: list[Truth] = field(default_factory=list)


@dataclass
class Dataset:
    """A loaded dataset: its config, units and label set (the baselines' context)."""

    config: DatasetConfig
    units: list[Unit]
    vocabulary: list[tuple[str, str | None, float]]  # (label, CL ID, weight)
    fingerprint: str = ""  # size and modification time of the data file

    def item_ids(self) -> set[str]:
        """Every item id of the dataset."""
        return {t.item_id for u in self.units for t in u.truths}

    @property
    def kind(self) -> str:
        """The kind as stored: ``markers``, ``h5ad-cluster``, ``h5ad-cell`` or ``puzzles``."""
        if self.config.kind == "h5ad":
            return f"h5ad-{self.config.level}"
        return self.config.kind


def _truth_ids(value: object, tissue: str | None) -> list[str]:
    """CL IDs in a truth cell (several allowed), else the matcher's term for the text."""
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


def _load_markers(cfg: DatasetConfig, path: Path, seed: int) -> Dataset:
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
        units.append(Unit(id=q.id, query=q,
                           truths=[Truth(q.id, text, _truth_ids(truth, q.tissue))]))
    vocab = Counter((t.text, t.ids[0] if t.ids else None) for u in units for t in u.truths)
    return Dataset(cfg, units, [(lab, tid, float(w)) for (lab, tid), w in vocab.items()])


def _read_h5ad(cfg: DatasetConfig, base: Path) -> Any:
    path = dataset_path(cfg, base)
    if path is None:
        import scanpy as sc  # slow to import (as everywhere in llm4cell): scanpy: data only

        name = cfg.path.split(":", 1)[1]
        if name != "pbmc68k_reduced":
            msg = (f"only scanpy:pbmc68k_reduced ships inside scanpy (no download here); "
                   f"got {cfg.path!r}: give a file path")
            raise InputError(msg)
        return sc.datasets.pbmc68k_reduced()
    return read_data(path)


def _fingerprint(cfg: DatasetConfig, base: Path) -> str:
    """What identifies the data behind a dataset (an edited file gets new run keys)."""
    path = dataset_path(cfg, base)
    if path is None:
        return f"{cfg.path}@scanpy-{metadata.version('scanpy')}"
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _load_h5ad(cfg: DatasetConfig, base: Path, seed: int) -> Dataset:
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
    id_col = id_column(adata, label_col, cfg.label_id_col)
    id_map = None
    if id_col is not None:
        pairs = pd.DataFrame({"l": labels, "i": adata.obs[id_col].astype(str)}).dropna()
        id_map = dict(pairs.drop_duplicates("l").itertuples(index=False))
    names = sorted(set(labels.dropna()))
    cl = candidate_ids(names, id_map, cfg.tissue)
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
            truths = [Truth(str(g), top, [cl[top]] if cl.get(top) else [], 1.0)]
        else:
            truths = [Truth(f"{g}|{lab}", str(lab), [cl[lab]] if cl.get(lab) else [], float(k))
                      for lab, k in per_label.items()]
        units.append(Unit(id=str(g), query=q, truths=truths))
    if cfg.sample is not None or cfg.limit is not None:
        keep = _subset(pd.DataFrame(index=range(len(units))), cfg, seed).index
        units = [units[i] for i in keep]
    vocab: Counter[tuple[str, str | None]] = Counter()
    for u in units:
        for t in u.truths:
            vocab[(t.text, t.ids[0] if t.ids else None)] += t.weight
    return Dataset(cfg, units, [(lab, tid, float(w)) for (lab, tid), w in vocab.items()])


def _load_puzzles(cfg: DatasetConfig, base: Path, seed: int) -> Dataset:
    if cfg.builds_puzzles:
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
        path = dataset_path(cfg, base)
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
    units = [Unit(id=p.id, puzzle=p, truths=[Truth(p.id, " | ".join(p.answer or ()), [])])
             for p in puzzles]
    vocab: Counter[tuple[str, str | None]] = Counter()
    for p in puzzles:
        for a in p.answer or ():
            vocab[(a, p.candidate_id(a))] += 1
    return Dataset(cfg, units, [(lab, tid, float(w)) for (lab, tid), w in vocab.items()])


def load_dataset(cfg: DatasetConfig, base: Path, seed: int) -> Dataset:
    try:
        return _load_dataset_unnamed(cfg, base, seed)
    except InputError as e:
        if str(e).startswith("dataset "):
            raise
        msg = f"dataset {cfg.name!r}: {e}"
        raise InputError(msg) from None


def _load_dataset_unnamed(cfg: DatasetConfig, base: Path, seed: int) -> Dataset:
    if cfg.kind == "h5ad":
        ds = _load_h5ad(cfg, base, seed)
    elif cfg.kind == "puzzles":
        ds = _load_puzzles(cfg, base, seed)
    else:
        path = dataset_path(cfg, base)
        if path is None or not path.is_file():
            msg = f"dataset {cfg.name!r}: cannot read {str(path)!r}: no such file; check path"
            raise InputError(msg)
        ds = _load_markers(cfg, path, seed)
    if not ds.units:
        msg = f"dataset {cfg.name!r} holds no items to score; check its file and filters"
        raise InputError(msg)
    ds.fingerprint = _fingerprint(cfg, base)
    return ds
