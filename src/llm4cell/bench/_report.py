"""Output layer of ``llm4cell bench``: leaderboard, Markdown, figures and an HTML report.

Everything here reads a table of *item rows*, one row per scored item per annotator
per dataset (columns ``annotator``, ``dataset``, ``kind``, ``item_id``, ``prediction``,
``pred_id``, ``truth``, ``truth_id``, ``confidence``, ``weight``, the ontology metrics of
:func:`llm4cell.metrics.score_pairs`, the puzzle columns ``n``, ``cell_accuracy``,
``batch_correct``, ``format_ok``, ``unique`` and the cost columns ``requests``,
``cache_hits``, ``prompt_tokens``, ``completion_tokens``, ``cost_usd``, ``latency_s``).
Figures are drawn on :class:`matplotlib.figure.Figure` objects, so pyplot's global state
and backend are never touched. Every file is written atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_path, write_text
from ..metrics._calibration import expected_calibration_error, reliability_bins
from ..report._html import PNG_DPI, escape, figure, page

__all__ = [
    "LEADERBOARD_COLUMNS",
    "leaderboard",
    "leaderboard_markdown",
    "plot_agreement",
    "plot_puzzle_accuracy",
    "plot_reliability",
    "render_html_report",
    "write_html_report",
]

_NAN = float("nan")
_REQUIRED = ("annotator", "dataset", "kind", "agreement")
# Optional item columns and the value they take when absent.
_DEFAULTS: dict[str, object] = {
    "backend": "",
    "item_id": "",
    "prediction": "",
    "pred_id": "",
    "truth": "",
    "truth_id": "",
    "confidence": _NAN,
    "weight": 1.0,
    "full_match": _NAN,
    "partial_match": _NAN,
    "hierarchical_f1": _NAN,
    "lca_similarity": _NAN,
    "n": _NAN,
    "cell_accuracy": _NAN,
    "batch_correct": _NAN,
    "format_ok": _NAN,
    "unique": _NAN,
    "requests": 0,
    "cache_hits": 0,
    "prompt_tokens": 0,
    "completion_tokens": 0,
    "cost_usd": _NAN,
    "latency_s": _NAN,
}

_ONTOLOGY_METRICS = ("agreement", "full_match", "hierarchical_f1", "lca_similarity")
_PUZZLE_METRICS = ("cell_accuracy", "batch_accuracy", "format_compliance", "uniqueness")
#: Leaderboard columns averaged over datasets (macro mean) in the ``overall`` rows.
_MACRO_COLUMNS = (*_ONTOLOGY_METRICS, "ece", *_PUZZLE_METRICS)
_COUNT_COLUMNS = ("n_items", "n_scored", "requests", "cache_hits", "tokens")
_COST_COLUMNS = ("ece", "requests", "cache_hits", "tokens", "cost_usd", "latency_s_per_item")

#: Columns of :func:`leaderboard`, in order.
LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "annotator",
    "dataset",
    "kind",
    "n_items",
    "n_scored",
    *_ONTOLOGY_METRICS,
    "ece",
    *_PUZZLE_METRICS,
    "requests",
    "cache_hits",
    "tokens",
    "cost_usd",
    "latency_s_per_item",
)


# ------------------------------------------------------------------------ leaderboard


def _prepare(items: pd.DataFrame) -> pd.DataFrame:
    """Check the item table and fill absent optional columns with their defaults."""
    missing = [c for c in _REQUIRED if c not in items.columns]
    if missing:
        msg = (
            f"the item table has no column(s) {missing}; it needs at least "
            f"{list(_REQUIRED)} (one row per item per annotator per dataset)"
        )
        raise ValueError(msg)
    frame = items.copy()
    for column, default in _DEFAULTS.items():
        if column not in frame.columns:
            frame[column] = default
    weights = frame["weight"].to_numpy(dtype=float)
    if not np.isfinite(weights).all() or (weights < 0).any():
        msg = "the item column 'weight' must be finite and non-negative (cells per item)"
        raise ValueError(msg)
    if (frame["dataset"].astype(str) == "overall").any():
        msg = "a dataset is called 'overall', which names the per-annotator total; rename it"
        raise ValueError(msg)
    return frame


def _weighted_mean(values: pd.Series, weights: pd.Series) -> float:
    v = values.to_numpy(dtype=float)
    w = weights.to_numpy(dtype=float)
    ok = ~np.isnan(v)
    total = w[ok].sum()
    return float((v[ok] * w[ok]).sum() / total) if total > 0 else _NAN


def _nanmean(values: pd.Series) -> float:
    v = values.to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else _NAN


def _nansum(values: pd.Series) -> float:
    """Sum of the known values; NaN when none is known."""
    v = values.to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    return float(v.sum()) if v.size else _NAN


def _int_sum(values: pd.Series) -> int:
    return int(np.nansum(values.to_numpy(dtype=float)))


def _first(values: pd.Series) -> str:
    return str(values.iloc[0]) if len(values) else ""


def _group_row(group: pd.DataFrame) -> dict[str, Any]:
    """Leaderboard numbers of one (annotator, dataset) group."""
    scored = group[group["agreement"].notna()]
    row: dict[str, Any] = {
        "kind": _first(group["kind"]),
        "n_items": len(group),
        "n_scored": len(scored),
    }
    for column in _ONTOLOGY_METRICS:
        row[column] = _weighted_mean(scored[column], scored["weight"])
    row["ece"] = expected_calibration_error(scored["confidence"], scored["agreement"])
    n = group["n"].to_numpy(dtype=float)
    acc = group["cell_accuracy"].to_numpy(dtype=float)
    ok = ~(np.isnan(n) | np.isnan(acc))
    row["cell_accuracy"] = float((acc[ok] * n[ok]).sum() / n[ok].sum()) if n[ok].sum() else _NAN
    row["batch_accuracy"] = _nanmean(group["batch_correct"])
    row["format_compliance"] = _nanmean(group["format_ok"])
    row["uniqueness"] = _nanmean(group["unique"])
    row["requests"] = _int_sum(group["requests"])
    row["cache_hits"] = _int_sum(group["cache_hits"])
    row["tokens"] = _int_sum(group["prompt_tokens"]) + _int_sum(group["completion_tokens"])
    row["cost_usd"] = _nansum(group["cost_usd"])
    row["latency_s_per_item"] = _nanmean(group["latency_s"])
    row["_latency_total"] = _nansum(group["latency_s"])
    row["_latency_known"] = int(group["latency_s"].notna().sum())
    return row


def _overall_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Macro means of the metrics and sums of the counts over one annotator's datasets."""
    frame = pd.DataFrame(rows)
    row: dict[str, Any] = {"dataset": "overall", "kind": "all"}
    for column in _MACRO_COLUMNS:
        row[column] = _nanmean(frame[column])
    for column in _COUNT_COLUMNS:
        row[column] = int(frame[column].sum())
    row["cost_usd"] = _nansum(frame["cost_usd"])
    known = int(frame["_latency_known"].sum())
    row["latency_s_per_item"] = float(frame["_latency_total"].sum()) / known if known else _NAN
    return row


