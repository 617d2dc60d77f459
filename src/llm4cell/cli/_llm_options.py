"""``--backend`` and the LLM flags, declared once for every command that takes them.

A command takes the flags with the :func:`llm_flags` decorator: it adds them to the
command's signature (typer reads parameters from :func:`inspect.signature`, which honours
``__signature__``), and the wrapper hands the values to the command as one
:class:`LLMFlags`, whose :meth:`LLMFlags.options` turns them into :class:`LLMOptions`.
``llm4cell puzzles solve`` takes a subset (it has no batches, strategies or combiners)
and words ``--max-tokens`` for puzzles.
"""

from __future__ import annotations

import enum
import functools
import inspect
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from .._errors import InputError
from ..llm._options import LLMOptions
from ..llm._runner import load_prices, usage_totals

__all__ = ["BackendOpt", "LLMFlags", "llm_flags", "usage_line"]

PANEL = "LLM backends"

BackendOpt = Annotated[str, typer.Option(
    help="Backend spec: knowledge (offline default), openai:MODEL, anthropic:MODEL, "
         "llamacpp:PATH.gguf, hybrid:SPEC, consensus:SPEC,SPEC,...")]


class StrategyChoice(str, enum.Enum):
    """``--strategy``."""

    zero_shot = "zero-shot"
    cot = "cot"


class WhenChoice(str, enum.Enum):
    """``--llm-when``."""

    always = "always"
    uncertain = "uncertain"


class JsonModeChoice(str, enum.Enum):
    """``--json-mode``."""

    auto = "auto"
    json_schema = "json_schema"
    json_object = "json_object"
    none = "none"


_DEFAULT = {k: f.default for k, f in LLMOptions.model_fields.items()}


@dataclass(frozen=True)
class _Flag:
    """One LLM flag: parameter name, type, default and help (``decls`` when the flag is
    not spelled from the name, e.g. ``--no-cache``)."""

    name: str
    type: Any
    default: Any
    help: str
    decls: tuple[str, ...] = ()
    show_default: bool = True

    def parameter(self, help_text: str | None = None) -> inspect.Parameter:
        """The ``inspect.Parameter`` typer turns into the option."""
        option = typer.Option(*self.decls, help=help_text or self.help, rich_help_panel=PANEL,
                              show_default=self.show_default)
        return inspect.Parameter(self.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                 default=self.default, annotation=Annotated[self.type, option])


#: The LLM flags, in the order ``--help`` lists them. Numeric defaults come from
#: LLMOptions, so the CLI and the Python API cannot drift.
FLAGS: tuple[_Flag, ...] = (
    _Flag("base_url", str | None, None,
          "OpenAI-compatible server URL (default: OPENAI_BASE_URL, else OpenAI)."),
    _Flag("api_key_env", str | None, None,
          "Environment variable holding the API key (default OPENAI_API_KEY / "
          "ANTHROPIC_API_KEY). Keys are never written anywhere."),
    _Flag("api_key", str | None, None,
          "API key (better: the environment variable, which stays out of shell history). "
          "Never written to outputs or logs.", show_default=False),
    _Flag("strategy", StrategyChoice, StrategyChoice.zero_shot,
          "zero-shot, or cot (reason step by step, then summarise)."),
    _Flag("batch_size", int, _DEFAULT["batch_size"], "Clusters per request."),
    _Flag("concurrency", int, _DEFAULT["concurrency"], "Requests in flight at once."),
    _Flag("timeout", float, _DEFAULT["timeout"], "Seconds per request."),
    _Flag("retries", int, _DEFAULT["retries"],
          "Retries after rate limits, server errors and timeouts (exponential backoff)."),
    _Flag("max_tokens", int, _DEFAULT["max_tokens"], "Output tokens per cluster."),
    _Flag("json_mode", JsonModeChoice, JsonModeChoice.auto,
          "Structured-output mode of the server (auto detects it)."),
    _Flag("cache", Path | None, None,
          "Response cache file (default: $LLM4CELL_CACHE_DIR or ~/.cache/llm4cell)."),
    _Flag("no_cache", bool, False, "Bypass the response cache.", ("--no-cache",)),
    _Flag("llm_when", WhenChoice, WhenChoice.always,
          "hybrid: ask the LLM always, or only where the knowledge confidence is low."),
    _Flag("uncertain_below", float, _DEFAULT["uncertain_below"],
          "hybrid with --llm-when uncertain: the confidence threshold."),
    _Flag("no_discuss", bool, False, "consensus: skip the discussion round.",
          ("--no-discuss",)),
    _Flag("prices", Path | None, None,
          "Price table (JSON/TOML, USD per million tokens) overriding the shipped one."),
)
_BY_NAME = {f.name: f for f in FLAGS}


