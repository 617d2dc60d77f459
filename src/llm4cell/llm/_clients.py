"""Transport to the language models: one small client per provider.

A client sends one :class:`ChatRequest` and returns one :class:`Completion`; it knows
nothing of cells. Failures are sorted into :class:`TransientError` (rate limits, server
errors, timeouts, lost connections: worth retrying) and :class:`PermanentError`
(rejected key, unknown model, malformed request, a reply that is not JSON, such as a
web page at the base URL). Clients never retry by themselves (:mod:`llm4cell.llm._runner`
does, with backoff) and never put a key into a message: every error names the server by
:func:`~llm4cell.llm._options.safe_url` and has the key cut out; ``secrets`` lists what
the runner cuts out of response texts. A base URL holding credentials is refused
(:func:`~llm4cell.llm._options.check_url`), wherever it comes from.
"""

from __future__ import annotations

import inspect
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .._errors import BackendError
from ._options import LLMOptions, check_url, redact, safe_url

__all__ = [
    "AnthropicClient",
    "ChatClient",
    "ChatRequest",
    "Completion",
    "LlamaCppClient",
    "OpenAIClient",
    "PermanentError",
    "TransientError",
    "make_client",
]

OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
ANTHROPIC_DEFAULT_URL = "https://api.anthropic.com"
CHECK_TIMEOUT = 10.0


class TransientError(BackendError):
    """A failure worth retrying (rate limit, server error, timeout, lost connection)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(BackendError):
    """A failure that retrying will not fix (key, model, request)."""


@dataclass(frozen=True)
class ChatRequest:
    """One chat request.

    ``schema`` (a JSON schema) asks for a structured answer; None for free text.
    """

    messages: tuple[tuple[str, str], ...]
    max_tokens: int
    temperature: float = 0.0
    seed: int | None = 0
    schema: dict[str, Any] | None = None
    schema_name: str = "answers"

    def as_messages(self) -> list[dict[str, str]]:
        """The messages as OpenAI-style dicts."""
        return [{"role": r, "content": c} for r, c in self.messages]

    def cache_payload(self) -> dict[str, object]:
        """What identifies this request in the response cache."""
        return {
            "messages": [list(m) for m in self.messages], "max_tokens": self.max_tokens,
            "temperature": self.temperature, "seed": self.seed, "schema": self.schema,
        }


@dataclass(frozen=True)
class Completion:
    """One response."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    cached: bool = False  # served from the response cache


class ChatClient(Protocol):
    """What every provider client provides."""

    provider: str
    model: str
    endpoint: str
    max_concurrency: int | None
    secrets: tuple[str, ...]  # cut out of every response text before it is kept

    def check(self) -> None:
        """Fail fast (:class:`~llm4cell.BackendError`) when the backend cannot answer."""
        ...

    def complete(self, request: ChatRequest, timeout: float) -> Completion:
        """Send one request."""
        ...


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _count(value: object) -> int:
    """A token count as a server gave it (anything else is 0)."""
    try:
        return max(0, int(value or 0))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def check_url_env(var: str) -> str | None:
    """The server address in the environment variable ``var`` (None when unset or empty),
    refused when it holds credentials (:func:`~llm4cell.llm._options.check_url`)."""
    value = os.environ.get(var) or None
    return check_url(value, var) if value else None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        msg = (f"this backend needs the Python package {module!r}; install it with "
               f"pip install 'llm4cell[{extra}]'")
        raise BackendError(msg) from None


# ------------------------------------------------------------------------ OpenAI-compatible

_MODES = ("json_schema", "json_object", "none")


@dataclass
class _Adapt:
    """What a particular server turned out to reject (learned once per client)."""

    mode: str = "json_schema"
    max_tokens_key: str = "max_tokens"
    send_temperature: bool = True
    send_seed: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)


