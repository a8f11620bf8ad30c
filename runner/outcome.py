"""What a task's state means for the user: the line saying what to do about a task that is
not done, and the wording of timeouts and failed downloads."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

from runner.imagefetch import Failure, Verdict
from runner.ledger import COMPLETED, FAILED_STATES, SUBMITTING, TIMED_OUT, Record


def advice(record: Record | None, said: str | None, downloaded: bool, waited: bool) -> str:
    status = record["status"] if record else None
    error = (record or {}).get("error")
    if status is None:
        return f"not submitted ({said})" if said else "not submitted; rerun to submit it"
    if status == COMPLETED:
        if downloaded:
            return ""
        return error or said or "its image is not on disk; rerun to download it (it is paid)"
    if status in FAILED_STATES:
        reason = error or said or "no reason given"
        if "--retry-failed" in reason:  # the reason already says what --retry-failed does (lost)
            return f"{status}: {reason}"
        return f"{status}: {reason}; --retry-failed submits it again (paid again)"
    if status == SUBMITTING:
        prefix = f"{said}; " if said else ""
        return f"{prefix}outcome unknown: rerun, it asks the service before submitting"
    if status == TIMED_OUT:
        return str(error)
    if not waited:
        return ""  # --no-wait: running is what was asked for
    prefix = f"{said}; " if said else ""
    return f"{prefix}still {status}: rerun (or 'imgbatch status --refresh') to pick it up"


def submitted_at(record: Record) -> float:
    """When the service says the task was created (wall clock), else now."""
    created = record.get("created_at")
    if isinstance(created, str):
        with contextlib.suppress(ValueError):
            return datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    return time.time()


# What the API page documents (and the states imgbatch records itself) on the way to the end.
KNOWN_RUNNING = frozenset({"pending", "processing", "queued", "running", SUBMITTING, TIMED_OUT})


def timeout_message(seconds: float, last_status: str = "") -> str:
    # A status nobody documented is polled like a running one; say so, as the API page asks.
    unknown = "" if last_status in KNOWN_RUNNING else f" (its last status was {last_status[:40]!r}, unknown)"
    return (
        f"not finished {_duration(seconds)} after submission (--task-timeout){unknown}; still paid: "
        "a later run asks the service about it again"
    )


def _duration(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def download_advice(failure: Failure) -> str:
    if failure.refreshed:
        return (
            f"{failure.message}, with a fresh URL from the service too; the task is paid: rerun once "
            "that host can be reached (check the network, proxy or DNS)"
        )
    if failure.verdict is Verdict.UNREACHABLE:
        return f"{failure.message}; the task is paid: rerun the same command to download it"
    if failure.verdict is Verdict.STALE:
        return f"{failure.message}, a fresh URL too; the task is paid: rerun later to try again"
    return f"{failure.message}; the task is paid: rerun to try again, or report it to the provider"
