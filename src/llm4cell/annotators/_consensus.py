"""Consensus of several annotators, measured on the Cell Ontology graph.

Two answers agree fully when they are the same term, partly (0.5) when one is a
non-generic ancestor of the other, and not at all otherwise
(:func:`~llm4cell.metrics.ontology_agreement`): "CD4-positive, alpha-beta T cell" and
"T cell" agree partly; string equality plays no part.

For one cluster with member answers ``a_1 .. a_m`` the candidate terms are the answers
and the most specific non-generic common ancestors of every pair. The support of a
candidate ``c`` is ``sum_i agreement(c, a_i) / m`` (an "unknown" answer supports
nothing). The consensus is the candidate with the largest support; among equally
supported candidates, one that is an ancestor of all the others wins (the ground every
tied answer shares); with none, the cluster is "unknown". Reported with it: the
consensus proportion (its support, in [0, 1]), the Shannon entropy of the members'
answers (bits; "unknown" is one more answer), and a confidence, the support weighted by
each member's confidence, ``sum_i agreement(c, a_i) * confidence_i / m``.

Where the members do not all give the same term, one bounded discussion round follows
(``LLMOptions.discuss``): every LLM member sees the cluster again with the other
members' answers and reasons and answers once more; the consensus is then taken over the
second-round answers. Non-LLM members (the knowledge engine) keep their answer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .._records import Annotation, Candidate, MarkerQuery
from ..knowledge._engine import UNKNOWN
from ..llm._options import LLMOptions
from ..metrics._ontology import ontology_agreement
from ..ontology._graph import GENERIC_TERMS, CellOntology, load_ontology

__all__ = ["ConsensusAnnotator", "Vote", "consensus_vote"]

_TIE = 1e-9


@dataclass(frozen=True)
class Vote:
    """The consensus of one cluster."""

    term: str | None
    proportion: float
    entropy: float
    support: dict[str, float]


def _entropy(answers: Sequence[str | None]) -> float:
    counts = Counter(a or UNKNOWN for a in answers)
    n = len(answers)
    return float(-sum(c / n * math.log2(c / n) for c in counts.values())) + 0.0


def consensus_vote(answers: Sequence[str | None], ontology: CellOntology | None = None) -> Vote:
    """The ontology-aware consensus of member answers (CL IDs; None for "unknown").

    See the module docstring for the rule.
    """
    onto = ontology or load_ontology()
    m = len(answers)
    if m == 0:
        return Vote(None, 0.0, 0.0, {})
    known = [a for a in answers if a is not None]
    candidates = set(known)
    uniq = sorted(set(known))
    for i, a in enumerate(uniq):
        for b in uniq[i + 1:]:
            if not onto.related(a, b):
                candidates.update(t for t in onto.lowest_common_ancestors(a, b)
                                  if t not in GENERIC_TERMS)
    support = {
        c: sum(ontology_agreement(c, a, ontology=onto) for a in known) / m
        for c in sorted(candidates)
    }
    entropy = round(_entropy(answers), 4)
    if not support or max(support.values()) <= 0:
        return Vote(None, 0.0, entropy, support)
    best = max(support.values())
    tied = [c for c, s in support.items() if best - s <= _TIE]
    if len(tied) == 1:
        term = tied[0]
    else:
        shared = [c for c in tied
                  if all(c == o or onto.is_ancestor(c, o) for o in tied)]
        term = shared[0] if shared else None
    return Vote(term, round(best, 4) if term else 0.0, entropy, support)


class ConsensusAnnotator:
    """Several annotators (knowledge, LLM, hybrid) and their ontology-aware consensus.

    Parameters
    ----------
    members
        The annotators (at least two).
    options
        ``discuss`` switches the discussion round.
    """

    def __init__(self, members: Sequence[object], options: LLMOptions) -> None:
        self.members = list(members)
        self.options = options
        names: list[str] = []
        for a in self.members:
            base = str(getattr(a, "name", "annotator"))
            n = sum(1 for x in names if x == base or x.startswith(base + "#"))
            names.append(base if n == 0 else f"{base}#{n + 1}")
        self.member_names = names
        self.name = options.name or "consensus:" + ",".join(names)
        self.n_discussed = 0

    @property
    def progress(self) -> object:
        """Progress callback, handed to every member that reports progress."""
        return next((getattr(a, "progress", None) for a in self.members
                     if getattr(a, "progress", None) is not None), None)

    @progress.setter
    def progress(self, value: object) -> None:
        for a in self.members:
            if hasattr(a, "progress"):
                a.progress = value  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"ConsensusAnnotator({self.member_names})"

    def check(self) -> None:
        """Fail fast when any member cannot answer."""
        for a in self.members:
            check = getattr(a, "check", None)
            if check is not None:
                check()

    def annotate(self, queries: Sequence[MarkerQuery]) -> list[Annotation]:
        """Every member answers; disagreements are discussed once; the consensus is taken."""
        queries = list(queries)
        rounds: list[dict[str, Annotation]] = []
        for a in self.members:
            rounds.append({x.id: x for x in a.annotate(queries)})  # type: ignore[attr-defined]
        first = [dict(r) for r in rounds]
        disputed = [q for q in queries
                    if len({r[q.id].ontology_id for r in rounds}) > 1]
        discussed: set[str] = set()
        if self.options.discuss and disputed:
            for k, a in enumerate(self.members):
                if not hasattr(a, "reconsider"):
                    continue
                others = {
                    q.id: [(self.member_names[j], _shown(rounds[j][q.id]),
                            _reason(rounds[j][q.id]))
                           for j in range(len(self.members)) if j != k]
                    for q in disputed
                }
                again = a.reconsider(disputed, rounds[k], others)
                rounds[k] = {**rounds[k], **{x.id: x for x in again}}
            discussed = {q.id for q in disputed}
            self.n_discussed += len(discussed)
        onto = load_ontology()
        out = []
        for q in queries:
            answers = [r[q.id] for r in rounds]
            vote = consensus_vote([x.ontology_id for x in answers], onto)
            out.append(self._annotation(q, answers, first, vote, q.id in discussed, onto))
        return out

    def _annotation(self, q: MarkerQuery, answers: list[Annotation],
                    first: list[dict[str, Annotation]], vote: Vote, discussed: bool,
                    onto: CellOntology) -> Annotation:
        m = len(answers)
        members = "; ".join(f"{n} -> {_shown(a)} ({a.confidence:.2f})"
                            for n, a in zip(self.member_names, answers, strict=True))
        if discussed:
            before = "; ".join(f"{n} -> {_shown(r[q.id])}"
                               for n, r in zip(self.member_names, first, strict=True))
            members = f"{members}; before discussion: {before}"
        details: dict[str, float | int | bool | str] = {
            "consensus_proportion": vote.proportion,
            "consensus_entropy": vote.entropy,
            "n_members": m,
            "discussed": discussed,
        }
        seen: dict[str, Candidate] = {}
        for a in answers:
            if a.ontology_id and a.ontology_id not in seen:
                genes = a.candidates[0].matched_genes if a.candidates else ()
                seen[a.ontology_id] = Candidate(
                    label=a.label, ontology_id=a.ontology_id,
                    score=round(vote.support.get(a.ontology_id, 0.0), 4), matched_genes=genes)
        candidates = tuple(sorted(seen.values(), key=lambda c: -c.score))
        if vote.term is None:
            return Annotation(
                id=q.id, label=UNKNOWN, ontology_id=None, confidence=0.0,
                candidates=candidates, backend=self.name, details=details,
                evidence=f"no consensus among {m} annotators (entropy {vote.entropy:.2f} "
                         f"bits): {members}",
            )
        conf = sum(ontology_agreement(vote.term, a.ontology_id, ontology=onto) * a.confidence
                   for a in answers if a.ontology_id) / m
        label = onto.label(vote.term)
        return Annotation(
            id=q.id, label=label, ontology_id=vote.term, confidence=round(min(1.0, conf), 4),
            candidates=candidates, backend=self.name, details=details,
            evidence=(f"consensus {label} (proportion {vote.proportion:.2f}, entropy "
                      f"{vote.entropy:.2f} bits, {m} annotators): {members}"),
        )

    def provenance(self) -> dict[str, object]:
        """Every member's provenance, the rule and the discussion count."""
        return {
            "backend": self.name,
            "members": {n: a.provenance()  # type: ignore[attr-defined]
                        for n, a in zip(self.member_names, self.members, strict=True)},
            "rule": "support = mean ontology agreement (1 / 0.5 / 0) with the member answers; "
                    "ties go to the shared ancestor, else unknown",
            "discuss": self.options.discuss,
            "n_discussed": self.n_discussed,
        }


def _shown(a: Annotation) -> str:
    return f"{a.label} ({a.ontology_id})" if a.ontology_id else "unknown"


def _reason(a: Annotation) -> str:
    text = a.evidence
    return text[:240] + ("..." if len(text) > 240 else "")
