"""Where cell types occur: the tissue rule of the knowledge engine.

A cell type is *restricted* to a tissue when its Cell Ontology name, or the name of one
of its ancestors, contains one of that tissue's keywords below (``"hepatocyte"`` and
``"hepatic stellate cell"`` are liver types; ``"kidney collecting duct principal cell"`` is
a kidney type). Types whose names and ancestors name no tissue (immune cells,
fibroblasts, endothelial cells, ...) are unrestricted.

When the user names a tissue that matches one of the tissues here, a type restricted
only to *other* tissues has its score multiplied by ``tissue_penalty`` (0.5 by default).
Unrestricted types and types restricted to the user's tissue are unchanged. A tissue
name that matches nothing here changes nothing (and the provenance says so).
"""

from __future__ import annotations

__all__ = ["TISSUES", "match_tissue", "restricted_tissues"]

#: Canonical tissue -> (words that name it in a query, keywords in cell type names).
TISSUES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "liver": (("liver", "hepatic", "hepato"), ("hepat", "kupffer", "cholangiocyte", "liver")),
    "lung": (
        ("lung", "pulmonary", "airway", "trachea", "bronch", "alveol"),
        ("lung", "pulmonary", "alveolar", "bronchi", "club cell", "tracheal", "airway",
         "pneumocyte", "ionocyte"),
    ),
    "kidney": (
        ("kidney", "renal", "nephr"),
        ("kidney", "renal", "nephron", "glomerul", "podocyte", "proximal tubule",
         "distal convoluted", "loop of henle", "collecting duct", "mesangial",
         "juxtaglomerular", "macula densa"),
    ),
    "brain": (
        ("brain", "cortex", "cerebr", "hippocamp", "cerebell", "spinal cord",
         "nervous", "neural", "midbrain", "hypothalam"),
        ("brain", "cerebral", "cortical", "hippocamp", "cerebellar", "purkinje",
         "astrocyte", "oligodendrocyte", "microglia", "ependymal", "glutamatergic",
         "gabaergic", "interneuron", "neuron", "radial glia", "spinal cord"),
    ),
    "heart": (
        ("heart", "cardiac", "myocard", "atri", "ventric"),
        ("heart", "cardiac", "cardiomyocyte", "cardiac muscle", "atrial", "ventricular",
         "epicardial", "endocardial"),
    ),
    "intestine": (
        ("intestin", "gut", "colon", "ileum", "jejunum", "duoden", "rectum", "caecum",
         "cecum", "bowel"),
        ("intestin", "colon", "enterocyte", "goblet", "paneth", "enteroendocrine",
         "colonocyte", "duodenal", "ileal", "jejunal", "enteric", "crypt"),
    ),
    "stomach": (
        ("stomach", "gastric"),
        ("gastric", "stomach", "parietal cell", "chief cell", "foveolar"),
    ),
    "pancreas": (
        ("pancrea", "islet"),
        ("pancrea", "islet", "acinar", "type b pancreatic", "type a enteroendocrine"),
    ),
    "skin": (
        ("skin", "epiderm", "derm", "cutaneous"),
        ("skin", "keratinocyte", "epiderm", "melanocyte", "dermal", "sebaceous",
         "hair follicle", "sweat gland"),
    ),
    "skeletal muscle": (
        ("muscle", "skeletal muscle", "limb muscle", "diaphragm"),
        ("skeletal muscle", "myotube", "skeletal muscle satellite", "myoblast"),
    ),
    "eye": (
        ("eye", "retina", "cornea", "lens"),
        ("retina", "photoreceptor", "rod ", "cone ", "amacrine", "muller", "müller",
         "lens", "corneal"),
    ),
    "testis": (
        ("testis", "testes", "testicular"),
        ("sperm", "testis", "sertoli", "leydig"),
    ),
    "ovary": (("ovary", "ovarian"), ("ovar", "granulosa", "theca", "oocyte")),
    "breast": (("breast", "mammary"), ("mammary", "breast", "lactocyte")),
    "prostate": (("prostate",), ("prostat",)),
    "placenta": (
        ("placenta", "decidua", "chorion"),
        ("trophoblast", "placent", "decidual"),
    ),
    "uterus": (
        ("uterus", "uterine", "endometri", "myometri"),
        ("uterine", "endometrial", "myometrial", "decidual"),
    ),
    "esophagus": (("esophag", "oesophag"), ("esophag", "oesophag")),
    "bladder": (("bladder", "urothel"), ("bladder", "urothelial")),
    "salivary gland": (("salivary", "parotid", "submandibular"), ("salivary",)),
    "oral cavity": (("tongue", "oral", "gingiva", "mouth"), ("tongue", "taste", "oral",
                                                             "odontoblast", "ameloblast")),
    "bone": (
        ("bone", "cartilage", "skeleton"),
        ("osteoblast", "osteoclast", "osteocyte", "chondrocyte"),
    ),
    "adipose": (("adipose", "fat"), ("adipocyte", "adipose")),
    "thymus": (("thymus",), ("thymic", "thymus")),
    # Blood and lymphoid organs: immune types name no tissue, so naming one of these
    # only down-weights types restricted to other tissues.
    "blood": (
        ("blood", "pbmc", "peripheral", "bone marrow", "marrow", "spleen", "lymph node",
         "cord blood", "tonsil", "lymphoid"),
        (),
    ),
    "vasculature": (("vasculature", "vascular", "aorta", "artery", "arterial", "vein"), ()),
}


def match_tissue(text: object) -> str | None:
    """The canonical tissue named by free text, or None when none matches."""
    if not isinstance(text, str) or not text.strip():
        return None  # None, NaN from a table, empty
    t = text.lower()
    # The longest matching word wins: "bone marrow" is blood, not bone.
    best, length = None, 0
    for name, (words, _) in TISSUES.items():
        for w in words:
            if w in t and len(w) > length:
                best, length = name, len(w)
    return best


def restricted_tissues(names: list[str]) -> frozenset[str]:
    """Tissues a cell type is restricted to, from its own and its ancestors' names."""
    text = " | ".join(n.lower() for n in names)
    hits = set()
    for tissue, (_, keywords) in TISSUES.items():
        if any(k in text for k in keywords):
            hits.add(tissue)
    return frozenset(hits)
