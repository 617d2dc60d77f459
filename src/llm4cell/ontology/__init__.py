"""The Cell Ontology: graph (labels, synonyms, ancestors), free text -> CL ID, tissues."""

from __future__ import annotations

from ._graph import CL_SCHEMA_VERSION, GENERIC_TERMS, ROOT, CellOntology, load_ontology
from ._matcher import (
    ABBREVIATIONS,
    LabelMatcher,
    OntologyMatch,
    get_matcher,
    match_label,
    normalise_label,
)
from ._tissues import match_tissue, restricted_tissues

__all__ = [
    "ABBREVIATIONS",
    "CL_SCHEMA_VERSION",
    "GENERIC_TERMS",
    "ROOT",
    "CellOntology",
    "LabelMatcher",
    "OntologyMatch",
    "get_matcher",
    "load_ontology",
    "match_label",
    "match_tissue",
    "normalise_label",
    "restricted_tissues",
]
