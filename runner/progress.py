"""Progress of a run: a live bar on a terminal, plain periodic lines elsewhere (CI)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class Counts:
    planned: int = 0
    queued: int = 0
    submitted: int = 0  # by this run
    running: int = 0
    done: int = 0
    failed: int = 0
    credits: float = 0  # estimated credits of what this run submitted

    def line(self) -> str:
        return (
            f"{self.done}/{self.planned} done, {self.failed} failed, {self.running} running, "
            f"{self.queued} queued, {self.submitted} submitted, {self.credits:,.0f} credits"
        )


@dataclass
class Progress:
    """Plain lines to a stream: what CI logs get."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    every: float = 10.0
    counts: Counts = field(default_factory=Counts)
    _last: float = 0.0

    def start(self) -> None:
        self._last = time.monotonic()

    def update(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.stream.write(f"imgbatch: {self.counts.line()}\n")
            self.stream.flush()

    def note(self, message: str) -> None:
        self.stream.write(f"imgbatch: {message}\n")
        self.stream.flush()

    def stop(self) -> None:
        pass


class LiveProgress(Progress):
    """A rich live bar, for a terminal."""

    def start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as RichProgress

        self._console = Console(file=self.stream)
        self._bar: Any = RichProgress(
            TextColumn("[bold]imgbatch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._task = self._bar.add_task("", total=self.counts.planned)
        self._bar.start()
        self.update()

    def update(self) -> None:
        c = self.counts
        self._bar.update(
            self._task,
            completed=c.done + c.failed,
            total=c.planned,
            description=f"{c.submitted} submitted, {c.running} running, {c.done} done, "
            f"{c.failed} failed, {c.credits:,.0f} credits",
        )

    def note(self, message: str) -> None:
        self._bar.console.print(f"imgbatch: {message}", markup=False, highlight=False)

    def stop(self) -> None:
        self.update()
        self._bar.stop()


def make_progress(stream: TextIO | None = None, *, interactive: bool | None = None) -> Progress:
    stream = stream or sys.stderr
    if interactive is None:
        interactive = stream.isatty()
    return LiveProgress(stream=stream) if interactive else Progress(stream=stream)
