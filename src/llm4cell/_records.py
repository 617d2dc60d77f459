"""Core records that flow through the pipeline.

Data flows one way: AnnData -> groups -> one :class:`MarkerQuery` per group -> an
annotator -> one :class:`Annotation` per query. Annotations are always keyed by the
query id, never by position.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

if TYPE_CHECKING:
    import anndata as ad

__all__ = [
    "UNS_KEY",
    "Annotation",
    "Candidate",
    "MarkerQuery",
    "Progress",
    "Species",
    "details_columns",
    "is_legacy_record",
    "recorded",
]

#: The species llm4cell knows: symbols of mouse map to the human-keyed knowledge.
Species = Literal["human", "mouse"]
#: A progress callback, called with ``(done, total)`` as work advances.
Progress = Callable[[int, int], None]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MarkerQuery(_Frozen):
    """Marker genes of one group of cells (a cluster), ranked best first.

    Parameters
    ----------
    id
        Group identifier (the cluster name); answers are keyed by it.
    genes
        Marker gene symbols as found in the data, best first.
    tissue
        Tissue the cells come from, free text (``"blood"``, ``"liver"``), if known.
    species
        ``"human"`` or ``"mouse"``; mouse symbols are mapped to the human-keyed
        knowledge by the rule in :mod:`llm4cell.genes`.
    context
        Free-text context (disease, development stage, assay).
    logfoldchanges, pct_in
        Per-gene log2 fold change and fraction of the group's cells expressing it,
        aligned with ``genes`` (optional).
    n_cells
        Number of cells in the group (optional).
    expression
        Expression evidence from the group's cells, when a matrix was annotated:
        ``(CL ID, mean ulm t-value)`` pairs for the candidate types (see
        ``docs/knowledge.md``, "Expression evidence"). The knowledge engine adds it to its
        score; other annotators may ignore it. Marker tables have none.
    detection
        Fraction of the group's cells in which each gene is detected, keyed by the
        knowledge base's symbol, for the database genes measured in the data (a gene
        left out was not measured). The knowledge engine's sibling contests read it
        (``docs/knowledge.md``, "Sibling contests"); marker tables have none.
    """

    id: str
    genes: tuple[str, ...]
    tissue: str | None = None
    species: Species = "human"
    context: str | None = None
    logfoldchanges: tuple[float, ...] | None = None
    pct_in: tuple[float, ...] | None = None
    n_cells: int | None = None
    expression: tuple[tuple[str, float], ...] | None = None
    detection: tuple[tuple[str, float], ...] | None = Field(default=None, repr=False)

    @field_validator("id", mode="before")
    @classmethod
    def _id_to_str(cls, value: object) -> str:
        return str(value)


class Candidate(_Frozen):
    """One cell type considered for a query.

    ``score`` is backend-specific but comparable within one annotation (higher is better).
    """

    label: str
    ontology_id: str | None
    score: float
    matched_genes: tuple[str, ...] = ()


class Annotation(_Frozen):
    """The answer for one query.

    ``label`` is a Cell Ontology term name or ``"unknown"`` (then ``ontology_id`` is None).
    ``confidence`` lies in [0, 1]. ``evidence`` is one human-readable line. ``details``
    holds backend-specific figures (e.g. ``consensus_proportion``,
    ``consensus_entropy``, ``llm_asked``), written as extra columns of the outputs.
    """

    id: str
    label: str
    ontology_id: str | None
    confidence: float = Field(ge=0.0, le=1.0)
    candidates: tuple[Candidate, ...] = ()
    evidence: str = ""
    backend: str = "knowledge"
    details: dict[str, float | int | bool | str] = Field(default_factory=dict)


def details_columns(annotations: list[Annotation]) -> dict[str, list[object]]:
    """The ``details`` of many annotations as aligned columns (first-seen key order).

    Where an annotation lacks a key the column holds a typed gap: False for flags, NaN
    for numbers, "" for text, so that tables stay writable to h5ad and CSV.
    """
    keys: dict[str, None] = {}
    for a in annotations:
        keys.update(dict.fromkeys(a.details))
    out: dict[str, list[object]] = {}
    for k in keys:
        present = [a.details[k] for a in annotations if k in a.details]
        if all(isinstance(v, bool) for v in present):
            gap: object = False
        elif all(isinstance(v, (int, float)) for v in present):
            gap = float("nan")
        else:
            gap = ""
        out[k] = [a.details.get(k, gap) for a in annotations]
    return out


#: The ``uns`` entry holding the provenance record of every annotation, by key.
UNS_KEY = "llm4cell"


def is_legacy_record(stored: Mapping[str, Any]) -> bool:
    """A single record stored in ``uns['llm4cell']`` itself (before the per-key layout)."""
    return isinstance(stored.get("key_added"), str) and "groups" in stored


def recorded(adata: ad.AnnData) -> dict[str, Mapping[str, Any]]:
    """The provenance records of the annotations in ``adata``, by key (``key_added``);
    empty when there is none. Reads both the per-key layout ``uns['llm4cell'][key]``
    and the single record of files written before it."""
    stored = adata.uns.get(UNS_KEY)
    if not isinstance(stored, Mapping):
        return {}
    if is_legacy_record(stored):
        return {str(stored["key_added"]): stored}
    return {str(k): v for k, v in stored.items() if isinstance(v, Mapping)}