def _agreement_key(row: Mapping[str, Any]) -> tuple[bool, float]:
    value = float(row["agreement"])
    return (math.isnan(value), 0.0 if math.isnan(value) else -value)


def leaderboard(items: pd.DataFrame) -> pd.DataFrame:
    """One row per (annotator, dataset) and one ``overall`` row per annotator.

    Parameters
    ----------
    items
        The item rows of a bench run (see the module docstring). Only ``annotator``,
        ``dataset``, ``kind`` and ``agreement`` are required; other absent columns count
        as unknown (NaN), zero (token and request counts) or 1 (``weight``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LEADERBOARD_COLUMNS`: ``n_items`` (rows), ``n_scored`` (rows
        with a known agreement); ``agreement``, ``full_match``, ``hierarchical_f1`` and
        ``lca_similarity`` as ``weight``-weighted means over scored rows; ``ece`` of
        confidence against agreement (NaN without confidences); for puzzles
        ``cell_accuracy`` (positions pooled over puzzles, i.e. weighted by ``n``),
        ``batch_accuracy``, ``format_compliance`` and ``uniqueness`` (means over
        puzzles; NaN for other kinds); ``requests``, ``cache_hits``, ``tokens``
        (prompt + completion) and ``cost_usd`` (sum of known costs, NaN if none is
        known) as sums; ``latency_s_per_item`` as a mean. An ``overall`` row (kind
        ``"all"``) holds the unweighted mean over the annotator's datasets of every
        metric (NaN skipped), the sums of the counts and costs and the mean latency
        over all items. Datasets keep their order of first appearance, annotators
        within a dataset go by agreement (descending, NaN last), and the ``overall``
        rows come last, also by agreement.

    Raises
    ------
    ValueError
        If a required column is missing, a weight is negative or not finite, a
        dataset is called ``"overall"``, or a confidence or agreement lies outside
        [0, 1].
    """
    frame = _prepare(items)
    datasets = list(pd.unique(frame["dataset"]))
    order = {d: i for i, d in enumerate(datasets)}
    rows: list[dict[str, Any]] = []
    by_annotator: dict[str, list[dict[str, Any]]] = {}
    for (annotator, dataset), group in frame.groupby(
        ["annotator", "dataset"], sort=False, dropna=False
    ):
        row = {"annotator": annotator, "dataset": dataset, **_group_row(group)}
        rows.append(row)
        by_annotator.setdefault(annotator, []).append(row)
    rows.sort(key=lambda r: (order[r["dataset"]], *_agreement_key(r)))
    overall = [{"annotator": a, **_overall_row(r)} for a, r in by_annotator.items()]
    overall.sort(key=_agreement_key)
    board = pd.DataFrame(rows + overall, columns=list(LEADERBOARD_COLUMNS))
    for column in _COUNT_COLUMNS:
        board[column] = board[column].astype(int)
    float_columns = [c for c in LEADERBOARD_COLUMNS if c not in _COUNT_COLUMNS][3:]
    board[float_columns] = board[float_columns].astype(float)
    return board.reset_index(drop=True)


