"""Free text to Cell Ontology terms.

Labels as people and language models write them ("CD14+ Mono", "Tregs", "pDC",
"alveolar type II cells", "HSC" in liver) are mapped to CL terms by these methods, tried
in order; the first that finds a term decides, and its name is reported:

``id``
    The text is a CL ID (``CL:0000236``, ``CL_0000236``); obsolete IDs are replaced by
    the term the ontology names as replacement.
``exact``
    Case-insensitive equality with a term's name.
``synonym``
    Case-insensitive equality with one of its synonyms.
``normalised``
    Equality after normalisation (:func:`normalise_label`): Greek letters spelled out,
    ``+``/``-`` after a marker written ``positive``/``negative``, ``hi``/``lo``/``bright``/
    ``dim`` joined to their marker, roman numerals after "type" turned into digits,
    punctuation dropped, plurals singular, "lymphocyte" read as "cell", a bare CD marker
    read as positive ("CD4 T cell" = "CD4-positive T cell"), "alpha-beta" optional in T
    cell names (CL's convention that people leave out, like "thymus-derived"), word order
    free, and a trailing "cell" optional.
``abbreviation``
    The hand-written table :data:`ABBREVIATIONS` (``Treg``, ``pDC``, ``HSC``, ...), whole
    labels or single words expanded inside a label ("CD14+ Mono" -> "CD14-positive
    monocyte"). An abbreviation with several senses uses the tissue to choose ("HSC" is a
    hepatic stellate cell in liver, a hematopoietic stem cell elsewhere); without a
    tissue that decides, the match is flagged ``ambiguous``.
``token``
    Word overlap with term names and synonyms, rare words weighing more (inverse
    document frequency): ``coverage of the label * sqrt(coverage of the term)``, where
    coverage is the share of word weight the two have in common; a term all of whose
    words appear in the label scores at least
    ``0.5 + 0.5 * (share of the label's word weight it covers)``, so a label that
    qualifies a known type maps to that type ("Intermediate B cell" -> "B cell").
    Before scoring, a word the ontology never uses is replaced by its closest ontology
    word when they are at least 85% similar (typos: "Hematopoeitic"). A term naming a
    CD marker the label does not name is excluded; a term lacking one of the label's CD
    markers scores x0.8; with a tissue, a term restricted to other tissues (same rule as
    the knowledge engine) scores x0.8.
``fuzzy``
    Character similarity for typos ("monocyts"), at least 85%; words with digits (CD
    markers) must agree exactly, so "CD34" is never read as "CD4".

Scores lie in [0, 1]: 1 for ``id`` and ``exact``, 0.98 ``synonym``, 0.95 ``normalised``,
0.9 ``abbreviation`` (0.6 when ambiguous), the overlap or similarity (scaled by 0.9 and
0.85) for ``token`` and ``fuzzy``. Below ``min_score`` (0.5) nothing is returned
(``ontology_id`` None, method ``"none"``) and the best guesses are listed as alternatives.
A match is ``ambiguous`` when two unrelated terms are equally good; the alternatives
then say which.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from rapidfuzz import fuzz, process

from ._graph import GENERIC_TERMS, CellOntology, load_ontology
from ._tissues import match_tissue, restricted_tissues

__all__ = [
    "ABBREVIATIONS",
    "LabelMatcher",
    "MatchMethod",
    "OntologyMatch",
    "get_matcher",
    "match_label",
    "normalise_label",
]

MatchMethod = Literal[
    "id", "exact", "synonym", "normalised", "abbreviation", "token", "fuzzy", "none"
]

#: Abbreviations and short forms -> CL term names (resolved to IDs at load). A tuple of
#: (name, tissue) pairs lists the senses; a sense with tissue None is the default.
ABBREVIATIONS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "hsc": (("hematopoietic stem cell", None), ("hepatic stellate cell", "liver")),
    "hscs": (("hematopoietic stem cell", None), ("hepatic stellate cell", "liver")),
    "hspc": (("hematopoietic multipotent progenitor cell", None),),
    "treg": (("regulatory T cell", None),),
    "tfh": (("T follicular helper cell", None),),
    "th1": (("T-helper 1 cell", None),),
    "th2": (("T-helper 2 cell", None),),
    "th17": (("T-helper 17 cell", None),),
    "mait": (("mucosal-associated invariant T cell", None),),
    "gdt": (("gamma-delta T cell", None),),
    "gd t": (("gamma-delta T cell", None),),
    "tgd": (("gamma-delta T cell", None),),
    "nkt": (("mature NK T cell", None),),
    "ctl": (("CD8-positive, alpha-beta cytotoxic T cell", None),),
    "nk": (("natural killer cell", None),),
    "ilc": (("innate lymphoid cell", None),),
    "ilc1": (("group 1 innate lymphoid cell", None),),
    "ilc2": (("group 2 innate lymphoid cell", None),),
    "ilc3": (("group 3 innate lymphoid cell", None),),
    "pdc": (("plasmacytoid dendritic cell", None),),
    "cdc": (("conventional dendritic cell", None),),
    "cdc1": (("CD141-positive myeloid dendritic cell", None),),
    "cdc2": (("CD1c-positive myeloid dendritic cell", None),),
    "mdc": (("myeloid dendritic cell", None),),
    "dc": (("dendritic cell", None),),
    "mono": (("monocyte", None),),
    "cmono": (("classical monocyte", None),),
    "ncmono": (("non-classical monocyte", None),),
    "mac": (("macrophage", None),),
    "macro": (("macrophage", None),),
    "mk": (("megakaryocyte", None),),
    "mep": (("megakaryocyte-erythroid progenitor cell", None),),
    "gmp": (("granulocyte monocyte progenitor cell", None),),
    "cmp": (("common myeloid progenitor", None),),
    "clp": (("common lymphoid progenitor", None),),
    "rbc": (("erythrocyte", None),),
    "pmn": (("neutrophil", None),),
    "ec": (("endothelial cell", None),),
    "lsec": (("endothelial cell of hepatic sinusoid", None),),
    "smc": (("smooth muscle cell", None),),
    "vsmc": (("vascular associated smooth muscle cell", None),),
    "msc": (("mesenchymal stem cell", None),),
    "opc": (("oligodendrocyte precursor cell", None),),
    "at1": (("pulmonary alveolar type 1 cell", None),),
    "at2": (("pulmonary alveolar type 2 cell", None),),
    "ati": (("pulmonary alveolar type 1 cell", None),),
    "atii": (("pulmonary alveolar type 2 cell", None),),
    "pt": (("epithelial cell of proximal tubule", "kidney"),),
    "pc": (("plasma cell", None), ("kidney collecting duct principal cell", "kidney")),
    "gc b": (("germinal center B cell", None),),
    "microglia": (("microglial cell", None),),
    "hep": (("hepatocyte", None),),
    "excitatory neuron": (("glutamatergic neuron", None),),
    "inhibitory neuron": (("GABAergic neuron", None),),
    "beta cell": (("type B pancreatic cell", None),),
    "alpha cell": (("pancreatic A cell", None),),
    "delta cell": (("pancreatic D cell", None),),
    "stellate cell": (("hepatic stellate cell", "liver"), ("pancreatic stellate cell", "pancreas")),
    "ductal cell": (("pancreatic ductal cell", "pancreas"), ("cholangiocyte", "liver")),
}

_GREEK = {
    "α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "κ": "kappa",
    "λ": "lambda", "μ": "mu", "ɣ": "gamma", "ß": "beta",
}
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5"}
_STOP = frozenset(
    {"of", "the", "a", "an", "and", "in", "cell", "positive", "human", "mouse", "like", "type"}
)
#: Words CL puts in T cell names that people leave out.
_OPTIONAL = (" alpha beta ", " thymus derived ")
_BARE_MARKER = re.compile(
    r"\b(cd\d+[a-z]?)\b(?![\s-]*(?:positive|negative|bright|dim|high|low|hi|lo)\b)"
)
_ID = re.compile(r"^\s*CL[:_ ](\d{7})\s*$", re.IGNORECASE)

#: Fuzzy matching is for typos: character similarity below this is no match.
FUZZY_MIN_RATIO = 0.85
#: Token matching: factor for a term lacking a CD marker the label names.
MARKER_MISSING_FACTOR = 0.8
#: Token matching: factor for a term restricted to tissues other than the label's.
OTHER_TISSUE_FACTOR = 0.8
_CD = re.compile(r"^cd\d+[a-z]?$")

SCORES = {
    "id": 1.0, "exact": 1.0, "synonym": 0.98, "normalised": 0.95,
    "abbreviation": 0.9, "ambiguous_abbreviation": 0.6,
}


def _singular(token: str) -> str:
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def normalise_label(text: str) -> str:
    """Normalised form of a cell type label (see module docstring); words joined by spaces.

    Examples
    --------
    >>> normalise_label("CD14+ Monocytes")
    'cd14 positive monocyte'
    >>> normalise_label("Alveolar Type II cells")
    'alveolar type 2 cell'
    """
    s = unicodedata.normalize("NFKC", str(text))
    for g, name in _GREEK.items():
        s = s.replace(g, f" {name} ")
    s = s.lower()
    s = re.sub(r"(?<=[a-z0-9])\+", " positive ", s)
    s = re.sub(r"\b(cd\d+[a-z]?|hla-?dr)-(?=[\s,/;)]|$)", r"\1 negative ", s)
    s = re.sub(r"\b(cd\d+[a-z]?)(hi|high|bright)\b", r"\1 bright", s)
    s = re.sub(r"\b(cd\d+[a-z]?)(lo|low|dim)\b", r"\1 dim", s)
    s = _BARE_MARKER.sub(r"\1 positive", s)
    s = re.sub(r"\b(pos)\b", "positive", s)
    s = re.sub(r"\b(neg)\b", "negative", s)
    s = re.sub(r"\bt[\s-]+regs?\b", "treg", s)
    tokens = [t for t in re.split(r"[^a-z0-9]+", s) if t]
    out: list[str] = []
    for i, tok in enumerate(tokens):
        if i > 0 and out and out[-1] == "type" and tok in _ROMAN:
            tok = _ROMAN[tok]
        tok = _singular(tok)
        if tok == "lymphocyte" and out and len(out[-1]) <= 3:
            tok = "cell"  # "T lymphocyte", "B lymphocyte" == "T cell", "B cell"
        out.append(tok)
    return " ".join(out)


def _marker_tokens(key: str) -> frozenset[str]:
    return frozenset(t for t in key.split() if any(c.isdigit() for c in t))


def _sorted_words(key: str) -> str:
    return " ".join(sorted(key.split()))


def _drop_cell(key: str) -> str:
    return key[: -len(" cell")] if key.endswith(" cell") else key


@dataclass(frozen=True)
class OntologyMatch:
    """The Cell Ontology term found for a free-text label.

    Attributes
    ----------
    query
        The text as given.
    ontology_id, label
        The term found (None when nothing reached ``min_score``).
    score
        Match score in [0, 1].
    method
        How it was found (see :mod:`llm4cell.ontology._matcher`).
    alternatives
        Up to 3 other candidates as ``(ontology_id, label, score)``.
    ambiguous
        True when another, unrelated term is as good a match.
    note
        A short explanation (replacement of an obsolete ID, the sense chosen, ...).
    """

    query: str
    ontology_id: str | None
    label: str | None
    score: float
    method: MatchMethod
    alternatives: tuple[tuple[str, str, float], ...] = field(default=())
    ambiguous: bool = False
    note: str = ""


class LabelMatcher:
    """Maps free-text labels to Cell Ontology terms (indices built once).

    Parameters
    ----------
    ontology
        The Cell Ontology (default: the pinned release).
    min_score
        Token and fuzzy matches below this score are not returned.
    """

    def __init__(self, ontology: CellOntology | None = None, *, min_score: float = 0.5) -> None:
        self.ontology = onto = ontology or load_ontology()
        self.min_score = min_score
        self._exact: dict[str, set[str]] = {}
        self._synonym: dict[str, set[str]] = {}
        self._norm: dict[str, set[str]] = {}
        self._norm_nocell: dict[str, set[str]] = {}
        self._variant: dict[str, set[str]] = {}
        self._unordered: dict[str, set[str]] = {}
        live = [t for t in onto.terms() if t not in GENERIC_TERMS or t == "CL:0000000"]
        for t in live:
            names = [onto.label(t)]
            self._exact.setdefault(names[0].lower(), set()).add(t)
            for syn in onto.synonyms(t):
                self._synonym.setdefault(syn.lower(), set()).add(t)
                names.append(syn)
            for n in names:
                key = normalise_label(n)
                self._norm.setdefault(key, set()).add(t)
                self._norm_nocell.setdefault(_drop_cell(key), set()).add(t)
                short = f" {key} "
                for optional in _OPTIONAL:
                    short = short.replace(optional, " ")
                short = " ".join(short.split())
                if short != key:
                    # CL names conventional T cells "alpha-beta" (and "thymus-derived");
                    # people leave it out.
                    self._variant.setdefault(short, set()).add(t)
                for k in {key, short}:
                    self._unordered.setdefault(_sorted_words(k), set()).add(t)
        self._by_label = {onto.label(t): t for t in live}
        self._abbrev: dict[str, list[tuple[str, str | None]]] = {}
        for abbr, senses in ABBREVIATIONS.items():
            resolved = [(self._by_label[n], tissue) for n, tissue in senses if n in self._by_label]
            if resolved:
                self._abbrev[normalise_label(abbr)] = resolved
        # token index: informative words of every name and synonym
        self._token_sets: list[tuple[frozenset[str], str]] = []
        df: Counter[str] = Counter()
        for key, ids in [*self._norm.items(), *self._variant.items()]:
            toks = frozenset(key.split()) - _STOP
            if not toks:
                continue
            for t in ids:
                self._token_sets.append((toks, t))
            df.update(toks)
        n = max(1, len(self._norm) + len(self._variant))
        self._vocabulary = list(df)
        self._idf = {tok: math.log((n + 1) / (c + 1)) + 1.0 for tok, c in df.items()}
        self._fuzzy_keys = list(self._norm_nocell)
        self._restricted: dict[str, frozenset[str]] = {}

    # -- helpers -------------------------------------------------------------------
    def _restricted_to(self, tid: str) -> frozenset[str]:
        r = self._restricted.get(tid)
        if r is None:
            onto = self.ontology
            names = [onto.label(a) for a in onto.ancestors(tid, include_self=True)
                     if a not in GENERIC_TERMS]
            r = self._restricted[tid] = restricted_tissues(names)
        return r

    def _pick(self, ids: Iterable[str], tissue: str | None) -> tuple[str, list[str], bool]:
        """One ID from an equally good set: prefer the tissue's, then the most general."""
        ids = sorted(set(ids))
        if len(ids) == 1:
            return ids[0], [], False
        onto = self.ontology
        canonical = match_tissue(tissue)
        if canonical is not None:
            local = [t for t in ids if canonical in self._restricted_to(t)]
            if len(local) == 1:
                return local[0], [t for t in ids if t != local[0]], False
        # a set whose members are all related to one of them: take the most general one
        for t in sorted(ids, key=onto.depth):
            if all(onto.related(t, o) for o in ids):
                return t, [o for o in ids if o != t], False
        best = sorted(ids, key=lambda t: (onto.depth(t), t))[0]
        return best, [o for o in ids if o != best], True

    def _result(
        self, query: str, tid: str, score: float, method: MatchMethod, others: list[str],
        ambiguous: bool, note: str = "", alt_scores: dict[str, float] | None = None,
    ) -> OntologyMatch:
        onto = self.ontology
        alts = tuple(
            (o, onto.label(o), round((alt_scores or {}).get(o, score), 4)) for o in others[:3]
        )
        if ambiguous and not note:
            note = "ambiguous: " + "; ".join(f"{a[1]} ({a[0]})" for a in alts)
        return OntologyMatch(query, tid, onto.label(tid), round(score, 4), method, alts,
                             ambiguous, note)

    # -- matching ------------------------------------------------------------------
    def match(self, text: str, *, tissue: str | None = None) -> OntologyMatch:
        """The best CL term for ``text`` (see the module docstring for the methods)."""
        query = "" if text is None else str(text)
        raw = query.strip()
        if not raw or raw.lower() in {"nan", "none", "unknown", "na", "n/a"}:
            return OntologyMatch(query, None, None, 0.0, "none", note="empty or unknown label")
        onto = self.ontology
        m = _ID.match(raw)
        if m:
            tid = f"CL:{m.group(1)}"
            if tid not in onto:
                return OntologyMatch(query, None, None, 0.0, "none",
                                     note=f"{tid} is not a term of CL {onto.version}")
            live = onto.resolve(tid)
            if live is None:
                return OntologyMatch(query, None, None, 0.0, "none",
                                     note=f"{tid} is obsolete with no replacement")
            note = f"obsolete {tid} replaced by {live}" if live != tid else ""
            return self._result(query, live, SCORES["id"], "id", [], False, note)
        low = " ".join(raw.lower().split())
        for method, index in (("exact", self._exact), ("synonym", self._synonym)):
            ids = index.get(low)
            if ids:
                tid, others, amb = self._pick(ids, tissue)
                return self._result(query, tid, SCORES[method] * (0.8 if amb else 1.0),
                                    method, others, amb)  # type: ignore[arg-type]
        key = normalise_label(raw)
        abbr = self._abbreviation(query, key, tissue)
        if abbr is not None and not abbr.ambiguous:
            return abbr
        for index, k in ((self._norm, key), (self._norm_nocell, _drop_cell(key)),
                         (self._norm, key + " cell"), (self._variant, key),
                         (self._variant, key + " cell"),
                         (self._unordered, _sorted_words(key)),
                         (self._unordered, _sorted_words(key + " cell"))):
            ids = index.get(k)
            if ids:
                tid, others, amb = self._pick(ids, tissue)
                return self._result(query, tid, SCORES["normalised"] * (0.8 if amb else 1.0),
                                    "normalised", others, amb)
        if abbr is not None:
            return abbr
        expanded = self._expand(key)
        if expanded != key:
            for k in (expanded, _drop_cell(expanded), expanded + " cell"):
                index = self._norm if k != _drop_cell(expanded) else self._norm_nocell
                ids = index.get(k)
                if ids:
                    tid, others, amb = self._pick(ids, tissue)
                    return self._result(query, tid, SCORES["abbreviation"], "abbreviation",
                                        others, amb, note=f"read as {expanded!r}")
            key = expanded
        return self._token_or_fuzzy(query, key, tissue)

    def _abbreviation(self, query: str, key: str, tissue: str | None) -> OntologyMatch | None:
        senses = self._abbrev.get(key) or self._abbrev.get(_drop_cell(key))
        if not senses:
            return None
        canonical = match_tissue(tissue)
        chosen = None
        if canonical is not None:
            chosen = next((t for t, ts in senses if ts == canonical), None)
        if chosen is None:
            chosen = next((t for t, ts in senses if ts is None), senses[0][0])
        others = [t for t, _ in senses if t != chosen]
        decided_by_tissue = canonical is not None and any(ts == canonical for _, ts in senses)
        ambiguous = bool(others) and not decided_by_tissue
        score = SCORES["ambiguous_abbreviation"] if ambiguous else SCORES["abbreviation"]
        note = ""
        if others and decided_by_tissue:
            note = f"sense chosen by tissue {canonical!r}"
        elif ambiguous:
            note = "ambiguous abbreviation; give a tissue to decide: " + "; ".join(
                f"{self.ontology.label(t)} ({t})" for t in others)
        return self._result(query, chosen, score, "abbreviation", others, ambiguous, note)

    def _expand(self, key: str) -> str:
        words = key.split()
        out = []
        for w in words:
            senses = self._abbrev.get(w)
            if senses and len(senses) == 1:
                out.append(normalise_label(self.ontology.label(senses[0][0])))
            else:
                out.append(w)
        return " ".join(out)

    def _repair_words(self, key: str) -> str:
        """Replace words the ontology never uses by their closest ontology word (typos)."""
        out = []
        for w in key.split():
            if w in self._idf or w in _STOP or len(w) < 5 or any(c.isdigit() for c in w):
                out.append(w)
                continue
            hit = process.extractOne(w, self._vocabulary, scorer=fuzz.ratio,
                                     score_cutoff=100 * FUZZY_MIN_RATIO)
            out.append(hit[0] if hit else w)
        return " ".join(out)

    def _token_or_fuzzy(self, query: str, key: str, tissue: str | None) -> OntologyMatch:
        onto = self.ontology
        key = self._repair_words(key)
        q = frozenset(key.split()) - _STOP
        q_markers = {t for t in q if _CD.match(t)}
        canonical = match_tissue(tissue)
        scores: dict[str, float] = {}
        if q:
            qw = sum(self._idf.get(t, 1.0) for t in q)
            for toks, tid in self._token_sets:
                inter = q & toks
                if not inter:
                    continue
                iw = sum(self._idf.get(t, 1.0) for t in inter)
                tw = sum(self._idf.get(t, 1.0) for t in toks)
                s = (iw / qw) * math.sqrt(iw / tw)  # label coverage, term coverage
                if toks <= q:
                    # every word of the term is in the label: a more general term
                    s = max(s, 0.5 + 0.5 * iw / qw)
                t_markers = {t for t in toks if _CD.match(t)}
                if t_markers - q_markers:
                    continue  # the term names a CD marker the label does not
                if q_markers - t_markers:
                    s *= MARKER_MISSING_FACTOR
                if canonical is not None:
                    where = self._restricted_to(tid)
                    if where and canonical not in where:
                        s *= OTHER_TISSUE_FACTOR
                if s > scores.get(tid, 0.0):
                    scores[tid] = s
        method: MatchMethod = "token"
        scale = 0.9
        if not scores or max(scores.values()) * scale < self.min_score:
            fuzzy = self._fuzzy(key)
            if fuzzy and (not scores or max(fuzzy.values()) * 0.85 > max(scores.values()) * 0.9):
                scores, method, scale = fuzzy, "fuzzy", 0.85
        if not scores:
            return OntologyMatch(query, None, None, 0.0, "none", note="no term shares a word")
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], onto.depth(kv[0]), kv[0]))
        best_score = ranked[0][1]
        ties = [t for t, s in ranked if s >= best_score - 1e-9]
        tid, tie_others, amb = self._pick(ties, tissue)
        others = tie_others + [t for t, _ in ranked if t not in ties][: 3]
        alt_scores = {t: s * scale for t, s in ranked}
        if best_score * scale < self.min_score:
            alts = tuple((t, onto.label(t), round(s * scale, 4)) for t, s in ranked[:3])
            return OntologyMatch(query, None, None, round(best_score * scale, 4), "none", alts,
                                 note="no term matched well enough; best guesses listed")
        return self._result(query, tid, best_score * scale, method, others, amb,
                            alt_scores=alt_scores)

    def _fuzzy(self, key: str) -> dict[str, float]:
        out: dict[str, float] = {}
        hits = process.extract(_drop_cell(key), self._fuzzy_keys, scorer=fuzz.ratio, limit=5,
                               score_cutoff=100 * FUZZY_MIN_RATIO)
        markers = _marker_tokens(key)
        for k, s, _ in hits:
            if _marker_tokens(k) != markers:
                continue  # "CD34" is not a typo of "CD4": words with digits must agree
            for t in self._norm_nocell[k]:
                out[t] = max(out.get(t, 0.0), s / 100.0)
        return out

    def match_many(
        self, texts: Iterable[str], *, tissues: Iterable[str | None] | None = None
    ) -> list[OntologyMatch]:
        """Match many labels (with an optional tissue each); repeated pairs are cached."""
        texts = list(texts)
        tissues = list(tissues) if tissues is not None else [None] * len(texts)
        if len(tissues) != len(texts):
            msg = f"{len(texts)} labels but {len(tissues)} tissues; give one tissue per label"
            raise ValueError(msg)
        cache: dict[tuple[str, str | None], OntologyMatch] = {}
        out = []
        for text, tissue in zip(texts, tissues, strict=True):
            k = (str(text), tissue)
            if k not in cache:
                cache[k] = self.match(text, tissue=tissue)
            out.append(cache[k])
        return out


@functools.cache
def get_matcher() -> LabelMatcher:
    """The shared matcher over the pinned Cell Ontology."""
    return LabelMatcher()


def match_label(text: str, *, tissue: str | None = None) -> OntologyMatch:
    """Map one free-text cell type label to a Cell Ontology term.

    Parameters
    ----------
    text
        The label, e.g. ``"CD14+ Mono"``, ``"Tregs"``, ``"CL:0000236"``.
    tissue
        Tissue context; decides between senses of abbreviations like "HSC".

    Returns
    -------
    The match with its score, method, up to 3 alternatives and an ambiguity flag.
    """
    return get_matcher().match(text, tissue=tissue)
