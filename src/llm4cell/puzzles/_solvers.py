"""Puzzle solvers: one per backend kind, all with ``solve(puzzles) -> answers``.

* ``knowledge``: every cell's top genes are scored by the knowledge engine against every
  Cell Ontology type; a candidate's score is the best score among the types it covers
  (itself and its descendants in the database; when it has none, its nearest ancestor
  that has markers; a candidate that maps to no term scores the chance level). Scores
  become per-cell probabilities ``softmax(sharpness * score / chance)`` (the engine's
  posterior), and the one-to-one assignment that maximises the summed log-probability
  is found with :func:`scipy.optimize.linear_sum_assignment` (labels unique by
  construction). ``assignment=False`` takes each cell's best candidate instead.
* ``random``: a random permutation of the candidates (seeded per puzzle), the baseline.
* ``most-frequent``: the candidate most frequent in a dataset's label set, in every
  position (a bench baseline; it needs the label set).
* LLMs (``openai:``, ``anthropic:``, ``llamacpp:``): the Cell-o1 prompt of
  :mod:`llm4cell.puzzles._prompt`, parsed strictly, no repair turn (a malformed reply
  is recorded and scores 0, as in the published benchmark). Requests go through the
  response cache.
* ``hybrid:<llm>``: the LLM also sees the knowledge score matrix and assignment and may
  revise it; when its reply is malformed, repeats a type or names a non-candidate, the
  knowledge assignment stands (``details["fallback"]``).
* ``consensus:<spec>,...``: each member solves; the assignment maximising the members'
  votes per cell wins (ties to the earlier candidate).

The solvers are built from backend spec strings by the one backend registry,
:func:`llm4cell.annotators.build_backend` with ``task="puzzles"``.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.optimize import linear_sum_assignment

from .._errors import BackendError
from .._records import MarkerQuery, Progress
from ..genes import is_evidence_gene
from ..knowledge._engine import GENERIC_TERMS, KnowledgeBase, load_knowledge
from ..llm._clients import ChatRequest
from ..llm._options import redact
from ..llm._runner import run_parallel
from ..ontology._matcher import get_matcher
from ._prompt import (
    PUZZLE_PROMPT_VERSION,
    PUZZLE_SYSTEM,
    hints_block,
    parse_puzzle_answer,
    puzzle_question,
)
from ._records import Puzzle, PuzzleAnswer

__all__ = [
    "ConsensusSolver",
    "KnowledgeSolver",
    "LLMSolver",
    "MostFrequentSolver",
    "PuzzleSolver",
    "RandomSolver",
]



@runtime_checkable
class PuzzleSolver(Protocol):
    """Anything that solves puzzles.

    Not the :class:`~llm4cell.Annotator` protocol, and not merged with it: an annotator
    answers independent queries, each by its id, and any subset of them may be asked
    again alone (re-asking, caching, checking one answer per id); a puzzle is one joint
    answer over N cells and N candidates, each candidate used once, so the unit of work,
    the answer record and the scoring differ. One object offering both would give every
    backend a method it cannot honour for one of the two tasks. The registry builds
    either from the same spec string (``task="clusters"`` or ``task="puzzles"``).
    """

    name: str

    def solve(self, puzzles: Sequence[Puzzle], progress: Progress | None = None
              ) -> list[PuzzleAnswer]:
        """One answer per puzzle, in order."""
        ...

    def provenance(self) -> dict[str, object]:
        """What ran, for records."""
        ...


def _answer(p: Puzzle, backend: str, prediction: Sequence[str] | None, **kw: Any
            ) -> PuzzleAnswer:
    pred = tuple(prediction) if prediction is not None else None
    unique = pred is not None and len({x.casefold() for x in pred}) == len(pred)
    kw.setdefault("format_ok", pred is not None and len(pred) == p.n)
    return PuzzleAnswer(
        id=p.id, n=p.n, backend=backend, prediction=pred, unique=unique,
        candidates=p.candidates, answer=p.answer, candidate_ids=p.candidate_ids, **kw,
    )


def _tick(progress: Progress | None, done: int, total: int) -> None:
    if progress is not None:
        progress(done, total)


# ------------------------------------------------------------------------ knowledge


class KnowledgeSolver:
    """Knowledge-engine scores per cell x candidate, then a one-to-one assignment."""

    def __init__(self, kb: KnowledgeBase | None = None, *, assignment: bool = True) -> None:
        self.kb = kb or load_knowledge()
        self.assignment = assignment
        self.name = "knowledge" if assignment else "knowledge (per-cell argmax)"
        self._columns: dict[str | None, tuple[np.ndarray, str]] = {}

    def _covers(self, tid: str | None) -> tuple[np.ndarray, str]:
        """Database columns a candidate term covers, and how (self/descendants/ancestor)."""
        got = self._columns.get(tid)
        if got is not None:
            return got
        kb, onto = self.kb, self.kb.ontology
        if tid is None or tid not in onto:
            got = (np.array([], dtype=np.int64), "unmapped")
        else:
            idx = [kb.type_index[t] for t in onto.descendants(tid, include_self=True)
                   if t in kb.type_index]
            how = "self" if tid in kb.type_index else "descendants"
            if not idx:
                ups = sorted(
                    ((d, a) for a, d in onto.ancestors(tid).items()
                     if a in kb.type_index and a not in GENERIC_TERMS),
                )
                if ups:
                    nearest = ups[0][0]
                    idx = [kb.type_index[a] for d, a in ups if d == nearest]
                    how = f"ancestor {onto.label(ups[0][1])}"
            got = (np.array(sorted(idx), dtype=np.int64), how if idx else "no markers")
        self._columns[tid] = got
        return got

    def _term(self, p: Puzzle, label: str) -> str | None:
        """A candidate's CL ID: the puzzle's ``candidate_ids`` entry, else the label matcher."""
        if label.strip().casefold() in {k.strip().casefold() for k in p.candidate_ids}:
            return p.candidate_id(label)
        return get_matcher().match(label, tissue=p.tissue).ontology_id

    def matrix(self, p: Puzzle
               ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, ...]], list[str]]:
        """Scores (cells x candidates), log-probabilities, matched genes per cell's best,
        and the candidates scored at chance (no term, or no markers)."""
        kb = self.kb
        n = p.n
        S = np.zeros((n, n))
        logp = np.zeros((n, n))
        cols = [self._covers(self._term(p, c)) for c in p.candidates]
        matched: list[tuple[str, ...]] = []
        for i, cell in enumerate(p.cells):
            q = MarkerQuery(id=cell.id, genes=cell.genes, tissue=p.tissue,
                            species="mouse" if p.species == "mouse" else "human")
            weights, total, _ = kb._query_weights(q)
            scores = kb._score(weights, total, p.tissue)
            n_ev = max(1, sum(is_evidence_gene(g) for g in cell.genes))
            chance = kb.chance_level(n_ev)
            best_type = -1
            for j, (idx, _) in enumerate(cols):
                if idx.size:
                    k = int(idx[np.argmax(scores[idx])])
                    S[i, j] = scores[k]
                else:
                    S[i, j] = chance
            row = kb.params.sharpness * S[i] / chance
            logp[i] = row - (row.max() + np.log(np.exp(row - row.max()).sum()))
            j_best = int(np.argmax(S[i]))
            idx = cols[j_best][0]
            if idx.size:
                best_type = int(idx[np.argmax(scores[idx])])
            matched.append(kb._matched(best_type, weights)[:4] if best_type >= 0 else ())
        at_chance = [c for c, (idx, _) in zip(p.candidates, cols, strict=True) if not idx.size]
        return S, logp, matched, at_chance

    def solve_one(self, p: Puzzle) -> PuzzleAnswer:
        """Solve one puzzle."""
        t0 = time.perf_counter()
        S, logp, matched, unmapped = self.matrix(p)
        best = logp.argmax(axis=1)
        if self.assignment:
            rows, cols = linear_sum_assignment(-logp)
            chosen = cols[np.argsort(rows)]
        else:
            chosen = best
        prob = np.exp(logp)
        pred = [p.candidates[j] for j in chosen]
        notes = []
        for i, j in enumerate(chosen):
            line = f"cell {i + 1} -> {p.candidates[j]} (score {S[i, j]:.2f}"
            if j != best[i]:
                taker = [k + 1 for k in range(p.n) if chosen[k] == best[i]]
                line += (f"; its best, {p.candidates[best[i]]} {S[i, best[i]]:.2f}, went to "
                         f"cell {taker[0]}" if taker else
                         f"; its best was {p.candidates[best[i]]} {S[i, best[i]]:.2f}")
            elif matched[i]:
                line += f"; markers {', '.join(matched[i])}"
            notes.append(line + ")")
        how = "one-to-one assignment maximising the summed log-probability" if \
            self.assignment else "each cell's best candidate"
        reasoning = f"{how}: " + "; ".join(notes)
        if unmapped:
            reasoning += f". No markers for: {', '.join(unmapped)} (scored at chance)"
        return _answer(
            p, self.name, pred, reasoning=reasoning,
            scores=[[round(float(v), 4) for v in row] for row in S],
            confidence=tuple(round(float(prob[i, j]), 4) for i, j in enumerate(chosen)),
            details={"changed_by_assignment": int((chosen != best).sum())},
            latency_s=round(time.perf_counter() - t0, 6),
        )

    def solve(self, puzzles: Sequence[Puzzle], progress: Progress | None = None
              ) -> list[PuzzleAnswer]:
        """One answer per puzzle."""
        out = []
        for k, p in enumerate(puzzles):
            out.append(self.solve_one(p))
            _tick(progress, k + 1, len(puzzles))
        return out

    def provenance(self) -> dict[str, object]:
        """Knowledge base and method."""
        return {"backend": self.name, "assignment": self.assignment,
                "knowledge": self.kb.provenance()}


# --------------------------------------------------------------------------- random


class RandomSolver:
    """A random permutation of the candidates per puzzle (seeded by seed and puzzle id)."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.name = "random"

    def solve(self, puzzles: Sequence[Puzzle], progress: Progress | None = None
              ) -> list[PuzzleAnswer]:
        """One answer per puzzle."""
        out = []
        for k, p in enumerate(puzzles):
            rng = np.random.default_rng([self.seed, zlib.crc32(p.id.encode())])
            perm = rng.permutation(p.n)
            out.append(_answer(p, self.name, [p.candidates[j] for j in perm],
                               reasoning="random permutation of the candidates"))
            _tick(progress, k + 1, len(puzzles))
        return out

    def provenance(self) -> dict[str, object]:
        """Seed."""
        return {"backend": self.name, "seed": self.seed}


