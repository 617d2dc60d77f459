"""``llm4cell.annotate`` end to end on expert-labelled expression data, beside baselines.

The measuring instrument of issue 14: does the path users run (an h5ad in, Cell Ontology
labels per cell out) give the labels the original authors gave?

Data
----
Every ``NAME.h5ad`` in ``../shared/benchmarks/real/`` (``--data-dir`` overrides it), read
in place: nothing is copied into the project, nothing is written next to the data. Each
file holds ``obs['truth_label']`` (the authors' label), ``obs['truth_clid']`` (that label
mapped to the Cell Ontology by hand) and ``uns['benchmark']`` (tissue, species, what X
holds). The script prints a message and exits 0 when the folder is absent.

What is run
-----------
Two modes per dataset (``--mode``):

``own``
    llm4cell's own clusters: ``llm4cell.annotate(adata, tissue=..., species=...,
    copy=True)`` with the defaults (Leiden clusters, knowledge backend).
``authors``
    the authors' groups: the same call with ``groupby="truth_label"``. The labels are only
    used to group cells (the engine sees each group's markers, never its name).

Beside llm4cell, in the same run and scored by the same rules:

* **most frequent label**: the truth term of the most frequent truth label (ties: the
  alphabetically first) given to every cell;
* **cellconsensus** (the peer whose marker database llm4cell reads; ``--no-peer`` skips
  it): ``CellConsensus().fit(adata)`` in its own ``"ccc"`` clustering for ``own``, and
  ``CellConsensus(clustering="precomputed", cluster_key="truth_label")`` for ``authors``,
  reported at each of its three levels (L1 broad lineages, L2 types, L3 subtypes) with
  the CL IDs it gives itself (``predict(output="cl_id")``; "unassigned" is unknown). It
  gets X as stored (its double quantile normalisation is rank-based, so log-normalised
  values give the same ranks as counts) and, for mouse data, the human symbols of
  :func:`llm4cell.genes.mouse_to_human`, as llm4cell uses. Its k-NN graph is seeded
  (``numpy.random.seed(0)``).

What is measured
----------------
Per cell, the 1 / 0.5 / 0 Cell Ontology agreement of :func:`llm4cell.metrics.score_pairs`
(same term; one a non-generic ancestor of the other; otherwise, or no answer), averaged
over cells (cell-weighted, :func:`llm4cell.metrics.summarize`):

* agreement, full-match and partial-match rates, the unknown share (cells without a CL
  answer), mean confidence and the cell-level ECE (10 equal-width bins,
  :func:`llm4cell.metrics.expected_calibration_error`), and the time of each step;
* per truth label: cells, the labels llm4cell gave with their shares, agreement (and the
  best cellconsensus level's);
* per group llm4cell annotated: label, confidence, the truth labels inside, agreement and
  the group's top markers and its mixed flag (from ``uns['llm4cell'][key]['groups']``);
* agreement split by obs metadata that is a state, not a type (``condition``: Kang's
  interferon-beta stimulation; ``tissue_state``: tumour-bearing or healthy lung; ``phase``);
* the state column ``obs['llm4cell_state']``, picked up automatically once annotate
  writes one: the share of stimulated (``condition``) cells it calls interferon-stimulated
  and of control cells it calls so, likewise cycling for ``phase`` S/G2M; "n/a (no state
  column)" until then;
* reliability bins of the per-cell confidence (n cells, mean confidence, agreement) and
  whether agreement rises across the bins of at least 50 cells.

Overall figures are means over datasets. The last table puts llm4cell beside the best
baseline and the targets of issue 14.

Rules
-----
Evaluation only: the data are never copied, and nothing is fitted or tuned here; every
annotator runs with its shipped defaults. The same rules score every annotator.

Usage: python benchmarks/bench_realdata.py [--data-dir DIR] [--datasets NAME ...]
[--mode own|authors|both] [--no-peer] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import math
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

import llm4cell
from llm4cell.genes import mouse_to_human
from llm4cell.metrics import reliability_bins, score_pairs, summarize
from llm4cell.ontology import load_ontology

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "real"
KEY = "llm4cell"  # annotate's default key_added
LLM = "llm4cell"
MOST_FREQUENT = "most frequent label"
PEER = "cellconsensus"
PEER_LEVELS = {1: "L1 (broad)", 2: "L2", 3: "L3 (fine)"}
MODES = {"own": None, "authors": "truth_label"}
MODE_TITLES = {"own": "llm4cell's own clusters", "authors": "the authors' groups"}
#: obs columns holding a state of the cells (not a type): agreement is split by them.
SPLIT_COLUMNS = ("condition", "tissue_state", "phase")
#: Issue 14's targets for the agreement (own clusters per dataset; authors' groups).
TARGETS = {
    "own": {"kang_pbmc": 0.80, "zilionis_mouse_lung": 0.85, "xin_pancreas": 0.95},
    "authors": {"kang_pbmc": 0.90, "zilionis_mouse_lung": 0.90, "xin_pancreas": 0.90},
}
ECE_TARGET = 0.08
MIN_BIN_CELLS = 50


@dataclass(frozen=True)
class StateProbe:
    """Metadata that says which cells are in a state, and the state name that should say so.

    Attributes
    ----------
    column
        obs column of the metadata.
    positive
        Its values marking cells in the state.
    state
        Name of the state, for the output.
    keywords
        A cell's state text names the state when it contains one of these (lower case).
    """

    column: str
    positive: frozenset[str]
    state: str
    keywords: tuple[str, ...]


STATE_PROBES = (
    StateProbe("condition", frozenset({"stimulated", "stim"}), "interferon-stimulated",
               ("interferon", "ifn")),
    StateProbe("phase", frozenset({"S", "G2M"}), "cycling", ("cycl", "prolif")),
)


@dataclass
class Prediction:
    """One annotator's answer for every cell of a dataset (index: obs_names)."""

    name: str
    ids: pd.Series
    labels: pd.Series
    seconds: float
    confidence: pd.Series | None = None
    groups: pd.Series | None = None
    group_info: pd.DataFrame | None = None
    state: pd.Series | None = None
    obs_written: list[str] = field(default_factory=list)
    input_kind: str = ""


