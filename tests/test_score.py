"""``llm4cell.score`` and ``llm4cell score``: predictions against the truth on real files
and the real Cell Ontology (hand-checked facts, no mocks)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import subprocess
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import llm4cell
from llm4cell import InputError
from llm4cell.cli import app
from llm4cell.metrics import ScoreResult, score
from llm4cell.ontology import load_ontology

CLI_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}

T_CELL, B_CELL, MONOCYTE = "CL:0000084", "CL:0000236", "CL:0000576"
TREG, HEP_STELLATE, HEMATO_STEM = "CL:0000815", "CL:0000632", "CL:0000037"
CD4_AB_T, CLASSICAL_MONO, NK_CELL = "CL:0000624", "CL:0000860", "CL:0000623"
#: An obsolete term ("obsolete bone matrix secreting cell") replaced by osteoblast.
DEPRECATED, OSTEOBLAST = "CL:0000054", "CL:0000062"

# Text predictions (with the row tissue) and the true CL IDs, joined on `id`.
PRED_TEXT = """id,prediction,tissue
cd4,"CD4-positive, alpha-beta T cell",blood
b_vs_t,B cell,blood
cmono,classical monocyte,blood
syn,B lymphocyte,blood
treg,Tregs,blood
hsc,HSC,liver
dep,osteoblast,bone
"""
TRUTH_IDS = f"""id,truth
cd4,{T_CELL}
b_vs_t,{T_CELL}
cmono,{MONOCYTE}
syn,{B_CELL}
treg,{TREG}
hsc,{HEP_STELLATE}
dep,{DEPRECATED}
"""
#: id -> (pred CL ID, pred method, agreement) with the tissue column given.
EXPECTED = {
    "cd4": (CD4_AB_T, "exact", 0.5),
    "b_vs_t": (B_CELL, "exact", 0.0),
    "cmono": (CLASSICAL_MONO, "exact", 0.5),
    "syn": (B_CELL, "synonym", 1.0),
    "treg": (TREG, "abbreviation", 1.0),
    "hsc": (HEP_STELLATE, "abbreviation", 1.0),
    "dep": (OSTEOBLAST, "exact", 1.0),
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _by_id(result: ScoreResult, id_col: str = "id") -> pd.DataFrame:
    return result.rows.set_index(id_col)


@pytest.fixture
def tables(tmp_path: Path) -> tuple[Path, Path]:
    return _write(tmp_path / "pred.csv", PRED_TEXT), _write(tmp_path / "truth.csv", TRUTH_IDS)


# ------------------------------------------------------------------------- two tables


def test_text_predictions_against_ids_hand_checked(tables: tuple[Path, Path]) -> None:
    pred, truth = tables
    res = score(pred, truth, tissue_col="tissue")
    rows = _by_id(res)
    assert sorted(rows.index) == sorted(EXPECTED)
    for rid, (pred_id, method, agreement) in EXPECTED.items():
        row = rows.loc[rid]
        assert row["pred_id"] == pred_id, rid
        assert row["pred_method"] == method, rid
        assert row["agreement"] == agreement, rid
        assert row["full_match"] == float(agreement == 1.0), rid
        assert row["partial_match"] == float(agreement == 0.5), rid
        assert row["truth_method"] == "id", rid
    # The text is kept beside its mapping.
    assert rows.loc["cd4", "pred_text"] == "CD4-positive, alpha-beta T cell"
    assert rows.loc["cd4", "truth_label"] == "T cell"
    assert rows.loc["syn", "pred_label"] == "B cell"
    assert rows.loc["syn", "pred_match_score"] == pytest.approx(0.98)
    assert rows.loc["treg", "pred_label"] == "regulatory T cell"
    assert rows.loc["hsc", "pred_label"] == "hepatic stellate cell"
    assert not rows.loc["hsc", "pred_ambiguous"]
    # Identical terms: every ontology metric is 1.
    for rid in ("syn", "treg", "hsc", "dep"):
        for col in ("hierarchical_precision", "hierarchical_recall", "hierarchical_f1",
                    "lca_similarity"):
            assert rows.loc[rid, col] == 1.0, (rid, col)
    # Too specific a prediction: A(truth) is inside A(pred), so recall 1, precision < 1.
    for rid in ("cd4", "cmono"):
        assert rows.loc[rid, "hierarchical_recall"] == 1.0
        assert 0 < rows.loc[rid, "hierarchical_precision"] < 1
        assert 0 < rows.loc[rid, "lca_similarity"] < 1
    # B cell vs T cell: related (lymphocytes) but neither is the other.
    assert 0 < rows.loc["b_vs_t", "lca_similarity"] < 1
    assert rows.loc["b_vs_t", "hierarchical_f1"] < 1
    # Text metrics: "B lymphocyte" is a synonym of B cell; "B cell" does not name T cell.
    assert rows.loc["syn", "exact_match"] == 1.0
    assert rows.loc["b_vs_t", "exact_match"] == 0.0
    assert res.summary.loc["overall", "agreement"] == pytest.approx(5 / 7)
    assert res.summary.loc["overall", "n"] == 7


def test_hsc_needs_the_tissue_column(tables: tuple[Path, Path]) -> None:
    pred, truth = tables
    without = _by_id(score(pred, truth)).loc["hsc"]
    assert without["pred_id"] == HEMATO_STEM
    assert bool(without["pred_ambiguous"]) is True
    assert without["agreement"] == 0.0
    with_tissue = _by_id(score(pred, truth, tissue_col="tissue")).loc["hsc"]
    assert with_tissue["pred_id"] == HEP_STELLATE
    assert bool(with_tissue["pred_ambiguous"]) is False
    assert with_tissue["agreement"] == 1.0


def test_deprecated_truth_id_scores_against_its_replacement(
    tables: tuple[Path, Path],
) -> None:
    onto = load_ontology()
    assert onto.is_deprecated(DEPRECATED)
    assert onto.resolve(DEPRECATED) == OSTEOBLAST
    pred, truth = tables
    row = _by_id(score(pred, truth)).loc["dep"]
    assert row["truth_text"] == DEPRECATED
    assert row["truth_id"] == OSTEOBLAST
    assert row["truth_label"] == "osteoblast"
    assert row["agreement"] == 1.0
    assert row["lca_similarity"] == 1.0


def test_id_predictions_against_text_truth(tmp_path: Path) -> None:
    pred = _write(tmp_path / "p.csv", f"cluster,ontology_id\n0,{T_CELL}\n1,{B_CELL}\n"
                                      f"2,{HEP_STELLATE}\n")
    truth = _write(tmp_path / "t.csv", 'cluster,cell_type\n0,"CD4-positive, alpha-beta T cell"\n'
                                       "1,B lymphocyte\n2,hepatic stellate cell\n")
    rows = _by_id(score(pred, truth), "cluster")
    assert list(rows["truth_id"]) == [CD4_AB_T, B_CELL, HEP_STELLATE]
    assert list(rows["truth_method"]) == ["exact", "synonym", "exact"]
    assert list(rows["pred_method"]) == ["id", "id", "id"]
    assert list(rows["agreement"]) == [0.5, 1.0, 1.0]
    # An ID prediction's text is the term's name, so the text metrics can score it.
    assert list(rows["pred_text"]) == [T_CELL, B_CELL, HEP_STELLATE]
    assert rows.loc["1", "exact_match"] == 1.0
    assert rows.loc["2", "exact_match"] == 1.0


def test_single_table_tsv(tmp_path: Path) -> None:
    # A comma inside a value: the file only parses as TSV.
    path = _write(tmp_path / "both.tsv",
                  "id\tprediction\ttruth\n"
                  f"x\tCD4-positive, alpha-beta T cell\t{T_CELL}\n"
                  "y\tB cells\tB cell\n"
                  f"z\tmonocyte\t{CLASSICAL_MONO}\n")
    res = score(path)
    rows = _by_id(res)
    assert list(rows.index) == ["x", "y", "z"]
    assert list(rows["pred_id"]) == [CD4_AB_T, B_CELL, MONOCYTE]
    assert list(rows["truth_id"]) == [T_CELL, B_CELL, CLASSICAL_MONO]
    assert list(rows["agreement"]) == [0.5, 1.0, 0.5]
    assert rows.loc["y", "exact_match"] == 1.0  # "B cells" = "B cell" + "s"
    assert res.params["truth"] == ""
    assert res.params["pred_col"] == "prediction"
    assert res.summary.loc["overall", "agreement"] == pytest.approx(2 / 3)


def test_params_name_the_users_truth_column(tables: tuple[Path, Path]) -> None:
    pred, truth = tables
    assert score(pred, truth).params["truth_col"] == "truth"


# ------------------------------------------------------------------------------ summary

SUMMARY_TABLE = f"""id,dataset,prediction,truth,n_cells,confidence
a,d1,B cell,{B_CELL},10,0.9
b,d1,T cell,{B_CELL},30,0.9
c,d2,classical monocyte,{MONOCYTE},60,0.6
"""


def test_summary_overall_and_per_dataset(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", SUMMARY_TABLE)
    res = score(path)
    s = res.summary
    assert res.params["by"] == ["dataset"]  # default when a dataset column exists
    assert list(s.index) == ["overall", "d1", "d2"]
    assert list(s["n"]) == [3, 2, 1]
    assert list(s["n_unscored"]) == [0, 0, 0]
    # agreements 1, 0 (d1) and 0.5 (d2); cluster-weighted means.
    assert s.loc["overall", "agreement"] == pytest.approx(0.5)
    assert s.loc["d1", "agreement"] == pytest.approx(0.5)
    assert s.loc["d2", "agreement"] == pytest.approx(0.5)
    assert s.loc["overall", "full_match"] == pytest.approx(1 / 3)
    assert s.loc["overall", "partial_match"] == pytest.approx(1 / 3)
    assert "ece" not in s.columns
    assert list(res.rows["dataset"]) == ["d1", "d1", "d2"]


def test_summary_cell_weighted_differs_from_cluster_weighted(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", SUMMARY_TABLE)
    cluster = score(path).summary
    cell = score(path, weight_col="n_cells").summary
    # (10 * 1 + 30 * 0 + 60 * 0.5) / 100 = 0.4 against (1 + 0 + 0.5) / 3 = 0.5.
    assert cell.loc["overall", "agreement"] == pytest.approx(0.4)
    assert cluster.loc["overall", "agreement"] == pytest.approx(0.5)
    assert cell.loc["d1", "agreement"] == pytest.approx(10 / 40)
    assert cell.loc["d2", "agreement"] == pytest.approx(0.5)
    assert cell.loc["overall", "full_match"] == pytest.approx(0.1)
    assert list(cell["weight"]) == [100.0, 40.0, 60.0]
    assert "weight" not in cluster.columns


def test_ece_only_with_a_confidence_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", SUMMARY_TABLE)
    assert "ece" not in score(path).summary.columns
    res = score(path, confidence_col="confidence", weight_col="n_cells")
    s = res.summary
    # d1: confidence 0.9 twice, agreement 1 and 0 -> |0.9 - 0.5| = 0.4.
    # d2: confidence 0.6, agreement 0.5 -> 0.1. Overall (2 * 0.4 + 0.1) / 3 = 0.3,
    # each row counting once whatever its weight.
    assert s.loc["d1", "ece"] == pytest.approx(0.4)
    assert s.loc["d2", "ece"] == pytest.approx(0.1)
    assert s.loc["overall", "ece"] == pytest.approx(0.3)
    assert list(res.rows["confidence"]) == [0.9, 0.9, 0.6]


def test_to_json(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", SUMMARY_TABLE)
    res = score(path, confidence_col="confidence", weight_col="n_cells")
    doc = json.loads(res.to_json())
    assert set(doc) == {"params", "summary", "rows"}
    assert len(doc["rows"]) == 3
    assert [r["id"] for r in doc["rows"]] == ["a", "b", "c"]
    assert [r["agreement"] for r in doc["rows"]] == [1.0, 0.0, 0.5]
    assert [r["dataset"] for r in doc["summary"]] == ["overall", "d1", "d2"]
    assert doc["summary"][0]["agreement"] == pytest.approx(0.4)
    assert doc["summary"][0]["ece"] == pytest.approx(0.3)
    assert doc["params"]["pred"] == str(path)
    assert doc["params"]["weight_col"] == "n_cells"
    assert doc["params"]["confidence_col"] == "confidence"
    assert doc["params"]["cl_version"] == load_ontology().version


# --------------------------------------------------------------------------------- h5ad


def test_annotated_h5ad_against_planted_names(planted: ad.AnnData, tmp_path: Path) -> None:
    llm4cell.annotate(planted, groupby="truth")
    path = tmp_path / "annotated.h5ad"
    planted.write_h5ad(path)
    res = score(path, truth_col="truth")
    rows = res.rows.set_index("cell_id")
    n_cells = planted.n_obs
    assert len(rows) == n_cells
    assert list(rows.index) == list(planted.obs_names)
    assert res.params["pred_col"] == "llm4cell_ontology_id"
    assert res.params["confidence_col"] == "llm4cell_confidence"
    truth = planted.obs["truth"].astype(str)
    nk, mono = truth.index[truth == "NK"], truth.index[truth == "Mono"]
    assert set(rows.loc[nk, "truth_id"]) == {NK_CELL}
    assert set(rows.loc[nk, "truth_label"]) == {"natural killer cell"}
    assert set(rows.loc[mono, "truth_id"]) == {MONOCYTE}
    assert set(rows.loc[mono, "truth_label"]) == {"monocyte"}
    assert list(rows["pred_id"]) == list(planted.obs["llm4cell_ontology_id"].astype(str))
    overall = res.summary.loc["overall"]
    assert overall["agreement"] >= 0.5
    assert overall["n"] + overall["n_unscored"] == n_cells
    assert "ece" in res.summary.columns


def test_annotated_anndata_scores_like_its_h5ad(planted: ad.AnnData, tmp_path: Path) -> None:
    """``score`` takes the AnnData itself (the API face of ``llm4cell score x.h5ad``)."""
    llm4cell.annotate(planted, groupby="truth")
    path = tmp_path / "annotated.h5ad"
    planted.write_h5ad(path)
    in_memory = score(planted, truth_col="truth")
    from_file = score(path, truth_col="truth")
    pd.testing.assert_frame_equal(in_memory.rows, from_file.rows)
    pd.testing.assert_frame_equal(in_memory.summary, from_file.summary)
    assert in_memory.params["pred"] == "<AnnData>"
    assert llm4cell.score is score
    with pytest.raises(InputError, match=r"AnnData.*obs column.*not a file"):
        score(planted, tmp_path / "t.csv", truth_col="truth")


def test_anndata_with_two_annotations(planted: ad.AnnData) -> None:
    """With two keys, --pred-col chooses the annotation (and its confidence column);
    without it the choice is refused rather than guessed."""
    llm4cell.annotate(planted, groupby="truth", key_added="a")
    llm4cell.annotate(planted, groupby="truth", key_added="b", n_markers=3)
    with pytest.raises(InputError, match=r"several keys \('a', 'b'\).*--pred-col"):
        score(planted, truth_col="truth")
    res = score(planted, truth_col="truth", pred_col="b")
    assert res.params["confidence_col"] == "b_confidence"
    assert list(res.rows["confidence"]) == list(planted.obs["b_confidence"].astype(float))
    res = score(planted, truth_col="truth", pred_col="truth")  # no llm4cell column
    assert res.params["confidence_col"] == ""


def test_h5ad_of_the_former_layout(planted: ad.AnnData, tmp_path: Path) -> None:
    """An .h5ad written before the per-key layout (one record in uns['llm4cell'],
    default key cell_type) scores as before."""
    res = llm4cell.run_annotation(planted, groupby="truth", key_added="cell_type")
    res.to_adata(planted)
    planted.uns["llm4cell"] = planted.uns["llm4cell"]["cell_type"]
    path = tmp_path / "old.h5ad"
    planted.write_h5ad(path)
    scored = score(path, truth_col="truth")
    assert scored.params["pred_col"] == "cell_type_ontology_id"
    assert scored.params["confidence_col"] == "cell_type_confidence"


def test_planted_hep_label_is_scored(tmp_path: Path) -> None:
    path = _write(tmp_path / "hep.csv", "id,prediction,truth\nh,CL:0000182,Hep\n")
    res = score(path)
    assert res.rows.loc[0, "truth_id"] == "CL:0000182"
    assert res.summary.loc["overall", "n"] == 1


# --------------------------------------------------------------------------- bad input


def _small_h5ad(path: Path) -> Path:
    obs = pd.DataFrame({"cell_type": ["B cell", "T cell"], "truth": ["B cell", "T cell"]},
                       index=["c0", "c1"])
    ad.AnnData(X=np.ones((2, 3), dtype=np.float32), obs=obs).write_h5ad(path)
    return path


GOOD_PRED = "id,prediction,confidence,n_cells\na,B cell,0.5,10\nb,T cell,0.8,20\n"
GOOD_TRUTH = f"id,truth\na,{B_CELL}\nb,{T_CELL}\n"

#: name -> (pred text, truth text or None, score kwargs, message fragments)
BAD_CASES: dict[str, tuple[str | None, str | None, dict[str, object], tuple[str, ...]]] = {
    "missing pred file": (None, GOOD_TRUTH, {}, ("pred.csv", "no such file")),
    "missing truth file": (GOOD_PRED, None, {"truth": "absent"}, ("absent.csv", "no such file")),
    "empty pred file": ("", GOOD_TRUTH, {}, ("pred.csv", "empty")),
    "empty truth file": (GOOD_PRED, "", {}, ("truth.csv", "empty")),
    "header-only pred": ("id,prediction\n", GOOD_TRUTH, {}, ("pred.csv", "no rows")),
    "header-only truth": (GOOD_PRED, "id,truth\n", {}, ("truth.csv", "no rows")),
    "missing pred col": (GOOD_PRED, GOOD_TRUTH, {"pred_col": "guess"}, ("'guess'", "--pred-col")),
    "missing truth col": (GOOD_PRED, GOOD_TRUTH, {"truth_col": "gold"}, ("'gold'", "--truth-col")),
    "missing id col": (GOOD_PRED, GOOD_TRUTH, {"id_col": "barcode"}, ("'barcode'", "--id-col")),
    "no common id col": ("key,prediction\na,B cell\n", "key,truth\na,B cell\n", {},
                         ("id column", "--id-col")),
    "no pred col found": ("id,foo\na,B cell\n", GOOD_TRUTH.splitlines()[0] + "\na,B cell\n", {},
                          ("prediction column", "--pred-col")),
    "unknown truth ID": (GOOD_PRED, "id,truth\na,CL:9999999\nb,T cell\n", {},
                         ("CL:9999999", "truth")),
    "unknown pred ID": ("id,prediction\na,CL:9999999\nb,T cell\n", GOOD_TRUTH, {},
                        ("CL:9999999", "pred")),
    "id only in pred": (GOOD_PRED + "zz,NK cell,0.5,1\n", GOOD_TRUTH, {},
                        ("do not match", "only in the predictions ['zz']")),
    "id only in truth": (GOOD_PRED, GOOD_TRUTH + "zz,T cell\n", {},
                         ("do not match", "only in the truth ['zz']")),
    "duplicated pred id": (GOOD_PRED + "a,NK cell,0.5,1\n", GOOD_TRUTH, {}, ("repeat", "a")),
    "duplicated truth id": (GOOD_PRED, GOOD_TRUTH + "b,NK cell\n", {}, ("repeat", "b")),
    "confidence above 1": (GOOD_PRED.replace("0.8", "1.5"), GOOD_TRUTH,
                           {"confidence_col": "confidence"}, ("'confidence'", "1.5")),
    "confidence below 0": (GOOD_PRED.replace("0.8", "-0.2"), GOOD_TRUTH,
                           {"confidence_col": "confidence"}, ("'confidence'", "-0.2")),
    "confidence not a number": (GOOD_PRED.replace("0.8", "high"), GOOD_TRUTH,
                                {"confidence_col": "confidence"}, ("'confidence'", "high")),
    "negative weight": (GOOD_PRED.replace(",20", ",-3"), GOOD_TRUTH,
                        {"weight_col": "n_cells"}, ("'n_cells'", "negative")),
    "weight not a number": (GOOD_PRED.replace(",20", ",many"), GOOD_TRUTH,
                            {"weight_col": "n_cells"}, ("'n_cells'", "many")),
    "missing confidence col": (GOOD_PRED, GOOD_TRUTH, {"confidence_col": "conf"},
                               ("'conf'", "--confidence-col")),
    "missing weight col": (GOOD_PRED, GOOD_TRUTH, {"weight_col": "w"}, ("'w'", "--weight-col")),
    "missing tissue col": (GOOD_PRED, GOOD_TRUTH, {"tissue_col": "organ"},
                           ("'organ'", "--tissue-col")),
    "missing by col": (GOOD_PRED, GOOD_TRUTH, {"by": ["batch"]}, ("'batch'", "--by")),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_tables_raise_input_error(case: str, tmp_path: Path) -> None:
    pred_text, truth_text, kwargs, fragments = BAD_CASES[case]
    kwargs = dict(kwargs)
    pred = tmp_path / "pred.csv"
    truth = tmp_path / f"{kwargs.pop('truth', 'truth')}.csv"
    if pred_text is not None:
        _write(pred, pred_text)
    if truth_text is not None:
        _write(truth, truth_text)
    with pytest.raises(InputError) as info:
        score(pred, truth, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, (case, message)


def test_h5ad_without_truth_col(tmp_path: Path) -> None:
    path = _small_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(InputError, match="--truth-col"):
        score(path)


def test_h5ad_with_truth_file(tmp_path: Path) -> None:
    path = _small_h5ad(tmp_path / "a.h5ad")
    truth = _write(tmp_path / "t.csv", "cell_id,truth\nc0,B cell\nc1,T cell\n")
    with pytest.raises(InputError, match=r"obs column.*not a file"):
        score(path, truth, truth_col="truth")
    # Sanity: the same file scores without the truth file.
    assert list(score(path, truth_col="truth").rows["agreement"]) == [1.0, 1.0]


def test_h5ad_missing_obs_column(tmp_path: Path) -> None:
    path = _small_h5ad(tmp_path / "a.h5ad")
    with pytest.raises(InputError, match=r"'gold'.*--truth-col"):
        score(path, truth_col="gold")


def test_single_table_missing_id_col(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", SUMMARY_TABLE)
    with pytest.raises(InputError, match="'barcode'"):
        score(path, id_col="barcode")


@pytest.mark.parametrize("value", ["", "inf"])
def test_blank_or_infinite_weight(value: str, tmp_path: Path) -> None:
    path = _write(tmp_path / "s.csv", SUMMARY_TABLE.replace(",30,", f",{value},"))
    with pytest.raises(InputError, match="'n_cells'"):
        score(path, weight_col="n_cells")


# -------------------------------------------------------------------------------- CLI


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``llm4cell score ARGS`` in-process inside ``cwd`` (typer's CliRunner; the real
    child process is smoke-tested in test_cli.py). Warnings, which a user would see on
    stderr, are appended to it as lines."""
    with contextlib.chdir(cwd), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        result = CliRunner().invoke(app, ["score", *args], env=CLI_ENV, prog_name="llm4cell")
    stderr = result.stderr + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback: " + repr(result.exception)
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, stderr)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_good_run(tables: tuple[Path, Path], tmp_path: Path) -> None:
    pred, truth = tables
    before = {p: _digest(p) for p in (pred, truth)}
    proc = _cli(pred.name, "--truth", truth.name, "--tissue-col", "tissue",
                "--json", "out/res.json", "--csv", "out/res.csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "agree" in proc.stdout
    overall = [line for line in proc.stdout.splitlines() if "overall" in line]
    assert overall, proc.stdout
    assert "0.714" in overall[0]  # 5 / 7 rows agree with the tissue column
    doc = json.loads((tmp_path / "out/res.json").read_text())
    assert len(doc["rows"]) == len(EXPECTED)
    table = pd.read_csv(tmp_path / "out/res.csv", dtype={"id": str})
    assert len(table) == len(EXPECTED)
    assert dict(zip(table["id"], table["agreement"], strict=True)) == {
        k: v[2] for k, v in EXPECTED.items()
    }
    assert {p: _digest(p) for p in (pred, truth)} == before


#: name -> (extra args, stderr fragment)
CLI_BAD = {
    "missing column": (["--truth", "truth.csv", "--pred-col", "guess"], "--pred-col"),
    "unknown ID": (["--truth", "bad_truth.csv"], "CL:9999999"),
    "mismatched ids": (["--truth", "short_truth.csv"], "do not match"),
    "json is the input": (["--truth", "truth.csv", "--json", "pred.csv"], "input"),
}


@pytest.mark.parametrize("case", list(CLI_BAD))
def test_cli_bad_runs(case: str, tables: tuple[Path, Path], tmp_path: Path) -> None:
    pred, _ = tables
    _write(tmp_path / "bad_truth.csv", TRUTH_IDS.replace(TREG, "CL:9999999"))
    _write(tmp_path / "short_truth.csv", "\n".join(TRUTH_IDS.splitlines()[:-1]) + "\n")
    before = {p.name: _digest(p) for p in tmp_path.iterdir()}
    args, fragment = CLI_BAD[case]
    proc = _cli(pred.name, *args, "--csv", "res.csv", cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    assert fragment in lines[0]
    # Nothing written, nothing changed.
    assert {p.name: _digest(p) for p in tmp_path.iterdir()} == before


def test_cli_single_table_missing_id_col(tmp_path: Path) -> None:
    _write(tmp_path / "s.csv", SUMMARY_TABLE)
    proc = _cli("s.csv", "--id-col", "barcode", cwd=tmp_path)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:")


def test_default_by_is_tissue_when_there_is_no_dataset(tables: tuple[Path, Path]) -> None:
    pred, truth = tables
    s = score(pred, truth, tissue_col="tissue").summary
    assert list(s.index) == ["overall", "blood", "bone", "liver"]  # default by: tissue
    assert all(math.isfinite(v) for v in s.loc["overall"].to_numpy(dtype=float))
