"""The backend registry: one list of entries, each metadata and the callable that builds it.

Every command builds its backend here, from one spec string (the ``--backend`` flag):
``annotate`` and ``markers`` through :func:`get_annotator` (task ``"clusters"``),
``puzzles solve`` through :func:`~llm4cell.puzzles.solve_puzzles` (task ``"puzzles"``)
and ``bench`` for both, all through :func:`build_backend`. :func:`show` is a view of
:data:`BACKENDS` (as decoupler's method registry).

Tasks an entry may declare (:data:`TASKS`):

``"clusters"``
    annotate groups of cells, one :class:`~llm4cell.MarkerQuery` per group; builds an
    :class:`~llm4cell.Annotator`.
``"cells"``
    annotate single cells, one query per cell; no backend declares it yet.
``"puzzles"``
    solve CellPuzzles; builds a :class:`~llm4cell.puzzles._solvers.PuzzleSolver`.

Context (keyword arguments of :func:`build_backend`; each entry takes what it needs):
``labels`` (a dataset's label set, ``[(label, CL ID or None, weight), ...]``: the
``random`` and ``most-frequent`` baselines), ``seed`` (the baselines) and ``assignment``
(``knowledge`` puzzles: one-to-one assignment, or each cell's best candidate).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, overload

import pandas as pd

from .._errors import BackendError
from ..llm._options import LLMOptions, ParsedSpec, merge_options, parse_spec
from ..puzzles._solvers import (
    ConsensusSolver,
    KnowledgeSolver,
    LLMSolver,
    MostFrequentSolver,
    PuzzleSolver,
    RandomSolver,
)
from ._base import Annotator
from ._baselines import Labels, VocabBaseline, by_frequency
from ._consensus import ConsensusAnnotator
from ._hybrid import HybridAnnotator
from ._knowledge import KnowledgeAnnotator
from ._llm import LLMAnnotator

__all__ = [
    "BACKENDS",
    "TASKS",
    "BackendSpec",
    "as_options",
    "build_backend",
    "get_annotator",
    "show",
]

#: Task -> what a backend does for it (the words of the error messages).
TASKS: dict[str, str] = {
    "clusters": "annotate clusters",
    "cells": "annotate single cells",
    "puzzles": "solve puzzles",
}
#: The context keywords :func:`build_backend` passes on to the entries.
CONTEXT = ("labels", "seed", "assignment")

Backend = Annotator | PuzzleSolver
#: ``build(parsed, options, *, task, check, **context) -> backend``
Builder = Callable[..., Backend]


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: what it is, what it can do, and how it is built.

    Attributes
    ----------
    name
        The spec pattern, e.g. ``"openai:MODEL"``; the part before ``:`` is its kind.
    desc, reference
        What it is and where it comes from.
    needs_network
        Whether it may call a server.
    tasks
        The tasks it can do (keys of :data:`TASKS`).
    build
        ``build(parsed, options, *, task, check, **context)``: the backend for a parsed
        spec and a task it declares (not shown by :func:`show`).
    """

    name: str
    desc: str
    needs_network: bool
    reference: str
    tasks: frozenset[str]
    build: Builder = field(repr=False, compare=False)

    @property
    def kind(self) -> str:
        """The spec kind this entry builds (``"openai"`` for ``"openai:MODEL"``)."""
        return self.name.partition(":")[0]


# ---------------------------------------------------------------------- builders


def _unnamed(opts: LLMOptions) -> LLMOptions:
    """Options for a member of hybrid/consensus (the display name is the whole's)."""
    return opts.model_copy(update={"name": None})


def _need_labels(parsed: ParsedSpec, task: str, labels: Labels | None) -> Labels:
    if not labels:
        msg = (f"backend {parsed.text!r} cannot {TASKS[task]} without a dataset's label set "
               "to draw from; it is a baseline of `llm4cell bench`")
        raise BackendError(msg)
    return labels


def _knowledge(parsed: ParsedSpec, opts: LLMOptions, *, task: str, check: bool,
               assignment: bool = True, **_: Any) -> Backend:
    if task == "puzzles":
        return KnowledgeSolver(assignment=assignment)
    return KnowledgeAnnotator()


def _llm(parsed: ParsedSpec, opts: LLMOptions, *, task: str, check: bool, **_: Any
         ) -> Backend:
    annotator = LLMAnnotator(parsed, merge_options(opts, parsed.options))
    if check:
        annotator.check()
    return LLMSolver(annotator) if task == "puzzles" else annotator


def _hybrid(parsed: ParsedSpec, opts: LLMOptions, *, task: str, check: bool, **_: Any
            ) -> Backend:
    llm = _build(parse_spec(parsed.members[0]), _unnamed(opts), task="clusters", check=check)
    if task == "puzzles":
        return LLMSolver(llm, hybrid=True, name=opts.name)
    return HybridAnnotator(llm, opts)  # type: ignore[arg-type]


