"""Sibling contests: family, then subtype, decided on the genes that separate them.

The engine's posterior scores a type by how enriched its genes are over the whole
database, which flattens the textbook markers that tell siblings apart (CD14 counts
almost as much for non-classical monocytes as for classical ones). When a group's
per-gene detection rates are known (``MarkerQuery.detection``, from an expression
matrix), the answer is re-decided by contests between the types the evidence allows,
on the genes that separate them in the marker database. No gene or label is named here:
everything comes from the database's raw support and the ontology.

Separators
----------
``q(g | X) = w(g, X) / mean(top-10 w(., X))`` is gene ``g``'s raw support for type ``X``
(sources summed, evidence genes only) relative to ``X``'s strongest genes. X's
separators against Y are the :data:`SEPARATORS` genes with the largest
``q(g | X) - q(g | Y) > 0`` among the genes measured in the data, and
``side(X | Y)`` is the separator-weighted mean detection rate of those genes in the
group. ``margin(X, Y) = side(X | Y) - side(Y | X)``: positive when X's own genes are
detected in more of the group's cells than Y's.

Family level
------------
Contestants are the families (cellconsensus type families that name a Cell Ontology term
described by at least :data:`MIN_SOURCES` sources) holding at least
:data:`FAMILY_MASS` of the engine's posterior, and the answer's own family. A family is
represented by its term and that term's effective children (the highest descendants with
at least :data:`MIN_SOURCES` sources) in the family; a family term that is an ancestor of
another contestant's term is left out ("innate lymphoid cell" is no rival of NK cells).
Family F beats G by ``max over F's representatives of the min margin against G's``.
The answer moves to the family that beats all others (maximin) only when it beats the
answer's own family by at least ``contest_family_margin``.

Subtype level
-------------
When the answer is its family's term or lies under it, the effective children of the
family term that lie in the family and are described by at least
:data:`SUBTYPE_SOURCE_SHARE` of the family term's sources contest by maximin. The
answer moves to the winner when it beats every sibling by at least
``contest_subtype_margin`` and the answer is not already the winner or under it. When
the contest is undecided and the engine's answer is one of the contested subtypes (or
under one), the answer is the family term: the deepest level the evidence supports.

A subtype move also needs the deciding pair's separators to be measured: at least
:data:`MIN_COVERAGE` of the separator weight over all database genes, on both sides (a
panel without CD14 cannot tell classical from non-classical monocytes). The family level
has no such check: families differ by many genes, so the measured ones decide, and a gene
a filtered matrix left out is usually one its cells do not express.

How the values were chosen and what they give: ``docs/knowledge.md``, "Sibling contests".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._engine import KnowledgeBase

__all__ = ["FAMILY_MASS", "MIN_COVERAGE", "MIN_SOURCES", "SEPARATORS",
           "SUBTYPE_SOURCE_SHARE", "Contest", "refine"]

#: Posterior share (of the types' total) a family needs to enter the family contest.
FAMILY_MASS = 0.05
#: Sources a term needs to be a contestant (a well-described profile).
MIN_SOURCES = 10
#: Share of the family term's sources a subtype needs to contest at the subtype level.
SUBTYPE_SOURCE_SHARE = 0.1
#: Share of the separator weight (over all database genes) that must be measured in the
#: data, on both sides, for a subtype contest to decide.
MIN_COVERAGE = 0.5
#: Separator genes per pairwise comparison.
SEPARATORS = 10
#: Separator genes named per side in the evidence text.
_NAMED = 3


@dataclass(frozen=True)
class Contest:
    """One decided contest, for the evidence text.

    Attributes
    ----------
    level
        ``"family"`` or ``"subtype"``.
    winner, runner_up
        CL IDs: the maximin winner and the contestant it beats by the least.
    margin
        The winner's margin over ``runner_up``.
    moved
        Whether the answer moved to ``winner``.
    ours, theirs
        ``(gene, detection)`` of the best separators on each side.
    answered
        The term answered when it is not ``winner``: the family term, when the engine's
        subtype is one the contest cannot confirm.
    """

    level: str
    winner: str
    runner_up: str
    margin: float
    moved: bool
    ours: tuple[tuple[str, float], ...]
    theirs: tuple[tuple[str, float], ...]
    answered: str | None = None

    def describe(self, kb: KnowledgeBase) -> str:
        """One clause: "monocyte over macrophage (margin 0.28: CD14 92%, ... vs ...)"."""
        onto = kb.ontology

        def genes(side: tuple[tuple[str, float], ...]) -> str:
            return ", ".join(f"{g} {d:.0%}" for g, d in side) or "none measured"

        if self.answered is not None:
            verb = f"undecided -> {onto.label(self.answered)}; best"
        else:
            verb = "->" if self.moved else "kept; best"
        return (f"{self.level} {verb} {onto.label(self.winner)} over "
                f"{onto.label(self.runner_up)} (margin {self.margin:.2f}: "
                f"{genes(self.ours)} vs {genes(self.theirs)})")


class _Arena:
    """Margins between types for one group's detection rates."""

    def __init__(self, kb: KnowledgeBase, detection: np.ndarray) -> None:
        self.kb = kb
        self.det = detection
        self.measured = np.isfinite(detection)
        self._cache: dict[tuple[str, str], tuple[float, np.ndarray, float]] = {}

    def _separate(self, x: str, y: str) -> tuple[float, np.ndarray, float]:
        got = self._cache.get((x, y))
        if got is not None:
            return got
        kb = self.kb
        diff = kb.support_column(x) - kb.support_column(y)
        every = np.flatnonzero(diff > 0)
        best_all = every[np.argsort(-diff[every], kind="stable")[:SEPARATORS]]
        total = float(diff[best_all].sum())
        diff[~self.measured] = 0.0
        cand = np.flatnonzero(diff > 0)
        if cand.size == 0:
            got = (0.0, cand, 0.0)
        else:
            top = cand[np.argsort(-diff[cand], kind="stable")[:SEPARATORS]]
            v = diff[top]
            covered = float(diff[best_all].sum()) / total if total > 0 else 0.0
            got = (float((v * self.det[top]).sum() / v.sum()), top, covered)
        self._cache[(x, y)] = got
        return got

    def side(self, x: str, y: str) -> tuple[float, np.ndarray]:
        """``side(x | y)`` and the separator gene rows, best first."""
        value, rows, _ = self._separate(x, y)
        return value, rows

    def measurable(self, x: str, y: str) -> bool:
        """Whether the data measure at least :data:`MIN_COVERAGE` of the separator
        weight of both ``x`` against ``y`` and ``y`` against ``x`` (over all database
        genes): a panel without CD14 cannot tell classical from non-classical
        monocytes."""
        return min(self._separate(x, y)[2], self._separate(y, x)[2]) >= MIN_COVERAGE

    def margin(self, x: str, y: str) -> float:
        return self.side(x, y)[0] - self.side(y, x)[0]

    def named(self, x: str, y: str) -> tuple[tuple[str, float], ...]:
        rows = self.side(x, y)[1][:_NAMED]
        return tuple((str(self.kb.genes[i]), round(float(self.det[i]), 2)) for i in rows)

    def record(self, level: str, winner: str, x: str, y: str, margin: float,
               moved: bool) -> Contest:
        """The contest ``winner`` won (through its representative ``x``) over ``y``."""
        return Contest(level=level, winner=winner, runner_up=y,
                       margin=round(float(margin), 3), moved=moved,
                       ours=self.named(x, y), theirs=self.named(y, x))


