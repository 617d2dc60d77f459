"""The knowledge engine: curated markers + Cell Ontology -> scored cell types.

Knowledge
---------
Marker knowledge is the Cell Ontology-keyed consensus database of the ``cellconsensus``
package (MIT, tansey-lab), read directly from its data file
``consensus_cache_full.pkl``: for each CL term a weight per gene (support summed over
the sources that list the gene for the term or its subtypes) and the number of sources
behind the term. Gene aliases come from the same package (``gene_alias.json``).

Scoring (see ``docs/knowledge.md`` for the rationale)
-----------------------------------------------------
Answerable types are the CL terms that cellconsensus curates as cell types
(``cl_to_meta.json``), that are live in the pinned CL release and that are not
root-level generic terms (:data:`llm4cell.ontology.GENERIC_TERMS`). For each type ``t``:

* its profile keeps the ``top_genes`` (200) evidence genes with the largest weight
  ``w(g, t)``, compressed and normalised: ``p(g | t) = sqrt(w(g, t)) / sum_g' sqrt(w(g', t))``;
* the background ``p0(g)`` is the mean of ``p(g | t)`` over all types;
* a gene's enrichment for the type is ``e(g, t) = log(1 + p(g | t) / p0(g))``: large when
  the gene is strongly supported for ``t`` and rare elsewhere, 0 when ``t`` does not list
  it. A gene listed by hundreds of types (ACTB, B2M, PTPRC) has a large background and
  weighs little everywhere. (Counting the *lineages* that list a gene was tried as an
  extra specificity factor; it made random gene lists harder to tell from real marker
  lists, see ``docs/knowledge.md``, so it is not used.)

For a query whose evidence genes are ``g_1..g_n`` (best first; cell-state and
housekeeping genes of :mod:`llm4cell._states` and unannotated genes removed, from the
queries and from the type profiles alike), with rank weights ``r_i = 1 / log2(i + 2)``::

    score(t) = prior(t) * tissue(t) * sum_i r_i e(g_i, t) / sum_i r_i

where ``prior(t) = n_sources(t) / (n_sources(t) + support_k)`` down-weights types few
sources describe, and ``tissue(t)`` is ``tissue_penalty`` for a type restricted to tissues
other than the query's, ``tissue_boost`` for one restricted to the query's tissue (rule in
:mod:`llm4cell.ontology._tissues`), else 1.

Chance: at load, the engine scores ``null_lists`` random marker lists (fixed seed) for
each of several list lengths, drawing database genes with probability proportional to
the number of profiles that list them (the hardest null). ``chance(n)`` is the
``null_quantile`` (95%) of the best score of random lists of ``n`` genes, interpolated in
``log n``.

Decision:

1. belief ``P(t) = softmax(sharpness * score(t) / chance(n))`` over the
   ``posterior_size`` best types plus a *none* pseudo-type at the chance level;
2. the answer is the term, among the ``top_k`` most probable types and their answerable
   ancestors, with the largest expected agreement ``sum_t P(t) agreement(a, t)``
   (1 same term, ``decision_credit`` ancestor/descendant, 0 unrelated); split belief
   between siblings gives the parent, belief on one subtype gives the subtype; an
   unrelated term within ``tie_tolerance`` gives their lowest common ancestor;
3. ``"unknown"`` (no CL ID, the best guess kept as a candidate) when fewer than
   ``min_matched`` known evidence genes remain once state genes are removed, when fewer
   than ``min_matched`` genes support the best type, or when its score is below the
   ``unknown_quantile`` of random lists' best scores;
4. ``confidence = sigmoid(a + b logit(EA) + c logit(coverage))`` with ``EA`` the expected
   agreement at the benchmark's credit 0.5 and ``coverage`` the rank-weighted share of
   the query's markers the best type lists; ``(a, b, c) = calibration``.

How each parameter was chosen (a priori, or leave-one-dataset-out on the GPTCelltype
benchmark) and the benchmark figures: ``docs/knowledge.md``.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from pathlib import Path

import numpy as np
from scipy import sparse

from .._errors import KnowledgeBaseError
from .._records import Annotation, Candidate, MarkerQuery
from ..genes import is_evidence_gene, mouse_orthologs, state_gene_program
from ..ontology._graph import GENERIC_TERMS, CellOntology, load_ontology
from ..ontology._tissues import match_tissue, restricted_tissues
from ._contest import refine
from ._levels import Levels
from ._rules import mixture_note, short_list_annotation

__all__ = ["KnowledgeBase", "KnowledgeParams", "load_knowledge"]

UNKNOWN = "unknown"
_NULL_LENGTHS = (3, 5, 8, 12, 18, 25, 35, 50, 70, 100)


@dataclass(frozen=True)
class KnowledgeParams:
    """Parameters of the knowledge engine (how each was chosen: ``docs/knowledge.md``).

    Attributes
    ----------
    top_genes
        Genes kept per type profile.
    support_k
        Source prior ``n / (n + support_k)``.
    tissue_penalty, tissue_boost
        Score factors for types restricted to other tissues than the query's, and to the
        query's own tissue.
    sharpness
        ``beta`` of the posterior ``softmax(beta * score / chance)``.
    decision_credit
        Credit for an ancestor-or-descendant answer when choosing the answer (below 0.5
        favours specific terms); confidences always use the benchmark's 0.5.
    tie_tolerance
        Expected agreements closer than this are a tie (answered by the common ancestor).
    posterior_size
        Best-scoring types that share the posterior (the rest count as unrelated).
    null_lists, null_quantile, null_seed
        Random lists per length, the quantile of their best score that defines the
        chance level, and the seed.
    unknown_quantile
        ``unknown`` when the best score is below this quantile of the best scores of
        random lists of the same length (0.5: no better than a typical random list).
    min_matched
        ``unknown`` when fewer query genes support the best type.
    calibration
        ``(a, b, c)`` of the confidence map
        ``sigmoid(a + b * logit(expected agreement) + c * logit(coverage))``, where
        coverage is the rank-weighted share of the query's markers the best type lists.
    top_k
        Candidates reported per answer.
    null_test
        ``unknown`` when the list is no better than random lists on both counts: its best
        score is below the chance level and the number of its known genes the best type
        lists does not exceed the ``null_quantile`` of random lists' of as many genes (so
        at most about ``2 * (1 - null_quantile)`` of random lists are answered).
    expression_weight, expression_sharpness
        With expression evidence on the query (``MarkerQuery.expression``), the posterior
        over the candidates is ``softmax(expression_sharpness * (sharpness * score / chance
        + expression_weight * z(ulm)))`` beside the null pseudo-type at
        ``expression_sharpness * sharpness`` (z over the candidates scored on expression).
    hierarchy
        With :class:`~llm4cell.knowledge._levels.Levels` (cellconsensus' lineages and type
        families), answer only terms a level names or types within one family (no
        catch-all intermediates such as "phagocyte" or "naive T cell").
    contest, contest_family_margin, contest_subtype_margin
        With per-gene detection rates on the query (``MarkerQuery.detection``), re-decide
        the answer by sibling contests on separator genes (:mod:`._contest`): the margin
        a family needs to replace the answer's family, and the margin a subtype needs over
        each sibling.
    """

    top_genes: int = 200
    support_k: float = 2.0
    tissue_penalty: float = 0.5
    tissue_boost: float = 1.0
    sharpness: float = 6.0
    decision_credit: float = 0.5
    tie_tolerance: float = 0.01
    posterior_size: int = 25
    null_lists: int = 200
    null_quantile: float = 0.95
    null_seed: int = 0
    unknown_quantile: float = 0.1
    min_matched: int = 2
    calibration: tuple[float, float, float] = (0.203, 0.574, 0.046)
    top_k: int = 5
    null_test: bool = True
    expression_weight: float = 4.0
    expression_sharpness: float = 0.5
    hierarchy: bool = True
    contest: bool = True
    contest_family_margin: float = 0.15
    contest_subtype_margin: float = 0.15

    def to_dict(self) -> dict[str, object]:
        """Plain dict for provenance records."""
        return asdict(self)


#: Parameters that only change how a query is scored and decided, not the database.
_DECISION_PARAMS = frozenset(
    {"tissue_penalty", "tissue_boost", "sharpness", "decision_credit", "tie_tolerance",
     "posterior_size",
     "unknown_quantile",
     "min_matched", "calibration", "top_k", "null_test", "expression_weight",
     "expression_sharpness",
     "hierarchy", "contest", "contest_family_margin", "contest_subtype_margin"}
)


class KnowledgeBase:
    """Marker database as a sparse gene x cell type enrichment matrix, with the engine.

    Use :func:`load_knowledge` for the shared instance built from cellconsensus.

    Parameters
    ----------
    weights
        CL ID -> {gene symbol: weight}; larger is stronger support.
    n_sources
        CL ID -> number of sources behind the type.
    ontology
        The Cell Ontology the IDs refer to.
    answerable
        CL IDs that may be answers (default: every ID in ``weights``).
    aliases
        Previous gene symbol -> current symbol.
    params
        Engine parameters.
    source
        Name and version of the marker database, for provenance.

    Attributes
    ----------
    type_ids
        CL IDs of the answerable cell types (columns).
    genes
        Gene symbols (rows).
    enrichment
        ``e(g, t)``, CSR matrix of shape ``(n_genes, n_types)``.
    background
        ``p0(g)``, shape ``(n_genes,)``.
    n_sources
        Sources behind each type, shape ``(n_types,)``.
    """

    def __init__(
        self,
        weights: Mapping[str, Mapping[str, float]],
        n_sources: Mapping[str, int],
        ontology: CellOntology,
        *,
        answerable: set[str] | None = None,
        aliases: Mapping[str, str] | None = None,
        params: KnowledgeParams | None = None,
        source: str = "custom",
        levels: Mapping[str, tuple[str, str]] | None = None,
        level_names: Mapping[str, str] | None = None,
    ) -> None:
        self.params = p = params or KnowledgeParams()
        self.ontology = ontology
        self.source = source
        self.aliases = dict(aliases or {})

        evidence_cache: dict[str, bool] = {}

        def evidence(g: str) -> bool:
            ok = evidence_cache.get(g)
            if ok is None:
                ok = evidence_cache[g] = is_evidence_gene(g)
            return ok

        profiles: dict[str, dict[str, float]] = {}
        sources: dict[str, int] = {}
        for raw_id, genes in weights.items():
            if answerable is not None and raw_id not in answerable:
                continue
            tid = ontology.resolve(raw_id)
            if tid is None or tid in GENERIC_TERMS or ontology.depth(tid) <= 1:
                continue
            prof = profiles.setdefault(tid, {})
            for g, w in genes.items():
                if w > 0 and evidence(g):
                    prof[g] = prof.get(g, 0.0) + float(w)
            sources[tid] = sources.get(tid, 0) + int(n_sources.get(raw_id, 1))
        type_ids = sorted(t for t, prof in profiles.items() if prof)
        if not type_ids:
            msg = "the marker database holds no answerable Cell Ontology type"
            raise KnowledgeBaseError(msg)

        gene_index: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for j, tid in enumerate(type_ids):
            top = sorted(profiles[tid].items(), key=lambda kv: (-kv[1], kv[0]))[: p.top_genes]
            root = np.sqrt(np.array([w for _, w in top]))
            root /= root.sum()
            for (g, _), v in zip(top, root, strict=False):
                rows.append(gene_index.setdefault(g, len(gene_index)))
                cols.append(j)
                vals.append(float(v))
        shape = (len(gene_index), len(type_ids))
        profile = sparse.csr_matrix((vals, (rows, cols)), shape=shape, dtype=np.float64)
        self.background = np.asarray(profile.mean(axis=1)).ravel()
        enrichment = sparse.csr_matrix(profile.multiply(1.0 / self.background[:, None]))
        enrichment.data = np.log1p(enrichment.data)
        self.enrichment = enrichment
        self.genes = np.array(list(gene_index), dtype=object)
        self.gene_index = gene_index
        self.type_ids = type_ids
        self.type_index = {t: j for j, t in enumerate(type_ids)}
        self.type_names = [ontology.label(t) for t in type_ids]
        self.n_sources = np.array([sources[t] for t in type_ids], dtype=np.float64)
        #: ``q(g | t)``: raw support relative to the mean of the type's 10 strongest
        #: genes, over the database genes (CSC, genes x types; the sibling contests).
        self.support = _relative_support(profiles, type_ids, gene_index)
        self._contest_cache: dict[str, object] = {}
        self.prior = self.n_sources / (self.n_sources + p.support_k)
        #: Lineage and family of the types (None: decide without levels).
        self.levels: Levels | None = None
        if levels:
            resolved = {}
            for raw_id, lv in levels.items():
                tid = ontology.resolve(raw_id)
                if tid in self.type_index:
                    resolved.setdefault(tid, (str(lv[0]), str(lv[1])))
            self.levels = Levels(resolved, level_names or {}, ontology)
        self._null_lengths, self._null_best, self._null_matched = self._null_model()
        # caches, independent of the decision parameters (shared by with_params copies)
        self._null_levels: dict[float, np.ndarray] = {}
        self._matched_levels: dict[float, np.ndarray] = {}
        self._tissue_factors: dict[tuple[str, float, float], np.ndarray] = {}
        self._lineages: dict[str, frozenset[str]] = {}
        self._restricted = [
            restricted_tissues(
                [ontology.label(a) for a in ontology.ancestors(t, include_self=True)
                 if a not in GENERIC_TERMS]
            )
            for t in type_ids
        ]

    def support_column(self, type_id: str) -> np.ndarray:
        """``q(g | type)`` over :attr:`genes` (dense copy)."""
        j = self.type_index[type_id]
        S = self.support
        out = np.zeros(S.shape[0])
        lo, hi = S.indptr[j], S.indptr[j + 1]
        out[S.indices[lo:hi]] = S.data[lo:hi]
        return out

    def _null_model(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Random lists: the lengths, and (lengths x lists, sorted) their best scores and
        how many of their genes their best type lists."""
        p = self.params
        rng = np.random.default_rng(p.null_seed)
        listed = np.diff(self.enrichment.indptr).astype(np.float64)
        prob = listed / listed.sum()
        n_genes = len(self.genes)
        lengths = np.array([n for n in _NULL_LENGTHS if n <= n_genes] or [n_genes])
        bests = []
        matched: list[np.ndarray] = []
        for n in lengths:
            rank_w = 1.0 / np.log2(np.arange(n) + 2.0)
            rows, cols, vals = [], [], []
            for k in range(p.null_lists):
                genes = rng.choice(n_genes, size=n, replace=False, p=prob)
                rows.extend([k] * n)
                cols.extend(genes.tolist())
                vals.extend(rank_w.tolist())
            Q = sparse.csr_matrix((vals, (rows, cols)), shape=(p.null_lists, n_genes))
            S = (Q @ self.enrichment).toarray() / rank_w.sum() * self.prior
            top = S.argmax(axis=1)
            bests.append(np.sort(S.max(axis=1)))
            # genes of each list that its best type lists (the count a real list beats)
            hits = (Q > 0).astype(np.float64) @ (self.enrichment > 0).astype(np.float64)
            matched.append(np.sort(np.asarray(hits[np.arange(p.null_lists), top]).ravel()))
        return lengths.astype(np.float64), np.array(bests), np.array(matched)

    def chance_level(self, n_genes: int, quantile: float | None = None) -> float:
        """The best score random lists of ``n`` evidence genes reach by chance.

        ``quantile`` of the best scores of random lists (``null_quantile``, 95%, by
        default), interpolated in ``log n`` between the simulated lengths.
        """
        return self._null_level(self._null_best, self._null_levels, n_genes, quantile)

    def matched_level(self, n_genes: int, quantile: float | None = None) -> float:
        """How many of a random list's ``n`` evidence genes its best type lists, at the
        ``quantile`` (``null_quantile``, 95%, by default) of random lists, interpolated in
        ``log n`` between the simulated lengths."""
        return self._null_level(self._null_matched, self._matched_levels, n_genes, quantile)

    def _null_level(self, table: np.ndarray, cache: dict[float, np.ndarray], n_genes: int,
                    quantile: float | None) -> float:
        """A quantile (cached) of a (lengths x lists) null table, interpolated in log n."""
        q = self.params.null_quantile if quantile is None else quantile
        levels = cache.get(q)
        if levels is None:
            levels = cache[q] = np.quantile(table, q, axis=1)
        n = max(1, n_genes)
        return float(np.interp(np.log(n), np.log(self._null_lengths), levels))

    def __repr__(self) -> str:
        return (
            f"KnowledgeBase(source={self.source!r}, n_types={len(self.type_ids)}, "
            f"n_genes={len(self.genes)}, cl={self.ontology.version!r})"
        )

    # -- genes ---------------------------------------------------------------------
    def resolve_gene(self, symbol: str, species: str = "human") -> str | None:
        """The database symbol for a query gene, or None when it is not evidence.

        Mouse symbols are mapped with :func:`llm4cell.genes.mouse_orthologs` (the first
        human candidate the database knows); a symbol the database lacks is tried
        through the alias table, then in upper case.
        """
        s = str(symbol).strip()
        if not is_evidence_gene(s):
            return None
        names = mouse_orthologs(s) if species == "mouse" else (s,)
        for c in names:
            if c in self.gene_index:
                return c
        for c in names:
            alias = self.aliases.get(c)
            if alias in self.gene_index:
                return alias
            up = c.upper()
            if up in self.gene_index:
                return up
        return None

    def known_fraction(self, symbols: Sequence[str], species: str = "human") -> float:
        """Fraction of ``symbols`` that the database knows (after mapping)."""
        if not symbols:
            return 0.0
        return sum(self.resolve_gene(s, species) is not None for s in symbols) / len(symbols)

    # -- scoring -------------------------------------------------------------------
    def _query_weights(self, query: MarkerQuery) -> tuple[dict[int, float], float, list[str]]:
        """Rank weights per database gene row, their normaliser, and the input genes used."""
        weights: dict[int, float] = {}
        used: list[str] = []
        total = 0.0
        rank = 0
        for g in query.genes:
            if not is_evidence_gene(g):
                continue
            r = 1.0 / math.log2(rank + 2)
            rank += 1
            total += r
            db = self.resolve_gene(g, query.species)
            if db is None:
                continue
            i = self.gene_index[db]
            if i not in weights:
                weights[i] = r
                used.append(g)
        return weights, total, used

    def tissue_factor(self, tissue: str | None) -> np.ndarray:
        """Per-type tissue factor for a query tissue (all ones when none applies)."""
        canonical = match_tissue(tissue)
        if canonical is None:
            return np.ones(len(self.type_ids))
        # keyed on the parameters too: with_params copies share this cache
        key = (canonical, self.params.tissue_penalty, self.params.tissue_boost)
        factor = self._tissue_factors.get(key)
        if factor is None:
            factor = np.ones(len(self.type_ids))
            for j, tissues in enumerate(self._restricted):
                if tissues:
                    factor[j] = (self.params.tissue_boost if canonical in tissues
                                 else self.params.tissue_penalty)
            factor.flags.writeable = False
            self._tissue_factors[key] = factor
        return factor

    def score(self, query: MarkerQuery) -> np.ndarray:
        """``score(t)`` for every type in :attr:`type_ids` (zeros when nothing matches)."""
        weights, total, _ = self._query_weights(query)
        return self._score(weights, total, query.tissue)

    def _score(self, weights: dict[int, float], total: float, tissue: str | None) -> np.ndarray:
        if not weights:
            return np.zeros(len(self.type_ids))
        rows = np.fromiter(weights, dtype=np.int64)
        r = np.fromiter(weights.values(), dtype=np.float64)
        raw = self.enrichment[rows].T @ r / total
        return raw * self.prior * self.tissue_factor(tissue)

    def annotate(self, queries: Sequence[MarkerQuery]) -> list[Annotation]:
        """One :class:`~llm4cell.Annotation` per query, in the same order, keyed by id."""
        return [self._annotate_one(q) for q in queries]

    def _matched(self, j: int, weights: dict[int, float]) -> tuple[str, ...]:
        """Database genes of the query that type ``j`` lists, largest contribution first."""
        col = self.enrichment[:, j]
        contrib = [
            (weights[i] * col[i, 0], self.genes[i]) for i in weights if col[i, 0] > 0
        ]
        contrib.sort(key=lambda x: (-x[0], x[1]))
        return tuple(str(g) for _, g in contrib)

    def _lineage(self, tid: str) -> frozenset[str]:
        """``tid`` and its ancestors that may be answers (not generic, below "cell"'s children)."""
        got = self._lineages.get(tid)
        if got is None:
            onto = self.ontology
            got = self._lineages[tid] = frozenset(
                a for a in onto.ancestors(tid, include_self=True)
                if a not in GENERIC_TERMS and onto.depth(a) > 1
            )
        return got

    def posterior(
        self, scores: np.ndarray, n_evidence: int
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """The engine's belief over types for one query.

        Returns the column indices of the ``posterior_size`` best types, their posterior
        probabilities ``softmax(beta * score / chance)`` and the probability left to a
        null pseudo-type scoring exactly the chance level (markers that match nothing).
        """
        p = self.params
        chance = self.chance_level(n_evidence)
        k = min(p.posterior_size, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        logits = np.append(p.sharpness * scores[top] / chance, p.sharpness)
        prob = np.exp(logits - logits.max())
        prob /= prob.sum()
        return top, prob[:-1], float(prob[-1])

    def _expression_posterior(
        self, scores: np.ndarray, n_evidence: int, expression: Sequence[tuple[str, float]],
        top: np.ndarray, prob: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Belief with expression evidence: the engine's logits plus ``w * z(ulm)``.

        Over the candidates scored on expression, ``logit(t) = s * (beta * score(t) / chance
        + w * z(ulm(t)))`` beside the null pseudo-type at ``s * beta`` (``w``:
        ``expression_weight``; ``s``: ``expression_sharpness``). Falls back to the engine's
        own belief when fewer than two candidates are scored.
        """
        p = self.params
        pairs = [(self.type_index[t], float(v)) for t, v in expression
                 if t in self.type_index and math.isfinite(v)]
        if len(pairs) < 2:
            return top, prob
        cols = np.array([j for j, _ in pairs], dtype=np.int64)
        ulm_t = np.array([v for _, v in pairs])
        z_ulm = (ulm_t - ulm_t.mean()) / max(float(ulm_t.std()), 1e-9)
        chance = self.chance_level(n_evidence)
        combined = p.sharpness * scores[cols] / chance + p.expression_weight * z_ulm
        k = min(p.posterior_size, len(cols))
        order = np.lexsort((cols, -combined))[:k]
        logits = p.expression_sharpness * np.append(combined[order], p.sharpness)
        belief = np.exp(logits - logits.max())
        belief /= belief.sum()
        return cols[order], belief[:-1]

    def expected_agreement(
        self, answer: str, types: Sequence[str], prob: np.ndarray, partial: float = 0.5
    ) -> float:
        """``sum_t P(t) agreement(answer, t)``: Hou & Ji's 1 / ``partial`` / 0 on the ontology.

        ``partial`` is the credit when one term is an ancestor of the other (0.5, as the
        benchmark metric, for confidences).
        """
        lineage = self._lineage(answer)
        total = 0.0
        for t, pt in zip(types, prob, strict=True):
            if t == answer:
                total += pt
            elif t in lineage or answer in self._lineage(t):
                total += partial * pt
        return float(total)

    def _decide(self, types: Sequence[str], prob: np.ndarray) -> tuple[str, bool]:
        """The term with the largest expected agreement; True when it settles a tie.

        Candidates are the answerable ancestors (and selves) of the ``top_k`` most probable
        types; ties go to the deeper (more specific) term. When a term *unrelated* to the
        best one is as good (within ``tie_tolerance``), the evidence cannot tell them
        apart and the answer is their lowest common ancestor (if it is answerable).

        With levels (``hierarchy``), answers and common ancestors are restricted to
        :attr:`Levels.answerable` (terms a level names, and types within one family), so
        a split belief gives a family or a lineage, never a catch-all intermediate; when
        no candidate is answerable, the rule runs without the restriction.
        """
        levels = self.levels
        if levels is None or not self.params.hierarchy:
            return self._decide_within(types, prob, None)
        return self._decide_within(types, prob, levels.answerable)

    def _decide_within(self, types: Sequence[str], prob: np.ndarray,
                       allowed: frozenset[str] | None) -> tuple[str, bool]:
        """:meth:`_decide` over ``types`` with answers restricted to ``allowed`` when
        given."""
        candidates: set[str] = set()
        for t in types[: self.params.top_k]:
            candidates |= self._lineage(t)
        if allowed is not None:
            kept = {a for a in candidates if a in allowed}
            if not kept:  # nothing answerable above the best types: decide without levels
                allowed = None
            else:
                candidates = kept
        onto = self.ontology
        credit = self.params.decision_credit
        value = {a: self.expected_agreement(a, types, prob, credit) for a in candidates}
        best = max(sorted(candidates), key=lambda a: (round(value[a], 12), onto.depth(a)))
        tol = self.params.tie_tolerance
        rivals = [a for a in candidates if value[a] >= value[best] - tol
                  and a not in self._lineage(best) and best not in self._lineage(a)]
        if not rivals:
            return best, False
        common = set(self._lineage(best))
        for a in rivals:
            common &= self._lineage(a)
        if allowed is not None:
            common = {a for a in common if a in allowed}
        lowest = onto.most_specific(common)
        if not lowest:
            return best, False
        return max(lowest, key=lambda t: (value.get(t, 0.0), onto.depth(t), t)), True

    def calibrate(self, expected: float, coverage: float = 1.0) -> float:
        """Confidence: ``sigmoid(a + b * logit(expected) + c * logit(coverage))``."""
        a, b, c = self.params.calibration

        def logit(v: float) -> float:
            v = min(max(v, 1e-4), 1 - 1e-4)
            return math.log(v / (1 - v))

        z = a + b * logit(expected) + (c * logit(coverage) if c else 0.0)
        return 1.0 / (1.0 + math.exp(-z))

    def coverage(self, j: int, weights: dict[int, float], total: float) -> float:
        """Rank-weighted share of the query's evidence genes that type ``j`` lists."""
        col = self.enrichment[:, j]
        listed = sum(r for i, r in weights.items() if col[i, 0] > 0)
        return listed / total if total else 0.0

    def _annotate_one(self, query: MarkerQuery) -> Annotation:
        p = self.params
        weights, total, used = self._query_weights(query)
        n_evidence = sum(is_evidence_gene(g) for g in query.genes)
        removed = _state_note(query.genes)
        if not weights:
            return Annotation(
                id=query.id, label=UNKNOWN, ontology_id=None, confidence=0.0,
                evidence=(f"none of the {n_evidence} evidence markers is in the marker "
                          f"database{removed}"),
            )
        scores = self._score(weights, total, query.tissue)
        top, prob, p_null = self.posterior(scores, n_evidence)
        candidates = tuple(
            Candidate(
                label=self.type_names[j], ontology_id=self.type_ids[j],
                score=round(float(scores[j]), 4), matched_genes=self._matched(j, weights),
            )
            for j in top[: p.top_k] if scores[j] > 0
        )
        first = int(top[0])
        top_name, top_score = self.type_names[first], float(scores[first])
        n_matched = len(candidates[0].matched_genes) if candidates else 0
        chance = self.chance_level(n_evidence)
        floor = self.chance_level(n_evidence, p.unknown_quantile)
        # no better than random lists on both counts (each reached by 5% of them): the
        # score, and how many of the known genes support the best type
        random_like = (p.null_test and top_score < chance
                       and n_matched <= self.matched_level(len(weights)))
        if (len(weights) < p.min_matched or top_score < floor or n_matched < p.min_matched
                or random_like):
            short = short_list_annotation(self, query, weights, total, n_evidence, top, prob,
                                          candidates, removed)
            if short is not None:
                return short
        why = None
        if len(weights) < p.min_matched:
            why = (f"{len(weights)} known evidence marker(s), >= {p.min_matched} are "
                   f"needed; best guess {top_name} (score {top_score:.2f})")
        elif top_score < floor or n_matched < p.min_matched:
            why = (f"best guess {top_name} scores {top_score:.2f} with {n_matched} matched "
                   f"markers; random lists of {n_evidence} genes reach {floor:.2f} "
                   f"({p.unknown_quantile:.0%} of them), and >= {p.min_matched} matched "
                   "markers are needed")
        if why is not None:
            return Annotation(id=query.id, label=UNKNOWN, ontology_id=None, confidence=0.0,
                              candidates=candidates,
                              evidence=f"evidence too weak: {why}{removed}")
        if random_like:
            level = self.matched_level(len(weights))
            return Annotation(
                id=query.id, label=UNKNOWN, ontology_id=None, confidence=0.0,
                candidates=candidates,
                evidence=(
                    f"no better than random genes: best guess {top_name} scores "
                    f"{top_score:.2f}, below what {1 - p.null_quantile:.0%} of random lists "
                    f"of {n_evidence} genes reach ({chance:.2f}), and only {n_matched} of "
                    f"its {len(weights)} known markers support it "
                    f"({1 - p.null_quantile:.0%} of random lists of that length have more "
                    f"than {level:.1f}){removed}"
                ),
            )
        if query.expression:
            top, prob = self._expression_posterior(scores, n_evidence, query.expression,
                                                    top, prob)
        types = [self.type_ids[j] for j in top]
        label_id, tie = self._decide(types, prob)
        belief = "; ".join(
            f"{self.type_names[j]} {pj:.2f}" for j, pj in zip(top[:3], prob[:3], strict=False)
        )
        if tie:
            how = (f"; answered {self.ontology.label(label_id)}, the common ancestor of "
                   "equally supported unrelated types")
        elif label_id == types[0]:
            how = ""
        elif label_id in self._lineage(types[0]):
            how = (f"; answered {self.ontology.label(label_id)}, the ancestor that best "
                   "covers the split belief")
        else:
            how = (f"; answered {self.ontology.label(label_id)}, which the belief favours "
                   "as a whole")
        if p.contest and query.detection:
            label_id, types, prob, contests = refine(self, label_id, types, prob,
                                                     dict(query.detection))
            if contests:
                how += "; contests on detection: " + "; ".join(
                    c.describe(self) for c in contests)
        expected = self.expected_agreement(label_id, types, prob)
        label = self.ontology.label(label_id)
        genes = ", ".join(candidates[0].matched_genes[:5])
        mixed, details = mixture_note(self, scores, weights, label_id)
        return Annotation(
            id=query.id, label=label, ontology_id=label_id,
            confidence=round(self.calibrate(expected, self.coverage(first, weights, total)), 4),
            candidates=candidates,
            evidence=(
                f"{n_matched}/{len(used)} known markers support {top_name} (score "
                f"{top_score:.2f}, chance {chance:.2f}: {genes}); belief: {belief}; "
                f"none {p_null:.2f}{how}{mixed}{removed}"
            ),
            details=details,
        )

    def with_params(self, **changes: object) -> KnowledgeBase:
        """This knowledge base with other decision parameters (no rebuild).

        Only the parameters that do not change the database itself may change
        (``tissue_penalty``, ``tissue_boost``, ``sharpness``, ``decision_credit``,
        ``tie_tolerance``, ``posterior_size``,
        ``unknown_quantile``, ``min_matched``, ``calibration``, ``top_k``); for the others
        build a new knowledge base.
        """
        bad = set(changes) - _DECISION_PARAMS
        if bad:
            msg = f"with_params cannot change {sorted(bad)}; build a new KnowledgeBase"
            raise ValueError(msg)
        new = copy.copy(self)
        new.params = replace(self.params, **changes)  # type: ignore[arg-type]
        return new

    def provenance(self) -> dict[str, object]:
        """What this knowledge base is, for provenance records."""
        return {
            "source": self.source,
            "n_types": len(self.type_ids),
            "n_genes": len(self.genes),
            "cl_version": self.ontology.version,
            "params": self.params.to_dict(),
        }


def _relative_support(profiles: Mapping[str, Mapping[str, float]], type_ids: Sequence[str],
                      gene_index: Mapping[str, int]) -> sparse.csc_matrix:
    """Genes x types ``w(g, t) / mean(top-10 w(., t))`` (CSC) over ``gene_index``."""
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for j, tid in enumerate(type_ids):
        prof = profiles[tid]
        unit = float(np.mean(sorted(prof.values(), reverse=True)[:10]))
        for g, w in prof.items():
            i = gene_index.get(g)
            if i is not None:
                rows.append(i)
                cols.append(j)
                vals.append(w / unit)
    return sparse.csc_matrix((vals, (rows, cols)), shape=(len(gene_index), len(type_ids)))


def _state_note(genes: Sequence[str]) -> str:
    """``"; not evidence (cell states): ..."``: the query's state and housekeeping genes
    by program (at most five named per program), or "" when there is none."""
    found: dict[str, list[str]] = {}
    for g in genes:
        program = state_gene_program(g)
        if program is not None:
            found.setdefault(program, []).append(str(g))
    if not found:
        return ""
    parts = [f"{name} {', '.join(gs[:5])}{' ...' if len(gs) > 5 else ''}"
             for name, gs in found.items()]
    return "; not evidence (cell states): " + "; ".join(parts)


def _cellconsensus_version() -> str:
    try:
        return metadata.version("cellconsensus")
    except metadata.PackageNotFoundError:  # pragma: no cover - hard dependency
        return "unknown"


def _cellconsensus_data() -> Path:
    """The cellconsensus data folder, found without importing the package (slow import)."""
    spec = importlib.util.find_spec("cellconsensus")
    if spec is None or not spec.submodule_search_locations:
        msg = "cellconsensus is not installed"
        raise ModuleNotFoundError(msg)
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.cache
def load_knowledge(params: KnowledgeParams | None = None) -> KnowledgeBase:
    """Build (once per process and parameter set) the knowledge base from cellconsensus."""
    try:
        data = _cellconsensus_data()
        with (data / "consensus_cache_full.pkl").open("rb") as fh:
            cache = pickle.load(fh)
        with (data / "gene_alias.json").open("r") as fh:
            aliases = json.load(fh)
        with (data / "cl_to_meta.json").open("r") as fh:
            meta = json.load(fh)
        cl_to_meta = meta["cl_to_meta"]
        curated = set(cl_to_meta)
        levels = {cl: (m["meta"], m["meta2"]) for cl, m in cl_to_meta.items()}
        level_names = {**meta["meta_groups"], **meta["meta2_groups"]}
        weights, n_sources = cache["consensus"], cache["n_sources"]
    except (ModuleNotFoundError, FileNotFoundError, KeyError, pickle.UnpicklingError) as e:
        msg = (
            f"cannot read the cellconsensus marker database ({e}); "
            "reinstall with `pip install 'cellconsensus>=1.2,<1.3'`"
        )
        raise KnowledgeBaseError(msg) from e
    return KnowledgeBase(
        weights, n_sources, load_ontology(), answerable=curated, aliases=aliases,
        params=params, source=f"cellconsensus {_cellconsensus_version()}",
        levels=levels, level_names=level_names,
    )
