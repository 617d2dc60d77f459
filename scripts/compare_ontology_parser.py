"""Time llm4cell's CellOntology against cellxgene-ontology-guide's OntologyParser.

Both read the same CL release (the one llm4cell pins), in one process, best of 3 runs.
The numbers are quoted in ``llm4cell/ontology/_graph.py``, which says why CellOntology
keeps its own lookups.

Usage: python scripts/compare_ontology_parser.py
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from cellxgene_ontology_guide.ontology_parser import OntologyParser

from llm4cell.ontology import CL_SCHEMA_VERSION, load_ontology


def _best(fn: Callable[[], object], reps: int = 3) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    onto = load_ontology()
    parser = OntologyParser(CL_SCHEMA_VERSION)
    every = onto.terms(include_deprecated=True)
    live = onto.terms()
    rng = random.Random(0)
    pairs = [(rng.choice(live), rng.choice(live)) for _ in range(10_000)]
    some = live[:200]
    cases = {
        f"ancestors with distances, {len(every)} terms": (
            lambda: [onto.ancestors(t) for t in every],
            lambda: [parser.get_term_ancestors_with_distances(t) for t in every]),
        f"parents, {len(every)} terms": (
            lambda: [onto.parents(t) for t in every],
            lambda: [parser.get_term_parents(t) for t in every]),
        f"labels, {len(every)} terms": (
            lambda: [onto.label(t) for t in every],
            lambda: [parser.get_term_label(t) for t in every]),
        f"replacements, {len(every)} terms": (
            lambda: [onto.replacement(t) for t in every],
            lambda: [parser.get_term_replacement(t) for t in every]),
        f"lowest common ancestors, {len(pairs)} pairs": (
            lambda: [onto.lowest_common_ancestors(a, b) for a, b in pairs],
            lambda: [parser.get_lowest_common_ancestors(a, b) for a, b in pairs]),
        f"descendants, {len(some)} terms": (
            lambda: [onto.descendants(t) for t in some],
            lambda: [parser.get_term_descendants(t) for t in some]),
        f"children, {len(some)} terms": (
            lambda: [onto.children(t) for t in some],
            lambda: [parser.get_term_children(t) for t in some]),
    }
    print(f"CL {onto.version}: {'case':45s} {'llm4cell':>10s} {'parser':>10s}")
    for name, (ours, theirs) in cases.items():
        a, b = _best(ours), _best(theirs)
        print(f"  {name:55s} {a * 1e3:8.1f} ms {b * 1e3:8.1f} ms  x{b / a:.1f}")
    differ = sum(sorted(onto.lowest_common_ancestors(a, b))
                 != sorted(parser.get_lowest_common_ancestors(a, b)) for a, b in pairs)
    print(f"lowest common ancestors differ (least summed distance vs most specific): "
          f"{differ}/{len(pairs)} pairs")


if __name__ == "__main__":
    main()
