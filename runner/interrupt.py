"""SIGTERM ends a run the way Ctrl-C does: CI cancels a job with SIGTERM, and a run cut off
there must still write its journal, print one line and leave a ledger the next run resumes.

Python's default SIGTERM kills the process on the spot (no message, no cleanup). Instead the
signal is handed to whatever handles SIGINT at that moment: asyncio's handler during a run
(which cancels the run's main task, so every `finally` runs), Python's default one (which
raises KeyboardInterrupt) anywhere else. The top-level handler then reports exit 143, the
shell's code for SIGTERM, instead of Ctrl-C's 130.
"""

from __future__ import annotations

import signal
from types import FrameType

from runner.errors import EXIT_INTERRUPTED

EXIT_TERMINATED = 128 + signal.SIGTERM

_terminated = False


def install() -> None:
    """Route SIGTERM to the SIGINT path (main thread only, as signal handlers must be)."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _terminated
    _terminated = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)  # asyncio's cancels the run; Python's raises
        return
    # SIGINT ignored or left to the OS (a job started in the background by a non-interactive
    # shell): SIGTERM must still stop the run, through the same path.
    raise KeyboardInterrupt


def exit_code() -> int:
    return EXIT_TERMINATED if _terminated else EXIT_INTERRUPTED


def message() -> str:
    return "terminated (SIGTERM)" if _terminated else "interrupted"