def _well_described(kb: KnowledgeBase, t: str) -> bool:
    j = kb.type_index.get(t)
    return j is not None and kb.n_sources[j] >= MIN_SOURCES


def _children(kb: KnowledgeBase, parent: str) -> tuple[str, ...]:
    """Effective children of ``parent``: its highest well-described descendants."""
    cache = kb._contest_cache
    got = cache.get(parent)
    if got is None:
        onto = kb.ontology
        below = [t for t in onto.descendants(parent) if _well_described(kb, t)]
        got = cache[parent] = tuple(sorted(
            t for t in below if not any(u != t and onto.is_ancestor(u, t) for u in below)))
    return got  # type: ignore[return-value]


def _family_terms(kb: KnowledgeBase) -> dict[str, str]:
    """Family key -> the well-described CL term it names."""
    cache = kb._contest_cache
    got = cache.get("")
    if got is None:
        lv = kb.levels
        assert lv is not None
        got = cache[""] = {f: t for f, t in lv.level_terms.items()
                           if f in lv.family_members and _well_described(kb, t)}
    return got  # type: ignore[return-value]


def _maximin(arena: _Arena, xs: list[str], ys: list[str]) -> tuple[float, str, str]:
    """The ``x`` with the largest worst margin against the ``ys`` other than itself:
    ``(margin, x, the y it beats by the least)``."""
    best: tuple[float, str, str] = (-np.inf, "", "")
    for x in xs:
        worst = min(((arena.margin(x, y), y) for y in ys if y != x), key=lambda v: v[0])
        if worst[0] > best[0]:
            best = (worst[0], x, worst[1])
    return best