def _consensus(parsed: ParsedSpec, opts: LLMOptions, *, task: str, check: bool,
               **context: Any) -> Backend:
    if task == "puzzles":
        # the members solve with the one-to-one assignment whatever the consensus is given
        context.pop("assignment", None)
    members = [_build(parse_spec(m), _unnamed(opts), task=task, check=check, **context)
               for m in parsed.members]
    if task == "puzzles":
        return ConsensusSolver(members, name=opts.name)  # type: ignore[arg-type]
    return ConsensusAnnotator(members, opts)


def _random(parsed: ParsedSpec, opts: LLMOptions, *, task: str, check: bool, seed: int = 0,
            labels: Labels | None = None, **_: Any) -> Backend:
    if task == "puzzles":
        return RandomSolver(seed)
    return VocabBaseline("random", _need_labels(parsed, task, labels), seed)


def _most_frequent(parsed: ParsedSpec, opts: LLMOptions, *, task: str, check: bool,
                   seed: int = 0, labels: Labels | None = None, **_: Any) -> Backend:
    vocab = _need_labels(parsed, task, labels)
    if task == "puzzles":
        return MostFrequentSolver([lab for lab, _, _ in by_frequency(vocab)], seed)
    return VocabBaseline("most-frequent", vocab, seed)


_ANNOTATE_AND_SOLVE = frozenset({"clusters", "puzzles"})

#: The backends this version of llm4cell can build.
BACKENDS: list[BackendSpec] = [
    BackendSpec(
        name="knowledge",
        desc="Deterministic marker-enrichment scoring over the cellconsensus database, "
        "grounded in the Cell Ontology (offline); puzzles: a score per cell and "
        "candidate, then the optimal one-to-one assignment.",
        needs_network=False,
        reference="cellconsensus (tansey-lab); Cell Ontology via cellxgene-ontology-guide",
        tasks=_ANNOTATE_AND_SOLVE,
        build=_knowledge,
    ),
    BackendSpec(
        name="openai:MODEL",
        desc="Any OpenAI-compatible chat server: OpenAI, vLLM, Ollama, llama.cpp, "
        "OpenRouter, LM Studio (base URL and key from flags or OPENAI_BASE_URL / "
        "OPENAI_API_KEY). Needs llm4cell[llm].",
        needs_network=True,
        reference="OpenAI Chat Completions API",
        tasks=_ANNOTATE_AND_SOLVE,
        build=_llm,
    ),
    BackendSpec(
        name="anthropic:MODEL",
        desc="Anthropic's Messages API (key from ANTHROPIC_API_KEY); structured answers "
        "through a forced tool call. Needs llm4cell[llm].",
        needs_network=True,
        reference="Anthropic Messages API",
        tasks=_ANNOTATE_AND_SOLVE,
        build=_llm,
    ),
    BackendSpec(
        name="llamacpp:PATH.gguf",
        desc="A local GGUF model file run in-process by llama-cpp-python (offline). "
        "Needs llm4cell[local].",
        needs_network=False,
        reference="llama.cpp / llama-cpp-python",
        tasks=_ANNOTATE_AND_SOLVE,
        build=_llm,
    ),
    BackendSpec(
        name="hybrid:SPEC",
        desc="The knowledge engine's candidates, matched markers and answer given to an "
        "LLM, which chooses or proposes another; optionally only where the engine is "
        "uncertain.",
        needs_network=True,
        reference="llm4cell",
        tasks=_ANNOTATE_AND_SOLVE,
        build=_hybrid,
    ),
    BackendSpec(
        name="consensus:SPEC,SPEC,...",
        desc="Several annotators; consensus, proportion and entropy measured on the Cell "
        "Ontology, with one discussion round where they disagree.",
        needs_network=True,
        reference="llm4cell (after mLLMCelltype's multi-model consensus)",
        tasks=_ANNOTATE_AND_SOLVE,
        build=_consensus,
    ),
    BackendSpec(
        name="random",
        desc="Baseline: a random type from a dataset's true types per cluster (seeded); "
        "puzzles: a random permutation of the candidates. Clusters need the dataset's "
        "label set (bench).",
        needs_network=False,
        reference="llm4cell (baseline)",
        tasks=_ANNOTATE_AND_SOLVE,
        build=_random,
    ),
    BackendSpec(
        name="most-frequent",
        desc="Baseline: a dataset's most frequent true type for every cluster, and in every "
        "position of a puzzle. Needs the dataset's label set (bench).",
        needs_network=False,
        reference="llm4cell (baseline)",
        tasks=_ANNOTATE_AND_SOLVE,
        build=_most_frequent,
    ),
]


def show() -> pd.DataFrame:
    """The backend registry as a table: one row per backend, with the tasks it can do."""
    rows = []
    for b in BACKENDS:
        row: dict[str, object] = {f.name: getattr(b, f.name) for f in fields(b)
                                  if f.name != "build"}
        row["tasks"] = ", ".join(t for t in TASKS if t in b.tasks)
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- factory


def _entry(kind: str) -> BackendSpec:
    for b in BACKENDS:
        if b.kind == kind:
            return b
    msg = f"unknown backend kind {kind!r}; see llm4cell.show()"
    raise BackendError(msg)


