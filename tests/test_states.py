"""Cell states kept apart from cell types (issue 14): state and housekeeping genes never
vote for a type, groups whose only evidence is states abstain, and the state column names
the programs a group's cells run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_planted_counts
from scipy import sparse

import llm4cell
from llm4cell import MarkerQuery, load_knowledge
from llm4cell.genes import is_evidence_gene
from llm4cell.ontology import load_ontology

B_CELL = "MS4A1 CD79A CD79B CD19 BANK1 CD22 PAX5 TCL1A"
CYCLING = "MKI67 TOP2A ASPM CENPF CDK1 BIRC5 TPX2 UBE2C NUSAP1 CCNB1 HMGB2 TYMS"
TRANSLATION = "RPL13 RPS18 EEF1A1 TPT1 RACK1 PABPC1 EEF2 NACA BTF3 FAU GAPDH ACTB B2M TMSB4X"
ISGS = ["ISG15", "IFI6", "IFIT3", "MX1", "IFIT1", "OAS1", "XAF1", "EIF2AK2", "SP100", "TRIM22"]


@pytest.fixture(scope="module")
def kb():
    return load_knowledge()


def _q(genes: str | list[str], **kw) -> MarkerQuery:
    genes = genes.split() if isinstance(genes, str) else genes
    return MarkerQuery(id=kw.pop("id", "q"), genes=tuple(genes), **kw)


def _in_subtree(tid: str | None, root: str) -> bool:
    onto = load_ontology()
    return tid is not None and (tid == root or onto.is_ancestor(root, tid))


@pytest.mark.parametrize("genes", [CYCLING, TRANSLATION], ids=["cycling", "translation"])
def test_state_or_housekeeping_genes_alone_give_no_lineage(kb, genes):
    # Before: cycling genes gave "neural stem cell"-like answers, translation genes a
    # stem/memory profile. They describe what a cell does, not what it is.
    a = kb.annotate([_q(genes)])[0]
    assert a.label == "unknown" and a.ontology_id is None and a.confidence == 0, a.evidence


def test_abstention_keeps_the_best_guess_and_names_the_states(kb):
    # states plus one widely listed gene: no lineage from the state genes
    a = kb.annotate([_q("MKI67 TOP2A ISG15 VIM ASPM")])[0]
    assert a.label == "unknown"
    assert a.candidates  # the best guess from the real gene stays a candidate
    assert "cycling" in a.evidence and "interferon-stimulated" in a.evidence


def test_one_specific_marker_among_states_is_a_capped_short_list(kb):
    """CD19 is a canonical B-cell marker: the states are set aside and the one real
    marker is answered as a short list (capped confidence), never from the states."""
    from llm4cell.knowledge._rules import SHORT_CONFIDENCE_CAP

    a = kb.annotate([_q("MKI67 TOP2A ISG15 CD19 ASPM")])[0]
    assert a.ontology_id is None or kb.ontology.is_ancestor("CL:0000945", a.ontology_id) \
        or a.ontology_id == "CL:0000945", a.label  # B lineage, if anything
    assert a.confidence <= SHORT_CONFIDENCE_CAP
    assert "cycling" in a.evidence and "interferon-stimulated" in a.evidence


def test_interferon_genes_do_not_change_the_type(kb):
    plain = kb.annotate([_q(B_CELL)])[0]
    b = B_CELL.split()
    # ISGs interleaved, several ranked above the B-cell markers (a stimulated B cluster)
    mixed = [ISGS[0], ISGS[1], b[0], ISGS[2], b[1], ISGS[3], b[2], ISGS[4], b[3], ISGS[5],
             b[4], ISGS[6], b[5], ISGS[7], b[6], ISGS[8], b[7], ISGS[9]]
    stim = kb.annotate([_q(mixed)])[0]
    assert stim.ontology_id == plain.ontology_id, (stim.label, plain.label, stim.evidence)
    assert not set(ISGS) & set(stim.candidates[0].matched_genes)
    assert "not evidence (cell states): interferon-stimulated ISG15, IFI6" in stim.evidence


def test_state_genes_are_not_in_the_type_profiles(kb):
    for g in ("ISG15", "IFIT3", "MKI67", "TOP2A", "HBB", "HBA1", "EEF1A1", "TPT1", "HSPA1A",
              "FOS", "GAPDH"):
        assert g not in kb.gene_index, g


def test_erythroid_cells_are_recognised_without_haemoglobin(kb):
    a = kb.annotate([_q("HBB HBA1 HBA2 ALAS2 GYPA AHSP CA1 SLC4A1 HBD HBM")])[0]
    assert _in_subtree(a.ontology_id, "CL:0000764"), (a.label, a.evidence)  # erythroid
    assert not {"HBB", "HBA1", "HBA2"} & set(a.candidates[0].matched_genes)


def test_mouse_state_genes_are_not_evidence(kb):
    for g in ("Mki67", "Top2a", "Isg15", "Ifit3", "Hba-a1", "Hbb-bs", "Gnb2l1", "Eef1a1",
              "Tpt1", "Hspa1a", "Fos", "mt-Co1", "Rpl13"):
        assert not is_evidence_gene(g), g
    for g in ("Cd19", "Cd3e", "Alas2", "H2-Aa"):
        assert is_evidence_gene(g), g
    cycling = kb.annotate([_q("Mki67 Top2a Aspm Cenpf Cdk1 Birc5 Tpx2 Ube2c Nusap1 Ccnb1",
                              species="mouse")])[0]
    assert cycling.label == "unknown", cycling.evidence
    b = "Cd79a Ms4a1 Cd19 Cd79b Pax5 Ebf1".split()
    plain = kb.annotate([_q(b, species="mouse")])[0]
    mixed = ["Isg15", b[0], "Ifit3", b[1], "Irf7", b[2], "Ifit1", b[3], "Oasl1", b[4], b[5]]
    stim = kb.annotate([_q(mixed, species="mouse")])[0]
    assert stim.ontology_id == plain.ontology_id, (stim.label, plain.label)


def _with_programs(adata, programs: dict[str, list[str]], rate: float = 8.0):
    """Append program genes: expressed at ``rate`` in the named types, 0.3 elsewhere."""
    rng = np.random.default_rng(1)
    genes = [g for gs in programs.values() for g in gs]
    counts = rng.poisson(0.3, size=(adata.n_obs, len(genes))).astype(np.float32)
    truth = adata.obs["truth"].astype(str).to_numpy()
    col = 0
    for cell_type, gs in programs.items():
        rows = np.flatnonzero(truth == cell_type)
        counts[np.ix_(rows, range(col, col + len(gs)))] = rng.poisson(
            rate, size=(len(rows), len(gs)))
        col += len(gs)
    X = sparse.hstack([adata.X, sparse.csr_matrix(counts)]).tocsr()
    var = pd.DataFrame(index=[*adata.var_names, *genes])
    return type(adata)(X=X, obs=adata.obs.copy(), var=var)


def _planted(**kw):
    """The planted counts without their mitochondrial gene (10% of every cell's counts,
    at the human threshold of the mitochondrial state)."""
    adata = make_planted_counts(**kw)
    return adata[:, adata.var_names != "MT-CO1"].copy()


def test_state_column_names_the_planted_programs():
    adata = _with_programs(_planted(), {
        "B": ISGS,  # interferon-stimulated B cells
        "T": CYCLING.split(),  # cycling T cells
    })
    res = llm4cell.run_annotation(adata, groupby="truth", tissue="blood")
    assert res.states == {"B": "interferon-stimulated", "Hep": "", "Mono": "", "NK": "",
                          "T": "cycling"}
    # the types are those of the planted lineage markers, not of the states
    assert _in_subtree(res.annotations["B"].ontology_id, "CL:0000236")
    assert _in_subtree(res.annotations["T"].ontology_id, "CL:0000084")
    res.to_adata(adata)
    state = adata.obs["llm4cell_state"]
    assert isinstance(state.dtype, pd.CategoricalDtype)
    truth = adata.obs["truth"].astype(str)
    # per cell: the planted cells carry their program; a few background cells may cross
    assert (state[truth == "B"].astype(str).str.contains("interferon")).mean() >= 0.95
    assert (state[truth == "NK"] == "").mean() >= 0.9
    scores = adata.obsm["llm4cell_states"]
    assert isinstance(scores, pd.DataFrame)
    assert list(scores.columns[:2]) == ["cycling", "interferon-stimulated"]
    assert scores.loc[truth == "T", "cycling"].median() > scores.loc[truth != "T",
                                                                     "cycling"].max() - 1
    table = res.to_table().set_index("group")
    assert table.loc["T", "state"] == "cycling"
    assert "state" in res.uns_record()["groups"]
    assert "rule" in llm4cell.get_provenance(adata)["states"]


def test_state_column_with_mouse_symbols():
    adata = _planted()
    adata.var_names = [g.capitalize() if not g.startswith(("BG", "MT-")) else g
                       for g in adata.var_names]
    adata = _with_programs(adata, {"B": ["Isg15", "Ifi27l2a", "Ifit1", "Ifit3", "Irf7",
                                         "Oasl2", "Rsad2", "Mx1", "Xaf1", "Stat1"]})
    res = llm4cell.run_annotation(adata, groupby="truth", species="mouse")
    assert res.states["B"] == "interferon-stimulated"
    assert all(res.states[g] == "" for g in ("T", "NK", "Mono", "Hep"))


def test_mitochondrial_state_uses_the_fraction_of_expression():
    mito = ["MT-CO1", "MT-CO2", "MT-ND1", "MT-ND4", "MT-CYB", "MT-ATP6"]
    adata = _with_programs(_planted(), {"Mono": mito}, rate=60.0)
    res = llm4cell.run_annotation(adata, groupby="truth")
    assert res.states["Mono"] == "mitochondrial"
    assert all(res.states[g] == "" for g in ("B", "T", "NK", "Hep"))
    frac = res.state_scores["mitochondrial"]
    assert 0 <= frac.min() and frac.max() < 1


def test_states_are_called_per_cell_within_a_mixed_group():
    """Half of the B cells carry the interferon program: the state column names those
    cells, not the resting half (the group-level call sees only the median cell)."""
    adata = _with_programs(_planted(), {"B": ISGS})
    truth = adata.obs["truth"].astype(str).to_numpy()
    b_rows = np.flatnonzero(truth == "B")
    resting = b_rows[::2]
    X = adata.X.tolil()
    isg_cols = [adata.var_names.get_loc(g) for g in ISGS]
    for c in isg_cols:
        X[resting, c] = 0
    adata.X = X.tocsr()
    llm4cell.annotate(adata, groupby="truth")
    state = adata.obs["llm4cell_state"].astype(str).to_numpy()
    stimulated = np.setdiff1d(b_rows, resting)
    assert np.mean([("interferon" in s) for s in state[stimulated]]) >= 0.9
    assert np.mean([("interferon" in s) for s in state[resting]]) <= 0.1
    assert not any("interferon" in s for s in state[truth == "NK"])
