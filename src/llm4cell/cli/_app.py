"""The typer app, its consoles and error handling, options shared by every command, and
the console-script entry point :func:`main`.

Every error a user sees is one stderr line ``error: MESSAGE`` and exit code 2: llm4cell's
own errors through :func:`fail`, usage errors (unknown option, bad value, missing argument)
through :class:`OneLineErrors`.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from typing import Annotated, Any, NoReturn

import typer
import typer.core
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from typer.core import TyperGroup

__all__ = ["DebugOpt", "SpeciesChoice", "app", "err", "fail", "main", "out", "progress_bar"]

#: Messages, progress and the paths written go to stderr; result tables to stdout.
err = Console(stderr=True)
out = Console()

# typer vendors click (typer._click) in recent versions and uses click itself before.
_click: Any = getattr(typer.core, "_click", None)
if _click is None:  # pragma: no cover - older typer
    import click as _click


def error_line(message: str) -> None:
    """Print ``error: MESSAGE`` on one stderr line (markup in MESSAGE shown as typed)."""
    text = escape(" ".join(message.split()))
    err.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)


def fail(e: BaseException, debug: bool) -> NoReturn:
    """Leave with ``e`` as one error line and exit code 2 (``--debug``: the traceback)."""
    if debug:
        raise e
    error_line(str(e))
    raise typer.Exit(code=2)


@contextlib.contextmanager
def _one_line_usage_errors() -> Iterator[None]:
    try:
        yield
    except _click.exceptions.UsageError as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # the help is the answer
            raise
        where = e.ctx.command_path if e.ctx is not None else "llm4cell"
        error_line(f"{e.format_message()} (see {where} --help)")
        raise typer.Exit(e.exit_code) from None


class OneLineErrors(TyperGroup):
    """Usage errors (unknown option, bad value, missing argument) as one stderr line and
    exit code 2, as every other error of llm4cell."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        """Parse the command line; a usage error becomes one line."""
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        """Run the command; a usage error of a subcommand becomes one line."""
        with _one_line_usage_errors():
            return super().invoke(ctx)


app = typer.Typer(
    cls=OneLineErrors,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Cell type annotation with curated knowledge, the Cell Ontology and language models.",
)


@app.callback()
def _root() -> None:
    """llm4cell: Cell Ontology-grounded cell type labels, offline by default."""


class SpeciesChoice(str, enum.Enum):
    """``--species``: the species of the gene symbols."""

    human = "human"
    mouse = "mouse"


DebugOpt = Annotated[bool, typer.Option("--debug", help="Show full tracebacks.")]


def progress_bar() -> Progress:
    """A transient progress bar on stderr: description, bar, done/total, time."""
    return Progress("{task.description}", BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


def main() -> None:
    """Console-script entry point (``llm4cell``, ``python -m llm4cell``)."""
    app(prog_name="llm4cell")