# ------------------------------------------------------------------------------ helpers


@contextlib.contextmanager
def timed(timings: dict[str, float], step: str) -> Iterator[None]:
    """Record the wall time of a step in ``timings`` (seconds)."""
    start = time.perf_counter()
    yield
    timings[step] = timings.get(step, 0.0) + time.perf_counter() - start


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def md(rows: list[dict[str, object]]) -> str:
    """A markdown table of dict rows (the keys of the first row are the columns)."""
    if not rows:
        return "(none)"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def _clean(obj: object) -> object:
    """JSON-safe copy: numpy scalars to Python, NaN to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _ids(values: pd.Series) -> pd.Series:
    """CL IDs as objects, a missing answer as ""."""
    out = values.astype(object)
    return out.where(out.notna(), "").astype(str)


def shares(values: pd.Series, k: int = 3) -> str:
    """The ``k`` most frequent values with their shares, e.g. ``monocyte 62%, DC 30%``."""
    frac = values.astype(str).value_counts(normalize=True)
    text = [f"{v} {p:.0%}" for v, p in frac.head(k).items()]
    rest = frac.iloc[k:].sum()
    return ", ".join(text + ([f"other {rest:.0%}"] if rest > 0 else []))


# ------------------------------------------------------------------------------ scoring


def cell_scores(pred: Prediction, truth: pd.Series) -> pd.DataFrame:
    """Per-cell metrics of :func:`llm4cell.metrics.score_pairs` (+ confidence).

    Each distinct (prediction, truth) pair is scored once and mapped back to its cells.
    """
    p, t = _ids(pred.ids), _ids(truth)
    key = p + "|" + t
    codes, _ = pd.factorize(key)
    first = np.unique(codes, return_index=True)[1]  # first cell of each pair, in code order
    scored = score_pairs(list(p.iloc[first]), list(t.iloc[first]))
    table = scored.iloc[codes].reset_index(drop=True)
    table.index = truth.index
    if pred.confidence is not None:
        table["confidence"] = pred.confidence.to_numpy(dtype=float)
    return table


def is_unknown(ids: pd.Series) -> pd.Series:
    """Cells without a live CL answer ("unknown", "unassigned", missing)."""
    onto = load_ontology()
    return ~_ids(ids).map(lambda x: bool(x) and onto.resolve(x) is not None)


def summary(pred: Prediction, scores: pd.DataFrame) -> dict[str, float]:
    """Cell-weighted agreement, full/partial rates, unknown share, confidence, ECE, time."""
    conf = "confidence" if "confidence" in scores else None
    row = summarize(scores, confidence=conf).loc["overall"]
    return {
        "agreement": float(row["agreement"]),
        "full": float(row["full_match"]),
        "partial": float(row["partial_match"]),
        "unknown": float(is_unknown(pred.ids).mean()),
        "mean_conf": float(scores["confidence"].mean()) if conf else float("nan"),
        "ECE": float(row["ece"]) if conf else float("nan"),
        "time_s": pred.seconds,
    }


def reliability(scores: pd.DataFrame) -> tuple[list[dict[str, object]], str]:
    """Non-empty reliability bins of the per-cell confidence, and whether agreement rises.

    Agreement "rises" when it does not fall from one bin of at least ``MIN_BIN_CELLS``
    cells to the next.
    """
    bins = reliability_bins(scores["confidence"], scores["agreement"])
    bins = bins[bins["n"] > 0]
    rows = [{"confidence": f"{r.bin_lower:.1f}-{r.bin_upper:.1f}", "n": int(r.n),
             "mean confidence": float(r.mean_confidence),
             "agreement": float(r.mean_agreement)} for r in bins.itertuples()]
    big = bins[bins["n"] >= MIN_BIN_CELLS]["mean_agreement"].to_numpy()
    if len(big) < 2:
        verdict = f"n/a ({len(big)} bin(s) of >= {MIN_BIN_CELLS} cells)"
    else:
        verdict = "yes" if bool(np.all(np.diff(big) >= 0)) else "no"
    return rows, verdict


def per_label(adata: ad.AnnData, pred: Prediction, scores: pd.DataFrame,
              peer: tuple[str, pd.DataFrame] | None) -> list[dict[str, object]]:
    """One row per truth label: cells, labels given with shares, agreement."""
    truth = adata.obs["truth_label"].astype(str)
    frame = scores.assign(truth_label=truth.to_numpy())
    agree = summarize(frame, by="truth_label")["agreement"]
    peer_agree = None
    if peer is not None:
        peer_agree = summarize(peer[1].assign(truth_label=truth.to_numpy()),
                               by="truth_label")["agreement"]
    rows = []
    for label, n in truth.value_counts().items():
        mask = (truth == label).to_numpy()
        row: dict[str, object] = {
            "truth label": label, "CL": adata.obs["truth_clid"][mask].iloc[0], "n": int(n),
            f"{LLM} labels (share of cells)": shares(pred.labels[mask]),
            "agreement": float(agree[label]),
        }
        if peer_agree is not None:
            row[f"{peer[0]} agreement"] = float(peer_agree[label])
        rows.append(row)
    return rows


def per_group(adata: ad.AnnData, pred: Prediction,
              scores: pd.DataFrame) -> list[dict[str, object]]:
    """One row per group llm4cell annotated, largest first."""
    if pred.groups is None:
        return []
    groups = pred.groups.astype(str)
    truth = adata.obs["truth_label"].astype(str)
    info = pred.group_info if pred.group_info is not None else pd.DataFrame()
    rows = []
    for g, n in groups.value_counts().items():
        mask = (groups == g).to_numpy()
        gi = info.loc[g] if g in info.index else pd.Series(dtype=object)
        markers = str(gi.get("top_markers", "")).split(", ")
        rows.append({
            "group": g, "n": int(n),
            "label": f"{gi.get('label', '')} ({gi.get('ontology_id', '') or '-'})",
            "confidence": float(gi.get("confidence", float("nan"))),
            "truth inside": shares(truth[mask], k=2),
            "agreement": float(scores["agreement"][mask].mean()),
            "top markers": ", ".join(markers[:10]),
            "next candidate": str(gi.get("candidate_2", "")),
            "mixed": "" if pd.isna(gi.get("mixed", "")) else str(gi.get("mixed", "")),
        })
    return rows


def by_metadata(adata: ad.AnnData, scores: pd.DataFrame) -> list[dict[str, object]]:
    """Agreement split by the state-like obs columns present (:data:`SPLIT_COLUMNS`)."""
    rows = []
    for col in SPLIT_COLUMNS:
        if col not in adata.obs:
            continue
        frame = scores.assign(**{col: adata.obs[col].astype(str).to_numpy()})
        table = summarize(frame, by=col)
        for value, r in table.drop(index="overall").iterrows():
            rows.append({"column": col, "value": value, "n": int(r["n"]),
                         "agreement": float(r["agreement"]),
                         "full": float(r["full_match"])})
    return rows


def state_report(adata: ad.AnnData, pred: Prediction) -> dict[str, object]:
    """How the state column matches stimulation / cycling metadata, where present."""
    if pred.state is None:
        return {"status": "n/a (no state column)"}
    state = pred.state.astype(object).where(pred.state.notna(), "").astype(str).str.lower()
    shown = state.where(state != "", "(none)")
    out: dict[str, object] = {"status": "present", "values": shares(shown, k=5), "probes": []}
    for probe in STATE_PROBES:
        if probe.column not in adata.obs:
            continue
        positive = adata.obs[probe.column].astype(str).isin(probe.positive).to_numpy()
        called = state.map(lambda s, kw=probe.keywords: any(k in s for k in kw)).to_numpy()
        sens = float(called[positive].mean()) if positive.any() else float("nan")
        fpr = float(called[~positive].mean()) if (~positive).any() else float("nan")
        out["probes"].append({
            "metadata": f"{probe.column} in {sorted(probe.positive)}", "state": probe.state,
            "n in state": int(positive.sum()), "called (in state)": sens,
            "called (not in state)": fpr, "balanced accuracy": (sens + 1 - fpr) / 2,
        })
    if not out["probes"]:
        out["status"] = "present; no stimulation/cycling metadata in this dataset"
    return out


# --------------------------------------------------------------------------- annotators


def run_llm4cell(adata: ad.AnnData, bench: dict[str, str], groupby: str | None) -> Prediction:
    """``llm4cell.annotate`` on a copy; reads the obs columns and provenance it writes."""
    start = time.perf_counter()
    out = llm4cell.annotate(adata, groupby=groupby, tissue=bench.get("tissue"),
                            species=bench.get("species", "human"), key_added=KEY, copy=True)
    seconds = time.perf_counter() - start
    obs = out.obs
    record = llm4cell.get_provenance(out, key=KEY)
    info = record.get("groups")
    group_col = groupby or f"{KEY}_cluster"
    return Prediction(
        name=LLM, ids=obs[f"{KEY}_ontology_id"].astype(object),
        labels=obs[KEY].astype(str), seconds=seconds,
        confidence=obs[f"{KEY}_confidence"].astype(float),
        groups=obs[group_col] if group_col in obs else None,
        group_info=info if isinstance(info, pd.DataFrame) else None,
        state=obs[f"{KEY}_state"] if f"{KEY}_state" in obs else None,
        obs_written=[c for c in obs.columns if c.startswith(KEY)],
        input_kind=", ".join(f"{k}: {v}" for k, v in dict(record.get("input", {})).items()),
    )


def most_frequent(adata: ad.AnnData) -> Prediction:
    """The truth term of the most frequent label (ties: alphabetically first), every cell."""
    start = time.perf_counter()
    truth = adata.obs["truth_label"].astype(str)
    counts = truth.value_counts()
    top = sorted(counts[counts == counts.max()].index)[0]
    clid = adata.obs["truth_clid"][(truth == top).to_numpy()].iloc[0]
    n = adata.n_obs
    return Prediction(name=f"{MOST_FREQUENT} ({top})",
                      ids=pd.Series([clid] * n, index=adata.obs_names, dtype=object),
                      labels=pd.Series([top] * n, index=adata.obs_names),
                      seconds=time.perf_counter() - start)


def peer_input(adata: ad.AnnData, species: str) -> ad.AnnData:
    """What cellconsensus gets: X and truth_label, human symbols (mouse genes mapped)."""
    peer = ad.AnnData(X=adata.X.copy(), obs=adata.obs[["truth_label"]].copy())
    names = [str(g) for g in adata.var_names]
    if species == "mouse":
        names = [mouse_to_human(g) for g in names]
    peer.var_names = names
    peer.var_names_make_unique()
    return peer


def run_peer(adata: ad.AnnData, species: str, groupby: str | None) -> list[Prediction]:
    """cellconsensus at its three levels (one fit), with its own CL IDs."""
    from cellconsensus import CellConsensus

    data = peer_input(adata, species)
    start = time.perf_counter()
    if groupby is None:
        model = CellConsensus()
    else:
        model = CellConsensus(clustering="precomputed", cluster_key=groupby)
    np.random.seed(0)  # pynndescent draws from the global generator
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data, verbose=False)
    seconds = time.perf_counter() - start
    preds = []
    for level, title in PEER_LEVELS.items():
        ids = model.predict(level=level, output="cl_id").astype(object)
        names = model.predict(level=level, output="name").astype(str)
        ids.index = names.index = adata.obs_names
        preds.append(Prediction(name=f"{PEER} {title}", ids=ids, labels=names,
                                seconds=seconds))
    return preds


# ------------------------------------------------------------------------------- driver


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DIR,
                        help="folder of NAME.h5ad files (default: ../shared/benchmarks/real)")
    parser.add_argument("--datasets", nargs="+", metavar="NAME",
                        help="only these datasets (file names without .h5ad)")
    parser.add_argument("--mode", choices=("own", "authors", "both"), default="both",
                        help="llm4cell's own clusters, the authors' groups, or both")
    parser.add_argument("--no-peer", action="store_true", help="skip cellconsensus")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="write every figure as JSON here")
    return parser.parse_args(argv)


def find_datasets(data_dir: Path, wanted: list[str] | None) -> list[Path]:
    """The h5ad files to run, in name order; raises ValueError for unknown names."""
    files = {p.stem: p for p in sorted(data_dir.glob("*.h5ad"))}
    if not wanted:
        return list(files.values())
    names = [w.removesuffix(".h5ad") for w in wanted]
    missing = [n for n in names if n not in files]
    if missing:
        msg = f"no dataset {missing} in {data_dir} (there: {', '.join(files) or 'none'})"
        raise ValueError(msg)
    return [files[n] for n in names]


def warm_up(path: Path, peer: bool) -> float:
    """Pay one-off costs (knowledge base, ontology, numba JIT) outside the timings."""
    start = time.perf_counter()
    llm4cell.load_knowledge()
    load_ontology()
    adata = ad.read_h5ad(path)[:300].copy()
    bench = dict(adata.uns.get("benchmark", {}))
    run_llm4cell(adata, bench, None)
    if peer:
        run_peer(adata, bench.get("species", "human"), None)
    return time.perf_counter() - start


def run_mode(name: str, adata: ad.AnnData, bench: dict[str, str], mode: str,
             peer: bool) -> dict[str, object]:
    """All annotators of one mode on one dataset, scored and printed."""
    groupby = MODES[mode]
    timings: dict[str, float] = {}
    with timed(timings, "llm4cell annotate"):
        llm = run_llm4cell(adata, bench, groupby)
    preds = [llm, most_frequent(adata)]
    if peer:
        with timed(timings, "cellconsensus fit"):
            preds += run_peer(adata, bench.get("species", "human"), groupby)
    truth = adata.obs["truth_clid"]
    with timed(timings, "scoring"):
        scores = {p.name: cell_scores(p, truth) for p in preds}
        table = [{"annotator": p.name, **summary(p, scores[p.name])} for p in preds]
        peers = [r for r in table if str(r["annotator"]).startswith(PEER)]
        best_peer = max(peers, key=lambda r: r["agreement"])["annotator"] if peers else None
        labels = per_label(adata, llm, scores[LLM],
                           (str(best_peer), scores[str(best_peer)]) if best_peer else None)
        groups = per_group(adata, llm, scores[LLM])
        splits = by_metadata(adata, scores[LLM])
        state = state_report(adata, llm)
        rel, rises = reliability(scores[LLM])

    print(f"\n-- {name}: {MODE_TITLES[mode]} --")
    if llm.input_kind:
        print(f"llm4cell read the input as: {llm.input_kind}")
    print(f"obs columns written: {', '.join(llm.obs_written)}")
    print(md([{k: (f"{v:.1f}" if k == "time_s" else v) for k, v in r.items()} for r in table]))
    print(f"\nPer truth label ({LLM}):")
    print(md(labels))
    if groups:
        print(f"\nPer group ({len(groups)} groups, largest first):")
        print(md(groups))
    if splits:
        print("\nAgreement by state metadata (llm4cell):")
        print(md(splits))
    print(f"\nState column: {state['status']}")
    if state.get("values"):
        print(f"state values: {state['values']}")
    if state.get("probes"):
        print(md(state["probes"]))
    print(f"\nReliability of the per-cell confidence (ECE {table[0]['ECE']:.3f}; agreement "
          f"rises across bins of >= {MIN_BIN_CELLS} cells: {rises}):")
    print(md(rel))
    print("times: " + " | ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return {"summary": table, "per_label": labels, "per_group": groups,
            "by_metadata": splits, "state": state, "reliability": rel,
            "agreement_rises": rises, "timings_s": timings, "best_peer": best_peer}


def overall(results: dict[str, dict[str, dict[str, object]]]) -> list[dict[str, object]]:
    """Mean over datasets of each annotator's figures, per mode."""
    rows = []
    for mode in MODES:
        per: dict[str, list[dict[str, float]]] = {}
        for res in results.values():
            for r in res.get(mode, {}).get("summary", []):
                name = str(r["annotator"])
                name = MOST_FREQUENT if name.startswith(MOST_FREQUENT) else name
                per.setdefault(name, []).append(r)
        for name, rs in per.items():
            row: dict[str, object] = {"mode": mode, "annotator": name, "datasets": len(rs)}
            for k in ("agreement", "full", "partial", "unknown", "mean_conf", "ECE"):
                vals = [float(r[k]) for r in rs]
                row[k] = float(np.mean(vals)) if not all(map(math.isnan, vals)) else math.nan
            row["time_s (total)"] = f"{sum(float(r['time_s']) for r in rs):.1f}"
            rows.append(row)
    return rows


