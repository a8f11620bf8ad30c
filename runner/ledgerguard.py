"""Keeping a ledger file to one run and one service: the lock, the refusal of hard-linked
names, the clean-up of temp files a killed rewrite left, and the endpoint a ledger belongs to."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import urllib.parse
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import IO, Any

from runner.atomic import remove_dead_temps
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
    """The lock file, held (with this pid in it) until the caller closes it."""
    try:
        f = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held until the ledger closes
    except OSError as e:
        raise LedgerError(f"{lock_path}: cannot create the lock file: {e.strerror}") from None
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise GuardRefused(
            f"{shown} is in use by another imgbatch run (pid {holder})",
            hint="wait for it to finish; the lock goes away with that process",
        ) from None
    try:
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
    except OSError as e:  # a full disk (or quota) fails the few bytes of the pid too
        with contextlib.suppress(OSError):
            f.close()
        raise LedgerError(
            f"{lock_path}: cannot write the lock file: {e.strerror or e}",
            hint="nothing was sent; free space and rerun",
        ) from None
    return f


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