class OpenAIClient:
    """Any OpenAI-compatible chat completions server (OpenAI, vLLM, Ollama, llama.cpp,
    OpenRouter, LM Studio).

    The base URL comes from ``options.base_url``, else ``OPENAI_BASE_URL``, else OpenAI's;
    the key from ``options.api_key``, else the environment variable ``api_key_env``
    (default ``OPENAI_API_KEY``). Local servers need no key.
    """

    provider = "openai"
    max_concurrency: int | None = None

    def __init__(self, model: str, options: LLMOptions) -> None:
        openai = _need("openai", "llm")
        self.model = model
        self._openai = openai
        base = options.base_url or check_url_env("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL
        self.base_url = base.rstrip("/")
        self.endpoint = safe_url(self.base_url)
        env = options.api_key_env or "OPENAI_API_KEY"
        self._key = options.api_key or os.environ.get(env) or None
        self._key_env = env
        self._is_openai = self.endpoint.startswith(OPENAI_DEFAULT_URL)
        self._adapt = _Adapt(mode=options.json_mode if options.json_mode in _MODES else
                             "json_schema")
        self._fixed_mode = options.json_mode != "auto"
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=self._key or "no-key", max_retries=0,
            timeout=options.timeout,
        )

    def _secret(self, text: str) -> str:
        return redact(text, (self._key,))

    @property
    def secrets(self) -> tuple[str, ...]:
        """The key (cut out of response texts)."""
        return (self._key,) if self._key else ()

    def _not_api(self, what: str) -> str:
        return (f"the server at {self.endpoint} answered {what} with something that is not "
                "OpenAI-compatible JSON (a web page?); check --base-url / OPENAI_BASE_URL: "
                "it usually ends in /v1")

    def check(self) -> None:
        """The key is present (for OpenAI itself), the server answers and serves the model."""
        if self._is_openai and not self._key:
            msg = (f"no API key for {self.endpoint}: set {self._key_env} (or --api-key), or "
                   "pass --base-url for a local OpenAI-compatible server")
            raise BackendError(msg)
        o = self._openai
        try:
            models = [str(m.id) for m in self._client.models.list(timeout=CHECK_TIMEOUT)]
        except (json.JSONDecodeError, AttributeError, TypeError):
            raise BackendError(self._not_api("/models")) from None
        except o.AuthenticationError:
            msg = (f"the server at {self.endpoint} rejected the API key; set a valid "
                   f"{self._key_env}")
            raise BackendError(msg) from None
        except (o.APIConnectionError, o.APITimeoutError) as e:
            reason = self._secret(_first_line(e.__cause__ or e))
            msg = (f"cannot reach the OpenAI-compatible server at {self.endpoint} ({reason}); "
                   "start it, or pass --base-url / set OPENAI_BASE_URL")
            raise BackendError(msg) from None
        except o.APIStatusError:
            return  # no /models endpoint: the first request will tell
        if models and self.model not in models:
            shown = self._secret(", ".join(m[:60] for m in models[:8])) + \
                (" ..." if len(models) > 8 else "")
            msg = (f"model {self.model!r} is not served at {self.endpoint} (it serves: {shown}); "
                   "name one of those")
            raise BackendError(msg)

    def _state(self) -> tuple[str, ...]:
        a = self._adapt
        return (a.mode, a.max_tokens_key, str(a.send_temperature), str(a.send_seed))

    def _kwargs(self, request: ChatRequest, timeout: float) -> dict[str, Any]:
        a = self._adapt
        kwargs: dict[str, Any] = {
            "model": self.model, "messages": request.as_messages(), "timeout": timeout,
            a.max_tokens_key: request.max_tokens,
        }
        if a.send_temperature:
            kwargs["temperature"] = request.temperature
        if a.send_seed and request.seed is not None:
            kwargs["seed"] = request.seed
        if request.schema is not None:
            if a.mode == "json_schema":
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": request.schema_name, "schema": request.schema,
                                    "strict": True},
                }
            elif a.mode == "json_object":
                kwargs["response_format"] = {"type": "json_object", "schema": request.schema}
        return kwargs

    def _adapt_to(self, message: str, request: ChatRequest, sent: tuple[str, ...]) -> bool:
        """Learn from a 400/422 what the server rejects; True when there is a change.

        ``sent`` is the adaptation state the failed request was built with: when another
        thread has changed it since, the request is simply sent again.
        """
        m = message.lower()
        a = self._adapt
        with a.lock:
            if self._state() != sent:
                return True
            if request.schema is not None and a.mode != "none" and not self._fixed_mode and (
                "response_format" in m or "json_schema" in m
            ):
                a.mode = _MODES[_MODES.index(a.mode) + 1]
                return True
            if "max_tokens" in m and a.max_tokens_key == "max_tokens":
                a.max_tokens_key = "max_completion_tokens"
                return True
            if "temperature" in m and a.send_temperature:
                a.send_temperature = False
                return True
            if "seed" in m and a.send_seed:
                a.send_seed = False
                return True
        return False

    def complete(self, request: ChatRequest, timeout: float) -> Completion:
        """Send one chat completion request."""
        o = self._openai
        for _ in range(6):  # at most one change per adaptation
            with self._adapt.lock:
                sent = self._state()
                kwargs = self._kwargs(request, timeout)
            try:
                r = self._client.chat.completions.create(**kwargs)
            except json.JSONDecodeError:
                raise PermanentError(self._not_api("a chat request")) from None
            except o.APITimeoutError:
                msg = f"the request timed out after {timeout:g} s"
                raise TransientError(msg) from None
            except o.APIConnectionError as e:
                reason = self._secret(_first_line(e.__cause__ or e))
                msg = f"lost the connection to {self.endpoint} ({reason})"
                raise TransientError(msg) from None
            except o.AuthenticationError:
                msg = f"the server at {self.endpoint} rejected the API key ({self._key_env})"
                raise PermanentError(msg) from None
            except o.NotFoundError:
                msg = f"model {self.model!r} or its endpoint was not found at {self.endpoint}"
                raise PermanentError(msg) from None
            except o.APIStatusError as e:
                status = e.status_code
                # Servers reject unsupported parameters with 400 or 422; llama-cpp-python's
                # server answers 500 with the validation error. Learn and resend at once.
                if status in (400, 422, 500) and self._adapt_to(str(e), request, sent):
                    continue
                text = f"HTTP {status} from {self.endpoint}: {self._secret(_first_line(e))}"
                if status in (408, 429) or status >= 500:
                    raise TransientError(text, _retry_after(e.response.headers)) from None
                msg_0 = f"the server rejected the request ({text})"
                raise PermanentError(msg_0) from None
            return self._completion(r)
        msg = f"the server at {self.endpoint} kept rejecting the request's parameters"
        raise PermanentError(msg)

    def _completion(self, r: Any) -> Completion:
        """A chat completion response as a :class:`Completion`.

        The SDK does not validate what a server sends: a reply without a ``choices`` list
        (a web page, another API's JSON) is refused; an empty list or a missing message
        is an empty answer (the annotator then says why it is unusable).
        """
        choices = getattr(r, "choices", None)
        if not isinstance(choices, list):
            raise PermanentError(self._not_api("a chat request"))
        choice = choices[0] if choices else None
        message = getattr(choice, "message", None)
        content = getattr(message, "content", None)
        usage = getattr(r, "usage", None)
        finish = getattr(choice, "finish_reason", None)
        return Completion(
            text=content if isinstance(content, str) else "",
            prompt_tokens=_count(getattr(usage, "prompt_tokens", 0)),
            completion_tokens=_count(getattr(usage, "completion_tokens", 0)),
            finish_reason=finish if isinstance(finish, str) else None,
        )

    @property
    def json_mode(self) -> str:
        """The structured-output mode in use (learned from the server in ``auto``)."""
        return self._adapt.mode


