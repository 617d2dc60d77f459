"""What the knowledge engine knows: the types it can name, and one type described.

:func:`list_types` is the table behind ``llm4cell types`` (CellTypist's
``models_description()``): every Cell Ontology type the engine may answer, with its
lineage and family, the sources behind it and its strongest markers. :func:`describe_type`
is ``llm4cell describe``: one term's definition, synonyms, parents and children, levels
and its strongest markers with their support. Both read only the knowledge base and the
Cell Ontology shipped with the package.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import InputError
from ..ontology._matcher import get_matcher
from ..ontology._tissues import TISSUES, match_tissue
from ._engine import KnowledgeBase, load_knowledge

__all__ = ["TypeDescription", "describe_type", "list_types"]

#: Markers shown per type in :func:`list_types` (the strongest by relative support).
LIST_MARKERS = 5
#: Matcher score a free-text name needs to be taken as a term by :func:`describe_type`.
DESCRIBE_MATCH = 0.8


def _top_markers(kb: KnowledgeBase, type_id: str, n: int) -> list[tuple[str, float]]:
    """The type's ``n`` strongest database genes by relative support ``q(g | t)``."""
    q = kb.support_column(type_id)
    top = np.argsort(-q, kind="stable")[:n]
    return [(str(kb.genes[i]), round(float(q[i]), 3)) for i in top if q[i] > 0]


def check_tissue(tissue: str | None) -> str | None:
    """The canonical tissue for ``tissue`` (None for None), refusing an unknown one with
    the known tissues and the closest."""
    if tissue is None:
        return None
    canonical = match_tissue(tissue)
    if canonical is None:
        known = sorted(TISSUES)
        close = difflib.get_close_matches(str(tissue).lower(), known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        msg = (f"unknown tissue {tissue!r}: {hint}known tissues are "
               f"{', '.join(known)}")
        raise InputError(msg)
    return canonical


def list_types(*, tissue: str | None = None, search: str | None = None,
               kb: KnowledgeBase | None = None) -> pd.DataFrame:
    """The Cell Ontology types the knowledge engine can name.

    Parameters
    ----------
    tissue
        Keep the types that may occur in this tissue: those the tissue rule does not
        restrict to other tissues (free text such as ``"PBMC"`` or ``"liver"``; an
        unknown tissue is refused with the known ones).
    search
        Keep the types whose name or a synonym has a word starting with this text
        (case-insensitive: "mono" finds monocytes, not "pneumonocyte"), and the term the
        ontology matcher gives for it.
    kb
        The knowledge base (default: :func:`~llm4cell.load_knowledge`).

    Returns
    -------
    One row per type, sorted by lineage, family and name (types without levels last):
    ``ontology_id``, ``label``, ``lineage``, ``family``, ``n_sources`` (sources behind the
    type in cellconsensus) and ``top_markers`` (its strongest genes).

    Raises
    ------
    InputError
        For an unknown tissue.
    """
    kb = kb or load_knowledge()
    onto = kb.ontology
    keep = np.ones(len(kb.type_ids), dtype=bool)
    canonical = check_tissue(tissue)
    if canonical is not None:
        factor = kb.tissue_factor(canonical)
        keep &= ~(factor < 1.0)
    if search is not None and search.strip():
        word = re.compile(r"\b" + re.escape(search.strip()), re.IGNORECASE)
        hit = np.array([bool(word.search(onto.label(t)))
                        or any(word.search(s) for s in onto.synonyms(t))
                        for t in kb.type_ids])
        match = get_matcher().match(search)
        if match.ontology_id in kb.type_index:
            hit[kb.type_index[match.ontology_id]] = True
        keep &= hit
    rows = []
    for j in np.flatnonzero(keep):
        t = kb.type_ids[j]
        lv = kb.levels.of(t) if kb.levels is not None else None
        rows.append({
            "ontology_id": t, "label": kb.type_names[j],
            "lineage": lv.lineage if lv else "", "family": lv.family if lv else "",
            "n_sources": int(kb.n_sources[j]),
            "top_markers": ", ".join(g for g, _ in _top_markers(kb, t, LIST_MARKERS)),
        })
    cols = ["ontology_id", "label", "lineage", "family", "n_sources", "top_markers"]
    table = pd.DataFrame(rows, columns=cols)
    order = table.assign(_none=table["lineage"] == "")
    order = order.sort_values(["_none", "lineage", "family", "label"], kind="stable")
    return table.loc[order.index].reset_index(drop=True)


@dataclass(frozen=True)
class TypeDescription:
    """One Cell Ontology term as the knowledge engine sees it.

    Attributes
    ----------
    ontology_id, label, definition, synonyms
        The term, from the Cell Ontology.
    parents, children
        ``(CL ID, label)`` of its direct parents and children in the ontology.
    lineage, family
        Its levels ("" when it spans several).
    answerable
        Whether the engine can give it as an answer (the marker database describes it).
    n_sources
        Sources behind it in cellconsensus (0 when not answerable).
    markers
        ``(gene, relative support)`` of its strongest genes: the raw support summed over
        sources, relative to the mean of its 10 strongest genes (1 = as strong as those).
    matched_from
        The text it was found from, and how (``"CL ID"`` or the matcher's method).
    """

    ontology_id: str
    label: str
    definition: str | None
    synonyms: tuple[str, ...]
    parents: tuple[tuple[str, str], ...]
    children: tuple[tuple[str, str], ...]
    lineage: str
    family: str
    answerable: bool
    n_sources: int
    markers: tuple[tuple[str, float], ...]
    matched_from: str


def describe_type(name: str, *, n_markers: int = 15,
                  kb: KnowledgeBase | None = None) -> TypeDescription:
    """Describe a cell type: its Cell Ontology term, levels and strongest markers.

    Parameters
    ----------
    name
        A CL ID (``"CL:0000625"``) or a name, synonym or abbreviation (``"CD8 T"``,
        ``"Treg"``), matched to the ontology.
    n_markers
        Markers to give (at least 1).
    kb
        The knowledge base (default: :func:`~llm4cell.load_knowledge`).

    Raises
    ------
    InputError
        When the name matches no term well enough, or ``n_markers`` is below 1.
    """
    if n_markers < 1:
        msg = f"n_markers must be at least 1 (got {n_markers})"
        raise InputError(msg)
    kb = kb or load_knowledge()
    onto = kb.ontology
    match = get_matcher().match(name)
    if match.ontology_id is None or match.score < DESCRIBE_MATCH:
        near = f"; closest: {match.label} ({match.ontology_id})" if match.ontology_id else ""
        msg = (f"no Cell Ontology term for {name!r}{near}; give a CL ID or another name "
               "(`llm4cell types --search TEXT` lists the names)")
        raise InputError(msg)
    t = match.ontology_id
    j = kb.type_index.get(t)
    lv = kb.levels.of(t) if kb.levels is not None else None
    return TypeDescription(
        ontology_id=t, label=onto.label(t), definition=onto.description(t),
        synonyms=tuple(onto.synonyms(t)),
        parents=tuple((p, onto.label(p)) for p in sorted(onto.parents(t))),
        children=tuple((c, onto.label(c)) for c in sorted(onto.children(t))),
        lineage=lv.lineage if lv else "", family=lv.family if lv else "",
        answerable=j is not None, n_sources=int(kb.n_sources[j]) if j is not None else 0,
        markers=tuple(_top_markers(kb, t, n_markers)) if j is not None else (),
        matched_from=f"{name!r} ({match.method})",
    )