def _family_mass(kb: KnowledgeBase, types: list[str], prob: np.ndarray) -> dict[str, float]:
    lv = kb.levels
    assert lv is not None
    total = float(np.sum(prob))
    mass: dict[str, float] = {}
    for t, pt in zip(types, prob, strict=True):
        f = lv.of(t).family_key
        if f:
            mass[f] = mass.get(f, 0.0) + float(pt) / (total or 1.0)
    return mass


def _family_contest(kb: KnowledgeBase, arena: _Arena, answer: str, types: list[str],
                    prob: np.ndarray, min_margin: float
                    ) -> tuple[str, Contest | None, frozenset[str]]:
    """The answer after the family contest, the contest, and the contestant families."""
    lv = kb.levels
    assert lv is not None
    onto = kb.ontology
    fam_term = _family_terms(kb)
    own = lv.of(answer).family_key
    mass = _family_mass(kb, types, prob)
    fams = {f for f, m in mass.items() if m >= FAMILY_MASS and f in fam_term}
    if own in fam_term:
        fams.add(own)
    terms = [fam_term[f] for f in sorted(fams)]

    def reps(f: str) -> list[str]:
        head = fam_term[f]
        others = [t for t in terms if t != head]
        out = [] if any(onto.is_ancestor(head, t) for t in others) else [head]
        return out + [c for c in _children(kb, head) if c in lv.family_members[f]
                      and not any(onto.is_ancestor(c, t) or onto.is_ancestor(t, c)
                                  for t in others)]

    rep = {f: r for f in sorted(fams) if (r := reps(f))}
    if len(rep) < 2:
        return answer, None, frozenset()

    def beats(f: str, g: str) -> tuple[float, str, str]:
        """F's best representative by its worst margin against G's: (margin, x, y)."""
        return _maximin(arena, rep[f], rep[g])

    score = {f: min((beats(f, g) for g in rep if g != f), key=lambda v: v[0]) for f in rep}
    winner = max(sorted(rep), key=lambda f: score[f][0])
    m, x, y = beats(winner, own) if own in rep and winner != own else score[winner]
    moved = winner != own and m >= min_margin
    contest = arena.record("family", fam_term[winner], x, y, m, moved)
    return (fam_term[winner] if moved else answer), contest, frozenset(rep)


