"""Fit the per-cell confidence map on the real datasets, leave one dataset out.

The map ``sigmoid(a + b * logit(group confidence))`` (``CELL_CALIBRATION`` in
``src/llm4cell/annotation/_cells.py``; the support term ``d`` stays 0, see
docs/knowledge.md) turns the knowledge engine's group confidence into a per-cell one.
This script runs ``llm4cell.annotate`` on every dataset of ``../shared/benchmarks/real/``
(own clusters and the authors' groups) with the map switched off, so each cell carries its
group's engine confidence and its Cell Ontology agreement with the authors' label
(1 / 0.5 / 0). It then fits ``(a, b)`` by the Brier score, cell-weighted with each run
weighted equally:

* for each dataset, on the other datasets' runs, and reports the held-out ECE per run;
* on all runs: the values to ship.

It prints the shipped map's ECE beside them. Skips cleanly when the data are absent.

Usage: python benchmarks/fit_cell_calibration.py [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
from scipy.optimize import minimize

import llm4cell
import llm4cell.annotation._annotate as pipeline
from llm4cell.annotation._cells import CELL_CALIBRATION, MAX_CONFIDENCE, cell_confidence
from llm4cell.metrics import expected_calibration_error, score_pairs

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "real"
MODES = {"own": None, "authors": "truth_label"}


def _identity(group_confidence: np.ndarray, support: np.ndarray) -> np.ndarray:
    return np.where(group_confidence > 0, np.minimum(group_confidence, MAX_CONFIDENCE), 0.0)


def collect(data: Path) -> list[dict[str, object]]:
    """One record per (dataset, mode): engine group confidence and agreement per cell."""
    runs = []
    shipped = pipeline.cell_confidence
    pipeline.cell_confidence = _identity  # the engine's group confidence, unmapped
    try:
        for path in sorted(data.glob("*.h5ad")):
            meta = json.loads(path.with_suffix(".json").read_text())
            adata = ad.read_h5ad(path)
            for mode, groupby in MODES.items():
                np.random.seed(0)  # pynndescent draws from the global generator
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = llm4cell.annotate(adata, groupby=groupby, tissue=meta.get("tissue"),
                                            species=meta.get("species", "human"), copy=True)
                ids = out.obs["llm4cell_ontology_id"].astype(object)
                pred = [None if not isinstance(v, str) else v for v in ids]
                agree = score_pairs(pred, list(adata.obs["truth_clid"]))["agreement"]
                runs.append({"dataset": path.stem, "mode": mode,
                             "conf": out.obs["llm4cell_confidence"].to_numpy(float),
                             "agree": np.asarray(agree, dtype=float)})
    finally:
        pipeline.cell_confidence = shipped
    return runs


def fit(runs: list[dict[str, object]]) -> tuple[float, float]:
    """``(a, b)`` minimising the run-weighted mean Brier score over answered cells."""
    def loss(ab: np.ndarray) -> float:
        total = 0.0
        for r in runs:
            c = np.asarray(r["conf"])
            ok = c > 0
            p = cell_confidence(c[ok], np.full(ok.sum(), np.nan), (ab[0], ab[1], 0.0))
            total += float(np.mean((p - np.asarray(r["agree"])[ok]) ** 2))
        return total / len(runs)

    res = minimize(loss, x0=np.array(CELL_CALIBRATION[:2]), method="Nelder-Mead",
                   options={"xatol": 1e-4, "fatol": 1e-7, "maxiter": 2000})
    return float(res.x[0]), float(res.x[1])


def ece(run: dict[str, object], ab: tuple[float, float]) -> float:
    c = np.asarray(run["conf"])
    p = cell_confidence(c, np.full(len(c), np.nan), (ab[0], ab[1], 0.0))
    return float(expected_calibration_error(p, np.asarray(run["agree"])))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    args = parser.parse_args()
    if not any(args.data.glob("*.h5ad")):
        print(f"fit_cell_calibration: no datasets in {args.data}; skipped")
        return 0
    runs = collect(args.data)
    datasets = sorted({str(r["dataset"]) for r in runs})
    names = [f"{r['dataset']} {r['mode']}" for r in runs]
    print("| map | " + " | ".join(names) + " | mean | max |")
    print("|---|" + "---|" * (len(names) + 2))

    def row(label: str, eces: list[float]) -> None:
        print(f"| {label} | " + " | ".join(f"{e:.3f}" for e in eces)
              + f" | {np.mean(eces):.3f} | {np.max(eces):.3f} |")

    shipped = (CELL_CALIBRATION[0], CELL_CALIBRATION[1])
    row(f"shipped ({shipped[0]:.3f}, {shipped[1]:.3f})", [ece(r, shipped)
                                                                     for r in runs])
    row("identity (the engine's group confidence)", [ece(r, (0.0, 1.0)) for r in runs])
    held: list[float] = []
    for r in runs:
        ab = fit([s for s in runs if s["dataset"] != r["dataset"]])
        held.append(ece(r, ab))
    row("a, b fitted leave-one-dataset-out (held-out)", held)
    ab = fit(runs)
    row(f"a, b fitted on all runs ({ab[0]:.3f}, {ab[1]:.3f}), in-sample",
        [ece(r, ab) for r in runs])
    for d in datasets:
        fold = fit([s for s in runs if s["dataset"] != d])
        print(f"fold without {d}: a = {fold[0]:.3f}, b = {fold[1]:.3f}")
    print(f"to ship: CELL_CALIBRATION = ({ab[0]:.3f}, {ab[1]:.3f}, 0.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
