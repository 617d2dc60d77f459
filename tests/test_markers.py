"""Marker tables without expression data: formats, aliases, mouse lists, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

import llm4cell
from llm4cell.annotation._markers import read_marker_table
from llm4cell.ontology import load_ontology

# NK is the group 1 innate lymphoid cell subtree (NK cells and ILC1s; short NK lists
# are answered at that level).
B_LINEAGE, NK, T_CELL, HEPATOCYTE = "CL:0000945", "CL:0001067", "CL:0000084", "CL:0000182"


def _in_subtree(tid: str, root: str) -> bool:
    onto = load_ontology()
    return bool(tid) and (tid == root or onto.is_ancestor(root, tid))


SIMPLE = """id,markers,tissue
7_0,"MS4A1, CD79A, CD79B, CD19, BANK1, PAX5",blood
c2,"CD3D,CD3E,IL7R,CCR7,LCK,CD2",blood
hep,"ALB,APOA1,APOC3,TTR,SERPINA1,HP",liver
"""

SEURAT = """p_val,avg_log2FC,pct.1,pct.2,p_val_adj,cluster,gene
1e-50,3.2,0.9,0.1,1e-46,0,MS4A1
1e-40,2.9,0.8,0.1,1e-36,0,CD79A
1e-30,2.1,0.7,0.2,1e-26,0,CD19
1e-29,2.0,0.7,0.2,1e-25,0,PAX5
1e-20,-1.5,0.1,0.5,1e-16,0,CD3D
1e-45,3.0,0.9,0.1,1e-41,1,NKG7
1e-44,2.5,0.9,0.2,1e-40,1,GNLY
1e-30,2.2,0.6,0.1,1e-26,1,KLRD1
1e-29,2.1,0.6,0.1,1e-25,1,KLRF1
"""


def test_simple_table(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(SIMPLE)
    fmt, queries = read_marker_table(path)
    assert fmt == "simple"
    assert [q.id for q in queries] == ["7_0", "c2", "hep"]  # ids like 7_0 kept as text
    assert queries[0].genes[:2] == ("MS4A1", "CD79A") and queries[2].tissue == "liver"
    out = llm4cell.annotate_markers(path)
    assert list(out["id"]) == ["7_0", "c2", "hep"]
    roots = {"7_0": B_LINEAGE, "c2": T_CELL, "hep": HEPATOCYTE}
    for _, r in out.iterrows():
        assert _in_subtree(r["ontology_id"], roots[r["id"]]), (r["id"], r["label"])
        cands = json.loads(r["candidates"])
        assert 1 <= len(cands) <= 5 and cands[0]["matched_genes"]
        assert 0 <= r["confidence"] <= 1 and r["evidence"]
        assert r["ontology_name"] == load_ontology().label(r["ontology_id"])


def test_seurat_find_all_markers(tmp_path):
    path = tmp_path / "seurat.csv"
    path.write_text(SEURAT)
    fmt, queries = read_marker_table(path)
    assert fmt == "seurat"
    by_id = {q.id: q for q in queries}
    assert "CD3D" not in by_id["0"].genes  # negative fold change is not a marker
    assert by_id["0"].genes[0] == "MS4A1"  # ranked by adjusted p-value
    out = llm4cell.annotate_markers(path).set_index("id")
    assert _in_subtree(out.loc["0", "ontology_id"], B_LINEAGE)
    # NK, a subtype, or the innate lymphoid ancestor (never a T cell or another type)
    nk = out.loc["1", "ontology_id"]
    assert _in_subtree(nk, NK) or load_ontology().is_ancestor(nk, NK), nk


def test_scanpy_rank_genes_groups_export(tmp_path, pbmc):
    import scanpy as sc

    sc.tl.rank_genes_groups(pbmc, "bulk_labels", method="wilcoxon", use_raw=True)
    df = sc.get.rank_genes_groups_df(pbmc, group=None)
    path = tmp_path / "rgg.tsv"
    df.to_csv(path, sep="\t", index=False)
    fmt, queries = read_marker_table(path)
    assert fmt == "scanpy"
    assert {q.id for q in queries} == set(pbmc.obs["bulk_labels"].cat.categories)
    out = llm4cell.annotate_markers(path, tissue="blood").set_index("id")
    assert _in_subtree(out.loc["CD19+ B", "ontology_id"], B_LINEAGE)
    assert _in_subtree(out.loc["CD56+ NK", "ontology_id"], NK)


def test_aliases_mouse_and_short_lists():
    table = pd.DataFrame({
        "id": ["alias", "mouse", "short"],
        "markers": ["T3D, CD3E, CD2, LCK, IL7R", "Cd79a, Ms4a1, Cd19, Cd79b, Pax5",
                    "MS4A1, CD79A, CD19"],
        "species": ["human", "mouse", "human"],
    })
    out = llm4cell.annotate_markers(table).set_index("id")
    assert _in_subtree(out.loc["alias", "ontology_id"], T_CELL)
    assert "CD3D" in json.loads(out.loc["alias", "candidates"])[0]["matched_genes"] or \
        "T3D" in json.loads(out.loc["alias", "candidates"])[0]["matched_genes"]
    assert _in_subtree(out.loc["mouse", "ontology_id"], B_LINEAGE)
    assert out.loc["mouse", "species"] == "mouse"
    assert out.loc["short", "n_markers"] == 3


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "empty"),
        ("id,markers\n", "no rows"),
        ("foo,bar\n1,2\n", "cannot tell"),
        ('id,markers\n1,"CD3D"\n1,"MS4A1"\n', "repeat"),
        ('id,markers,species\n1,"CD3D",zebrafish\n', "unknown species"),
        ("p_val,avg_log2FC,pct.1,pct.2,p_val_adj,cluster,gene\n1,high,1,1,1,0,CD3D\n",
         "non-numbers"),
        ('id,markers\n1,""\n', "no cluster has a marker"),
    ],
)
def test_bad_tables(tmp_path, content, words):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(llm4cell.InputError, match=words):
        llm4cell.annotate_markers(path)


def test_cli(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(SIMPLE)
    out = tmp_path / "pred.csv"
    proc = subprocess.run([sys.executable, "-m", "llm4cell", "markers", str(path), "-o",
                           str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    pred = pd.read_csv(out)
    assert list(pred["id"]) == ["7_0", "c2", "hep"]
    assert {"label", "ontology_id", "ontology_name", "confidence", "candidates",
            "evidence"} <= set(pred.columns)
    bad = subprocess.run([sys.executable, "-m", "llm4cell", "markers", str(path), "-o",
                          str(path)], capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error:") and len(bad.stderr.strip().splitlines()) == 1
    assert path.read_text() == SIMPLE
