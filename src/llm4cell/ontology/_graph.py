"""The Cell Ontology, offline.

The ontology comes from the ``cellxgene-ontology-guide`` package, which ships each
Cell Ontology (CL) release it supports as a compressed JSON file. llm4cell pins the
CELLxGENE schema version :data:`CL_SCHEMA_VERSION` and so one CL release; the release
actually loaded is reported in :attr:`CellOntology.version` and in every provenance
record.

Relations are the ``is_a`` hierarchy as CELLxGENE exports it: every term lists all its
ancestors with their distance (number of ``is_a`` steps, shortest path). The CELLxGENE
export carries one synonym list per term (no exact/related/broad/narrow scopes).

Free text is mapped to terms by :func:`match_label` (see :mod:`llm4cell.ontology._matcher` for
the methods and scores).

Why not ``cellxgene_ontology_guide.ontology_parser.OntologyParser``: it reads the same
term records, but every call parses the ID with a regular expression and copies the
record, and its descendants and children scan every term. On CL v2026-03-26 (3,596
terms, ``scripts/compare_ontology_parser.py``, both in one run; three runs on a shared
machine) it is slower at every lookup llm4cell makes: ancestors with distances of every
term 6-9x (about 1 vs 5-9 ms), parents 2-4x, labels 11-14x, replacements 8-20x, lowest
common ancestors of 10,000 pairs 2.4-3x (36-78 vs 86-221 ms), descendants 80-430x and
children 10-36x (200 terms each). Two of its answers also differ from what llm4cell
needs: its lowest common ancestors are those at the least summed distance, which can
include an ancestor of another common ancestor (both ``cell`` and ``eukaryotic cell``;
23% of random pairs differ), and the replacement it gives for an obsolete term can
belong to another ontology (``CLO:``, ``PO:``). So this class reads the records itself,
and ``tests/test_ontology.py`` checks that it agrees with ``OntologyParser`` wherever the
two define the same thing.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterable
from typing import Any

from cellxgene_ontology_guide.supported_versions import CXGSchema

from .._errors import KnowledgeBaseError

__all__ = ["CL_SCHEMA_VERSION", "GENERIC_TERMS", "ROOT", "CellOntology", "load_ontology"]

#: CELLxGENE schema version whose Cell Ontology release llm4cell uses (CL v2026-03-26).
CL_SCHEMA_VERSION = "7.1.0"

#: The root term.
ROOT = "CL:0000000"

#: Root-level terms that say nothing about a cell's identity. They are never an answer
#: of the knowledge engine, and an ancestor relation through them is not a partial match.
GENERIC_TERMS: dict[str, str] = {
    "CL:0000000": "cell",
    "CL:0000003": "native cell",
    "CL:0000548": "animal cell",
    "CL:0000255": "eukaryotic cell",
    "CL:0000520": "prokaryotic cell",
    "CL:0002242": "nucleate cell",
    "CL:0000226": "single nucleate cell",
    "CL:0002371": "somatic cell",
    "CL:0000219": "motile cell",
    "CL:0001034": "cell in vitro",
}


class CellOntology:
    """Read access to one Cell Ontology release.

    Use :func:`load_ontology` to get the shared, cached instance.

    Parameters
    ----------
    terms
        Mapping of CL ID to the term record exported by CELLxGENE (``label``,
        ``synonyms``, ``description``, ``ancestors``, ``deprecated``, ``replaced_by``).
    version
        The CL release, e.g. ``"v2026-03-26"``.
    """

    def __init__(self, terms: dict[str, dict[str, Any]], version: str) -> None:
        self._terms = terms
        self.version = version

    def __repr__(self) -> str:
        return f"CellOntology(version={self.version!r}, n_terms={len(self._terms)})"

    def __contains__(self, term_id: object) -> bool:
        return term_id in self._terms

    def __len__(self) -> int:
        return len(self._terms)

    def terms(self, *, include_deprecated: bool = False) -> list[str]:
        """All term IDs, live ones only unless ``include_deprecated``."""
        return [
            t for t, rec in self._terms.items() if include_deprecated or not rec["deprecated"]
        ]

    def _get(self, term_id: str) -> dict[str, Any]:
        try:
            return self._terms[term_id]
        except KeyError:
            msg = f"{term_id!r} is not a term of the Cell Ontology {self.version}"
            raise KeyError(msg) from None

    def label(self, term_id: str) -> str:
        """The term's name, e.g. ``"B cell"`` for ``CL:0000236``."""
        return self._get(term_id)["label"]

    def synonyms(self, term_id: str) -> list[str]:
        """The term's synonyms as exported by CELLxGENE (exact synonyms)."""
        return list(self._get(term_id).get("synonyms", []))

    def description(self, term_id: str) -> str | None:
        """The term's textual definition, if any."""
        return self._get(term_id).get("description")

    def is_deprecated(self, term_id: str) -> bool:
        """Whether the term is obsolete."""
        return bool(self._get(term_id)["deprecated"])

    def replacement(self, term_id: str) -> str | None:
        """The CL term that replaces an obsolete one, if the ontology names one.

        A replacement outside this release of CL (``CLO:``, ``PO:``) is not one.
        """
        rep = self._get(term_id).get("replaced_by")
        return rep if isinstance(rep, str) and rep in self._terms else None

    def ancestors(self, term_id: str, *, include_self: bool = False) -> dict[str, int]:
        """Ancestors of a term with their distance in ``is_a`` steps."""
        anc = dict(self._get(term_id).get("ancestors", {}))
        if include_self:
            anc[term_id] = 0
        return anc

    def parents(self, term_id: str) -> list[str]:
        """Direct ``is_a`` parents."""
        return [a for a, d in self.ancestors(term_id).items() if d == 1]

    def depth(self, term_id: str) -> int:
        """Distance from the root term ``cell`` (0 for the root)."""
        return self.ancestors(term_id).get(ROOT, 0)

    @functools.cached_property
    def _descendants(self) -> dict[str, set[str]]:
        desc: dict[str, set[str]] = {}
        for t, rec in self._terms.items():
            for a in rec.get("ancestors", {}):
                desc.setdefault(a, set()).add(t)
        return desc

    def descendants(self, term_id: str, *, include_self: bool = False) -> set[str]:
        """All terms below a term."""
        self._get(term_id)
        out = set(self._descendants.get(term_id, set()))
        if include_self:
            out.add(term_id)
        return out

    def children(self, term_id: str) -> list[str]:
        """Direct ``is_a`` children."""
        return [c for c in self.descendants(term_id) if self.ancestors(c).get(term_id) == 1]

    def is_ancestor(self, ancestor: str, term_id: str) -> bool:
        """Whether ``ancestor`` is a strict ancestor of ``term_id``."""
        return ancestor in self._get(term_id).get("ancestors", {})

    def related(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` are the same term or one is an ancestor of the other."""
        return a == b or self.is_ancestor(a, b) or self.is_ancestor(b, a)

    def lowest_common_ancestors(self, a: str, b: str) -> list[str]:
        """The most specific terms that are ancestors (or self) of both ``a`` and ``b``.

        In a DAG there may be several; each is a common ancestor none of whose
        descendants is also a common ancestor (not OntologyParser's least summed
        distance: see the module docstring).
        """
        common = set(self.ancestors(a, include_self=True)) & set(
            self.ancestors(b, include_self=True)
        )
        return self.most_specific(common)

    def most_specific(self, term_ids: Iterable[str]) -> list[str]:
        """The terms of a set that are not an ancestor of another term of the set."""
        terms = set(term_ids)
        ancestors_of_others: set[str] = set()
        for t in terms:
            ancestors_of_others.update(self.ancestors(t))
        return sorted(terms - ancestors_of_others)

    def resolve(self, term_id: str) -> str | None:
        """A live ID for ``term_id``: itself, or (following chains of obsolete terms) its
        live replacement, else None."""
        seen: set[str] = set()
        current: str | None = term_id
        while current is not None and current in self._terms and current not in seen:
            if not self.is_deprecated(current):
                return current
            seen.add(current)
            current = self.replacement(current)  # replacements can be obsolete too
        return None

    def map_labels(self, term_ids: Iterable[str]) -> dict[str, str]:
        """Labels for many IDs at once."""
        return {t: self.label(t) for t in term_ids}


@functools.cache
def load_ontology(*, schema_version: str = CL_SCHEMA_VERSION) -> CellOntology:
    """Load (once per process) the Cell Ontology pinned by llm4cell.

    Parameters
    ----------
    schema_version
        CELLxGENE schema version whose CL release to load. If the installed
        ``cellxgene-ontology-guide`` no longer ships it, the newest release it ships is
        used and a warning says so; the release loaded is in the result's ``version``.
    """
    try:
        schema = CXGSchema(version=schema_version)
    except ValueError:
        schema = CXGSchema()
        warnings.warn(
            f"CELLxGENE schema {schema_version} is not shipped by the installed "
            f"cellxgene-ontology-guide; using schema {schema.version} instead.",
            UserWarning,
            stacklevel=2,
        )
    version = schema.supported_ontologies["CL"]["version"]
    try:
        terms = schema.ontology("CL")
    except Exception as e:
        msg = f"cannot load the Cell Ontology {version} from cellxgene-ontology-guide: {e}"
        raise KnowledgeBaseError(msg) from e
    return CellOntology(terms, version)
