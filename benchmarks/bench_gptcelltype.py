"""The knowledge engine on Hou & Ji's GPTCelltype benchmark, beside GPT-4 and GPT-3.5.

Data: ``../shared/benchmarks/gptcelltype/markers_dev.csv`` (read in place, never copied;
the script skips cleanly when it is absent). Truth: the curators' ``manual_CLID`` (rows
that have one; a row naming two terms counts the better of the two). Every annotator is
scored by the same rules (:mod:`llm4cell.metrics`) in the same run: the knowledge engine
on the row's top-10 markers and tissue, and the GPT-4 (aug 3) and GPT-3.5 (aug 3) answers
of the file mapped to CL with :func:`llm4cell.ontology.match_label`.

Robustness probes, built from the same rows with a fixed seed: 25% and 50% of the
markers replaced by random genes of the database, only the top 3 and top 5 markers, and
the lists of two random clusters merged (alternating, truth: the first cluster's).

Usage: python benchmarks/bench_gptcelltype.py [--data PATH] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from llm4cell import MarkerQuery, load_knowledge
from llm4cell.metrics import expected_calibration_error, hierarchical_prf, ontology_agreement
from llm4cell.ontology import get_matcher, load_ontology

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "gptcelltype" / (
    "markers_dev.csv"
)


def _best(pred: str | None, truths: list[str], fn: Callable[[str | None, str], float]) -> float:
    return max((fn(pred, t) for t in truths), default=float("nan"))


def score(preds: list[str | None], truths: list[list[str]],
          confidence: list[float] | None = None) -> dict[str, float]:
    """Mean agreement, full-match rate, hierarchical F1 and (with confidences) ECE."""
    onto = load_ontology()
    agree = np.array([_best(p, t, lambda a, b: ontology_agreement(a, b, ontology=onto))
                      for p, t in zip(preds, truths, strict=True)])
    hf1 = np.array([_best(p, t, lambda a, b: hierarchical_prf(a, b, ontology=onto)[2])
                    for p, t in zip(preds, truths, strict=True)])
    out = {"agreement": agree.mean(), "full": (agree == 1).mean(),
           "partial": (agree == 0.5).mean(), "hF1": hf1.mean()}
    if confidence is not None:
        out["ECE"] = expected_calibration_error(confidence, agree)
        out["mean_conf"] = float(np.mean(confidence))
    return out


def _md(rows: list[dict[str, object]]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(
            f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (evaluation data lives in ../shared)")
        return 0
    onto = load_ontology()
    df = pd.read_csv(args.data)
    df = df[df["manual_CLID"].notna()].reset_index(drop=True)
    truths = [[t for t in (onto.resolve(x.strip()) for x in str(v).split(",")) if t]
              for v in df["manual_CLID"]]
    start = time.perf_counter()
    kb = load_knowledge()
    load_s = time.perf_counter() - start
    # MCA is the Mouse Cell Atlas: its markers are mouse genes.
    species = ["mouse" if ds == "MCA" else "human" for ds in df["dataset"]]
    queries = [MarkerQuery(id=str(i), genes=tuple(g.strip() for g in str(m).split(",")),
                           tissue=t if isinstance(t, str) else None, species=sp)
               for i, (m, t, sp) in enumerate(zip(df["marker"], df["tissue"], species,
                                                  strict=True))]
    start = time.perf_counter()
    answers = kb.annotate(queries)
    per_cluster_ms = 1000 * (time.perf_counter() - start) / len(queries)
    df["kb_id"] = [a.ontology_id for a in answers]
    df["kb_conf"] = [a.confidence for a in answers]
    matcher = get_matcher()
    for model in ("gpt4aug3", "gpt3.5aug3"):
        m = matcher.match_many(df[f"{model}_annotation"].fillna("").astype(str),
                               tissues=df["tissue"])
        df[f"{model}_id"] = [x.ontology_id for x in m]

    print(f"{args.data.name}: {len(df)} clusters with a curated CL ID; CL {onto.version}; "
          f"{kb}")
    print(f"knowledge base load {load_s:.2f} s; {per_cluster_ms:.1f} ms per cluster\n")
    rows = []
    for ds, part in [("overall", df), *df.groupby("dataset")]:
        idx = list(part.index)
        t = [truths[i] for i in idx]
        for name, col, conf in (("knowledge", "kb_id", "kb_conf"),
                                ("GPT-4", "gpt4aug3_id", None),
                                ("GPT-3.5", "gpt3.5aug3_id", None)):
            s = score(list(part[col]), t, list(part[conf]) if conf else None)
            rows.append({"dataset": ds, "annotator": name, "n": len(idx), **{
                k: s.get(k, float("nan")) for k in ("agreement", "full", "partial", "hF1",
                                                     "ECE")}})
    print(_md(rows))

    # robustness probes
    rng = np.random.default_rng(args.seed)
    pool = np.array(kb.genes)
    base = [list(q.genes) for q in queries]

    def replaced(frac: float) -> list[list[str]]:
        out = []
        for g in base:
            g = list(g)
            k = round(frac * len(g))
            for pos in rng.choice(len(g), size=k, replace=False):
                g[pos] = str(rng.choice(pool))
            out.append(g)
        return out

    partner = rng.permutation(len(base))
    probes = {
        "original": base,
        "25% random": replaced(0.25),
        "50% random": replaced(0.5),
        "top 3": [g[:3] for g in base],
        "top 5": [g[:5] for g in base],
        "two merged": [[x for pair in zip(g, base[j], strict=False) for x in pair]
                       for g, j in zip(base, partner, strict=True)],
    }
    prow = []
    for name, lists in probes.items():
        qs = [q.model_copy(update={"genes": tuple(g)}) for q, g in zip(queries, lists,
                                                                        strict=True)]
        ans = kb.annotate(qs)
        s = score([a.ontology_id for a in ans], truths, [a.confidence for a in ans])
        prow.append({"probe": name, **s,
                     "unknown": float(np.mean([a.ontology_id is None for a in ans]))})
    print("\nRobustness probes (knowledge engine):")
    print(_md(prow))
    return 0


if __name__ == "__main__":
    sys.exit(main())
