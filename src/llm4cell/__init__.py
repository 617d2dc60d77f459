"""llm4cell: cell type annotation with curated knowledge, the Cell Ontology and LLMs.

The main entry point is :func:`annotate`; the command line ``llm4cell annotate`` mirrors it.
"""

from __future__ import annotations

from importlib import metadata as _metadata

from ._errors import BackendError, InputError, KnowledgeBaseError, Llm4cellError
from ._records import Annotation, Candidate, MarkerQuery
from .annotation._annotate import annotate, run_annotation
from .annotation._keys import get_provenance
from .annotation._markers import annotate_markers
from .annotation._result import AnnotationResult
from .annotators._base import Annotator
from .annotators._registry import BACKENDS, BackendSpec, get_annotator, show
from .bench._run import run_bench
from .knowledge._catalog import TypeDescription, describe_type, list_types
from .knowledge._engine import KnowledgeBase, load_knowledge
from .llm._options import LLMOptions
from .metrics._score import ScoreResult, score
from .ontology._graph import CellOntology, load_ontology
from .ontology._matcher import OntologyMatch, match_label
from .puzzles._build import build_puzzles
from .puzzles._io import read_puzzles, write_puzzles
from .puzzles._records import Puzzle, PuzzleAnswer
from .puzzles._score import score_puzzles
from .puzzles._solve import solve_puzzles

try:
    __version__ = _metadata.version("llm4cell")
except _metadata.PackageNotFoundError:  # pragma: no cover - source tree without install
    __version__ = "0.0.0"

__all__ = [
    "BACKENDS",
    "Annotation",
    "AnnotationResult",
    "Annotator",
    "BackendError",
    "BackendSpec",
    "Candidate",
    "CellOntology",
    "InputError",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "LLMOptions",
    "Llm4cellError",
    "MarkerQuery",
    "OntologyMatch",
    "Puzzle",
    "PuzzleAnswer",
    "ScoreResult",
    "TypeDescription",
    "__version__",
    "annotate",
    "annotate_markers",
    "build_puzzles",
    "describe_type",
    "get_annotator",
    "get_provenance",
    "list_types",
    "load_knowledge",
    "load_ontology",
    "match_label",
    "read_puzzles",
    "run_annotation",
    "run_bench",
    "score",
    "score_puzzles",
    "show",
    "solve_puzzles",
    "write_puzzles",
]
