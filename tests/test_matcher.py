"""Free text to Cell Ontology terms, on the real ontology."""

from __future__ import annotations

import pytest

from llm4cell.ontology import (
    ABBREVIATIONS,
    LabelMatcher,
    get_matcher,
    load_ontology,
    match_label,
    normalise_label,
)


@pytest.mark.parametrize(
    ("text", "tissue", "expected", "method"),
    [
        ("B cell", None, "CL:0000236", "exact"),
        ("b CELL", None, "CL:0000236", "exact"),
        ("B lymphocyte", None, "CL:0000236", "synonym"),
        ("B cells", None, "CL:0000236", "normalised"),
        ("CD14+ Mono", None, "CL:0001054", "abbreviation"),  # CD14-positive monocyte
        ("Tregs", None, "CL:0000815", "abbreviation"),  # regulatory T cell
        ("pDC", None, "CL:0000784", "synonym"),  # plasmacytoid dendritic cell
        ("Intermediate B cell", None, "CL:0000236", "token"),
        ("alveolar type II cells", None, "CL:0002063", None),  # pulmonary alveolar type 2
        ("Type I pneumocytes", None, "CL:0002062", "normalised"),
        ("HSC", "liver", "CL:0000632", "abbreviation"),  # hepatic stellate cell
        ("HSC", "bone marrow", "CL:0000037", "abbreviation"),  # hematopoietic stem cell
        ("CD4 T cells", None, "CL:0000624", "normalised"),  # CD4-positive, alpha-beta T
        ("CD8+ T cells", None, "CL:0000625", "normalised"),
        ("Naive CD4+ T cells", None, "CL:0000895", "normalised"),
        ("γδ T cells", None, "CL:0000798", "normalised"),
        ("NK cells", None, "CL:0000623", "abbreviation"),
        ("Microglia", None, "CL:0000129", "abbreviation"),
        ("Beta cells", "pancreas", "CL:0000169", "abbreviation"),
        ("monocyts", None, "CL:0000576", None),  # typo: repaired word or fuzzy
        ("CL:0000236", None, "CL:0000236", "id"),
        ("CL_0000236", None, "CL:0000236", "id"),
    ],
)
def test_labels_map_where_a_biologist_would(text, tissue, expected, method):
    m = match_label(text, tissue=tissue)
    assert m.ontology_id == expected, (m.label, m.method, m.note)
    if method is not None:
        assert m.method == method
    assert 0.5 <= m.score <= 1.0
    assert m.label == load_ontology().label(expected)


def test_context_changes_meaning_and_ambiguity_is_reported():
    liver = match_label("HSC", tissue="liver")
    marrow = match_label("HSC", tissue="bone marrow")
    bare = match_label("HSC")
    assert liver.ontology_id != marrow.ontology_id
    assert not liver.ambiguous and "liver" in liver.note
    assert bare.ambiguous and bare.score < liver.score
    assert "hepatic stellate cell" in bare.note
    assert {a[0] for a in bare.alternatives} == {"CL:0000632"}


def test_obsolete_id_is_replaced():
    onto = load_ontology()
    old = next(t for t in onto.terms(include_deprecated=True)
               if onto.is_deprecated(t) and onto.replacement(t))
    m = match_label(old)
    assert m.ontology_id == onto.replacement(old)
    assert "replaced" in m.note


def test_unknown_and_unmatchable_labels_give_no_term():
    for text in ("", "unknown", "NA", "asdfgh", "Cancer cells"):
        m = match_label(text)
        assert m.ontology_id is None and m.method == "none", text
    assert match_label("CL:9999999").ontology_id is None


def test_typos_and_marker_consistency():
    m = match_label("Hematopoeitic Stem Cell")
    assert m.ontology_id == "CL:0000037"
    # a term naming another CD marker is never chosen
    cd8 = match_label("CD8 Effector 1")
    assert cd8.ontology_id is None or "CD4" not in (cd8.label or "")
    assert match_label("CD34+").ontology_id is None  # not "CD4"


def test_tissue_steers_token_matches():
    muscle = match_label("Satellite cell", tissue="Skeletal muscle")
    assert muscle.ontology_id == "CL:0000594"  # skeletal muscle satellite cell


def test_normalisation_rules():
    assert normalise_label("CD14+ Monocytes") == "cd14 positive monocyte"
    assert normalise_label("Alveolar Type II cells") == "alveolar type 2 cell"
    assert normalise_label("CD16- NK") == "cd16 negative nk"
    assert normalise_label("CD56bright NK cells") == "cd56 bright nk cell"
    assert normalise_label("CD4 T cells") == "cd4 positive t cell"
    assert normalise_label("γδ T-lymphocytes") == "gamma delta t cell"


def test_every_abbreviation_resolves_to_a_live_term():
    matcher = get_matcher()
    onto = load_ontology()
    for abbr, senses in ABBREVIATIONS.items():
        resolved = matcher._abbrev[normalise_label(abbr)]
        assert len(resolved) == len(senses), abbr
        assert all(not onto.is_deprecated(t) for t, _ in resolved)


def test_alternatives_are_bounded_and_batch_matching_is_consistent():
    matcher = LabelMatcher()
    m = matcher.match("Intermediate B cell")
    assert len(m.alternatives) <= 3
    many = matcher.match_many(["Tregs", "HSC", "HSC"], tissues=[None, "liver", None])
    assert [x.ontology_id for x in many] == ["CL:0000815", "CL:0000632", "CL:0000037"]
