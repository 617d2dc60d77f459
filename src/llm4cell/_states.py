"""Cell-state programs: genes that describe what a cell is doing, not what it is.

Cycling, an interferon response, dissociation stress, haemoglobin carried over from lysed
red cells, the translation machinery and mitochondrial transcripts change with the
cell's condition and with the handling of the sample, in every cell type. They are
never evidence for a cell type (:func:`llm4cell.genes.is_evidence_gene` removes them from
every query and from the knowledge base's type profiles); ``llm4cell annotate`` reports
them in their own column (``obs[key + "_state"]``).

The lists are written from general biology, each from the source named beside it, never
from benchmark data. Symbols are human (HGNC); mouse symbols reach them through the
package's ortholog mapping (:func:`llm4cell.genes.mouse_orthologs`) or their upper case.
Genes that are also classic lineage markers are left out of the programs on purpose:
BST2 (CD317, the plasmacytoid DC antigen), IDO1 (conventional DC), SIGLEC1 (CD169
macrophages), KLF2/KLF4 and NR4A1 (naive T cells, monocytes).

This module holds data and symbol matching only (no package imports), so that
:mod:`llm4cell.genes` can use it without an import cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["HOUSEKEEPING", "PROGRAMS", "StateProgram", "program_genes", "state_of"]


@dataclass(frozen=True)
class StateProgram:
    """A cell-state program.

    Attributes
    ----------
    name
        The name written in the state column (``"cycling"``, ...).
    genes
        Human symbols of the program.
    source
        Where the list comes from.
    pattern
        Symbols matching this pattern also belong to the program (gene families).
    """

    name: str
    genes: frozenset[str]
    source: str
    pattern: re.Pattern[str] | None = None


def _genes(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Tirosh et al. 2016 (Science 352:189), the S-phase and G2/M genes scanpy and Seurat
#: use for cell-cycle scoring (current HGNC symbols beside the 2016 ones: MLF1IP =
#: CENPU, FAM64A = PIMREG, HN1 = JPT1), plus canonical mitotic genes (Whitfield et al.
#: 2002, Mol Biol Cell 13:1977: ASPM, CCNB1, CCNA2, PLK1, KIF4A, KIF14, PBK, MELK).
_S_PHASE = _genes("""
    MCM5 PCNA TYMS FEN1 MCM2 MCM4 RRM1 UNG GINS2 MCM6 CDCA7 DTL PRIM1 UHRF1 MLF1IP CENPU
    HELLS RFC2 RPA2 NASP RAD51AP1 GMNN WDR76 SLBP CCNE2 UBR7 POLD3 MSH2 ATAD2 RAD51 RRM2
    CDC45 CDC6 EXO1 TIPIN DSCC1 BLM CASP8AP2 USP1 CLSPN POLA1 CHAF1B BRIP1 E2F8
""")
_G2M_PHASE = _genes("""
    HMGB2 CDK1 NUSAP1 UBE2C BIRC5 TPX2 TOP2A NDC80 CKS2 NUF2 CKS1B MKI67 TMPO CENPF TACC3
    FAM64A PIMREG SMC4 CCNB2 CKAP2L CKAP2 AURKB BUB1 KIF11 ANP32E TUBB4B GTSE1 KIF20B HJURP
    CDCA3 HN1 JPT1 CDC20 TTK CDC25C KIF2C RANGAP1 NCAPD2 DLGAP5 CDCA2 CDCA8 ECT2 KIF23 HMMR
    AURKA PSRC1 ANLN LBR CKAP5 CENPE CTCF NEK2 G2E3 GAS2L3 CBX5 CENPA
    ASPM CCNB1 CCNA2 PLK1 KIF4A KIF14 PBK MELK
""")

#: Canonical type-I interferon-stimulated genes: the ISGs of Schoggins et al. 2011
#: (Nature 472:481) and Schneider, Chevillotte & Rice 2014 (Annu Rev Immunol 32:513)
#: that the interferon signature scores of the literature share (e.g. the SLE
#: interferon signature, Baechler et al. 2003, PNAS 100:2610).
_INTERFERON = _genes("""
    ISG15 ISG20 IFI6 IFI27 IFI35 IFI44 IFI44L IFIT1 IFIT2 IFIT3 IFIT5 IFITM1 IFITM3 MX1 MX2
    OAS1 OAS2 OAS3 OASL RSAD2 HERC5 HERC6 XAF1 STAT1 STAT2 IRF7 IRF9 EPSTI1 CMPK2 SAMD9
    SAMD9L PARP9 PARP12 PARP14 DDX58 RIGI IFIH1 DDX60 DDX60L PLSCR1 SP100 SP110 TRIM22 LY6E
    USP18 EIF2AK2 LGALS3BP APOBEC3A APOBEC3G TNFSF10 IFI16 LAP3 CXCL10 CXCL11 GBP1 DTX3L
    HELZ2 RTP4
""")

#: Dissociation-induced stress: the heat-shock and immediate-early genes of van den
#: Brink et al. 2017 (Nat Methods 14:935) and the core heat-shock proteins (HSPA/HSPB/
#: HSP90/DNAJ families, Kampinga et al. 2009, Cell Stress Chaperones 14:105).
_STRESS = _genes("""
    FOS FOSB JUN JUNB JUND EGR1 EGR2 EGR3 IER2 IER3 IER5 ATF3 DUSP1 ZFP36 PPP1R15A BTG2
    HSPA1A HSPA1B HSPA6 HSPA8 HSPB1 HSPH1 HSP90AA1 HSP90AB1 HSPD1 HSPE1 DNAJB1 DNAJA1 BAG3