# --------------------------------------------------------------------------- Markdown


def _format(column: str, value: Any) -> str:
    """One leaderboard cell as text: counts as integers, cost to 4 decimals, NaN as '–'."""
    if value is None or (isinstance(value, (float, np.floating)) and math.isnan(value)):
        return "–"
    if column in _COUNT_COLUMNS:
        return str(int(value))
    if column == "cost_usd":
        return f"{float(value):.4f}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def _shown_columns(board: pd.DataFrame) -> list[str]:
    """Board columns worth showing: no puzzle columns without puzzles, no empty costs."""
    columns = list(board.columns)
    has_puzzles = "kind" in board.columns and (board["kind"] == "puzzles").any()
    if not has_puzzles:
        columns = [c for c in columns if c not in _PUZZLE_METRICS]
    for column in _COST_COLUMNS:
        if column in columns:
            values = pd.to_numeric(board[column], errors="coerce").to_numpy(dtype=float)
            if np.all(np.isnan(values) | (values == 0)):
                columns.remove(column)
    return columns


def _is_numeric(board: pd.DataFrame, column: str) -> bool:
    return bool(pd.api.types.is_numeric_dtype(board[column]))


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def leaderboard_markdown(board: pd.DataFrame, *, title: str | None = None) -> str:
    """The leaderboard as a GitHub Markdown table.

    Parameters
    ----------
    board
        A :func:`leaderboard` table.
    title
        Optional heading, written as ``## title`` above the table.

    Returns
    -------
    str
        A header line, an alignment line and one line per board row (numbers right
        aligned, floats to 3 decimals, ``cost_usd`` to 4, NaN as "–"), ending with a
        newline. Puzzle columns are left out when no dataset is of kind ``puzzles``;
        ``ece`` and the cost columns when every value is NaN or zero.
    """
    columns = _shown_columns(board)
    lines: list[str] = []
    if title:
        lines += [f"## {_md_cell(title)}", ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in columns) + " |")
    lines.append(
        "|" + "|".join("---:" if _is_numeric(board, c) else "---" for c in columns) + "|"
    )
    for record in board[columns].to_dict("records"):
        cells = (_md_cell(_format(c, record[c])) for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- figures


def _new_figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _save_png(fig: Any, path: str | os.PathLike[str]) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=PNG_DPI)
    return Path(path)


