"""``llm4cell types`` / ``describe``: what the engine knows, from the shipped database."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

import llm4cell
from llm4cell.cli import app


def test_list_types_is_the_answer_space():
    table = llm4cell.list_types()
    kb = llm4cell.load_knowledge()
    assert list(table.columns) == ["ontology_id", "label", "lineage", "family",
                                   "n_sources", "top_markers"]
    assert set(table["ontology_id"]) == set(kb.type_ids)  # every answerable type, once
    b = table.set_index("ontology_id").loc["CL:0000236"]  # B cell
    assert b["label"] == "B cell" and b["n_sources"] > 100
    assert "MS4A1" in b["top_markers"] or "CD79A" in b["top_markers"]
    # types with levels first, sorted by lineage
    named = table[table["lineage"] != ""]
    assert named.index.max() < table[table["lineage"] == ""].index.min()
    assert list(named["lineage"]) == sorted(named["lineage"])


def test_list_types_filters_by_tissue_and_search():
    everything = llm4cell.list_types()
    blood = llm4cell.list_types(tissue="PBMC")
    assert 0 < len(blood) < len(everything)
    assert "CL:0000182" not in set(blood["ontology_id"])  # hepatocyte: a liver type
    assert "CL:0000236" in set(blood["ontology_id"])  # B cells occur anywhere
    mono = llm4cell.list_types(search="monocyte")
    assert {"CL:0000576", "CL:0000860", "CL:0000875"} <= set(mono["ontology_id"])
    # word starts only: "pneumonocyte" is not a monocyte
    assert not mono["label"].str.contains("alveolar").any()
    with pytest.raises(llm4cell.InputError, match="did you mean 'blood'"):
        llm4cell.list_types(tissue="bloood")


def test_describe_type_by_name_and_id():
    d = llm4cell.describe_type("CD8 T")
    assert d.ontology_id == "CL:0000625" and d.answerable
    assert d.family and d.lineage == "T cell"
    assert d.markers[0][0] == "CD8A"  # the strongest gene of CD8 T cells
    assert [g for g, _ in d.markers][:2] == ["CD8A", "CD8B"]
    assert d.parents and all(p.startswith("CL:") for p, _ in d.parents)
    by_id = llm4cell.describe_type("CL:0000625", n_markers=3)
    assert by_id.ontology_id == d.ontology_id and len(by_id.markers) == 3
    with pytest.raises(llm4cell.InputError, match="no Cell Ontology term"):
        llm4cell.describe_type("xyzzy quux")
    with pytest.raises(llm4cell.InputError, match="n_markers"):
        llm4cell.describe_type("B cell", n_markers=0)


def test_cli_types_and_describe(tmp_path):
    runner = CliRunner()
    csv = tmp_path / "types.csv"
    res = runner.invoke(app, ["types", "--search", "monocyte", "-o", str(csv)])
    assert res.exit_code == 0, res.output
    assert "CL:0000860" in res.output  # classical monocyte (labels may wrap)
    assert pd.read_csv(csv)["ontology_id"].str.startswith("CL:").all()
    res = runner.invoke(app, ["types", "--tissue", "bloood"])
    assert res.exit_code == 2 and "did you mean 'blood'" in res.output
    res = runner.invoke(app, ["describe", "Treg"])
    assert res.exit_code == 0, res.output
    assert "regulatory T cell" in res.output and "FOXP3" in res.output
    res = runner.invoke(app, ["describe", "xyzzy quux"])
    assert res.exit_code == 2 and "no Cell Ontology term" in res.output