""")

#: Haemoglobin chains (HGNC gene group "Haemoglobin subunits"); red-cell lysis carries
#: them into every droplet. Erythroid types keep their other markers (ALAS2, GYPA, AHSP,
#: CA1, SLC4A1, ...).
_HAEMOGLOBIN = _genes("HBA1 HBA2 HBB HBD HBE1 HBG1 HBG2 HBM HBQ1 HBZ")
_HAEMOGLOBIN_PATTERN = re.compile(r"^Hb[ab]-", re.IGNORECASE)  # mouse Hba-a1, Hbb-bs

#: Ribosomal proteins (HGNC groups "L/S ribosomal proteins" and "mitochondrial
#: ribosomal proteins", by pattern) and the translation machinery that co-varies with
#: them in single-cell data: elongation factors (HGNC "Eukaryotic translation elongation
#: factors", without the neuron/muscle isoform EEF1A2), the abundant initiation factors,
#: and ribosome-associated proteins (UniProt function: TPT1, RACK1/GNB2L1, NACA, BTF3,
#: PABPC1, UBA52, FAU).
_TRANSLATION = _genes("""
    EEF1A1 EEF1B2 EEF1D EEF1G EEF2 EIF1 EIF3E EIF3F EIF3H EIF3K EIF3L EIF4A1 EIF4B
    TPT1 RACK1 GNB2L1 NACA BTF3 PABPC1 UBA52 FAU
""")
_RIBOSOMAL_PATTERN = re.compile(  # with pseudogenes: RPL13AP5, mouse Rpsa-ps2, Rpl10-ps3
    r"^(RPL\d|RPLP\d|RPS\d|RPSA$|RPSAP\d|RPSA-PS\d|MRPL\d|MRPS\d)", re.IGNORECASE)

#: Mitochondrial genome transcripts (MT-, mouse mt-) and their nuclear pseudogenes,
#: which pick up mitochondrial reads (MTND1P23, MTCO1P12, MTATP6P1, MTRNR2L12, ...).
_MITO_PATTERN = re.compile(
    r"^(MT-|MT\.|mt-|MT(ND[1-6L]|CO[1-3]|CYB|ATP[68])P\d+$|MTRNR2L\d+$)"
)

#: The programs, in the order the state column names them.
PROGRAMS: tuple[StateProgram, ...] = (
    StateProgram("cycling", _S_PHASE | _G2M_PHASE, "Tirosh et al. 2016; Whitfield et al. 2002"),
    StateProgram("interferon-stimulated", _INTERFERON,
                 "Schoggins et al. 2011; Schneider et al. 2014"),
    StateProgram("stress", _STRESS, "van den Brink et al. 2017; Kampinga et al. 2009"),
    StateProgram("haemoglobin", _HAEMOGLOBIN, "HGNC haemoglobin subunits",
                 _HAEMOGLOBIN_PATTERN),
    StateProgram("ribosomal", _TRANSLATION, "HGNC ribosomal proteins, translation factors",
                 _RIBOSOMAL_PATTERN),
    StateProgram("mitochondrial", frozenset(), "mitochondrial genome and its pseudogenes",
                 _MITO_PATTERN),
)

#: Housekeeping genes that are never evidence but are no state: the classic reference
#: genes (Vandesompele et al. 2002, Genome Biol 3:research0034: ACTB, B2M, GAPDH, HMBS,
#: HPRT1, SDHA, TBP, UBC, YWHAZ), and abundant transcripts of every cell that are in the
#: housekeeping list of Eisenberg & Levanon 2013 (Trends Genet 29:569): the cytoskeletal
#: ACTG1, TMSB4X, TMSB10, PFN1, CFL1, MYL6 and the ferritin chains FTL and FTH1 (their
#: level follows iron and inflammation, not identity); and the nuclear lncRNAs MALAT1
#: and NEAT1.
HOUSEKEEPING: frozenset[str] = _genes("""
    ACTB B2M GAPDH HMBS HPRT1 SDHA TBP UBC YWHAZ ACTG1 TMSB4X TMSB10 PFN1 CFL1 MYL6
    FTL FTH1 MALAT1 NEAT1
""")

_BY_GENE: dict[str, str] = {g: p.name for p in reversed(PROGRAMS) for g in p.genes}
_S_G2M = {"S": _S_PHASE, "G2M": _G2M_PHASE}


def state_of(symbol: str) -> str | None:
    """The program a gene symbol belongs to (``"housekeeping"`` for :data:`HOUSEKEEPING`),
    or None. Matches the symbol and its upper case (mouse ``Mki67`` is ``MKI67``)."""
    s = str(symbol).strip()
    for cand in (s, s.upper()):
        name = _BY_GENE.get(cand)
        if name is not None:
            return name
        if cand in HOUSEKEEPING:
            return "housekeeping"
    for p in PROGRAMS:
        if p.pattern is not None and p.pattern.match(s):
            return p.name
    return None


def program_genes(name: str) -> frozenset[str]:
    """The listed human genes of a program (``"S"`` and ``"G2M"`` give the two phases)."""
    if name in _S_G2M:
        return _S_G2M[name]
    for p in PROGRAMS:
        if p.name == name:
            return p.genes
    msg = f"no state program {name!r}; known: {', '.join(p.name for p in PROGRAMS)}"
    raise KeyError(msg)