def _text(label: object, limit: int = 40) -> str:
    """A label safe from matplotlib's mathtext (``$`` would start a formula), cut to
    ``limit`` characters (a long name would squeeze the axes to nothing)."""
    text = str(label)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def plot_agreement(items: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Heatmap of mean agreement, annotators (rows) by datasets (columns).

    Parameters
    ----------
    items
        The item rows of a bench run.
    path
        Where to write the PNG.

    Returns
    -------
    pathlib.Path
        ``path``. Cells hold the :func:`leaderboard` agreement (weighted mean over
        scored items; "–" when nothing was scored); with several datasets a last
        ``overall`` column holds the macro mean. Annotators go by overall agreement.
    """
    import matplotlib

    board = leaderboard(items)
    datasets = [d for d in pd.unique(board["dataset"]) if d != "overall"]
    columns = [*datasets, "overall"] if len(datasets) > 1 else datasets
    annotators = list(board.loc[board["dataset"] == "overall", "annotator"])
    grid = (
        board.set_index(["annotator", "dataset"])["agreement"]
        .unstack("dataset")
        .reindex(index=annotators, columns=columns)
    )
    values = grid.to_numpy(dtype=float)
    longest = max((len(_text(a)) for a in annotators), default=0)
    fig = _new_figure(1.6 + 1.15 * len(columns) + 0.075 * longest,
                      1.2 + 0.5 * len(annotators))
    ax = fig.add_subplot(111)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e6e6e6")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            ax.text(
                j, i, "–" if math.isnan(v) else f"{v:.2f}", ha="center", va="center",
                fontsize=9, color="black" if math.isnan(v) or v > 0.6 else "white",
            )
    ax.set_xticks(range(len(columns)), [_text(c) for c in columns], rotation=30, ha="right")
    ax.set_yticks(range(len(annotators)), [_text(a) for a in annotators])
    ax.set_title("Mean ontology agreement")
    fig.colorbar(image, ax=ax, label="agreement", shrink=0.85)
    return _save_png(fig, path)


def plot_reliability(items: pd.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """Reliability diagram of stated confidence against agreement, one line per annotator.

    Parameters
    ----------
    items
        The item rows of a bench run. Each scored item with a confidence counts once,
        pooled over datasets.
    path
        Where to write the PNG.

    Returns
    -------
    pathlib.Path or None
        ``path``, or None (and nothing written) when no annotator states confidences.
        Points are the filled bins of :func:`llm4cell.metrics.reliability_bins`; the
        legend gives each annotator's pooled ECE.
    """
    frame = _prepare(items)
    scored = frame[frame["agreement"].notna() & frame["confidence"].notna()]
    if scored.empty:
        return None
    fig = _new_figure(6.0, 5.2)
    ax = fig.add_subplot(111)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect calibration")
    for annotator, group in scored.groupby("annotator", sort=False):
        bins = reliability_bins(group["confidence"], group["agreement"])
        filled = bins[bins["n"] > 0]
        ece = expected_calibration_error(group["confidence"], group["agreement"])
        ax.plot(
            filled["mean_confidence"], filled["mean_agreement"], marker="o",
            label=f"{_text(annotator)} (ECE {ece:.3f}, {len(group)} items)",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("stated confidence (bin mean)")
    ax.set_ylabel("ontology agreement (bin mean)")
    ax.set_title("Reliability (10 equal-width bins, pooled over datasets)")
    ax.legend(loc="upper left", fontsize=8)
    return _save_png(fig, path)


def plot_puzzle_accuracy(items: pd.DataFrame, path: str | os.PathLike[str]) -> Path | None:
    """Puzzle cell-level and batch-level accuracy by puzzle size N, one line per annotator.

    Parameters
    ----------
    items
        The item rows of a bench run; rows of kind ``puzzles`` are used, pooled over
        puzzle datasets.
    path
        Where to write the PNG.

    Returns
    -------
    pathlib.Path or None
        ``path``, or None (and nothing written) without puzzle items. The left panel
        shows cell-level accuracy (positions right, pooled over the puzzles of each N),
        the right one batch-level accuracy (share of puzzles fully right).
    """
    frame = _prepare(items)
    puzzles = frame[(frame["kind"] == "puzzles") & frame["n"].notna()]
    if puzzles.empty:
        return None
    fig = _new_figure(10.0, 4.2)
    ax_cell, ax_batch = fig.subplots(1, 2, sharey=True)
    for annotator, group in puzzles.groupby("annotator", sort=False):
        per_n = group.groupby("n").agg(
            cell=("cell_accuracy", "mean"), batch=("batch_correct", "mean")
        ).sort_index()
        ax_cell.plot(per_n.index, per_n["cell"], marker="o", label=_text(annotator))
        ax_batch.plot(per_n.index, per_n["batch"], marker="o", label=_text(annotator))
    sizes = sorted(int(n) for n in pd.unique(puzzles["n"]))
    for ax, name in ((ax_cell, "cell-level accuracy"), (ax_batch, "batch-level accuracy")):
        ax.set_xticks(sizes)
        ax.set_xlabel("puzzle size N")
        ax.set_title(name)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    ax_cell.set_ylabel("accuracy")
    ax_batch.legend(fontsize=8)
    return _save_png(fig, path)


# ------------------------------------------------------------------------------- HTML

_HOW_TO_READ = """
<p><b>How to read this report.</b> Each annotator labels every item of every dataset
(a marker list, a cluster, a cell or a puzzle). A label is scored against the truth on
the Cell Ontology: <i>agreement</i> is 1 when both name the same CL term, 0.5 when one
is an ancestor or descendant of the other and 0 otherwise; items whose truth has no CL
ID are not scored (<i>n_scored</i> counts the rest). <i>full_match</i>,
<i>hierarchical_f1</i> and <i>lca_similarity</i> are stricter and softer variants. For
per-cell datasets every item is weighted by its number of cells. <i>ece</i> is the
expected calibration error of the stated confidence against agreement (lower is
better; blank when the annotator states none). <i>random</i> and <i>most-frequent</i>
are baselines: an annotator should beat both. For puzzles (give N cells of one donor,
each described by its top expressed genes, N distinct candidate types)
<i>cell_accuracy</i> is the share of positions right, pooled over
puzzles, <i>batch_accuracy</i> the share of puzzles fully right,
<i>format_compliance</i> the share of answers in the requested format and
<i>uniqueness</i> the share using every label once. The <i>overall</i> rows average the
metrics over datasets (each dataset counts once) and sum the counts, tokens and costs
(the cost of unknown prices is left out).</p>
"""

_EXTRA_CSS = """
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tr.overall td{font-weight:600;background:#eef4fb}
details{margin-top:1em} summary{cursor:pointer;color:#444}
"""


def _board_html(board: pd.DataFrame) -> str:
    columns = _shown_columns(board)
    numeric = {c: _is_numeric(board, c) for c in columns}
    head = "".join(
        f'<th{" class=num" if numeric[c] else ""}>{escape(c)}</th>' for c in columns
    )
    body = []
    for record in board[columns].to_dict("records"):
        cls = ' class="overall"' if record.get("dataset") == "overall" else ""
        cells = "".join(
            f'<td{" class=num" if numeric[c] else ""}>{escape(_format(c, record[c]))}</td>'
            for c in columns
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _shorten(text: object, limit: int = 80) -> str:
    s = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _disagreement_html(items: pd.DataFrame, n_top: int = 10) -> str:
    """Per dataset, the items on which the annotators' answers differ most."""
    frame = _prepare(items)
    if frame.empty or frame["annotator"].nunique() < 2:
        return "<p>Needs at least two annotators.</p>"
    frame = frame.assign(item_id=frame["item_id"].astype(str))
    annotators = list(pd.unique(frame["annotator"]))
    parts: list[str] = []
    for dataset, group in frame.groupby("dataset", sort=False):
        answer = group["pred_id"].astype(str).where(
            group["pred_id"].astype(str) != "", group["prediction"].astype(str).str.lower()
        )
        stats = group.assign(_answer=answer).groupby("item_id", sort=False).agg(
            spread=("agreement", lambda s: float(s.max() - s.min()) if s.notna().any() else 0.0),
            distinct=("_answer", "nunique"),
            truth=("truth", "first"),
        )
        stats = stats[(stats["spread"] > 0) | (stats["distinct"] > 1)]
        parts.append(f"<h3>{escape(dataset)}</h3>")
        if stats.empty:
            parts.append("<p>The annotators give the same answer on every item.</p>")
            continue
        top = stats.sort_values(["spread", "distinct"], ascending=False, kind="stable")
        top = top.head(n_top)
        cells = group.set_index(["item_id", "annotator"])
        cells = cells[~cells.index.duplicated()]
        head = "<th>item</th><th>truth</th>" + "".join(f"<th>{escape(a)}</th>" for a in annotators)
        rows = []
        for item_id, stat in top.iterrows():
            tds = [
                f"<td>{escape(_shorten(item_id))}</td>",
                f"<td>{escape(_shorten(stat['truth']))}</td>",
            ]
            for a in annotators:
                if (item_id, a) not in cells.index:
                    tds.append("<td>–</td>")
                    continue
                r = cells.loc[(item_id, a)]
                score = _format("agreement", float(r["agreement"]))
                tds.append(f"<td>{escape(_shorten(r['prediction']))} ({escape(score)})</td>")
            rows.append(f"<tr>{''.join(tds)}</tr>")
        parts.append(f"<table><tr>{head}</tr>{''.join(rows)}</table>")
    return "\n".join(parts)


def _figure_html(caption: str, path: Path) -> str:
    p = Path(path)
    if not p.is_file():
        msg = f"figure {caption!r}: no such file {str(p)!r}; draw it before writing the report"
        raise FileNotFoundError(msg)
    return figure(p.read_bytes(), caption, caption=caption)


def write_html_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    board: pd.DataFrame,
    items: pd.DataFrame,
    config_text: str,
    figures: Mapping[str, Path | None],
    provenance: Mapping[str, Any],
) -> Path:
    """Write a self-contained HTML report of a bench run (atomically).

    Parameters
    ----------
    path
        Where to write the ``.html`` file.
    title, board, items, config_text, figures, provenance
        As for :func:`render_html_report`.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return write_text(render_html_report(
        title=title, board=board, items=items, config_text=config_text, figures=figures,
        provenance=provenance), path)


def render_html_report(
    *,
    title: str,
    board: pd.DataFrame,
    items: pd.DataFrame,
    config_text: str,
    figures: Mapping[str, Path | None],
    provenance: Mapping[str, Any],
) -> str:
    """The self-contained HTML report of a bench run, as text.

    Parameters
    ----------
    title
        Page title and heading.
    board
        The :func:`leaderboard` table.
    items
        The item rows (for the per-dataset tables of the items annotators disagree on).
    config_text
        The bench configuration as given, shown verbatim.
    figures
        Caption to PNG path; entries whose path is None are skipped. The images are
        embedded as base64, so the file needs nothing else to display.
    provenance
        Versions, dates, backends...; shown as JSON in a collapsed section.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    FileNotFoundError
        If a figure file does not exist.
    """
    figure_html = "\n".join(_figure_html(c, p) for c, p in figures.items() if p is not None)
    n_annotators = board.loc[board["dataset"] == "overall", "annotator"].nunique()
    n_datasets = board.loc[board["dataset"] != "overall", "dataset"].nunique()
    body = f"""<h1>{escape(title)}</h1>
<p class="meta">{n_annotators} annotators on {n_datasets} datasets, {len(items)} item rows.</p>
{_HOW_TO_READ}
<h2>Leaderboard</h2>
{_board_html(board)}
<h2>Figures</h2>
{figure_html or "<p>No figures.</p>"}
<h2>Items the annotators disagree on</h2>
<p class="meta">Per dataset, up to 10 items with the widest spread of agreement
between annotators; each cell is the prediction and its agreement.</p>
{_disagreement_html(items)}
<h2>Configuration</h2>
<pre>{escape(config_text)}</pre>
<details><summary>Provenance</summary>
<pre>{escape(json.dumps(dict(provenance), indent=2, default=str))}</pre>
</details>
"""
    return page(title, body, css=_EXTRA_CSS)
