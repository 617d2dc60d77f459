"""Stage timing and optional rich progress display."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

__all__ = ["Stages"]


class Stages:
    """Times named stages; shows a rich spinner per stage when ``show`` is True.

    Timings (seconds) of completed stages are kept in :attr:`timings` for provenance and
    benchmarks. When a stage raises, the display is removed so that the error message
    is the only thing left on stderr.
    """

    def __init__(self, show: bool = False) -> None:
        self.show = show
        self.timings: dict[str, float] = {}
        self._progress = None
        if show:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(finished_text="[green]✓"),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )

    def __enter__(self) -> Stages:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._progress is not None:
            if exc_type is not None:
                # On failure leave nothing behind: the caller reports the error itself.
                self._progress.live.transient = True
            self._progress.stop()

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[Callable[[int, int], None]]:
        """Time one stage (and show it). Yields ``tick(done, total)``, which shows the
        stage's own progress (e.g. clusters answered by an LLM)."""
        task = None
        if self._progress is not None:
            task = self._progress.add_task(name, total=1)

        def tick(done: int, total: int) -> None:
            if self._progress is not None and task is not None:
                self._progress.update(task, description=f"{name}: {done}/{total}")

        start = time.perf_counter()
        yield tick
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
        if self._progress is not None and task is not None:
            self._progress.update(task, completed=1)
