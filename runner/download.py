"""Downloads of output images: a credential-free client, bounded, verified, refreshed.

Output URLs point at a third party (a CDN), so the client here carries no credentials at all:
no Authorization header, nothing to leak on a redirect. Here: a deadline for each image, every
attempt included; attempts again after a dropped connection, a 5xx or damage; and a fresh URL
from the query endpoint for an expired or refused one (403/404/410, an error body). One attempt
(streamed under the size cap, verified, renamed into place) is runner/imagefetch.py's.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runner import __version__
from runner.imagefetch import Failure, Fetched, Verdict, fetch_once, host_of
from runner.outdir import relative_to
from runner.slots import SlotTransport
from runner.verify import file_verified

Record = dict[str, Any]

DEFAULT_MAX_IMAGE_MB = 64  # the largest 4K PNG is about 25 MB
DEFAULT_DOWNLOAD_TIMEOUT = 300.0
MAX_REFRESHES = 2  # fresh URLs asked for per task and run


@dataclass
class DownloadOptions:
    max_bytes: int = DEFAULT_MAX_IMAGE_MB * 1024 * 1024
    deadline: float = DEFAULT_DOWNLOAD_TIMEOUT  # seconds for one image, every attempt included
    attempts: int = 3
    backoff: float = 0.5


class Downloader:
    def __init__(
        self,
        out_dir: Path,
        base: Path,
        options: DownloadOptions | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        concurrency: int = 8,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.out_dir = out_dir
        self.base = base  # paths in the ledger are relative to the ledger's folder
        self.opts = options or DownloadOptions()
        # No credentials at all, so following a redirect cannot hand anything to another host.
        self.http = httpx.AsyncClient(
            # One connection per slot, not httpx's pool (see runner/slots.py).
            transport=transport or SlotTransport(concurrency),
            headers={"user-agent": f"imgbatch/{__version__}"},
            timeout=httpx.Timeout(60.0, connect=10.0, pool=None),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=True,
            max_redirects=5,
        )
        self.sleep = sleep
        self.rng = random.Random()
        self.count = 0
        # Downloads wait for a turn here, not in httpx's pool (see ApiClient.gate), so
        # --download-timeout runs from the first byte asked for, not from a wait behind other images.
        self.slots = asyncio.Semaphore(max(1, concurrency))

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- one task -----------------------------------------------------------------------

    async def complete(
        self, record: Record, refresh: Callable[[], Awaitable[Record | None]]
    ) -> tuple[Record, Failure | None]:
        """Fetch every output of a completed record that has no file yet. `refresh` asks the
        service for the task again (fresh URLs) and returns the record it answered, or None."""
        refreshes = 0
        asked_for_host = False
        while True:
            outputs = [dict(o) for o in record.get("outputs") or []]
            if not outputs:
                return record, Failure(
                    Verdict.REFUSED, "the service reported it completed without any output"
                )
            failure = None
            for index, out in enumerate(outputs):
                if file_verified(out, self.base):
                    continue
                stem = record["out_task_id"] + (f"-{index}" if index else "")
                result = await self.fetch(out.get("url"), stem)
                if isinstance(result, Failure):
                    failure = result
                    break
                out.update(
                    path=relative_to(result.path, self.base),
                    sha256=result.sha256,
                    width=result.width,
                    height=result.height,
                )
            record = {**record, "outputs": outputs}
            if failure is not None and failure.connect and asked_for_host:
                failure.refreshed = True  # the fresh URL did not help either
            if failure is None or refreshes >= MAX_REFRESHES:
                return record, failure
            if failure.connect and not asked_for_host:
                asked_for_host = True  # once: a host that is down for everyone stays down
            elif failure.verdict is not Verdict.STALE:
                return record, failure
            refreshes += 1
            fresh = await refresh()
            if fresh is None:
                return record, failure
            record = {**fresh, "outputs": _keep_files(outputs, fresh.get("outputs") or [], self.base)}

    # --- one image ----------------------------------------------------------------------

    async def fetch(self, url: Any, stem: str) -> Fetched | Failure:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return Failure(Verdict.STALE, "the service gave no usable image URL")
        host = host_of(url)
        try:
            async with self.slots:
                return await asyncio.wait_for(self._attempts(url, host, stem), self.opts.deadline)
        except asyncio.TimeoutError:
            return Failure(
                Verdict.UNREACHABLE,
                f"the image from {host} did not arrive within {self.opts.deadline:g} s (--download-timeout)",
            )

    async def _attempts(self, url: str, host: str, stem: str) -> Fetched | Failure:
        result: Fetched | Failure = Failure(Verdict.UNREACHABLE, f"no attempt made to reach {host}")
        for attempt in range(self.opts.attempts):
            if attempt:
                await self.sleep(self.rng.uniform(0, self.opts.backoff * 2**attempt))
            result = await self._once(url, host, stem)
            if isinstance(result, Fetched) or not result.retry:
                return result
        return result

    async def _once(self, url: str, host: str, stem: str) -> Fetched | Failure:
        result = await fetch_once(self.http, url, host, self.out_dir, stem, self.opts.max_bytes)
        if isinstance(result, Fetched):
            self.count += 1
        return result


def _keep_files(old: list[dict[str, Any]], new: list[dict[str, Any]], base: Path) -> list[dict[str, Any]]:
    """Fresh URLs for the outputs, keeping what was already downloaded (matched by position)."""
    merged = []
    for index, out in enumerate(new):
        before = old[index] if index < len(old) else None
        if before is not None and file_verified(before, base):
            merged.append({**before, "url": out.get("url")})
        else:
            merged.append(dict(out))
    return merged