class MostFrequentSolver:
    """The candidate ranked first by a dataset's label frequencies, in every position.

    Parameters
    ----------
    ranking
        The dataset's labels, most frequent first; a candidate not in it ranks last
        (ties by name).
    seed
        Recorded in provenance (the answer does not depend on it).
    """

    def __init__(self, ranking: Sequence[str], seed: int = 0) -> None:
        self.rank = {lab.casefold(): k for k, lab in enumerate(ranking)}
        self.seed = seed
        self.name = "most-frequent"

    def solve(self, puzzles: Sequence[Puzzle], progress: Progress | None = None
              ) -> list[PuzzleAnswer]:
        """One answer per puzzle."""
        out = []
        last = len(self.rank)
        for k, p in enumerate(puzzles):
            top = min(p.candidates, key=lambda c: (self.rank.get(c.casefold(), last), c))
            out.append(_answer(p, self.name, [top] * p.n,
                               reasoning="the most frequent type in every position"))
            _tick(progress, k + 1, len(puzzles))
        return out

    def provenance(self) -> dict[str, object]:
        """Seed."""
        return {"backend": self.name, "seed": self.seed}


# ------------------------------------------------------------------------------ LLM


class LLMSolver:
    """A language model answering Cell-o1-style prompts (optionally with knowledge hints)."""

    def __init__(self, llm: Any, *, hybrid: bool = False, name: str | None = None) -> None:
        self.llm = llm
        self.hybrid = hybrid
        self.knowledge = KnowledgeSolver() if hybrid else None
        self.name = name or (f"hybrid:{llm.name}" if hybrid else llm.name)
        self.n_format_failures = 0
        self.n_fallbacks = 0

    def _ask(self, p: Puzzle, hint: PuzzleAnswer | None) -> tuple[str, dict[str, int], float]:
        question = puzzle_question(p)
        if hint is not None:
            assert hint.scores is not None and hint.prediction is not None
            question += "\n" + hints_block(p, hint.scores, hint.prediction)
        opts = self.llm.options
        request = ChatRequest(
            messages=(("system", PUZZLE_SYSTEM), ("user", question)),
            max_tokens=opts.max_tokens * p.n, temperature=opts.temperature, seed=opts.seed,
        )
        t0 = time.perf_counter()
        done = self.llm.runner.complete(request)
        took = time.perf_counter() - t0
        # tokens of sent requests only, as the runner's accounting (retries not counted)
        sent = 0 if done.cached else 1
        usage = {
            "requests": sent, "cache_hits": 1 - sent,
            "prompt_tokens": done.prompt_tokens * sent,
            "completion_tokens": done.completion_tokens * sent,
        }
        return done.text, usage, took

    def solve_one(self, p: Puzzle) -> PuzzleAnswer:
        """Solve one puzzle (one request)."""
        hint = self.knowledge.solve_one(p) if self.knowledge is not None else None
        text, usage, took = self._ask(p, hint)
        parsed = parse_puzzle_answer(text, p)
        if not parsed.format_ok:
            self.n_format_failures += 1
        details: dict[str, Any] = {"llm_format_ok": parsed.format_ok}
        if hint is not None:
            valid = (parsed.format_ok and parsed.unique and not parsed.error)
            details["fallback"] = not valid
            if not valid:
                self.n_fallbacks += 1
                why = parsed.error or ("a type repeats" if parsed.format_ok else "")
                return _answer(
                    p, self.name, hint.prediction, raw=text, error=why,
                    reasoning=f"LLM answer unusable ({why}); knowledge assignment kept. "
                              + hint.reasoning,
                    scores=hint.scores, confidence=hint.confidence, details=details,
                    latency_s=round(took, 6), **usage,
                )
            details["changed_from_knowledge"] = sum(
                a != b for a, b in zip(parsed.prediction or (), hint.prediction or (),
                                       strict=False))
        return _answer(
            p, self.name, parsed.prediction, format_ok=parsed.format_ok, raw=text,
            error=parsed.error, reasoning=parsed.reasoning,
            scores=hint.scores if hint is not None else None, details=details,
            latency_s=round(took, 6), **usage,
        )

    def solve(self, puzzles: Sequence[Puzzle], progress: Progress | None = None
              ) -> list[PuzzleAnswer]:
        """One answer per puzzle; requests run concurrently (``options.concurrency``)."""
        done = 0
        total = len(puzzles)

        def on_done(k: int) -> None:
            nonlocal done
            done += k
            _tick(progress, done, total)

        try:
            return run_parallel(self.solve_one, list(puzzles), self.llm.runner.concurrency(),
                                on_done)
        except BackendError as e:
            msg = (f"{self.name}: {e}; the answers received before this are cached: re-run "
                   "the same command to resume")
            raise BackendError(redact(msg)) from None

    def provenance(self) -> dict[str, object]:
        """The model's provenance plus format failures and fallbacks."""
        prov = dict(self.llm.provenance())
        prov.pop("answers", None)
        prov.update({"backend": self.name, "prompt_version": PUZZLE_PROMPT_VERSION,
                     "hybrid": self.hybrid, "format_failures": self.n_format_failures,
                     "fallbacks_to_knowledge": self.n_fallbacks})
        return prov


