"""Keeping a ledger file to one run and one service: the lock, the refusal of hard-linked
names, the clean-up of temp files a killed rewrite left, and the endpoint a ledger belongs to."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import urllib.parse
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import IO, Any

from runner.atomic import pid_alive, remove_dead_temps
from runner.errors import GuardRefused, LedgerError

# The embedded sandbox's endpoint (endpoint_of its in-process URL): it never issued a real task.
SANDBOX_ENDPOINT = "http://sandbox.imgbatch.invalid:80"


def endpoint_of(base_url: str) -> str:
    """The service a ledger belongs to: scheme, host and port (the default port spelled out)."""
    parts = urllib.parse.urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme, 0)
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port}"


def refuse_hard_links(path: Path, shown: Path) -> None:
    # The lock is per name: two names of one file would let two runs in at once, and the
    # atomic rewrite would part the names anyway.
    with contextlib.suppress(OSError):
        links = path.stat().st_nlink
        if links > 1:
            raise LedgerError(
                f"{shown}: the ledger file has {links} hard links; two runs could share it unawares",
                hint="give each name its own copy, or use a symbolic link (ln -s) instead",
            )


def acquire_lock(lock_path: Path, shown: Path) -> IO[str]:
    """The lock file, held (with this pid in it) until release_lock."""
    try:
        # Not "a+": with O_APPEND, Linux's pwrite ignores the offset and the pid would be
        # appended after the last holder's instead of replacing it.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise LedgerError(f"{lock_path}: cannot create the lock file: {e.strerror}") from None
    f = os.fdopen(fd, "r+", encoding="utf-8")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        f.close()
        raise GuardRefused(
            f"{shown} is in use by another imgbatch run (pid {holder})"
            if holder is not None
            else f"{shown} is in use by another imgbatch process",
            hint="wait for it to finish; the lock goes away with that process",
        ) from None
    try:
        # The pid replaces the file's text in one write, then the rest is cut: a reader sees
        # the last text or this pid (first line), never an empty file in between.
        text = f"{os.getpid()}\n".encode()
        os.pwrite(fd, text, 0)
        os.ftruncate(fd, len(text))
    except OSError as e:  # a full disk (or quota) fails the few bytes of the pid too
        with contextlib.suppress(OSError):
            f.close()
        raise LedgerError(
            f"{lock_path}: cannot write the lock file: {e.strerror or e}",
            hint="nothing was sent; free space and rerun",
        ) from None
    return f


def release_lock(f: IO[str]) -> None:
    """Empty the lock file while still holding it, then let go: the pid left there would
    otherwise be shown as the holder by whoever is refused while the next holder has taken
    the lock but not yet written its own pid."""
    with contextlib.suppress(OSError):
        os.ftruncate(f.fileno(), 0)
    f.close()  # releases the flock


def _holder(fd: int) -> int | None:
    """The pid of the lock's holder, or None when it cannot be told. The file can still hold
    a pid that is not the holder's: a holder killed before it emptied the file leaves its own,
    which the next holder overwrites only just after taking the lock. A pid that no longer runs
    is such a leftover; it is read again for a moment, as the holder writes its pid right away."""
    deadline = time.monotonic() + 0.25
    while True:
        with contextlib.suppress(OSError, ValueError):
            first = os.pread(fd, 64, 0).split(b"\n", 1)[0]
            pid = int(first) if first.strip().isdigit() else 0
            if pid > 0 and pid_alive(pid):
                return pid
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.01)


def remove_stale_temps(path: Path) -> None:
    """Temp files of rewrites a kill cut short: exactly `.<ledger>.<pid>.tmp` (what
    runner/atomic.py writes) of a pid no longer running; a user's own file is not ours."""
    remove_dead_temps(path.parent, re.compile(re.escape(f".{path.name}.") + r"(?P<pid>\d+)\.tmp"))


def legacy(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records written before imgbatch recorded endpoints: some real service's, maybe paid."""
    return [r for r in records if not r.get("endpoint")]


def check_endpoint(records: Collection[dict[str, Any]], shown: Path, endpoint: str) -> None:
    """Refuse a ledger whose records belong to another service, and the sandbox a ledger
    that holds records of no recorded service."""
    others = sorted({str(r["endpoint"]) for r in records if r.get("endpoint")} - {endpoint})
    if others:
        raise GuardRefused(
            f"{shown} belongs to {', '.join(others)}; this run is against {endpoint}. "
            "Nothing was sent and the ledger was not changed",
            hint="give this service its own --ledger (and --out), or the ledger's --base-url",
        )
    unclaimed = legacy(records)
    if endpoint == SANDBOX_ENDPOINT and unclaimed:
        # The sandbox would deny knowing them and mark paid tasks lost: it never adopts them.
        raise GuardRefused(
            f"{shown} holds {len(unclaimed)} records written before imgbatch recorded "
            "endpoints (a real service's, maybe paid); the embedded sandbox never takes them "
            "over. Nothing was sent and the ledger was not changed",
            hint="drop --ledger (the sandbox has its own), or run against the real service",
        )
