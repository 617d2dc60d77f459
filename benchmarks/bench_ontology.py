"""Benchmark the free-text -> Cell Ontology mapper and the ontology-aware scoring.

Data: ``../shared/benchmarks/gptcelltype/markers_dev.csv`` (Hou & Ji, GPTCelltype; read
in place, never copied). The script skips cleanly when the file is absent.

1. Map every ``manual_annotation`` (the original authors' free-text label) to CL with
   :func:`llm4cell.ontology.match_label`, using the row's tissue, and compare with the
   curators' ``manual_CLID``: exact-term agreement and, for the rest, the ontology
   agreement (1 / 0.5 / 0) between the two. Every disagreement is printed (and written
   with ``--disagreements FILE``) for review.
2. Map the GPT-4 (aug 3) and GPT-3.5 answers the same way and score them against the
   curated IDs with :func:`llm4cell.metrics.ontology_agreement`, beside the curators'
   hand-given agreement on the same rows, per dataset and overall; time per label.

Usage: python benchmarks/bench_ontology.py [--data PATH] [--disagreements OUT.csv]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from llm4cell.metrics import ontology_agreement
from llm4cell.ontology import get_matcher, load_ontology

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "gptcelltype" / (
    "markers_dev.csv"
)


def _md(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(
            f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT)
    parser.add_argument("--disagreements", type=Path, default=None,
                        help="write the mapper/curator disagreements to this CSV")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"skipped: {args.data} not found (evaluation data lives in ../shared)")
        return 0
    df = pd.read_csv(args.data)
    onto = load_ontology()
    matcher = get_matcher()
    print(f"{args.data.name}: {len(df)} rows; Cell Ontology {onto.version}\n")

    # 1. manual annotation -> CL vs curated CL
    start = time.perf_counter()
    matches = matcher.match_many(df["manual_annotation"].astype(str), tissues=df["tissue"])
    per_label_ms = 1000 * (time.perf_counter() - start) / len(df)
    df["our_id"] = [m.ontology_id for m in matches]
    df["our_label"] = [m.label for m in matches]
    df["our_method"] = [m.method for m in matches]
    df["our_score"] = [m.score for m in matches]
    df["ambiguous"] = [m.ambiguous for m in matches]
    curated = df[df["manual_CLID"].notna()].copy()
    # A few curated rows name two terms ("Pericyte/SMC" -> "CL:0000669,CL:0000192"):
    # a mapping to either counts as the same term, and agreement is the best of the two.
    curated["curated_set"] = curated["manual_CLID"].map(
        lambda v: [t for t in (onto.resolve(x.strip()) for x in str(v).split(",")) if t])
    curated["curated_live"] = curated["curated_set"].map(lambda ts: ts[0] if ts else None)
    curated["same"] = [o in ts for o, ts in zip(curated["our_id"], curated["curated_set"],
                                                 strict=True)]
    curated["agreement"] = [
        max((ontology_agreement(o, c, ontology=onto) for c in ts), default=float("nan"))
        for o, ts in zip(curated["our_id"], curated["curated_set"], strict=True)
    ]
    n, same = len(curated), int(curated["same"].sum())
    print(f"Mapper vs curated manual_CLID: {same}/{n} rows map to the same term "
          f"({same / n:.1%}); ontology agreement {curated['agreement'].mean():.3f}; "
          f"{per_label_ms:.2f} ms per label (cold cache)")
    print("methods:", curated["our_method"].value_counts().to_dict())
    by_ds = curated.groupby("dataset").agg(rows=("same", "size"), same_term=("same", "mean"),
                                           agreement=("agreement", "mean")).reset_index()
    print(_md(by_ds), "\n")
    dis = curated[~curated["same"]]
    uniq = (dis.groupby(["manual_annotation", "tissue", "manual_CLID", "manual_CLname",
                         "our_id", "our_label", "our_method"], dropna=False)
            .agg(rows=("same", "size"), agreement=("agreement", "first")).reset_index()
            .sort_values(["agreement", "manual_annotation"]))
    print(f"{len(dis)} disagreeing rows, {len(uniq)} distinct (label, tissue) pairs:")
    print(_md(uniq[["manual_annotation", "tissue", "manual_CLname", "manual_CLID",
                    "our_label", "our_id", "our_method", "agreement", "rows"]]))
    if args.disagreements is not None:
        uniq.to_csv(args.disagreements, index=False)
        print(f"\nwrote {args.disagreements}")

    # 2. GPT answers mapped the same way, scored against the curated IDs
    print("\nGPT answers mapped with the same matcher, scored on the graph against the "
          "curated manual_CLID (rows with one and with an answer), beside the same graph "
          "rules applied to the curators' own CL mapping of the answer "
          "(graph_on_their_ids) and the curators' hand scores:")
    rows = []
    for model in ("gpt4aug3", "gpt4mar23", "gpt3.5aug3"):
        answered = curated[curated[f"{model}_annotation"].notna()].copy()
        m = matcher.match_many(answered[f"{model}_annotation"].astype(str),
                               tissues=answered["tissue"])
        answered["ours"] = [
            max((ontology_agreement(x.ontology_id, c, ontology=onto) for c in ts), default=0.0)
            for x, ts in zip(m, answered["curated_set"], strict=True)
        ]
        # the same graph rules on the curators' own mapping of the answer
        answered["graph_on_their_ids"] = [
            max((ontology_agreement(x.split(",")[0], c, ontology=onto) for c in ts),
                default=0.0) if isinstance(x, str) else 0.0
            for x, ts in zip(answered[f"{model}_CLID"], answered["curated_set"], strict=True)
        ]
        for ds, part in [("overall", answered), *answered.groupby("dataset")]:
            rows.append({
                "model": model, "dataset": ds, "rows": len(part),
                "ours": part["ours"].mean(),
                "ours_full": (part["ours"] == 1).mean(),
                "graph_on_their_ids": part["graph_on_their_ids"].mean(),
                "curators": part[f"{model}_agreement"].mean(),
                "curators_full": (part[f"{model}_agreement"] == 1).mean(),
            })
    table = pd.DataFrame(rows)
    print(_md(table))
    print("\nCurators' published GPT-4 score on all 1,130 rows: 0.569 (36% full).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
