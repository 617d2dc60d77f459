"""How the knowledge engine's "unknown" threshold was chosen: scores of random marker lists.

Random marker lists are drawn (fixed seed) from the marker database's own genes, each gene
with probability proportional to the number of cell type profiles that list it, so the
lists look like generic, widely expressed genes rather than rare ones: the hardest null.
For each list length the script prints the distribution of the best type score and the
share of random lists that the engine answers with a cell type (it should be small), next
to the same figures for hand-written canonical marker lists of well-known types.

Usage: python benchmarks/null_scores.py [--n 300] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np

from llm4cell import MarkerQuery, load_knowledge

CANONICAL = {
    "B cell": "MS4A1 CD79A CD79B CD19 BANK1 TCL1A CD22 PAX5",
    "NK cell": "GNLY NKG7 KLRD1 KLRF1 PRF1 NCAM1 FCGR3A CST7",
    "monocyte": "CD14 LYZ S100A8 S100A9 FCN1 VCAN CST3 MNDA",
    "T cell": "CD3D CD3E IL7R LTB CCR7 TCF7 LEF1 CD2",
    "hepatocyte": "ALB APOA1 APOC3 TTR SERPINA1 HP FGB AHSG",
    "fibroblast": "DCN LUM COL1A1 COL1A2 COL3A1 PDGFRA FBLN1 MGP",
    "endothelial cell": "PECAM1 VWF CDH5 CLDN5 FLT1 KDR EMCN RAMP2",
    "pDC": "LILRA4 IL3RA CLEC4C IRF7 TCF4 PLD4 SERPINF1 ITM2C",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="random lists per length")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    kb = load_knowledge()
    rng = np.random.default_rng(args.seed)
    listed = np.diff(kb.enrichment.tocsr().indptr).astype(float)
    prob = listed / listed.sum()
    print(f"knowledge base: {kb}")
    levels = ", ".join(f"{n}: {kb.chance_level(n):.2f}" for n in (3, 5, 10, 25, 50))
    print(f"chance level null(n): {levels}\n")
    print("| list | lists | best score p50 | p95 | p99 | max | answered (not unknown) "
          "| mean confidence of answers |")
    print("|---|---|---|---|---|---|---|---|")
    for length in (5, 10, 25, 50):
        queries = [
            MarkerQuery(id=str(i), genes=tuple(kb.genes[rng.choice(len(kb.genes), length,
                                                                    replace=False, p=prob)]))
            for i in range(args.n)
        ]
        best = np.array([kb.score(q).max() for q in queries])
        answers = kb.annotate(queries)
        answered = np.mean([a.label != "unknown" for a in answers])
        conf = np.mean([a.confidence for a in answers if a.label != "unknown"] or [0.0])
        p50, p95, p99 = np.percentile(best, [50, 95, 99])
        print(f"| random, {length} genes | {args.n} | {p50:.2f} | {p95:.2f} | {p99:.2f} | "
              f"{best.max():.2f} | {answered:.1%} | {conf:.2f} |")
    print("\n| canonical list | best score | answer | confidence |")
    print("|---|---|---|---|")
    for name, genes in CANONICAL.items():
        q = MarkerQuery(id=name, genes=tuple(genes.split()))
        a = kb.annotate([q])[0]
        print(f"| {name} | {kb.score(q).max():.2f} | {a.label} | {a.confidence:.2f} |")


if __name__ == "__main__":
    main()
