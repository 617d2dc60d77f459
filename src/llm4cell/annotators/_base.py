"""The annotator protocol and the check that every query got exactly one answer.

Every annotator turns :class:`~llm4cell.MarkerQuery` objects into
:class:`~llm4cell.Annotation` objects keyed by query id; nothing downstream knows which
one ran. :func:`check_answers` enforces that every query got exactly one answer.

Puzzles have their own protocol, :class:`~llm4cell.puzzles._solvers.PuzzleSolver`
(see there why the two are not one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from .._errors import BackendError, InputError
from .._records import Annotation, MarkerQuery

__all__ = ["Annotator", "check_answers"]


@runtime_checkable
class Annotator(Protocol):
    """What every backend provides for annotation (clusters, each an independent query)."""

    name: str

    def annotate(self, queries: Sequence[MarkerQuery]) -> list[Annotation]:
        """One annotation per query, keyed by ``query.id``."""
        ...

    def provenance(self) -> dict[str, object]:
        """What ran, with which parameters and data versions."""
        ...


def check_answers(
    queries: Sequence[MarkerQuery], annotations: Sequence[Annotation]
) -> dict[str, Annotation]:
    """Annotations by query id, after checking every query got exactly one answer.

    Raises
    ------
    InputError
        On duplicate query ids.
    BackendError
        When an answer is missing, duplicated or for an id that was not asked.
    """
    ids = [q.id for q in queries]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        msg = f"duplicate query ids {dup}; every group needs a unique id"
        raise InputError(msg)
    by_id: dict[str, Annotation] = {}
    for a in annotations:
        if a.id in by_id:
            msg = f"the backend answered query {a.id!r} twice"
            raise BackendError(msg)
        by_id[a.id] = a
    missing = [i for i in ids if i not in by_id]
    extra = [i for i in by_id if i not in set(ids)]
    if missing or extra:
        msg = f"the backend's answers do not match the queries (missing {missing}, extra {extra})"
        raise BackendError(msg)
    return by_id
