"""LLM annotators: a language model, alone or given the knowledge engine's evidence.

:class:`LLMAnnotator` asks one model for the cell type of each query, a batch of
clusters per request, keyed by id; :class:`~llm4cell.annotators.HybridAnnotator`
(:mod:`._hybrid`) gives it the knowledge engine's candidates first. Both follow the
:class:`~llm4cell.Annotator` protocol.

For every batch: the clusters are shown to the model under the ids ``1``, ``2``, ... of
the batch (:func:`wire_ids`), which no model trims, recases or confuses, and the answers
are mapped back to the user's ids exactly; the user's ids (any strings: ``"A"``, ``"A "``
and ``" A"`` are three clusters) appear unchanged in every output. The request (or the
two of ``cot``) is sent through the
:class:`~llm4cell.llm._runner.RequestRunner` (cache, retries, timeout). Ids answered
exactly once with a valid item are accepted; every other id is asked again alone; a
single id whose answer is still not valid gets ``repair_attempts`` follow-ups showing
the model the problem, then becomes ``"unknown"`` with the reason in its evidence. Free
text names are mapped to Cell Ontology terms by :func:`~llm4cell.match_label`.

The confidence of an LLM answer is the model's own (uncalibrated) confidence times the
score of the ontology match; the knowledge engine's confidence is the calibrated one.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence

from .._errors import BackendError, InputError
from .._records import Annotation, Candidate, MarkerQuery, Progress
from ..knowledge._engine import UNKNOWN
from ..llm._answers import ClusterAnswer, ParsedAnswers, answer_schema, parse_answers
from ..llm._clients import ChatClient, ChatRequest, Completion, make_client
from ..llm._options import LLMOptions, ParsedSpec, redact
from ..llm._prompts import (
    SYSTEM,
    cluster_block,
    discussion_prompt,
    hybrid_block,
    reasoning_prompt,
    repair_prompt,
    summary_prompt,
    task_prompt,
)
from ..llm._runner import RequestRunner, run_parallel
from ..ontology._matcher import get_matcher

__all__ = ["LLMAnnotator", "wire_ids"]

#: Bumped when the prompts change meaningfully (recorded in provenance). 2: clusters are
#: sent under the wire ids 1, 2, ... of their batch (:func:`wire_ids`), not the user's ids.
PROMPT_VERSION = 2
#: Markers per cluster shown to the model.
PROMPT_GENES = 15
_UNKNOWN_WORDS = {
    "unknown", "unclear", "none", "n/a", "na", "undetermined", "not determined",
    "unidentified", "unassigned", "unknown cell type", "unknown cell", "ambiguous",
}


def wire_ids(batch: Sequence[MarkerQuery]) -> dict[str, MarkerQuery]:
    """The ids a batch is sent under: ``"1"``, ``"2"``, ... in order, each to its query.

    The user's ids are opaque strings (``"A"``, ``"A "`` and ``" A"`` are three clusters);
    a model may trim, recase or renumber what it is shown. Short decimal tokens survive
    any such normalisation unchanged and never collide, and the answer is mapped back to
    the user's id exactly through this table (never by position).
    """
    return {str(k): q for k, q in enumerate(batch, start=1)}


def _is_unknown(text: str) -> bool:
    t = text.strip().lower().strip("<>.")
    return t in _UNKNOWN_WORDS or t.startswith("unknown")


def _mentioned(genes: Sequence[str], text: str) -> tuple[str, ...]:
    words = set(re.findall(r"[A-Za-z0-9\-\.]+", text.upper()))
    return tuple(g for g in genes if g.upper() in words)


class LLMAnnotator:
    """A language model as an :class:`~llm4cell.Annotator`.

    Parameters
    ----------
    spec
        The parsed backend spec (``openai:MODEL``, ``anthropic:MODEL``, ``llamacpp:PATH``).
    options
        How to call the model (see :class:`~llm4cell.llm.LLMOptions`).
    client
        A ready client (default: built from the spec).
    """

    def __init__(self, spec: ParsedSpec, options: LLMOptions,
                 client: ChatClient | None = None) -> None:
        self.spec = spec
        self.options = options
        self.name = options.name or spec.text
        self.client = client or make_client(spec.kind, spec.target, options)
        self.runner = RequestRunner(self.client, options)
        self.counts: Counter[str] = Counter()
        self.progress: Progress | None = None
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0

    def __repr__(self) -> str:
        return f"LLMAnnotator({self.name!r}, strategy={self.options.strategy!r})"

    def check(self) -> None:
        """Fail fast when the model cannot answer (missing key, server down, no file)."""
        self.client.check()

    # ------------------------------------------------------------------ requests

    def _request(self, messages: list[tuple[str, str]], ids: Sequence[str] | None,
                 max_tokens: int) -> Completion:
        """Send one request; a structured one (``ids``) is cached only when at least one
        id got a valid answer, free text only when it is not empty."""
        schema = None
        if ids is not None:
            # Length bounds keep grammar-constrained local models from rambling; OpenAI's
            # strict mode rejects them.
            official = self.client.provider == "openai" and "api.openai.com" in \
                self.client.endpoint
            schema = answer_schema(list(ids), lengths=not official)
        request = ChatRequest(
            messages=tuple(messages), max_tokens=max_tokens,
            temperature=self.options.temperature, seed=self.options.seed, schema=schema,
        )
        if ids is None:
            return self.runner.complete(request, accept=lambda c: bool(c.text.strip()))
        asked = list(ids)
        return self.runner.complete(
            request, accept=lambda c: bool(self._parse(c, asked).answers))

    def _conversation(self, blocks: list[str], ids: list[str], hybrid: bool
                      ) -> tuple[list[tuple[str, str]], str]:
        """Messages up to the structured answer, and the free reasoning (``cot``)."""
        k = len(ids)
        if self.options.strategy == "cot":
            first = [("system", SYSTEM), ("user", reasoning_prompt(blocks, hybrid=hybrid))]
            thought = self._request(first, None, 3 * self.options.max_tokens * k).text
            return [*first, ("assistant", thought), ("user", summary_prompt(ids))], thought
        return [("system", SYSTEM), ("user", task_prompt(blocks, ids, hybrid=hybrid))], ""

    def _blocks(self, wire: Mapping[str, MarkerQuery],
                knowledge: Mapping[str, Annotation] | None) -> list[str]:
        """The clusters as shown to the model, each under its wire id."""
        shown = {w: q.model_copy(update={"id": w}) for w, q in wire.items()}
        if knowledge is None:
            return [cluster_block(shown[w], PROMPT_GENES) for w in wire]
        return [hybrid_block(shown[w], PROMPT_GENES, knowledge[q.id]) for w, q in wire.items()]

    def _ask_batch(self, batch: Sequence[MarkerQuery],
                   knowledge: Mapping[str, Annotation] | None) -> dict[str, Annotation]:
        wire = wire_ids(batch)
        ids = list(wire)
        messages, thought = self._conversation(self._blocks(wire, knowledge), ids,
                                               knowledge is not None)
        max_tokens = self.options.max_tokens * len(ids)
        done = self._request(messages, ids, max_tokens)
        parsed = self._parse(done, ids)
        out = {q.id: self._to_annotation(q, parsed.answers[w], thought)
               for w, q in wire.items() if w in parsed.answers}
        if parsed.extra_ids:
            self._count("extra_ids", len(parsed.extra_ids))
        if len(batch) > 1:
            for q in batch:
                if q.id not in out:
                    self._count("reasked_alone")
                    out.update(self._ask_batch([q], knowledge))
            return out
        ((w, q),) = wire.items()
        attempt = 0
        while q.id not in out:
            problem = parsed.problems.get(w, "no usable answer")
            if attempt >= self.options.repair_attempts:
                self._count("invalid")
                out[q.id] = Annotation(
                    id=q.id, label=UNKNOWN, ontology_id=None, confidence=0.0,
                    evidence=redact(
                        f"{self.name} ({self.options.strategy}): no valid answer after "
                        f"{attempt + 1} attempt(s) ({problem}; the model saw this cluster "
                        f"as id {w!r}); answer began {done.text[:120]!r}"),
                    backend=self.name,
                )
                break
            attempt += 1
            self._count("repairs")
            messages = [*messages, ("assistant", done.text),
                        ("user", repair_prompt(problem, ids))]
            done = self._request(messages, ids, max_tokens)
            parsed = self._parse(done, ids)
            if w in parsed.answers:
                out[q.id] = self._to_annotation(q, parsed.answers[w], thought)
        return out

    def _parse(self, done: Completion, ids: list[str]) -> ParsedAnswers:
        """Parse a structured answer; one cut off at the token limit says so."""
        parsed = parse_answers(done.text, ids)
        if done.finish_reason == "length" and parsed.problems:
            why = (f"the answer was cut off at the token limit ({self.options.max_tokens} "
                   "per cluster); raise --max-tokens")
            parsed.problems = dict.fromkeys(parsed.problems, why)
        return parsed

    def _count(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.counts[what] += n

    def _advance(self, n: int) -> None:
        with self._lock:
            self._done += n
            done, total = self._done, self._total
        if self.progress is not None:
            self.progress(done, total)

    # ------------------------------------------------------------------ answers

    def _to_annotation(self, q: MarkerQuery, ans: ClusterAnswer, thought: str) -> Annotation:
        reasoning = " ".join(ans.reasoning.split())[:300]
        said = f"{self.name} ({self.options.strategy}) answered {ans.cell_type!r}"
        why = f"; reasoning: {reasoning}" if reasoning else ""
        if _is_unknown(ans.cell_type):
            return Annotation(id=q.id, label=UNKNOWN, ontology_id=None, confidence=0.0,
                              evidence=redact(said + why), backend=self.name)
        matcher = get_matcher()
        m = matcher.match(ans.cell_type, tissue=q.tissue)
        if m.ontology_id is None:
            return Annotation(
                id=q.id, label=UNKNOWN, ontology_id=None, confidence=0.0,
                evidence=redact(f"{said}, which matches no Cell Ontology term{why}"),
                backend=self.name,
            )
        onto = matcher.ontology
        label = onto.label(m.ontology_id)
        genes = _mentioned(q.genes, f"{ans.reasoning} {thought}")
        candidates = [Candidate(label=label, ontology_id=m.ontology_id,
                                score=round(ans.confidence, 4), matched_genes=genes)]
        seen = {m.ontology_id}
        for alt in ans.alternatives:
            if _is_unknown(alt):
                continue
            am = matcher.match(alt, tissue=q.tissue)
            if am.ontology_id is not None and am.ontology_id not in seen:
                seen.add(am.ontology_id)
                candidates.append(Candidate(label=onto.label(am.ontology_id),
                                            ontology_id=am.ontology_id, score=0.0))
        mapping = (f" -> {label} ({m.ontology_id}; {m.method} match {m.score:.2f})"
                   if label.lower() != ans.cell_type.lower() else f" ({m.ontology_id})")
        return Annotation(
            id=q.id, label=label, ontology_id=m.ontology_id,
            confidence=round(ans.confidence * min(1.0, m.score), 4),
            candidates=tuple(candidates),
            evidence=redact(f"{said}{mapping}, self-reported confidence "
                            f"{ans.confidence:.2f}{why}"),
            backend=self.name,
        )

    # ------------------------------------------------------------------ protocol

    def annotate(self, queries: Sequence[MarkerQuery],
                 knowledge: Mapping[str, Annotation] | None = None) -> list[Annotation]:
        """One annotation per query, keyed by id.

        ``knowledge`` (the knowledge engine's annotations by id) turns the prompt into the
        hybrid one.

        Raises
        ------
        BackendError
            When the model stays unreachable after the retries; answers received so far
            are in the cache and a re-run resumes from them.
        """
        queries = list(queries)
        ids = [q.id for q in queries]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            msg = f"duplicate query ids {dup}; every group needs a unique id"
            raise InputError(msg)
        size = self.options.batch_size
        batches = [queries[i : i + size] for i in range(0, len(queries), size)]
        with self._lock:
            self._done, self._total = 0, len(queries)

        def one(batch: list[MarkerQuery]) -> dict[str, Annotation]:
            got = self._ask_batch(batch, knowledge)
            self._advance(len(batch))
            return got

        try:
            answers = run_parallel(one, batches, self.runner.concurrency())
        except BackendError as e:
            s = self.runner.stats
            msg = (f"{self.name}: {e}; the {s.answered} answer(s) received before this are "
                   "cached: re-run the same command to resume")
            raise BackendError(redact(msg)) from None
        merged: dict[str, Annotation] = {}
        for part in answers:
            merged.update(part)
        return [merged[q.id] for q in queries]

    def reconsider(self, queries: Sequence[MarkerQuery], own: Mapping[str, Annotation],
                   others: Mapping[str, list[tuple[str, str, str]]]) -> list[Annotation]:
        """The consensus discussion round: each query alone, with the others' answers."""

        def one(q: MarkerQuery) -> Annotation:
            mine = own[q.id]
            shown = (f"{mine.label} ({mine.ontology_id})" if mine.ontology_id else "unknown")
            ((w, _),) = wire_ids([q]).items()
            prompt = discussion_prompt(q.model_copy(update={"id": w}), PROMPT_GENES, shown,
                                       others[q.id])
            messages = [("system", SYSTEM), ("user", prompt)]
            parsed = self._parse(self._request(messages, [w], self.options.max_tokens), [w])
            if w in parsed.answers:
                return self._to_annotation(q, parsed.answers[w], "")
            self._count("invalid_discussion")
            return mine.model_copy(update={
                "evidence": f"{mine.evidence}; kept after an unusable discussion answer "
                            f"({parsed.problems.get(w)})"})

        try:
            return run_parallel(one, list(queries), self.runner.concurrency())
        except BackendError as e:
            msg = f"{self.name}: {e}; re-run the same command to resume"
            raise BackendError(redact(msg)) from None

    def provenance(self) -> dict[str, object]:
        """Model, endpoint, strategy, options, requests, tokens and cost (never a key)."""
        return {
            "backend": self.name,
            "provider": self.client.provider,
            "model": self.client.model,
            "endpoint": self.client.endpoint,
            "strategy": self.options.strategy,
            "json_mode": getattr(self.client, "json_mode", None),
            "prompt_version": PROMPT_VERSION,
            "options": self.options.public(),
            "usage": self.runner.provenance(),
            "answers": {"reasked_alone": self.counts["reasked_alone"],
                        "repairs": self.counts["repairs"],
                        "invalid_after_repairs": self.counts["invalid"],
                        "extra_ids_ignored": self.counts["extra_ids"]},
        }