def headline(results: dict[str, dict[str, dict[str, object]]]) -> list[dict[str, object]]:
    """llm4cell beside the best baseline and issue 14's targets, per dataset and mode."""
    rows = []
    for name, res in results.items():
        for mode in MODES:
            if mode not in res:
                continue
            table = {str(r["annotator"]): r for r in res[mode]["summary"]}
            llm = table[LLM]
            base = [r for k, r in table.items() if k != LLM]
            best = max(base, key=lambda r: r["agreement"])
            target = TARGETS[mode].get(name, math.nan)
            met = llm["agreement"] >= target and llm["ECE"] <= ECE_TARGET and (
                llm["agreement"] > best["agreement"])
            rows.append({
                "dataset": name, "mode": mode, "llm4cell": llm["agreement"],
                "best baseline": f"{best['agreement']:.3f} ({best['annotator']})",
                "target": target, "ECE": llm["ECE"],
                "agreement rises": res[mode]["agreement_rises"],
                "targets met": "" if math.isnan(target) else ("yes" if met else "no"),
            })
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data_dir.is_dir() or not any(args.data_dir.glob("*.h5ad")):
        print(f"skipped: no *.h5ad in {args.data_dir} (evaluation data lives in ../shared)")
        return 0
    try:
        paths = find_datasets(args.data_dir, args.datasets)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    peer = not args.no_peer
    if peer and _version("cellconsensus") == "not installed":
        print("cellconsensus is not installed: the peer is skipped")
        peer = False
    modes = list(MODES) if args.mode == "both" else [args.mode]
    total = time.perf_counter()
    print(f"bench_realdata: {len(paths)} dataset(s) in {args.data_dir}; llm4cell "
          f"{llm4cell.__version__}, cellconsensus {_version('cellconsensus')}, "
          f"CL {load_ontology().version}; modes: {', '.join(modes)}")
    warm = warm_up(paths[0], peer)
    print(f"warm-up (one-off: knowledge base, ontology, numba JIT; not in the timings): "
          f"{warm:.1f} s")

    results: dict[str, dict[str, dict[str, object]]] = {}
    meta: dict[str, dict[str, object]] = {}
    for path in paths:
        start = time.perf_counter()
        adata = ad.read_h5ad(path)
        read_s = time.perf_counter() - start
        bench = {str(k): str(v) for k, v in dict(adata.uns.get("benchmark", {})).items()}
        meta[path.stem] = {"n_cells": adata.n_obs, "n_genes": adata.n_vars, **bench,
                           "n_labels": int(adata.obs["truth_label"].nunique()),
                           "read_s": read_s}
        print(f"\n==== {path.stem}: {adata.n_obs} cells x {adata.n_vars} genes; "
              f"{bench.get('tissue')}, {bench.get('species')}; X: {bench.get('x')}; "
              f"{meta[path.stem]['n_labels']} labels; read in {read_s:.1f} s")
        results[path.stem] = {m: run_mode(path.stem, adata, bench, m, peer) for m in modes}

    rows = overall(results)
    print(f"\n==== Overall (mean over {len(results)} datasets; time summed)")
    print(md(rows))
    heads = headline(results)
    print(f"\n==== llm4cell beside the best baseline and issue 14's targets (targets met: "
          f"agreement >= target, ECE <= {ECE_TARGET}, ahead of every baseline)")
    print(md(heads))
    elapsed = time.perf_counter() - total
    print(f"\ntotal time {elapsed:.1f} s (warm-up {warm:.1f} s)")
    if args.json:
        doc = {"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "versions": {p: _version(p) for p in ("llm4cell", "cellconsensus", "scanpy",
                                                     "anndata")},
               "cl_version": load_ontology().version, "data_dir": str(args.data_dir),
               "datasets": meta, "results": results, "overall": rows, "headline": heads,
               "warm_up_s": warm, "total_s": elapsed}
        args.json.write_text(json.dumps(_clean(doc), indent=1))
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
