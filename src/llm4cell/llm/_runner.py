"""Sending requests: response cache, retries with backoff, timeouts, bounded concurrency,
token and cost accounting.

:class:`RequestRunner` wraps one :class:`~llm4cell.llm._clients.ChatClient`. A request
whose answer is in the cache is not sent. Otherwise it is sent with a per-request
timeout; rate limits, server errors, timeouts and lost connections are retried with
exponential backoff (honouring ``Retry-After``), and every usable response is cached as
soon as it arrives, so a run that fails half-way resumes where it stopped.

What is usable is the caller's to say (``accept``): an answer that did not validate is
not cached (and a cached one that does not validate is asked again), so a run against a
broken server, once the server is fixed, asks again instead of repeating ``unknown``.
The client's secrets (its API key) are cut out of every response text before it is
cached or returned, so a server that echoes the key cannot get it written anywhere.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from .._errors import BackendError, InputError
from ._cache import CachedResponse, ResponseCache, cache_key
from ._clients import ChatClient, ChatRequest, Completion, PermanentError, TransientError
from ._options import LLMOptions, default_cache_path

#: Decides whether a response is usable (cached, served from the cache).
Accept = Callable[[Completion], bool]

__all__ = ["RequestRunner", "RunStats", "load_prices", "price_for", "run_parallel",
           "usage_totals"]

MAX_BACKOFF = 60.0
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class RunStats:
    """What a runner did (for provenance and benchmarks).

    ``requests`` counts requests sent (retries included), ``answered`` those that got a
    response, ``cache_hits`` requests answered by the cache; tokens are those of the sent
    requests (``cached_*``: of the cache hits).
    """

    requests: int = 0
    answered: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    peak_in_flight: int = 0
    seconds_waiting: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        """Plain dict (rounded seconds)."""
        out = asdict(self)
        out["seconds_waiting"] = round(self.seconds_waiting, 3)
        return out


def load_prices(path: str | Path | None = None) -> dict[str, tuple[float, float]]:
    """The price table (USD per million input and output tokens by model prefix).

    Without ``path``: the shipped table. With it: a JSON or TOML file of the same layout
    (``{provider: {prefix: [input, output]}}`` or a flat ``{prefix: [input, output]}``).
    """
    if path is None:
        text = resources.files("llm4cell").joinpath("data/llm_prices.json").read_text("utf-8")
        raw = json.loads(text)
    else:
        p = Path(path)
        try:
            text = p.read_text("utf-8")
        except OSError as e:
            msg = f"cannot read the price table {str(p)!r} ({e.strerror}); check the path"
            raise InputError(msg) from None
        try:
            if p.suffix.lower() == ".toml":
                if sys.version_info >= (3, 11):
                    import tomllib
                else:  # pragma: no cover - Python 3.10
                    import tomli as tomllib

                raw = tomllib.loads(text)
            else:
                raw = json.loads(text)
        except ValueError as e:
            msg = f"the price table {str(p)!r} is not valid {p.suffix[1:] or 'JSON'} ({e})"
            raise InputError(msg) from None
    out: dict[str, tuple[float, float]] = {}

    def add(prefix: str, value: object) -> None:
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(isinstance(v, (int, float)) for v in value)):
            msg = (f"price of {prefix!r} must be [input, output] USD per million tokens, "
                   f"got {value!r}")
            raise InputError(msg)
        out[prefix] = (float(value[0]), float(value[1]))

    for key, value in raw.items():
        if key.startswith("_"):
            continue
        if isinstance(value, dict):
            for prefix, v in value.items():
                add(prefix, v)
        else:
            add(key, value)
    return out


def price_for(model: str, prices: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    """The price of ``model``: the longest matching name prefix (after any ``vendor/``)."""
    name = model.split("/")[-1].lower()
    best = None
    for prefix, value in prices.items():
        if name.startswith(prefix.lower()) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, value)
    return best[1] if best else None


class RequestRunner:
    """Sends requests for one client through the cache, with retries and accounting.

    Parameters
    ----------
    client
        The provider client.
    options
        Timeout, retries, backoff, cache and price settings.
    """

    def __init__(self, client: ChatClient, options: LLMOptions) -> None:
        self.client = client
        self.options = options
        self.stats = RunStats()
        self._lock = threading.Lock()
        self._in_flight = 0
        self.cache = (
            ResponseCache(options.cache_path or default_cache_path()) if options.cache else None
        )
        prices = {} if client.provider == "llamacpp" or _is_local(client.endpoint) else \
            load_prices()
        prices.update(options.prices)
        self.price = price_for(client.model, prices)

    def _key(self, request: ChatRequest) -> str:
        return cache_key({
            "provider": self.client.provider, "endpoint": self.client.endpoint,
            "model": self.client.model, **request.cache_payload(),
        })

    def _clean(self, text: str) -> str:
        """``text`` without the client's secrets (exact strings only: the text stays
        parseable)."""
        for secret in getattr(self.client, "secrets", ()):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text

    def complete(self, request: ChatRequest, accept: Accept | None = None) -> Completion:
        """The response to ``request``, from the cache or the server.

        ``accept`` says whether a response is usable: only usable responses are cached,
        and a cached response it refuses is asked again. Without it every response is.

        Raises
        ------
        BackendError
            When the server still fails after the retries, or rejects the request.
        """
        key = self._key(request)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                done = Completion(self._clean(hit.text), hit.prompt_tokens,
                                  hit.completion_tokens, hit.finish_reason, cached=True)
                if accept is None or accept(done):
                    with self._lock:
                        self.stats.cache_hits += 1
                        self.stats.cached_prompt_tokens += hit.prompt_tokens
                        self.stats.cached_completion_tokens += hit.completion_tokens
                    return done
        result = self._send(request)
        if self.cache is not None and (accept is None or accept(result)):
            self.cache.put(key, self.client.provider, self.client.model, CachedResponse(
                result.text, result.prompt_tokens, result.completion_tokens,
                result.finish_reason))
        return result

    def _send(self, request: ChatRequest) -> Completion:
        """Send ``request`` with retries and backoff; the response without secrets."""
        opts = self.options
        attempt = 0
        while True:
            with self._lock:
                self.stats.requests += 1
                self._in_flight += 1
                self.stats.peak_in_flight = max(self.stats.peak_in_flight, self._in_flight)
            try:
                result = self.client.complete(request, opts.timeout)
            except TransientError as e:
                if attempt >= opts.retries:
                    with self._lock:
                        self.stats.failures += 1
                    msg = f"{e} (gave up after {attempt + 1} attempts)"
                    raise BackendError(msg) from None
                delay = min(MAX_BACKOFF, opts.backoff * 2**attempt) * (0.75 + 0.5 * random.random())
                if e.retry_after is not None:
                    delay = max(delay, min(MAX_BACKOFF, e.retry_after))
                with self._lock:
                    self.stats.retries += 1
                    self.stats.seconds_waiting += delay
                attempt += 1
                time.sleep(delay)
                continue
            except PermanentError:
                with self._lock:
                    self.stats.failures += 1
                raise
            finally:
                with self._lock:
                    self._in_flight -= 1
            break
        with self._lock:
            self.stats.answered += 1
            self.stats.prompt_tokens += result.prompt_tokens
            self.stats.completion_tokens += result.completion_tokens
        return replace(result, text=self._clean(result.text))

    def cost(self) -> float | None:
        """USD spent on the sent requests (None without a price entry)."""
        if self.price is None:
            return None
        p_in, p_out = self.price
        s = self.stats
        return round((s.prompt_tokens * p_in + s.completion_tokens * p_out) / 1e6, 6)

    def cost_saved(self) -> float | None:
        """USD the cache hits would have cost (None without a price entry)."""
        if self.price is None:
            return None
        p_in, p_out = self.price
        s = self.stats
        return round((s.cached_prompt_tokens * p_in + s.cached_completion_tokens * p_out) / 1e6,
                     6)

    def concurrency(self) -> int:
        """Requests in flight at once for this client."""
        cap = self.client.max_concurrency
        return min(self.options.concurrency, cap) if cap else self.options.concurrency

    def provenance(self) -> dict[str, object]:
        """Accounting for provenance records."""
        return {
            **self.stats.as_dict(),
            "cost_usd": self.cost(),
            "cost_saved_by_cache_usd": self.cost_saved(),
            "price_per_million_tokens": list(self.price) if self.price else None,
            "cache_path": str(self.cache.path) if self.cache is not None else None,
        }


def _is_local(endpoint: str) -> bool:
    return any(h in endpoint for h in ("://127.", "://localhost", "://0.0.0.0", "://[::1]"))


def run_parallel(
    fn: Callable[[T], R], items: Sequence[T], concurrency: int,
    on_done: Callable[[int], None] | None = None,
) -> list[R]:
    """``[fn(x) for x in items]`` with at most ``concurrency`` calls at once.

    The first exception cancels what has not started and is raised once the running
    calls finish (their responses are in the cache by then).
    """
    if concurrency <= 1 or len(items) <= 1:
        out = []
        for x in items:
            out.append(fn(x))
            if on_done is not None:
                on_done(1)
        return out
    results: dict[int, R] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="llm4cell-llm") as pool:
        futures = {pool.submit(fn, x): i for i, x in enumerate(items)}
        pending: Iterable = futures
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in done:
                exc = f.exception()
                if exc is not None:
                    for p in pending:
                        p.cancel()
                    wait(pending)
                    raise exc
                results[futures[f]] = f.result()
                if on_done is not None:
                    on_done(1)
    return [results[i] for i in range(len(items))]


def usage_totals(prov: object) -> dict[str, float]:
    """Requests, cache hits, tokens and cost summed over every ``usage`` record in ``prov``."""
    found: list[Mapping[str, Any]] = []

    def walk(x: object) -> None:
        if isinstance(x, dict):
            if isinstance(x.get("usage"), dict):
                found.append(x["usage"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(prov)
    keys = ("requests", "cache_hits", "retries", "prompt_tokens", "completion_tokens",
            "cost_usd")
    totals = {k: float(sum(float(u.get(k) or 0) for u in found)) for k in keys}
    if not any(u.get("cost_usd") not in (None, "") for u in found):
        totals["cost_usd"] = float("nan")
    return totals