# ------------------------------------------------------------------------------- Anthropic


class AnthropicClient:
    """Anthropic's Messages API. Structured answers come through a forced tool call whose
    input schema is the answer schema; the key comes from ``ANTHROPIC_API_KEY`` (or
    ``api_key_env``)."""

    provider = "anthropic"
    max_concurrency: int | None = None
    json_mode = "tools"
    tool_name = "record_cell_types"

    def __init__(self, model: str, options: LLMOptions, *, http_client: Any = None) -> None:
        anthropic = _need("anthropic", "llm")
        self.model = model
        self._anthropic = anthropic
        base = options.base_url or check_url_env("ANTHROPIC_BASE_URL") or ANTHROPIC_DEFAULT_URL
        self.endpoint = safe_url(base.rstrip("/"))
        env = options.api_key_env or "ANTHROPIC_API_KEY"
        self._key = options.api_key or os.environ.get(env) or None
        self._key_env = env
        kwargs: dict[str, Any] = {"api_key": self._key or "no-key", "base_url": base,
                                  "max_retries": 0, "timeout": options.timeout}
        if http_client is not None:
            kwargs["http_client"] = http_client
        self._client = anthropic.Anthropic(**kwargs)
        # Recent SDKs dropped sampling parameters (the API sets them per model).
        self._sampling = "temperature" in inspect.signature(
            self._client.messages.create).parameters

    def _secret(self, text: str) -> str:
        return redact(text, (self._key,))

    @property
    def secrets(self) -> tuple[str, ...]:
        """The key (cut out of response texts)."""
        return (self._key,) if self._key else ()

    def check(self) -> None:
        """The key is set and the API answers."""
        if not self._key:
            msg = f"no Anthropic API key: set {self._key_env} (or --api-key)"
            raise BackendError(msg)
        a = self._anthropic
        try:
            self._client.models.list(limit=1, timeout=CHECK_TIMEOUT)
        except a.AuthenticationError:
            msg = f"Anthropic rejected the API key; set a valid {self._key_env}"
            raise BackendError(msg) from None
        except (a.APIConnectionError, a.APITimeoutError) as e:
            reason = self._secret(_first_line(e.__cause__ or e))
            msg = f"cannot reach the Anthropic API at {self.endpoint} ({reason})"
            raise BackendError(msg) from None
        except a.APIStatusError:
            return

    def build(self, request: ChatRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for ``request``."""
        system = "\n\n".join(c for r, c in request.messages if r == "system")
        messages = [{"role": r, "content": c} for r, c in request.messages if r != "system"]
        kwargs: dict[str, Any] = {
            "model": self.model, "max_tokens": request.max_tokens, "messages": messages,
        }
        if self._sampling:
            kwargs["temperature"] = request.temperature
        if system:
            kwargs["system"] = system
        if request.schema is not None:
            kwargs["tools"] = [{
                "name": self.tool_name,
                "description": "Record the cell type answer for every cluster, keyed by id.",
                "input_schema": request.schema,
            }]
            kwargs["tool_choice"] = {"type": "tool", "name": self.tool_name}
        return kwargs

    def complete(self, request: ChatRequest, timeout: float) -> Completion:
        """Send one Messages API request."""
        a = self._anthropic
        try:
            r = self._client.messages.create(**self.build(request), timeout=timeout)
        except json.JSONDecodeError:
            msg = (f"the server at {self.endpoint} did not answer with Anthropic API JSON (a "
                   "web page?); check ANTHROPIC_BASE_URL")
            raise PermanentError(msg) from None
        except a.APITimeoutError:
            msg = f"the request timed out after {timeout:g} s"
            raise TransientError(msg) from None
        except a.APIConnectionError as e:
            reason = self._secret(_first_line(e.__cause__ or e))
            msg = f"lost the connection to {self.endpoint} ({reason})"
            raise TransientError(msg) from None
        except a.AuthenticationError:
            msg = f"Anthropic rejected the API key ({self._key_env})"
            raise PermanentError(msg) from None
        except a.APIStatusError as e:
            status = e.status_code
            text = f"HTTP {status} from {self.endpoint}: {self._secret(_first_line(e))}"
            if status in (408, 429, 529) or status >= 500:
                raise TransientError(text, _retry_after(e.response.headers)) from None
            raise PermanentError(text) from None
        return self.parse(r, structured=request.schema is not None)

    def parse(self, message: Any, *, structured: bool) -> Completion:
        """A Messages API response as a :class:`Completion` (tool input as JSON text)."""
        blocks = list(getattr(message, "content", []) or [])
        text = ""
        if structured:
            for b in blocks:
                if getattr(b, "type", None) == "tool_use" and b.name == self.tool_name:
                    text = json.dumps(b.input, ensure_ascii=False)
                    break
        if not text:
            text = "".join(getattr(b, "text", "") for b in blocks
                           if getattr(b, "type", None) == "text")
        usage = getattr(message, "usage", None)
        return Completion(
            text=text,
            prompt_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            finish_reason=getattr(message, "stop_reason", None),
        )


# ------------------------------------------------------------------------------ llama.cpp


class LlamaCppClient:
    """A local GGUF model run in-process by llama-cpp-python (one request at a time).

    Structured answers use llama.cpp's JSON-schema grammar. A per-request timeout cannot
    interrupt in-process generation; ``max_tokens`` bounds it instead.
    """

    provider = "llamacpp"
    max_concurrency: int | None = 1
    json_mode = "json_object"
    secrets: tuple[str, ...] = ()

    def __init__(self, path: str, options: LLMOptions) -> None:
        self.path = Path(path).expanduser()
        self.model = self.path.name
        self._options = options
        self._llm: Any = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The file's name and size (identifies the model in the cache without hashing
        gigabytes)."""
        try:
            return f"{self.path.name}:{self.path.stat().st_size}"
        except OSError:
            return f"{self.path.name}:missing"

    def check(self) -> None:
        """The file exists, is a GGUF file and loads."""
        if self.path.suffix.lower() != ".gguf":
            msg = f"llamacpp: needs a .gguf model file, got {str(self.path)!r}"
            raise BackendError(msg)
        if not self.path.is_file():
            msg = f"llamacpp: model file {str(self.path)!r} not found; check the path"
            raise BackendError(msg)
        self._load()

    def _load(self) -> Any:
        with self._lock:
            if self._llm is None:
                llama_cpp = _need("llama_cpp", "local")
                try:
                    self._llm = llama_cpp.Llama(
                        model_path=str(self.path), n_ctx=self._options.context_length,
                        seed=self._options.seed if self._options.seed is not None else -1,
                        n_threads=max(1, os.cpu_count() or 1), verbose=False,
                    )
                except (ValueError, RuntimeError, OSError) as e:
                    msg = f"llamacpp: cannot load {str(self.path)!r} ({_first_line(e)})"
                    raise BackendError(msg) from None
            return self._llm

    def complete(self, request: ChatRequest, timeout: float) -> Completion:
        """Generate one answer in-process."""
        llm = self._load()
        kwargs: dict[str, Any] = {
            "messages": request.as_messages(), "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            kwargs["seed"] = request.seed
        if request.schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.schema}
        with self._lock:
            try:
                r = llm.create_chat_completion(**kwargs)
            except ValueError as e:  # e.g. the prompt exceeds the context window
                msg = f"llamacpp: {_first_line(e)}"
                raise PermanentError(msg) from None
        choice = r["choices"][0]
        usage = r.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            finish_reason=choice.get("finish_reason"),
        )


def make_client(kind: str, target: str, options: LLMOptions) -> ChatClient:
    """The client for a provider kind (``openai``, ``anthropic``, ``llamacpp``)."""
    if kind == "openai":
        return OpenAIClient(target, options)
    if kind == "anthropic":
        return AnthropicClient(target, options)
    if kind == "llamacpp":
        return LlamaCppClient(target, options)
    msg = f"no LLM client for {kind!r}"
    raise BackendError(msg)