def _subtype_contest(kb: KnowledgeBase, arena: _Arena, answer: str, min_margin: float
                     ) -> tuple[str, Contest | None]:
    lv = kb.levels
    assert lv is not None
    onto = kb.ontology
    fam = lv.of(answer).family_key
    head = _family_terms(kb).get(fam)
    if head is None or not (answer == head or onto.is_ancestor(head, answer)):
        return answer, None
    floor = SUBTYPE_SOURCE_SHARE * kb.n_sources[kb.type_index[head]]
    kids = [c for c in _children(kb, head) if c in lv.family_members[fam]
            and kb.n_sources[kb.type_index[c]] >= floor]
    if len(kids) < 2:
        return answer, None
    m, x, y = _maximin(arena, kids, kids)
    decided = m >= min_margin and arena.measurable(x, y)
    inside = answer == x or onto.is_ancestor(x, answer)
    if decided:
        return (answer if inside else x), arena.record("subtype", x, x, y, m, not inside)
    contested = any(answer == k or onto.is_ancestor(k, answer) for k in kids)
    if contested:  # a subtype the contest cannot confirm: the family term
        return head, replace(arena.record("subtype", x, x, y, m, True), answered=head)
    return answer, arena.record("subtype", x, x, y, m, False)


def _pool(types: list[str], prob: np.ndarray, target: str, inside: list[bool]
          ) -> tuple[list[str], np.ndarray]:
    """The posterior with the mass of the ``inside`` types moved onto ``target``."""
    keep = [i for i, t in enumerate(types) if not inside[i] and t != target]
    moved = float(sum(pt for pt, ins, t in zip(prob, inside, types, strict=True)
                      if ins or t == target))
    return [target] + [types[i] for i in keep], np.array([moved] + [prob[i] for i in keep])


def _to_family(prob: np.ndarray, families: list[str], winner: str,
               contestants: frozenset[str]) -> np.ndarray:
    """The posterior with the contestant families' mass moved into the ``winner`` family,
    in proportion to its types' own mass (its internal split is kept)."""
    inside = np.array([f == winner for f in families])
    rivals = np.array([f in contestants and f != winner for f in families])
    own = float(prob[inside].sum())
    if own <= 0:
        return prob
    out = prob.astype(np.float64).copy()
    out[inside] *= (own + float(prob[rivals].sum())) / own
    out[rivals] = 0.0
    return out


def refine(kb: KnowledgeBase, answer: str, types: list[str], prob: np.ndarray,
           detection: Mapping[str, float]
           ) -> tuple[str, list[str], np.ndarray, list[Contest]]:
    """The answer after the family and subtype contests, the posterior they leave, and
    the contests decided.

    A move is read as the contest deciding among the types it compared: the posterior
    mass of the other contestant families goes into the winning family, in proportion
    to its types' mass (family move), and the mass of the family term's subtree goes to
    the winning subtype (subtype move), so the confidence reflects the belief in the
    group the contest chose within. The posterior is unchanged otherwise (also when an
    undecided subtype returns to the family term).

    Parameters
    ----------
    kb
        The knowledge base (with levels).
    answer
        CL ID the engine's decision gave.
    types, prob
        The engine's posterior (CL IDs, probabilities).
    detection
        Database gene symbol -> detection rate in the group (genes measured in the
        data; absent genes are unmeasured, not undetected).
    """
    if kb.levels is None or not detection:
        return answer, types, prob, []
    lv = kb.levels
    onto = kb.ontology
    p = kb.params
    det = np.full(len(kb.genes), np.nan)
    for g, v in detection.items():
        i = kb.gene_index.get(g)
        if i is not None:
            det[i] = v
    arena = _Arena(kb, det)
    trace: list[Contest] = []
    new, fam, pool = _family_contest(kb, arena, answer, types, prob,
                                     p.contest_family_margin)
    if fam is not None:
        trace.append(fam)
        if fam.moved:
            prob = _to_family(prob, [lv.of(t).family_key for t in types],
                              lv.of(new).family_key, pool)
    new, sub = _subtype_contest(kb, arena, new, p.contest_subtype_margin)
    if sub is not None:
        trace.append(sub)
        if sub.moved and sub.answered is None:
            head = _family_terms(kb)[lv.of(new).family_key]
            types, prob = _pool(types, prob, new,
                                [t == head or onto.is_ancestor(head, t) for t in types])
    return new, types, prob, trace
