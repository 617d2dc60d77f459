"""Text metrics (SOAR-style): a predicted text against the names of the true term.

Both compare a predicted text with the names of the true term: its CL label and its
synonyms. A missing or empty predicted text scores 0.

:func:`text_exact_match`
    1.0 if the normalised text equals a normalised name, else 0.0. Normalisation:
    lowercase, strip, collapse runs of whitespace to one space. A plural is accepted
    by one rule only: the text may be a name followed by a single ``"s"``
    (``"B cells"`` matches ``"B cell"``). Punctuation is kept (``"B-cell"`` matches only
    because it is a synonym of B cell).
:func:`rouge1_f1`
    ROUGE-1 F1: tokens are the runs of letters and digits of the lowercased text (any
    other character splits); ``overlap`` is the clipped unigram overlap (a token counts
    at most as often as in the other text), ``P = overlap / n_pred``,
    ``R = overlap / n_name``, ``F1 = 2PR / (P + R)`` (0 without overlap); the maximum
    over the names is returned.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from ..ontology._graph import CellOntology
from ._base import _NAN, _harmonic, _is_missing, _onto, _resolve

__all__ = ["rouge1_f1", "text_exact_match"]

_TOKEN = re.compile(r"[^\W_]+")


def _names(term_id: str, onto: CellOntology) -> list[str]:
    return [onto.label(term_id), *onto.synonyms(term_id)]


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _exact(pred_text: str, truth: str, onto: CellOntology) -> float:
    said = _normalise(pred_text)
    for name in _names(truth, onto):
        target = _normalise(name)
        if said in (target, target + "s"):
            return 1.0
    return 0.0


def _rouge1(pred_tokens: list[str], ref_tokens: list[str]) -> float:
    if not pred_tokens or not ref_tokens:
        return 0.0
    overlap = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    return _harmonic(overlap / len(pred_tokens), overlap / len(ref_tokens))


def _rouge(pred_text: str, truth: str, onto: CellOntology) -> float:
    said = _tokens(pred_text)
    return max(_rouge1(said, _tokens(name)) for name in _names(truth, onto))


def _text_metric(
    pred_text: str | None,
    truth: str | None,
    onto: CellOntology,
    metric: Callable[[str, str, CellOntology], float],
) -> float:
    truth_id = _resolve(truth, onto)
    if truth_id is None:
        return _NAN
    if _is_missing(pred_text):
        return 0.0
    return metric(str(pred_text), truth_id, onto)


def text_exact_match(
    pred_text: str | None, truth: str | None, *, ontology: CellOntology | None = None
) -> float:
    """Whether a predicted text names the true term (label or synonym).

    Parameters
    ----------
    pred_text
        The predicted cell type as free text.
    truth
        CL ID of the true cell type (obsolete IDs are resolved).
    ontology
        The ontology to use; the shared instance by default.

    Returns
    -------
    float
        1.0 on a match after normalisation (see the module documentation), 0.0
        otherwise or for a missing text, nan when ``truth`` is missing.
    """
    return _text_metric(pred_text, truth, _onto(ontology), _exact)


def rouge1_f1(
    pred_text: str | None, truth: str | None, *, ontology: CellOntology | None = None
) -> float:
    """ROUGE-1 F1 of a predicted text against the true term's best-matching name.

    Parameters
    ----------
    pred_text
        The predicted cell type as free text.
    truth
        CL ID of the true cell type (obsolete IDs are resolved).
    ontology
        The ontology to use; the shared instance by default.

    Returns
    -------
    float
        The maximum ROUGE-1 F1 over the label and synonyms, 0.0 for a missing text,
        nan when ``truth`` is missing.
    """
    return _text_metric(pred_text, truth, _onto(ontology), _rouge)
