"""The structured answer an LLM gives per cluster, its JSON schema, and strict parsing.

An answer is one JSON object keyed by query id::

    {"answers": {"<id>": {"cell_type": "...", "confidence": 0.8,
                          "reasoning": "...", "alternatives": ["...", "..."]}}}

The schema sent with a request lists exactly the ids asked as required properties, so a
server with constrained decoding (llama.cpp, OpenAI structured outputs, Anthropic tool
input) cannot drop or invent one. Parsing never trusts that: every asked id must come
back exactly once (duplicate JSON keys are detected, not silently overwritten), ids are
opaque strings matched exactly as written (never by position, never after stripping
spaces or changing case: ``"A "`` is not ``"A"``; an integer id in a list item, ``"id": 3``,
is the string ``"3"``), and each item is validated. Text without JSON
mode is searched for the JSON object (code fences and prose around it are tolerated);
a list of items each carrying an ``"id"`` is accepted too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["ClusterAnswer", "ParsedAnswers", "answer_schema", "parse_answers"]

MAX_ALTERNATIVES = 3
MAX_REASONING_CHARS = 400


class ClusterAnswer(BaseModel):
    """One cluster's answer as the model gives it."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    cell_type: str = Field(
        min_length=1, validation_alias=AliasChoices("cell_type", "celltype", "cell type",
                                                    "label", "answer"))
    confidence: float = Field(ge=0.0, le=1.0)
    reasoning: str = ""
    alternatives: list[str] = Field(default_factory=list)

    @field_validator("cell_type")
    @classmethod
    def _strip(cls, v: str) -> str:
        v = " ".join(v.split()).strip(" .")
        if not v:
            msg = "cell_type is empty"
            raise ValueError(msg)
        return v

    @field_validator("confidence", mode="before")
    @classmethod
    def _percent(cls, v: object) -> object:
        # "85%" is read as 0.85; a bare number must already lie in [0, 1].
        if isinstance(v, str):
            text = v.strip()
            try:
                return float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
            except ValueError:
                return v
        return v

    @field_validator("alternatives", mode="before")
    @classmethod
    def _alts(cls, v: object) -> object:
        if v is None:
            return []
        if isinstance(v, str):
            v = [x for x in re.split(r"[;,]", v) if x.strip()]
        if isinstance(v, list):
            return [str(x).strip() for x in v if str(x).strip()][:MAX_ALTERNATIVES]
        return v


def _item_schema(lengths: bool) -> dict[str, Any]:
    text: dict[str, Any] = {"type": "string"}
    reason: dict[str, Any] = {"type": "string"}
    if lengths:  # grammar-constrained servers: bound the output
        text = {"type": "string", "minLength": 1, "maxLength": 80}
        reason = {"type": "string", "maxLength": MAX_REASONING_CHARS}
    return {
        "type": "object",
        "properties": {
            "cell_type": text,
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "reasoning": reason,
            "alternatives": {"type": "array", "items": text, "maxItems": MAX_ALTERNATIVES},
        },
        "required": ["cell_type", "confidence", "reasoning", "alternatives"],
        "additionalProperties": False,
    }


def answer_schema(ids: list[str], *, lengths: bool = False) -> dict[str, Any]:
    """The JSON schema of an answer for exactly these query ids.

    ``lengths`` adds string length bounds (for grammar-constrained local servers; OpenAI's
    strict mode does not accept them).
    """
    item = _item_schema(lengths)
    return {
        "type": "object",
        "properties": {
            "answers": {
                "type": "object",
                "properties": {i: item for i in ids},
                "required": list(ids),
                "additionalProperties": False,
            }
        },
        "required": ["answers"],
        "additionalProperties": False,
    }


@dataclass
class ParsedAnswers:
    """The valid answers by id, and why each other asked id has none."""

    answers: dict[str, ClusterAnswer] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    extra_ids: list[str] = field(default_factory=list)


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dups = []
    for k, v in pairs:
        if k in out:
            dups.append(k)
        out[k] = v
    if dups:
        out["\x00duplicates"] = dups
    return out


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def _loads(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_no_duplicates)


def _extract_json(text: str) -> Any:
    """The JSON value in ``text``: whole, inside a code fence, or the outermost braces."""
    stripped = text.strip()
    tries = [stripped]
    tries += [m.group(1).strip() for m in _FENCE.finditer(text)]
    for open_, close in (("{", "}"), ("[", "]")):
        a, b = stripped.find(open_), stripped.rfind(close)
        if 0 <= a < b:
            tries.append(stripped[a : b + 1])
    for t in tries:
        if not t:
            continue
        try:
            return _loads(t)
        except ValueError:
            continue
    msg = "no JSON object found in the answer" if "{" not in text else \
        "the answer is not valid JSON (cut off, or text inside the JSON)"
    raise ValueError(msg)


_ID_KEYS = ("id", "cluster", "cluster_id", "query_id")


def _id_text(key: object) -> str:
    """An id as given in a list item, as the exact string it stands for.

    Strings are kept as written; integers (``3``, or ``3.0`` from a JSON number) are the
    decimal string; anything else is its ``str``.
    """
    if isinstance(key, str):
        return key
    if isinstance(key, float) and key.is_integer():
        return str(int(key))
    return str(key)
_ITEM_KEYS = {"cell_type", "celltype", "cell type", "label", "answer"}


def _short(e: ValidationError) -> str:
    first = e.errors()[0]
    loc = ".".join(str(x) for x in first["loc"]) or "answer"
    return f"{loc}: {first['msg']}"


def parse_answers(text: str, ids: list[str]) -> ParsedAnswers:
    """Parse a model's answer for the queries ``ids``.

    Returns every valid answer keyed by its id and, for every other asked id, the
    reason it has none (missing, duplicated, invalid). A bare item without an id is
    accepted only when a single id was asked (there is nothing to shift then).
    """
    out = ParsedAnswers()
    asked = [str(i) for i in ids]
    try:
        data = _extract_json(text)
    except ValueError as e:
        out.problems = dict.fromkeys(asked, str(e))
        return out
    if isinstance(data, dict) and "answers" in data and isinstance(data["answers"], (dict, list)):
        data = data["answers"]
    items: dict[str, Any] = {}
    duplicated: set[str] = set()
    if isinstance(data, list):
        for item in data:
            key = next((item[k] for k in _ID_KEYS if isinstance(item, dict) and k in item), None)
            if key is None:
                if len(asked) == 1 and len(data) == 1 and isinstance(item, dict):
                    key = asked[0]
                else:
                    continue  # an item without an id is never assigned by position
            key = _id_text(key)
            if key in items:
                duplicated.add(key)
            items[key] = item
    elif isinstance(data, dict):
        duplicated.update(data.pop("\x00duplicates", []))
        if len(asked) == 1 and _ITEM_KEYS & set(data) and asked[0] not in data:
            items[asked[0]] = data
        else:
            items = dict(data)
    else:
        out.problems = dict.fromkeys(asked, "the answer is not a JSON object")
        return out
    for i in asked:
        if i in duplicated:
            out.problems[i] = f"id {i!r} was answered more than once"
            continue
        if i not in items:
            out.problems[i] = f"id {i!r} is missing from the answer"
            continue
        item = items[i]
        if isinstance(item, dict):
            item = {k: v for k, v in item.items() if k != "\x00duplicates"}
        try:
            out.answers[i] = ClusterAnswer.model_validate(item)
        except ValidationError as e:
            out.problems[i] = f"invalid answer for id {i!r} ({_short(e)})"
    out.extra_ids = [k for k in items if k not in set(asked)]
    return out
