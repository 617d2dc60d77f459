"""Cell Ontology access on the real ontology shipped by cellxgene-ontology-guide."""

from __future__ import annotations

import pytest

from llm4cell.ontology import CL_SCHEMA_VERSION, GENERIC_TERMS, load_ontology

B_CELL, T_CELL, LYMPHOCYTE, MONOCYTE, CLASSICAL_MONO = (
    "CL:0000236", "CL:0000084", "CL:0000542", "CL:0000576", "CL:0000860",
)


@pytest.fixture(scope="module")
def onto():
    return load_ontology()


def test_pinned_release_is_loaded(onto):
    assert CL_SCHEMA_VERSION == "7.1.0"
    assert onto.version == "v2026-03-26"
    assert len(onto) > 3000


def test_labels_synonyms_and_descriptions(onto):
    assert onto.label(B_CELL) == "B cell"
    assert "B lymphocyte" in onto.synonyms(B_CELL)
    assert "lymphocyte" in onto.description(B_CELL).lower()
    with pytest.raises(KeyError, match="not a term"):
        onto.label("CL:9999999")


def test_hierarchy(onto):
    assert onto.is_ancestor(LYMPHOCYTE, B_CELL)
    assert not onto.is_ancestor(B_CELL, LYMPHOCYTE)
    assert onto.is_ancestor(MONOCYTE, CLASSICAL_MONO)
    assert MONOCYTE in onto.parents(CLASSICAL_MONO)
    assert CLASSICAL_MONO in onto.children(MONOCYTE)
    assert CLASSICAL_MONO in onto.descendants(MONOCYTE)
    assert onto.lowest_common_ancestors(B_CELL, T_CELL) == [LYMPHOCYTE]
    assert onto.related(B_CELL, LYMPHOCYTE) and not onto.related(B_CELL, T_CELL)
    assert onto.depth("CL:0000000") == 0
    assert onto.depth(B_CELL) > onto.depth(LYMPHOCYTE)


def test_deprecated_terms_resolve_to_replacement(onto):
    deprecated = [t for t in onto.terms(include_deprecated=True) if onto.is_deprecated(t)]
    assert deprecated
    replaced = [t for t in deprecated if onto.replacement(t)]
    assert replaced
    t = replaced[0]
    assert onto.resolve(t) == onto.replacement(t)
    assert not onto.is_deprecated(onto.resolve(t))
    assert onto.resolve(B_CELL) == B_CELL
    assert onto.resolve("CL:9999999") is None


def test_generic_terms_are_root_level(onto):
    for tid in GENERIC_TERMS:
        if tid in onto and not onto.is_deprecated(tid):
            assert onto.depth(tid) <= 2, tid


@pytest.fixture(scope="module")
def parser():
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

    return OntologyParser(CL_SCHEMA_VERSION)


def test_agrees_with_ontology_parser_on_every_term(onto, parser):
    """CellOntology reads the records itself for speed (see ontology/_graph.py); it must
    give what cellxgene-ontology-guide's OntologyParser gives for the same release."""
    for t in onto.terms(include_deprecated=True):
        assert onto.ancestors(t) == parser.get_term_ancestors_with_distances(t), t
        assert onto.ancestors(t, include_self=True) == (
            parser.get_term_ancestors_with_distances(t, include_self=True)), t
        assert onto.parents(t) == parser.get_term_parents(t), t
        assert onto.label(t) == parser.get_term_label(t)
        assert onto.synonyms(t) == parser.get_term_synonyms(t)
        assert onto.description(t) == parser.get_term_description(t)
        assert onto.is_deprecated(t) == parser.is_term_deprecated(t)
        theirs = parser.get_term_replacement(t)
        assert onto.replacement(t) == (theirs if theirs in onto else None), t


def test_descendants_and_children_agree_with_ontology_parser(onto, parser):
    for t in [*onto.terms()[::60], "CL:0000000", "CL:0000576", "CL:0000542"]:
        assert onto.descendants(t) == set(parser.get_term_descendants(t)), t
        assert sorted(onto.children(t)) == sorted(parser.get_term_children(t)), t


def test_lowest_common_ancestors_are_the_most_specific(onto, parser):
    """OntologyParser's answer is the least summed distance, which can hold an ancestor
    of another common ancestor; llm4cell's holds none."""
    a, b = "CL:0002513", "CL:4072043"
    assert sorted(parser.get_lowest_common_ancestors(a, b)) == ["CL:0000000", "CL:0000255"]
    assert onto.lowest_common_ancestors(a, b) == ["CL:0000255"]
    for x in onto.lowest_common_ancestors(a, b):
        assert onto.is_ancestor(x, a) and onto.is_ancestor(x, b)
