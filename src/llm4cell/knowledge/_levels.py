"""Label levels: lineage -> type family -> the Cell Ontology term.

The Cell Ontology is a lattice (a T cell is both a lymphocyte and a "mononuclear cell",
a monocyte both a "myeloid leukocyte" and a "phagocyte"), so its depth is no measure of
how coarse a label is. The levels here are the cellconsensus package's curated grouping
of every cell type it knows (``cl_to_meta.json``: 15 lineages such as "T cell",
"myeloid cell", "epithelial cell", and 46 type families such as "CD4+ T cell",
"CD8+ T cell", "monocyte", "dendritic cell"), shipped with the marker database the
engine reads. Nothing here is written per data set or per label.

A level *names* a term when its display name matches one in the ontology with a score of
at least :data:`NAME_MATCH` ("T cell", "monocyte", "CD4+ T cell" -> "CD4-positive,
alpha-beta T cell"; not "B cell / plasma cell" or "other ..." levels). Each level also has
a *head*: the member term that is an ancestor (or self) of the largest number of the
level's members (ties: fewer ancestors, then the ID), used where a level names no term.

The engine answers only :attr:`Levels.answerable` terms (named terms, and curated types
whose curated descendants lie in one family; see :meth:`KnowledgeBase._decide`), and the
annotation writes the lineage and family names as columns. Any other term (an LLM's
answer such as "leukocyte") gets the levels its curated descendants share, or none when
they span several.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ..ontology._graph import CellOntology, load_ontology
from ..ontology._matcher import LabelMatcher, get_matcher

__all__ = ["NAME_MATCH", "Levels", "TermLevels"]

#: Score of the ontology match of a level's display name that makes it name a term.
NAME_MATCH = 0.95


@dataclass(frozen=True)
class TermLevels:
    """The levels of one term.

    Attributes
    ----------
    lineage, family
        Display names (``""`` when the term spans several).
    lineage_key, family_key
        cellconsensus keys (``""`` when none).
    """

    lineage: str = ""
    family: str = ""
    lineage_key: str = ""
    family_key: str = ""


class Levels:
    """Lineage and family of Cell Ontology terms.

    Parameters
    ----------
    members
        CL ID -> ``(lineage key, family key)`` of the curated types.
    names
        Level key -> display name (both levels).
    ontology
        The Cell Ontology the IDs refer to.
    """

    def __init__(self, members: Mapping[str, tuple[str, str]], names: Mapping[str, str],
                 ontology: CellOntology) -> None:
        self.ontology = ontology
        self.names = dict(names)
        self.members = dict(members)
        self._cache: dict[str, TermLevels] = {}
        by_family: dict[str, list[str]] = {}
        by_lineage: dict[str, list[str]] = {}
        for tid, (lin, fam) in self.members.items():
            by_family.setdefault(fam, []).append(tid)
            by_lineage.setdefault(lin, []).append(tid)
        self.family_members = {k: frozenset(v) for k, v in by_family.items()}
        self.family_heads = {k: self._head(v) for k, v in by_family.items()}
        self.lineage_heads = {k: self._head(v) for k, v in by_lineage.items()}
        #: CL term named by each level (its display name matched to the ontology with
        #: a score of at least :data:`NAME_MATCH`; "other ..." levels name none).
        self.level_terms: dict[str, str] = {}
        matcher = get_matcher() if ontology is load_ontology() else LabelMatcher(ontology)
        for key, name in self.names.items():
            if name.lower().startswith("other"):
                continue
            m = matcher.match(name)
            if m is not None and m.ontology_id and m.score >= NAME_MATCH:
                self.level_terms[key] = m.ontology_id
        #: Terms an answer may be: the terms the levels name, and the curated types
        #: whose curated descendants (and self) all lie in one family. Catch-all
        #: intermediates ("phagocyte", "leukocyte", "naive T cell", spanning CD4 and CD8
        #: T cells) are not answers: the decision picks a family or names a lineage.
        self.answerable = frozenset(
            t for t in self.members if len(self.families_under(t)) == 1
        ) | frozenset(self.level_terms.values())

    def _head(self, members: Iterable[str]) -> str:
        mem = sorted(members)
        onto = self.ontology
        covered = {
            t: sum(1 for u in mem if u == t or onto.is_ancestor(t, u)) for t in mem
        }
        return min(mem, key=lambda t: (-covered[t], len(onto.ancestors(t)), t))

    def families_under(self, term_id: str) -> frozenset[str]:
        """Families of the curated terms among ``term_id`` and its descendants."""
        below = self.ontology.descendants(term_id, include_self=True) \
            if term_id in self.ontology else {term_id}
        return frozenset(self.members[t][1] for t in below if t in self.members)

    def family_of(self, term_id: str) -> str:
        """Family key of a curated type ("" otherwise)."""
        got = self.members.get(term_id)
        return got[1] if got else ""

    def of(self, term_id: str | None) -> TermLevels:
        """The levels of any term: its own when curated within one family; the level it
        names ("T cell", "monocyte"); else those its curated descendants share."""
        if not term_id:
            return TermLevels()
        got = self._cache.get(term_id)
        if got is not None:
            return got
        named = [k for k, t in self.level_terms.items() if t == term_id]
        if term_id in self.members and len(self.families_under(term_id)) == 1:
            lin, fam = self.members[term_id]
        elif named:  # a term a level names ("T cell", "myeloid cell", "monocyte")
            lin = next((k for k in named if k in self.lineage_heads), "")
            fam = next((k for k in named if k in self.family_heads), "")
            if not lin and fam:
                lin = next(lv for lv, f in self.members.values() if f == fam)
        else:  # a catch-all: the levels its curated descendants share
            below = [self.members[t] for t in self.ontology.descendants(term_id)
                     if t in self.members] if term_id in self.ontology else []
            lins = {lv for lv, _ in below}
            fams = {f for _, f in below}
            lin = lins.pop() if len(lins) == 1 else ""
            fam = fams.pop() if len(fams) == 1 else ""
        got = self._cache[term_id] = TermLevels(
            lineage=self.names.get(lin, ""), family=self.names.get(fam, ""),
            lineage_key=lin, family_key=fam,
        )
        return got
