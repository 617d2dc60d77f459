"""Calibration: reliability bins and expected calibration error.

Rows where the confidence or the agreement is NaN are ignored; confidence and agreement
must lie in [0, 1] (agreement may be fractional, e.g. 0.5).

:func:`reliability_bins`
    ``n_bins`` equal-width bins on [0, 1]: bin ``b`` holds ``b/n <= c < (b+1)/n``, the
    last bin also holds ``c = 1``. Per bin: ``n``, ``mean_confidence``,
    ``mean_agreement`` and ``gap = mean_confidence - mean_agreement`` (positive:
    over-confident; NaN for an empty bin).
:func:`expected_calibration_error`
    ``ECE = sum_b n_b / N * |gap_b|`` over non-empty bins (nan when ``N = 0``).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ._base import _NAN

__all__ = ["expected_calibration_error", "reliability_bins"]


def _calibration_arrays(
    confidence: Iterable[float], agreement: Iterable[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Validated float arrays with the NaN rows dropped."""
    conf = np.asarray(list(confidence), dtype=float)
    agree = np.asarray(list(agreement), dtype=float)
    if conf.shape != agree.shape:
        msg = f"{conf.size} confidences for {agree.size} agreements"
        raise ValueError(msg)
    keep = ~(np.isnan(conf) | np.isnan(agree))
    conf, agree = conf[keep], agree[keep]
    for name, values in (("confidence", conf), ("agreement", agree)):
        if ((values < 0) | (values > 1)).any():
            msg = f"every {name} must lie in [0, 1]"
            raise ValueError(msg)
    return conf, agree


def reliability_bins(
    confidence: Iterable[float], agreement: Iterable[float], n_bins: int = 10
) -> pd.DataFrame:
    """Reliability diagram data: confidence against agreement in equal-width bins.

    Parameters
    ----------
    confidence
        Stated confidence of each answer, in [0, 1] (NaN rows are ignored).
    agreement
        Score of each answer, in [0, 1]; may be fractional (0.5 = partial match).
    n_bins
        Number of equal-width bins on [0, 1].

    Returns
    -------
    pandas.DataFrame
        One row per bin (empty bins included) with ``bin_lower``, ``bin_upper``,
        ``n``, ``mean_confidence``, ``mean_agreement`` and ``gap``.

    Raises
    ------
    ValueError
        On a length mismatch, a value outside [0, 1] or ``n_bins < 1``.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        msg = f"n_bins must be a positive integer, got {n_bins!r}"
        raise ValueError(msg)
    conf, agree = _calibration_arrays(confidence, agreement)
    # Round before flooring so that confidences on a bin edge (0.3 * 10 = 2.9999...)
    # land in the bin they start.
    index = np.minimum(np.floor(np.round(conf * n_bins, 9)).astype(int), n_bins - 1)
    n = np.bincount(index, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=n_bins) / n
        mean_agree = np.bincount(index, weights=agree, minlength=n_bins) / n
    edges = np.arange(n_bins + 1) / n_bins
    return pd.DataFrame(
        {
            "bin_lower": edges[:-1],
            "bin_upper": edges[1:],
            "n": n,
            "mean_confidence": mean_conf,
            "mean_agreement": mean_agree,
            "gap": mean_conf - mean_agree,
        }
    )


def expected_calibration_error(
    confidence: Iterable[float], agreement: Iterable[float], n_bins: int = 10
) -> float:
    """Expected calibration error over equal-width confidence bins.

    Parameters
    ----------
    confidence
        Stated confidence of each answer, in [0, 1] (NaN rows are ignored).
    agreement
        Score of each answer, in [0, 1]; may be fractional.
    n_bins
        Number of equal-width bins on [0, 1].

    Returns
    -------
    float
        ``sum_b n_b / N * |mean_confidence_b - mean_agreement_b|``; nan without rows.

    Raises
    ------
    ValueError
        On a length mismatch, a value outside [0, 1] or ``n_bins < 1``.
    """
    bins = reliability_bins(confidence, agreement, n_bins)
    total = int(bins["n"].sum())
    if total == 0:
        return _NAN
    filled = bins[bins["n"] > 0]
    return float((filled["n"] / total * filled["gap"].abs()).sum())
