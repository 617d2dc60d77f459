"""Bench output layer: leaderboard numbers computed by hand, Markdown, PNGs and HTML."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from llm4cell.bench._report import (
    LEADERBOARD_COLUMNS,
    leaderboard,
    leaderboard_markdown,
    plot_agreement,
    plot_puzzle_accuracy,
    plot_reliability,
    write_html_report,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAN = float("nan")
KNOW, RAND, ODD = "knowledge", "random", "<b>odd</b> & co"


def _row(annotator: str, dataset: str, kind: str, item_id: str, agreement: float,
         **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "annotator": annotator, "backend": "fake", "dataset": dataset, "kind": kind,
        "item_id": item_id, "prediction": f"pred {item_id}", "pred_id": "",
        "truth": f"truth {item_id}", "truth_id": "" if math.isnan(agreement) else "CL:0000236",
        "confidence": NAN, "weight": 1.0, "agreement": agreement,
        "full_match": NAN if math.isnan(agreement) else float(agreement == 1),
        "partial_match": NAN if math.isnan(agreement) else float(agreement > 0),
        "hierarchical_f1": agreement, "lca_similarity": agreement,
        "n": NAN, "cell_accuracy": NAN, "batch_correct": NAN, "format_ok": NAN, "unique": NAN,
        "requests": 0, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0,
        "cost_usd": NAN, "latency_s": 0.0,
    }
    row.update(extra)
    return row


def _markers() -> list[dict[str, object]]:
    """Markers dataset; the third item has no CL truth (unscored)."""
    cost = {"requests": 1, "cache_hits": 0, "prompt_tokens": 100, "completion_tokens": 20,
            "cost_usd": 0.001, "latency_s": 2.0}
    return [
        _row(KNOW, "pbmc-markers", "markers", "m1", 1.0, confidence=0.9, **cost),
        _row(KNOW, "pbmc-markers", "markers", "m2", 0.5, confidence=0.6, **cost),
        _row(KNOW, "pbmc-markers", "markers", "m3", NAN, confidence=0.5, **cost),
        _row(RAND, "pbmc-markers", "markers", "m1", 0.0),
        _row(RAND, "pbmc-markers", "markers", "m2", 1.0),
        _row(RAND, "pbmc-markers", "markers", "m3", NAN),
    ]


def _cells() -> list[dict[str, object]]:
    """Per-cell dataset with weights 30 and 10; the random rows come first."""
    return [
        _row(RAND, "lung-cells", "h5ad-cell", "c1", 0.0, weight=30.0),
        _row(RAND, "lung-cells", "h5ad-cell", "c2", 1.0, weight=10.0),
        _row(KNOW, "lung-cells", "h5ad-cell", "c1", 1.0, weight=30.0, confidence=0.8,
             requests=1, prompt_tokens=50, completion_tokens=10, latency_s=1.0),
        _row(KNOW, "lung-cells", "h5ad-cell", "c2", 0.0, weight=10.0, confidence=0.4,
             requests=1, cache_hits=1, prompt_tokens=50, completion_tokens=10, latency_s=1.0),
    ]


def _puzzles() -> list[dict[str, object]]:
    """Three puzzles (N = 8, 8, 9) per annotator."""
    rows = []
    know = [(8, 8 / 8, 1, 1, 1, 1.0), (8, 4 / 8, 0, 1, 1, 0.5), (9, 3 / 9, 0, 0, 1, 0.5)]
    rand = [(8, 1 / 8, 0, 1, 0, 0.125), (8, 0.0, 0, 1, 0, 0.0), (9, 1 / 9, 0, 1, 0, 1 / 9)]
    for annotator, spec in ((KNOW, know), (RAND, rand)):
        for i, (n, acc, batch, fmt, uniq, agree) in enumerate(spec):
            rows.append(_row(annotator, "puzzles", "puzzles", f"p{i}", agree, n=n,
                             cell_accuracy=acc, batch_correct=batch, format_ok=fmt,
                             unique=uniq))
    return rows


@pytest.fixture
def items() -> pd.DataFrame:
    return pd.DataFrame(_markers() + _cells() + _puzzles())


def _get(board: pd.DataFrame, annotator: str, dataset: str) -> pd.Series:
    hit = board[(board["annotator"] == annotator) & (board["dataset"] == dataset)]
    assert len(hit) == 1
    return hit.iloc[0]


# ------------------------------------------------------------------------ leaderboard


def test_columns_and_row_count(items):
    board = leaderboard(items)
    assert list(board.columns) == list(LEADERBOARD_COLUMNS)
    assert len(board) == 2 * 3 + 2


def test_weighted_means_respect_weight(items):
    board = leaderboard(items)
    assert _get(board, KNOW, "lung-cells")["agreement"] == pytest.approx(0.75)  # not 0.5
    assert _get(board, RAND, "lung-cells")["agreement"] == pytest.approx(0.25)
    assert _get(board, KNOW, "lung-cells")["full_match"] == pytest.approx(0.75)


def test_unscored_rows_not_counted(items):
    row = _get(leaderboard(items), KNOW, "pbmc-markers")
    assert row["n_items"] == 3
    assert row["n_scored"] == 2
    assert row["agreement"] == pytest.approx(0.75)
    assert row["hierarchical_f1"] == pytest.approx(0.75)


def test_ece_and_missing_confidence(items):
    board = leaderboard(items)
    # conf 0.9 vs 1 and 0.6 vs 0.5 (the unscored 0.5 is dropped): |gaps| 0.1 each.
    assert _get(board, KNOW, "pbmc-markers")["ece"] == pytest.approx(0.1)
    # lung: 0.8 vs 1 and 0.4 vs 0 -> (0.2 + 0.4) / 2.
    assert _get(board, KNOW, "lung-cells")["ece"] == pytest.approx(0.3)
    assert math.isnan(_get(board, RAND, "pbmc-markers")["ece"])
    assert math.isnan(_get(board, KNOW, "puzzles")["ece"])


def test_puzzle_aggregates(items):
    board = leaderboard(items)
    know = _get(board, KNOW, "puzzles")
    assert know["cell_accuracy"] == pytest.approx((8 + 4 + 3) / 25)  # pooled, not 0.611
    assert know["batch_accuracy"] == pytest.approx(1 / 3)
    assert know["format_compliance"] == pytest.approx(2 / 3)
    assert know["uniqueness"] == pytest.approx(1.0)
    assert know["agreement"] == pytest.approx(2 / 3)
    rand = _get(board, RAND, "puzzles")
    assert rand["cell_accuracy"] == pytest.approx(2 / 25)
    assert rand["batch_accuracy"] == 0.0
    markers = _get(board, KNOW, "pbmc-markers")
    for column in ("cell_accuracy", "batch_accuracy", "format_compliance", "uniqueness"):
        assert math.isnan(markers[column])


def test_costs(items):
    board = leaderboard(items)
    markers = _get(board, KNOW, "pbmc-markers")
    assert markers["requests"] == 3
    assert markers["tokens"] == 360
    assert markers["cost_usd"] == pytest.approx(0.003)
    assert markers["latency_s_per_item"] == pytest.approx(2.0)
    lung = _get(board, KNOW, "lung-cells")
    assert lung["cache_hits"] == 1
    assert math.isnan(lung["cost_usd"])  # every price unknown
    assert math.isnan(_get(board, RAND, "pbmc-markers")["cost_usd"])


def test_overall_is_macro_mean(items):
    board = leaderboard(items)
    know = _get(board, KNOW, "overall")
    assert know["kind"] == "all"
    assert know["agreement"] == pytest.approx((0.75 + 0.75 + 2 / 3) / 3)
    assert know["ece"] == pytest.approx((0.1 + 0.3) / 2)  # NaN puzzles ECE skipped
    assert know["cell_accuracy"] == pytest.approx(15 / 25)
    assert know["n_items"] == 3 + 2 + 3
    assert know["n_scored"] == 2 + 2 + 3
    assert know["tokens"] == 360 + 120
    assert know["requests"] == 5
    assert know["cost_usd"] == pytest.approx(0.003)
    assert know["latency_s_per_item"] == pytest.approx((6 + 2) / 8)
    rand = _get(board, RAND, "overall")
    assert rand["agreement"] == pytest.approx((0.5 + 0.25 + (0.125 + 1 / 9) / 3) / 3)
    assert math.isnan(rand["cost_usd"])


def test_sort_order(items):
    board = leaderboard(items)
    assert list(board["dataset"]) == [
        "pbmc-markers", "pbmc-markers", "lung-cells", "lung-cells", "puzzles", "puzzles",
        "overall", "overall",
    ]
    # lung: random rows come first in the items, knowledge has the higher agreement.
    assert list(board.loc[board["dataset"] == "lung-cells", "annotator"]) == [KNOW, RAND]
    assert list(board.loc[board["dataset"] == "overall", "annotator"]) == [KNOW, RAND]
    # markers: knowledge 0.75 > random 0.5 despite the item order being the same.
    flipped = items.copy()
    flipped.loc[flipped["annotator"] == RAND, "agreement"] = flipped.loc[
        flipped["annotator"] == RAND, "agreement"
    ].map(lambda a: a if math.isnan(a) else 1.0)
    board2 = leaderboard(flipped)
    assert list(board2.loc[board2["dataset"] == "pbmc-markers", "annotator"]) == [RAND, KNOW]
    assert list(board2.loc[board2["dataset"] == "overall", "annotator"]) == [RAND, KNOW]


def test_leaderboard_rejects_bad_input(items):
    with pytest.raises(ValueError, match="overall"):
        leaderboard(items.assign(dataset="overall"))
    with pytest.raises(ValueError, match="agreement"):
        leaderboard(items.drop(columns="agreement"))
    bad = items.copy()
    bad.loc[0, "weight"] = -1.0
    with pytest.raises(ValueError, match="weight"):
        leaderboard(bad)


# --------------------------------------------------------------------------- Markdown


def _table_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|")]


def test_markdown_one_line_per_row(items):
    board = leaderboard(items)
    text = leaderboard_markdown(board, title="Bench")
    lines = _table_lines(text)
    assert len(lines) == len(board) + 2
    assert text.startswith("## Bench\n")
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert "cell_accuracy" in header and "batch_accuracy" in header
    assert "cost_usd" in header and "ece" in header
    know = next(line for line in lines if "pbmc-markers" in line and KNOW in line)
    assert "| 0.750 |" in know
    assert "| 0.0030 |" in know  # cost to 4 decimals
    rand = next(line for line in lines if "pbmc-markers" in line and RAND in line)
    assert "–" in rand  # NaN ece/cost


def test_markdown_drops_puzzle_and_empty_cost_columns(items):
    no_puzzles = items[items["kind"] != "puzzles"].copy()
    no_puzzles["confidence"] = NAN
    no_puzzles[["requests", "cache_hits", "prompt_tokens", "completion_tokens"]] = 0
    no_puzzles["cost_usd"] = NAN
    no_puzzles["latency_s"] = 0.0
    board = leaderboard(no_puzzles)
    lines = _table_lines(leaderboard_markdown(board))
    assert len(lines) == len(board) + 2
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    for column in ("cell_accuracy", "batch_accuracy", "format_compliance", "uniqueness",
                   "ece", "requests", "cache_hits", "tokens", "cost_usd",
                   "latency_s_per_item"):
        assert column not in header
    assert header[:3] == ["annotator", "dataset", "kind"]
    assert all(line.count("|") == lines[0].count("|") for line in lines)


def test_markdown_escapes_pipes(items):
    board = leaderboard(items.assign(annotator=items["annotator"] + "|x"))
    lines = _table_lines(leaderboard_markdown(board))
    assert all(line.count("|") - line.count("\\|") == lines[0].count("|") for line in lines)


# ----------------------------------------------------------------------------- figures


def test_plots_write_png(items, tmp_path):
    paths = [
        plot_agreement(items, tmp_path / "agreement.png"),
        plot_reliability(items, tmp_path / "reliability.png"),
        plot_puzzle_accuracy(items, tmp_path / "puzzles.png"),
    ]
    for p in paths:
        assert p is not None
        assert p.read_bytes()[:8] == PNG_MAGIC
    assert sorted(f.name for f in tmp_path.iterdir()) == [
        "agreement.png", "puzzles.png", "reliability.png",
    ]  # no temporary files left behind


def test_plots_return_none_without_data(items, tmp_path):
    no_conf = items.assign(confidence=NAN)
    assert plot_reliability(no_conf, tmp_path / "reliability.png") is None
    no_puzzles = items[items["kind"] != "puzzles"]
    assert plot_puzzle_accuracy(no_puzzles, tmp_path / "puzzles.png") is None
    assert list(tmp_path.iterdir()) == []


def test_agreement_plot_handles_unscored_cells(items, tmp_path):
    only_unscored = items.copy()
    only_unscored.loc[only_unscored["dataset"] == "lung-cells", "agreement"] = np.nan
    path = plot_agreement(only_unscored, tmp_path / "a.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


# ------------------------------------------------------------------------------- HTML


def test_html_report_self_contained_and_escaped(items, tmp_path):
    items = items.copy()
    items.loc[items["annotator"] == RAND, "annotator"] = ODD
    board = leaderboard(items)
    figures = {
        "agreement": plot_agreement(items, tmp_path / "agreement.png"),
        "reliability": plot_reliability(items, tmp_path / "reliability.png"),
        "puzzles": plot_puzzle_accuracy(items, tmp_path / "puzzles.png"),
        "missing": None,
    }
    out = write_html_report(
        tmp_path / "report" / "bench.html", title="Bench <run>", board=board, items=items,
        config_text="annotators:\n  - <script>alert(1)</script>\n",
        figures=figures, provenance={"version": "0.0", "note": "<x>"},
    )
    assert out == tmp_path / "report" / "bench.html"
    assert [f.name for f in out.parent.iterdir()] == ["bench.html"]
    doc = out.read_text(encoding="utf-8")
    assert 'src="http' not in doc and "href=" not in doc and "<link" not in doc
    assert doc.count('src="data:image/png;base64,') == 3
    assert ODD not in doc
    assert "&lt;b&gt;odd&lt;/b&gt; &amp; co" in doc
    assert "<script>" not in doc and "&lt;script&gt;" in doc
    assert "Bench &lt;run&gt;" in doc
    assert "<details>" in doc and "&quot;version&quot;" in doc
    assert doc.count('<tr class="overall">') == 2
    # Disagreement table: lung item c1 scored 1 by one annotator and 0 by the other.
    assert "<h3>lung-cells</h3>" in doc and "pred c1 (1.000)" in doc and "pred c1 (0.000)" in doc


def test_html_report_missing_figure(items, tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        write_html_report(
            tmp_path / "r.html", title="t", board=leaderboard(items), items=items,
            config_text="", figures={"nope": tmp_path / "nope.png"}, provenance={},
        )
    assert not (tmp_path / "r.html").exists()
