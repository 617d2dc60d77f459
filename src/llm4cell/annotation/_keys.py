"""Where an annotation lands in an AnnData, and how to read it back.

An annotation under the key ``key`` writes the ``obs`` columns ``key``,
``key + "_ontology_id"``, ``key + "_confidence"``, ``key + "_state"`` (and
``key + "_cluster"`` when llm4cell clustered), the per-cell state scores in
``obsm[key + "_states"]`` and one provenance record in ``uns["llm4cell"][key]``, so that annotations
under several keys keep one record each (scanpy's ``uns[key_added]``, one level down).
Files written before the per-key layout hold a single record in ``uns["llm4cell"]``
itself; it is read as the record of its ``key_added`` and kept when a new key is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anndata as ad

from .._errors import InputError
from .._records import UNS_KEY, is_legacy_record, recorded

__all__ = [
    "DEFAULT_KEY",
    "UNS_KEY",
    "check_free_columns",
    "check_key",
    "get_provenance",
    "planned_columns",
    "recorded",
    "store_record",
]

#: Default ``key_added``: not a CELLxGENE schema column (``cell_type`` is one).
DEFAULT_KEY = "llm4cell"


def check_key(key: object) -> str:
    """Refuse a ``key_added`` that cannot prefix ``obs`` columns (empty, blank, padded,
    with ``/`` or control characters); return it."""
    bad = (
        not isinstance(key, str) or not key.strip() or key != key.strip() or "/" in key
        or any(ord(c) < 32 for c in key)
    )
    if bad:
        msg = (
            f"key_added (--key-added) {key!r} cannot prefix obs columns: give a non-empty "
            f"name without '/', control characters or surrounding spaces, e.g. {DEFAULT_KEY!r}"
        )
        raise InputError(msg)
    return key  # type: ignore[return-value]


def planned_columns(key: str, *, clusters: bool) -> list[str]:
    """The ``obs`` columns an annotation under ``key`` writes."""
    cols = [key, f"{key}_ontology_id", f"{key}_lineage", f"{key}_type", f"{key}_confidence",
            f"{key}_state"]
    return [*cols, f"{key}_cluster"] if clusters else cols


def check_free_columns(adata: ad.AnnData, key: str, *, clusters: bool,
                       overwrite: bool = False) -> None:
    """Refuse to replace existing ``obs`` columns unless ``overwrite`` is True, and an
    ``uns['llm4cell']`` that is not llm4cell's."""
    taken = [c for c in planned_columns(key, clusters=clusters) if c in adata.obs.columns]
    if taken and not overwrite:
        msg = (
            f"obs already has {', '.join(map(repr, taken))}; llm4cell never overwrites an "
            f"existing column: choose another --key-added (key_added, now {key!r}) or pass "
            "--overwrite-key (overwrite=True) to replace them"
        )
        raise InputError(msg)
    stored = adata.uns.get(UNS_KEY)
    if stored is not None and not isinstance(stored, Mapping):
        msg = (
            f"uns[{UNS_KEY!r}] holds a {type(stored).__name__}, not llm4cell's records; "
            "rename or delete it before annotating"
        )
        raise InputError(msg)


def store_record(adata: ad.AnnData, key: str, record: Mapping[str, Any]) -> None:
    """Put ``record`` in ``uns['llm4cell'][key]``, keeping the records of other keys."""
    stored = adata.uns.get(UNS_KEY)
    if isinstance(stored, Mapping) and not is_legacy_record(stored):
        kept = dict(stored)
    else:
        kept = dict(recorded(adata))
    adata.uns[UNS_KEY] = {**kept, key: record}


def get_provenance(adata: ad.AnnData, *, key: str = DEFAULT_KEY) -> Mapping[str, Any]:
    """The provenance record of the annotation stored under ``key``.

    Parameters
    ----------
    adata
        An AnnData annotated by :func:`llm4cell.annotate` (or
        :meth:`~llm4cell.AnnotationResult.to_adata`).
    key
        The ``key_added`` of that annotation.

    Returns
    -------
    The stored record ``adata.uns["llm4cell"][key]``: ``version``, ``backend``,
    ``params``, ``cl_version``, ``input``, ``annotator``, ``timings_s``, ... and
    ``groups`` (per-group markers, label, CL ID, confidence, evidence, candidates).

    Raises
    ------
    InputError
        When ``adata`` holds no llm4cell annotation under ``key`` (the message lists the
        keys it holds).
    """
    records = recorded(adata)
    if key in records:
        return records[key]
    if not records:
        msg = (
            f"adata holds no llm4cell annotation (no uns[{UNS_KEY!r}]); run "
            "llm4cell.annotate first"
        )
        raise InputError(msg)
    msg = (
        f"adata holds no llm4cell annotation under key {key!r}; its keys: "
        f"{', '.join(map(repr, records))}"
    )
    raise InputError(msg)