# ------------------------------------------------------------------------ consensus


class ConsensusSolver:
    """Members solve; the assignment with the most member votes per cell wins."""

    def __init__(self, members: Sequence[PuzzleSolver], name: str | None = None) -> None:
        self.members = list(members)
        self.name = name or "consensus:" + ",".join(m.name for m in self.members)

    def solve(self, puzzles: Sequence[Puzzle], progress: Progress | None = None
              ) -> list[PuzzleAnswer]:
        """One answer per puzzle."""
        runs = [m.solve(puzzles, progress=progress) for m in self.members]
        out = []
        for k, p in enumerate(puzzles):
            votes = np.zeros((p.n, p.n))
            spelling = {c.casefold(): j for j, c in enumerate(p.candidates)}
            member_preds = {}
            usage = dict.fromkeys(("requests", "cache_hits", "prompt_tokens",
                                   "completion_tokens"), 0)
            latency = 0.0
            for m, run in zip(self.members, runs, strict=True):
                a = run[k]
                member_preds[m.name] = list(a.prediction) if a.prediction else None
                for key in usage:
                    usage[key] += getattr(a, key)
                latency += a.latency_s
                if a.prediction is None or not a.format_ok:
                    continue
                for i, label in enumerate(a.prediction):
                    j = spelling.get(label.casefold())
                    if j is not None:
                        votes[i, j] += 1
            rows, cols = linear_sum_assignment(-votes)
            chosen = cols[np.argsort(rows)]
            support = [int(votes[i, j]) for i, j in enumerate(chosen)]
            out.append(_answer(
                p, self.name, [p.candidates[j] for j in chosen],
                reasoning="members' votes per cell, assigned one-to-one: " + "; ".join(
                    f"cell {i + 1} {s}/{len(self.members)}" for i, s in enumerate(support)),
                confidence=tuple(round(s / len(self.members), 4) for s in support),
                details={"members": member_preds}, latency_s=round(latency, 6), **usage,
            ))
        return out

    def provenance(self) -> dict[str, object]:
        """Members' provenance."""
        return {"backend": self.name, "members": [m.provenance() for m in self.members]}