@dataclass(frozen=True)
class LLMFlags:
    """The LLM flags of one command line (a flag the command lacks has its default)."""

    values: Mapping[str, object]

    def __getitem__(self, name: str) -> object:
        return self.values[name] if name in self.values else _BY_NAME[name].default

    def options(self, backend: str, *, offline: Collection[str] = ("knowledge",)
                ) -> LLMOptions | None:
        """:class:`LLMOptions` from the flags; None for an ``offline`` backend (whose
        flags are not checked, as they are not used).

        Raises
        ------
        InputError
            Naming the flag, when a value is out of range or the price table unreadable.
        """
        if backend.strip().lower() in offline:
            return None
        data = {f.name: self[f.name] for f in FLAGS}
        data = {k: (v.value if isinstance(v, enum.Enum) else v) for k, v in data.items()}
        prices = data.pop("prices")
        data["cache_path"] = data.pop("cache")
        data["cache"] = not data.pop("no_cache")
        data["discuss"] = not data.pop("no_discuss")
        if prices is not None:
            data["prices"] = load_prices(prices)  # type: ignore[arg-type]
        try:
            return LLMOptions.model_validate(data)
        except ValidationError as e:
            first = e.errors()[0]
            msg = f"--{str(first['loc'][0]).replace('_', '-')}: {first['msg']}"
            raise InputError(msg) from None


F = TypeVar("F", bound=Callable[..., Any])


def llm_flags(*, only: Collection[str] | None = None,
              help_text: Mapping[str, str] | None = None) -> Callable[[F], F]:
    """Give a command the LLM flags (all, or ``only`` these) before its ``--debug``.

    The command declares a keyword-only parameter ``llm: LLMFlags`` and receives the
    values there. ``help_text`` rewords flags for this command.
    """
    chosen = [f for f in FLAGS if only is None or f.name in only]
    unknown = set(only or ()) - set(_BY_NAME) | set(help_text or ()) - set(_BY_NAME)
    if unknown:
        msg = f"no LLM flag named {sorted(unknown)}"
        raise ValueError(msg)
    added = [f.parameter((help_text or {}).get(f.name)) for f in chosen]
    names = [p.name for p in added]

    def decorate(command: F) -> F:
        sig = inspect.signature(command, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "llm"]
        at = next((i for i, p in enumerate(own) if p.name == "debug"), len(own))
        params = [*own[:at], *added, *own[at:]]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            flags = LLMFlags({n: kwargs.pop(n) for n in names if n in kwargs})
            return command(*args, llm=flags, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper  # type: ignore[return-value]

    return decorate


def _has_usage(x: object) -> bool:
    if isinstance(x, dict):
        return isinstance(x.get("usage"), dict) or any(_has_usage(v) for v in x.values())
    if isinstance(x, list):
        return any(_has_usage(v) for v in x)
    return False


def usage_line(provenance: object) -> str | None:
    """One line of LLM accounting from a provenance record (summed over members), or
    None when nothing was asked of an LLM."""
    if not _has_usage(provenance):
        return None
    t = usage_totals(provenance)  # type: ignore[arg-type]
    line = (f"LLM: {int(t['requests'])} requests, {int(t['cache_hits'])} cache hits, "
            f"{int(t['retries'])} retries, {int(t['prompt_tokens']):,} prompt + "
            f"{int(t['completion_tokens']):,} completion tokens")
    if t["cost_usd"] == t["cost_usd"]:  # not NaN: some price is known
        line += f", cost ${t['cost_usd']:.4f}"
    return line
