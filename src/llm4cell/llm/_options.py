"""Options of the LLM backends and the backend spec grammar.

A backend spec is one string (the ``--backend`` flag)::

    knowledge                          the offline knowledge engine
    random, most-frequent              baselines over a dataset's label set (bench, puzzles)
    openai:MODEL[?key=value&...]       any OpenAI-compatible server
    anthropic:MODEL[?key=value&...]    Anthropic's Messages API
    llamacpp:PATH.gguf[?key=value&...] a local GGUF file, in-process (llama-cpp-python)
    hybrid:<llm spec>                  knowledge candidates and evidence given to the LLM
    consensus:<spec>,<spec>,...        several annotators, agreement on the Cell Ontology

``?key=value`` options override :class:`LLMOptions` for that one backend, e.g.
``openai:qwen2.5:7b?base_url=http://localhost:11434/v1&strategy=cot``. Keys are never
accepted in a spec (specs end up in provenance records): name the environment variable
that holds the key with ``api_key_env=VAR`` instead. Nor in a server address: a
``base_url`` (in a spec, ``--base-url``, ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL`` or a
bench config) with a user name or password (``user:KEY@host``), a credential-like query
parameter (``?key=``, ``?token=``, ...) or anything shaped like a key is refused with one
line that does not repeat it (:func:`url_problem`). Other query parameters (such as
``api-version``) are allowed; :func:`safe_url` leaves them out of everything written.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from .._errors import BackendError

__all__ = [
    "LLMOptions",
    "ParsedSpec",
    "check_url",
    "default_cache_path",
    "parse_spec",
    "redact",
    "safe_url",
    "split_members",
    "url_problem",
]

Strategy = Literal["zero-shot", "cot"]
JsonMode = Literal["auto", "json_schema", "json_object", "tools", "none"]
LLMWhen = Literal["always", "uncertain"]

PROVIDERS = ("openai", "anthropic", "llamacpp")
COMBINERS = ("hybrid", "consensus")
#: Backends that take no argument besides ``knowledge``: the baselines.
BASELINES = ("random", "most-frequent")


class LLMOptions(BaseModel):
    """How LLM backends are called (one object for every LLM backend of a run).

    Parameters
    ----------
    strategy
        ``"zero-shot"``: ranked markers and tissue, one cell type asked per cluster.
        ``"cot"``: two stages, free step-by-step reasoning, then a summary into the
        structured answer.
    batch_size
        Clusters per request. Every id must come back exactly once; ids that do not
        are asked again alone.
    concurrency
        Requests in flight at once (the in-process ``llamacpp:`` backend runs one).
    timeout
        Seconds per request before it counts as failed (and is retried).
    retries
        Further attempts after a rate limit, server error, timeout or lost connection,
        with exponential backoff (``backoff`` seconds, doubling, at most 60).
    repair_attempts
        Further attempts, with the validation error shown to the model, when a single
        cluster's answer is not valid; after them the cluster is ``"unknown"``.
    temperature, seed
        Sampling; temperature 0 and a fixed seed (where the server supports one).
    max_tokens
        Output tokens per cluster in a request (the reasoning stage of ``cot`` gets
        three times as many).
    json_mode
        ``"auto"`` uses the server's structured-output mode: OpenAI's ``json_schema``,
        falling back to llama.cpp's ``json_object`` with a schema, then to plain text
        (parsed robustly); Anthropic uses a forced tool call.
    base_url
        Server address of an OpenAI-compatible server (default: ``OPENAI_BASE_URL``,
        else OpenAI's).
    api_key_env
        Environment variable holding the key (default ``OPENAI_API_KEY`` /
        ``ANTHROPIC_API_KEY``).
    api_key
        The key itself (Python API only; never stored, logged or written).
    cache
        Use the response cache (a repeated run then makes no request).
    cache_path
        SQLite file of the cache (default :func:`default_cache_path`).
    llm_when
        ``hybrid:`` only: ``"always"`` asks the LLM for every cluster, ``"uncertain"``
        only where the knowledge engine's confidence is below ``uncertain_below``.
    uncertain_below
        The confidence threshold of ``llm_when="uncertain"``.
    discuss
        ``consensus:`` only: one further round for clusters the members disagree on,
        in which every LLM member sees the others' answers and reasons.
    prices
        USD per million input and output tokens by model name prefix; overrides the
        shipped table (``llm4cell/data/llm_prices.json``).
    context_length
        ``llamacpp:`` only: context window in tokens.
    name
        Display name of the backend in outputs (default: the spec).
    """

    # hide_input_in_errors: a refused value (a URL with a key) is never echoed by str(error)
    model_config = ConfigDict(extra="forbid", validate_assignment=True,
                              hide_input_in_errors=True)

    strategy: Strategy = "zero-shot"
    batch_size: int = Field(5, ge=1, le=100)
    concurrency: int = Field(4, ge=1, le=64)
    timeout: float = Field(120.0, gt=0)
    retries: int = Field(4, ge=0, le=20)
    backoff: float = Field(1.0, ge=0)
    repair_attempts: int = Field(1, ge=0, le=5)
    temperature: float = Field(0.0, ge=0, le=2)
    seed: int | None = 0
    max_tokens: int = Field(256, ge=16)
    json_mode: JsonMode = "auto"
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: str | None = Field(default=None, repr=False, exclude=True)
    cache: bool = True
    cache_path: Path | None = None
    llm_when: LLMWhen = "always"
    uncertain_below: float = Field(0.5, ge=0, le=1.01)
    discuss: bool = True
    prices: dict[str, tuple[float, float]] = Field(default_factory=dict)
    context_length: int = Field(4096, ge=512)
    name: str | None = None

    @field_validator("base_url")
    @classmethod
    def _no_credentials(cls, v: str | None) -> str | None:
        if v is None:
            return v
        problem = url_problem(v)
        if problem is not None:
            kind = "url_credentials"
            raise PydanticCustomError(kind, url_message("base_url", problem))
        return v

    def public(self) -> dict[str, object]:
        """The options as written to provenance records (no key, safe URL)."""
        out = self.model_dump(mode="json", exclude={"api_key", "prices", "name"})
        out["base_url"] = safe_url(self.base_url) if self.base_url else None
        out["cache_path"] = str(self.cache_path) if self.cache_path else None
        return out


# Options a spec may set (``?key=value``); everything but the key itself.
_SPEC_OPTIONS = set(LLMOptions.model_fields) - {"api_key", "prices", "cache_path"}


@dataclass(frozen=True)
class ParsedSpec:
    """A backend spec split into its parts."""

    kind: str
    target: str = ""
    options: dict[str, str] = field(default_factory=dict)
    members: tuple[str, ...] = ()
    text: str = ""


def split_members(body: str) -> list[str]:
    """The member specs of a ``consensus:`` body (comma-separated)."""
    return [m.strip() for m in body.split(",") if m.strip()]


def parse_spec(spec: str) -> ParsedSpec:
    """Split a backend spec string into kind, target and options.

    Raises
    ------
    BackendError
        For unknown kinds, empty targets, bad options or a key inside the spec.
    """
    text = spec.strip()
    kind, _, rest = text.partition(":")
    kind = kind.strip().lower()
    if kind == "knowledge" or kind in BASELINES:
        if rest.strip():
            msg = f"the {kind} backend takes no argument, got {spec!r}; use --backend {kind}"
            raise BackendError(msg)
        return ParsedSpec(kind=kind, text=text)
    if kind == "hybrid":
        inner = parse_spec(rest)
        if inner.kind not in PROVIDERS:
            msg = (f"hybrid needs one LLM spec (openai:, anthropic: or llamacpp:), got "
                   f"{rest!r}; e.g. --backend hybrid:openai:gpt-4o-mini")
            raise BackendError(msg)
        return ParsedSpec(kind="hybrid", members=(rest.strip(),), text=text)
    if kind == "consensus":
        members = split_members(rest)
        if len(members) < 2:
            msg = (f"consensus needs at least two comma-separated specs, got {rest!r}; e.g. "
                   "--backend consensus:knowledge,openai:gpt-4o-mini")
            raise BackendError(msg)
        for m in members:
            if parse_spec(m).kind == "consensus":
                msg = f"consensus members cannot be consensus specs themselves ({m!r})"
                raise BackendError(msg)
        return ParsedSpec(kind="consensus", members=tuple(members), text=text)
    if kind not in PROVIDERS:
        known = ("knowledge, openai:MODEL, anthropic:MODEL, llamacpp:PATH.gguf, hybrid:SPEC, "
                 "consensus:SPEC,SPEC, random, most-frequent")
        msg = f"unknown backend {spec!r}; available: {known}"
        raise BackendError(msg)
    target, _, query = rest.partition("?")
    target = target.strip()
    if not target:
        what = "PATH.gguf" if kind == "llamacpp" else "MODEL"
        msg = f"backend {spec!r} names no {what.lower()}; use {kind}:{what}"
        raise BackendError(msg)
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in ("api_key", "key", "token") or redact(key) != key or redact(value) != value:
            msg = ("a backend spec must not hold a key (specs are written to outputs); put it "
                   "in an environment variable and name it with api_key_env=VAR")
            raise BackendError(msg)
        if key == "base_url":
            problems = [url_problem(value)]
        else:  # a URL inside another option (a name) is written to outputs as well
            problems = [p for u in _URL_IN_TEXT.findall(value)
                        if (p := url_problem(u)) not in (None, _NOT_HTTP)]
        if any(problems):
            msg = url_message(f"{key} in the backend spec {kind}:...", next(filter(None, problems)))
            raise BackendError(msg)
        if key not in _SPEC_OPTIONS:
            msg = (f"unknown option {key!r} in backend spec {kind}:...; known: "
                   f"{', '.join(sorted(_SPEC_OPTIONS))}")
            raise BackendError(msg)
        options[key] = value
    return ParsedSpec(kind=kind, target=target, options=options, text=text)


def merge_options(base: LLMOptions, overrides: dict[str, str]) -> LLMOptions:
    """``base`` with a spec's ``?key=value`` options applied (validated)."""
    if not overrides:
        return base
    data = base.model_dump(exclude={"api_key"})
    data.update(overrides)
    try:
        merged = LLMOptions.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        value = overrides.get(loc)
        shown = "" if loc == "base_url" or value is None or redact(value) != value else \
            f"={value!r}"
        msg = f"bad backend option {loc}{shown}: {first['msg']}"
        raise BackendError(msg) from None
    if base.api_key is not None:
        merged.api_key = base.api_key
    return merged


def default_cache_path() -> Path:
    """Where the response cache lives: ``$LLM4CELL_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/llm4cell``, else ``~/.cache/llm4cell``; file ``llm_responses.sqlite``."""
    root = os.environ.get("LLM4CELL_CACHE_DIR")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = str(Path(xdg) / "llm4cell") if xdg else str(Path.home() / ".cache" / "llm4cell")
    return Path(root) / "llm_responses.sqlite"


def safe_url(url: str) -> str:
    """``url`` without user info, query string or fragment (which may hold secrets)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


#: Query parameter names that carry credentials (matched anywhere in the name).
_SECRET_PARAM = re.compile(
    r"token|secret|passw|credential|session|bearer|cookie|auth|api.?key|"
    r"(?:^|[^a-z])(?:key|sig|pwd|signature)(?:$|[^a-z])", re.IGNORECASE)


def url_problem(url: str) -> str | None:
    """Why ``url`` may not serve as a server address, or None when it may.

    Refused: a user name or password (``user:KEY@host``), a query parameter whose name
    says it holds a credential (``key``, ``api_key``, ``token``, ``sig``, ...), anything
    shaped like an API key (``sk-...``) in the path, query or fragment, and a scheme other
    than http(s). The reason never repeats the URL or the secret.
    """
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if "@" in parts.netloc:
        return "holds a user name or password (user:password@host)"
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if redact(name) != name or redact(value) != value:
            return "holds something shaped like a key in its query string"
        if _SECRET_PARAM.search(name):
            shown = f" {name!r}" if len(name) <= 24 and name.isprintable() and \
                not set(name) & set("{}") else ""
            return f"holds a credential in its query string (parameter{shown})"
    if redact(parts.path) != parts.path or redact(parts.fragment) != parts.fragment:
        return "holds something shaped like a key"
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return _NOT_HTTP
    return None


_NOT_HTTP = "is not an http:// or https:// address"
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+")


def url_message(where: str, problem: str) -> str:
    """The one-line refusal of a server address (never repeating it)."""
    if problem == _NOT_HTTP:
        return f"{where} {problem}; write it as http://HOST:PORT/v1"
    return (f"{where} {problem}; a URL must not carry a key (server addresses are written "
            "to outputs and logs): put the key in an environment variable and name it with "
            "api_key_env=VAR (--api-key-env VAR)")


def check_url(url: str, where: str) -> str:
    """``url`` when :func:`url_problem` finds nothing wrong with it.

    Raises
    ------
    BackendError
        Naming ``where`` (e.g. ``"OPENAI_BASE_URL"``) and the problem, not the URL.
    """
    problem = url_problem(url)
    if problem is not None:
        raise BackendError(url_message(where, problem))
    return url


_KEY_PATTERNS = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{6,}|sk-ant-[A-Za-z0-9_\-*]{6,}|Bearer\s+\S+|x-api-key[:=]\s*\S+)",
    re.IGNORECASE,
)


def redact(text: str, secrets: tuple[str | None, ...] = ()) -> str:
    """``text`` with the given secrets and anything shaped like an API key removed."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return _KEY_PATTERNS.sub("***", text)