def _build(parsed: ParsedSpec, opts: LLMOptions, *, task: str, check: bool,
           **context: Any) -> Backend:
    entry = _entry(parsed.kind)
    if task not in entry.tasks:
        can = ", ".join(TASKS[t] for t in TASKS if t in entry.tasks)
        able = [b.name for b in BACKENDS if task in b.tasks]
        alt = f"backends that can: {', '.join(able)}" if able else "no backend can yet"
        msg = f"backend {parsed.text!r} cannot {TASKS[task]} (it can {can}); {alt}"
        raise BackendError(msg)
    return entry.build(parsed, opts, task=task, check=check, **context)


def _given(spec: object, task: str) -> Backend:
    """A backend object passed instead of a spec string, when it fits the task."""
    if task == "puzzles":
        if isinstance(spec, PuzzleSolver):
            return spec
        msg = f"backend must be a spec string or a puzzle solver, got {type(spec).__name__}"
    else:
        if isinstance(spec, Annotator):
            return spec
        msg = f"backend must be a spec string or an Annotator, got {type(spec).__name__}"
    raise BackendError(msg)


@overload
def build_backend(spec: str | Annotator,
                  options: LLMOptions | Mapping[str, object] | None = None, *,
                  task: Literal["clusters", "cells"], check: bool = True,
                  **context: Any) -> Annotator: ...
@overload
def build_backend(spec: str | PuzzleSolver,
                  options: LLMOptions | Mapping[str, object] | None = None, *,
                  task: Literal["puzzles"], check: bool = True,
                  **context: Any) -> PuzzleSolver: ...
@overload
def build_backend(spec: str | Backend,
                  options: LLMOptions | Mapping[str, object] | None = None, *,
                  task: str, check: bool = True, **context: Any) -> Backend: ...


def build_backend(
    spec: str | Backend,
    options: LLMOptions | Mapping[str, object] | None = None,
    *,
    task: str,
    check: bool = True,
    **context: Any,
) -> Backend:
    """The backend for a spec string and a task: the one factory of llm4cell.

    Parameters
    ----------
    spec
        A backend spec (see :mod:`llm4cell.llm._options` and :func:`show`), or a
        backend object, returned as it is when it fits the task.
    options
        How LLM backends are called (:class:`~llm4cell.llm.LLMOptions` or a dict of its
        fields); ignored by the others.
    task
        ``"clusters"``, ``"cells"`` or ``"puzzles"`` (see :data:`TASKS`).
    check
        Check at once that every LLM backend can answer (key present, server reachable,
        model served, model file loads), so that a bad setup fails before any work.
    **context
        ``labels``, ``seed``, ``assignment`` (see the module docstring).

    Returns
    -------
    An :class:`~llm4cell.Annotator` for ``"clusters"`` and ``"cells"``, a
    :class:`~llm4cell.puzzles._solvers.PuzzleSolver` for ``"puzzles"``.

    Raises
    ------
    BackendError
        For unknown specs, a backend that cannot do the task (one line naming both),
        bad options, missing packages, keys or servers.
    """
    if task not in TASKS:
        msg = f"task must be one of {list(TASKS)}, got {task!r}"
        raise ValueError(msg)
    unknown = sorted(set(context) - set(CONTEXT))
    if unknown:
        msg = f"build_backend() got unknown context {unknown}; known: {list(CONTEXT)}"
        raise TypeError(msg)
    if not isinstance(spec, str):
        return _given(spec, task)
    parsed = parse_spec(spec)
    return _build(parsed, as_options(options), task=task, check=check, **context)


def get_annotator(
    spec: str | Annotator,
    *,
    options: LLMOptions | Mapping[str, object] | None = None,
    check: bool = True,
) -> Annotator:
    """The annotator for a backend spec string or an annotator object.

    :func:`build_backend` with ``task="clusters"``.

    Parameters
    ----------
    spec
        ``"knowledge"``, ``"openai:MODEL"``, ``"anthropic:MODEL"``, ``"llamacpp:PATH.gguf"``,
        ``"hybrid:<llm spec>"``, ``"consensus:<spec>,<spec>,..."`` (see
        :mod:`llm4cell.llm._options` for ``?key=value`` options), or an annotator.
    options
        How LLM backends are called (:class:`~llm4cell.llm.LLMOptions` or a dict of its
        fields); ignored by the knowledge backend.
    check
        Check at once that every LLM backend can answer (key present, server reachable,
        model served, model file loads), so that a bad setup fails before any work.

    Raises
    ------
    BackendError
        For unknown specs, bad options, missing packages, keys or servers.
    """
    return build_backend(spec, options, task="clusters", check=check)


def as_options(options: LLMOptions | Mapping[str, object] | None) -> LLMOptions:
    """LLMOptions from None, an LLMOptions or a dict of its fields.

    Raises
    ------
    BackendError
        When the dict holds unknown fields or bad values.
    """
    if options is None:
        return LLMOptions()
    if isinstance(options, LLMOptions):
        return options
    try:
        return LLMOptions.model_validate(dict(options))
    except ValueError as e:
        msg = f"bad LLM options: {' '.join(str(e).split())[:300]}"
        raise BackendError(msg) from None
