"""What llm4cell sends to a language model, written once, in our own words.

Strategies (``LLMOptions.strategy``):

``zero-shot``
    One request per batch: the clusters' ranked markers with species, tissue and any
    context, and the structured answer asked for at once.
``cot``
    Two requests per batch: first free reasoning, step by step, per cluster; then the
    reasoning is summarised into the structured answer.

``hybrid:`` adds, per cluster, the knowledge engine's candidates with their scores and
matched markers and the engine's answer, and lets the model choose among them or propose
another type with a reason. The consensus discussion round shows a model the other
members' answers and reasons. A repair turn shows the model why its answer was unusable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from .._records import Annotation, MarkerQuery

__all__ = [
    "SYSTEM",
    "cluster_block",
    "discussion_prompt",
    "format_instructions",
    "hybrid_block",
    "reasoning_prompt",
    "repair_prompt",
    "summary_prompt",
    "task_prompt",
]

SYSTEM = (
    "You are an expert in single-cell genomics and cell biology. You identify cell types "
    "from the marker genes of cell clusters and name them with Cell Ontology terms "
    "where you can. You answer only in the format you are asked for."
)


def _where(q: MarkerQuery) -> str:
    tissue = q.tissue or "tissue not given"
    parts = [f"{q.species} {tissue}"]
    if q.context:
        parts.append(q.context)
    if q.n_cells:
        parts.append(f"{q.n_cells} cells")
    return "; ".join(parts)


def cluster_block(q: MarkerQuery, n_genes: int) -> str:
    """One cluster as shown to the model: id, origin and ranked markers."""
    genes = ", ".join(q.genes[:n_genes]) or "(none)"
    return f'Cluster id "{q.id}" ({_where(q)}). Markers, most specific first: {genes}.'


def hybrid_block(q: MarkerQuery, n_genes: int, knowledge: Annotation) -> str:
    """A cluster with the knowledge engine's candidates and answer."""
    lines = [cluster_block(q, n_genes)]
    if knowledge.candidates:
        lines.append("  Candidates from a curated marker database (higher score = stronger "
                      "enrichment of the markers):")
        for k, c in enumerate(knowledge.candidates, 1):
            genes = ", ".join(c.matched_genes[:6]) or "none"
            lines.append(f"  {k}. {c.label} ({c.ontology_id}); score {c.score:.2f}; "
                         f"matched markers: {genes}")
    else:
        lines.append("  The curated marker database has no candidate for these markers.")
    answer = (f"{knowledge.label} ({knowledge.ontology_id}), confidence "
              f"{knowledge.confidence:.2f}" if knowledge.ontology_id else "unknown")
    lines.append(f"  The database's own answer: {answer}.")
    return "\n".join(lines)


def format_instructions(ids: Sequence[str]) -> str:
    """How to answer: the JSON layout and the exact ids."""
    example = {"answers": {"<cluster id>": {
        "cell_type": "<cell type name>", "confidence": "<number from 0 to 1>",
        "reasoning": "<one short sentence>",
        "alternatives": ["<up to 3 other likely cell types>"]}}}
    id_list = ", ".join(json.dumps(i) for i in ids)
    return (
        "Reply with only this JSON object, no other text:\n"
        f"{json.dumps(example)}\n"
        f"Give exactly one entry for each of these cluster ids, written exactly as shown: "
        f"{id_list}. Use \"unknown\" as cell_type when the markers do not identify a type."
    )


def task_prompt(blocks: Sequence[str], ids: Sequence[str], *, hybrid: bool = False) -> str:
    """The zero-shot request (also stage two of ``cot`` without the blocks)."""
    if hybrid:
        head = (
            "Identify the cell type of each cluster below. Each comes with candidates from a "
            "curated marker database. Choose the candidate the markers support best, or, "
            "if the markers clearly point to another cell type, name that one and say why. "
            "Prefer the most specific type the evidence supports."
        )
    else:
        head = (
            "Identify the cell type of each cluster below from its marker genes. Give the "
            "most specific cell type the markers support, a confidence between 0 and 1 "
            "that the type is right, one sentence of reasoning naming the decisive "
            "markers, and up to three alternatives."
        )
    return f"{head}\n\n" + "\n".join(blocks) + "\n\n" + format_instructions(ids)


def reasoning_prompt(blocks: Sequence[str], *, hybrid: bool = False) -> str:
    """Stage one of ``cot``: reason step by step, no format imposed."""
    extra = (" Weigh the database candidates given for each cluster, and say whether you "
             "agree with the database's answer.") if hybrid else ""
    return (
        "Identify the cell type of each cluster below from its marker genes. Think step by "
        "step for each cluster: which lineage the markers point to, which markers "
        "distinguish between the possible subtypes, and what the tissue makes likely. "
        f"End each cluster with the single most likely cell type.{extra}\n\n"
        + "\n".join(blocks)
    )


def summary_prompt(ids: Sequence[str]) -> str:
    """Stage two of ``cot``: summarise the reasoning into the structured answer."""
    return (
        "Now summarise your conclusions. For each cluster give the cell type you concluded, "
        "your confidence between 0 and 1, one sentence of reasoning and up to three "
        "alternatives.\n" + format_instructions(ids)
    )


def discussion_prompt(
    q: MarkerQuery, n_genes: int, own: str, others: Sequence[tuple[str, str, str]]
) -> str:
    """The consensus round: one cluster, this model's answer and the others'."""
    lines = [
        "Several annotators disagreed on the cell type of this cluster.",
        cluster_block(q, n_genes),
        f"Your previous answer: {own}.",
        "The other annotators answered:",
    ]
    lines += [f"- {name}: {label}" + (f" (reason: {why})" if why else "")
              for name, label, why in others]
    lines.append(
        "Consider their answers and reasons against the markers. Keep your answer or change "
        "it, whichever the markers support best.\n" + format_instructions([q.id])
    )
    return "\n".join(lines)


def repair_prompt(problem: str, ids: Sequence[str]) -> str:
    """The follow-up after an unusable answer."""
    return (f"That answer could not be used: {problem}. Answer again.\n"
            + format_instructions(ids))
