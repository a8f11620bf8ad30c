"""Downloads of output images: a credential-free client, bounded, verified, refreshed.

Output URLs point at a third party (a CDN), so the client here carries no credentials at all:
no Authorization header, nothing to leak on a redirect. Every image is
  * bounded: a size cap enforced while streaming and a deadline for the whole download;
  * verified: fully decoded (Pillow verify() then load()) before it is accepted;
  * written to a temp file unique to the process, then renamed into place;
  * refreshed: an expired or refused URL (403/404/410, an error body) is replaced by a fresh
    one from the query endpoint.
Messages name the URL's host only: a signed URL is a credential of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import os
import random
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runner import __version__
from runner.atomic import remove_dead_temps
from runner.errors import InputError
from runner.slots import SlotTransport
from runner.verify import file_verified

Record = dict[str, Any]

DEFAULT_MAX_IMAGE_MB = 64  # the largest 4K PNG is about 25 MB
DEFAULT_DOWNLOAD_TIMEOUT = 300.0
MAX_REFRESHES = 2  # fresh URLs asked for per task and run
FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
SNIFF = 512


class Verdict(enum.Enum):
    STALE = "stale"  # the URL no longer works: ask the service for a fresh one
    UNREACHABLE = "unreachable"  # the host could not be reached or was too slow: rerun later
    REFUSED = "refused"  # what came back is not an acceptable image


@dataclass
class Failure:
    verdict: Verdict
    message: str
    retry: bool = False  # worth another attempt at the same URL (dropped connection, 5xx, damage)
    # No connection could be made (DNS, refused, connect timeout): the host may have moved, so
    # the service is asked once for a fresh URL; `refreshed` says that was done.
    connect: bool = False
    refreshed: bool = False


@dataclass
class Fetched:
    path: Path
    sha256: str
    width: int
    height: int


@dataclass
class DownloadOptions:
    max_bytes: int = DEFAULT_MAX_IMAGE_MB * 1024 * 1024
    deadline: float = DEFAULT_DOWNLOAD_TIMEOUT  # seconds for one image, every attempt included
    attempts: int = 3
    backoff: float = 0.5


def host_of(url: str) -> str:
    """The host (and port) of a URL, the only part of a signed URL safe to show."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "an invalid URL"
    return parsed.host + (f":{parsed.port}" if parsed.port else "") or "an invalid URL"


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
        # Downloads queue here, not in httpx's pool (see ApiClient.gate).
        self.gate = asyncio.Semaphore(concurrency)
        self.sleep = sleep
        self.rng = random.Random()
        self.count = 0
        # Downloads wait for a turn here, so --download-timeout runs from the first byte asked
        # for, not from a wait in the connection pool behind other images.
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
                    path=_relative_to(result.path, self.base),
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
        part = self.out_dir / f".{stem}.{os.getpid()}.{secrets.token_hex(4)}.part"
        try:
            digest = hashlib.sha256()
            try:
                async with self.gate, self.http.stream("GET", url) as response:
                    failure = _check_status(response, host)
                    if failure is None:
                        failure = await self._save(response, host, part, digest)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                return Failure(
                    Verdict.UNREACHABLE,
                    f"cannot download from {host} ({_reason(e)})",
                    retry=True,
                    connect=isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)),
                )
            if failure is not None:
                return failure
            checked = await asyncio.to_thread(_verify, part)
            if isinstance(checked, str):
                return Failure(Verdict.REFUSED, f"the image from {host} is damaged ({checked})", retry=True)
            width, height, ext = checked
            final = self.out_dir / f"{stem}.{ext}"
            try:
                os.replace(part, final)
            except OSError as e:
                raise InputError(f"cannot write {final}: {e.strerror}", hint=_SPACE_HINT) from None
            self.count += 1
            return Fetched(final, digest.hexdigest(), width, height)
        finally:
            with contextlib.suppress(OSError):
                part.unlink()

    async def _save(self, response: httpx.Response, host: str, part: Path, digest: Any) -> Failure | None:
        cap = self.opts.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            return _too_large(host, f"it declares {int(declared) / 2**20:,.0f} MB", cap)
        ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
        size = 0
        head = b""
        try:
            with open(part, "wb") as f:
                async for chunk in response.aiter_bytes(1 << 16):
                    size += len(chunk)
                    if size > cap:
                        return _too_large(host, "cut off while streaming, nothing kept", cap)
                    if len(head) < SNIFF:
                        head += chunk[: SNIFF - len(head)]
                        if len(head) >= 16 or size == len(head):
                            failure = _sniff(head, ctype, host, final=False)
                            if failure is not None:
                                return failure
                    digest.update(chunk)
                    f.write(chunk)
                f.flush()
        except OSError as e:
            raise InputError(f"cannot write {part}: {e.strerror}", hint=_SPACE_HINT) from None
        return _sniff(head, ctype, host, final=True)


# `.<stem>.<pid>.<8 hex>.part` (see Downloader._once) and the write probe below.
_PART = re.compile(r"\..+\.(?P<pid>\d+)\.[0-9a-f]{8}\.part")
_PROBE = re.compile(r"\.imgbatch-write-test\.(?P<pid>\d+)\.[0-9a-f]{8}")


def prepare_out_dir(out_dir: Path) -> None:
    """Make sure images can be written to `out_dir` before anything is paid for, and remove
    the partial downloads of runs a kill cut short (their pid no longer runs; a run sharing
    the folder is alive, so its files stay)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_dead_temps(out_dir, _PART)
        remove_dead_temps(out_dir, _PROBE)
        probe = out_dir / f".imgbatch-write-test.{os.getpid()}.{secrets.token_hex(4)}"
        with open(probe, "wb") as f:
            f.write(b"ok")
        probe.unlink()
    except OSError as e:
        raise InputError(
            f"--out {out_dir}: cannot write images there ({e.strerror or e})",
            hint="give a writable folder with --out; nothing was submitted",
        ) from None


_SPACE_HINT = "free space or fix permissions, then rerun: paid tasks are fetched, not paid again"


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


def _check_status(response: httpx.Response, host: str) -> Failure | None:
    code = response.status_code
    if code == 200:
        return None
    if code in (401, 403, 404, 410):
        return Failure(Verdict.STALE, f"{host} refused the image URL (HTTP {code}: expired or withdrawn)")
    if code == 429 or code >= 500:
        return Failure(Verdict.UNREACHABLE, f"{host} answered HTTP {code}", retry=True)
    return Failure(Verdict.REFUSED, f"{host} answered HTTP {code} instead of the image")


def _sniff(head: bytes, ctype: str, host: str, *, final: bool) -> Failure | None:
    """Refuse what is plainly not an image as soon as its first bytes show it."""
    if head.startswith(MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return None
    if not final and len(head) < SNIFF:
        return None  # too little seen yet to tell
    text = head.lstrip().lower()
    if ctype in ("application/json", "application/xml", "text/xml") and b"<svg" not in text:
        return Failure(Verdict.STALE, f"{host} sent an error message instead of the image")
    if text.startswith(b"{") or b"<error" in text:
        return Failure(Verdict.STALE, f"{host} sent an error message instead of the image")
    if ctype == "image/svg+xml" or b"<svg" in text:
        return Failure(Verdict.REFUSED, f"{host} sent an SVG drawing, not a raster image")
    if ctype == "text/html" or text.startswith((b"<!doctype html", b"<html")):
        return Failure(Verdict.REFUSED, f"{host} sent an HTML page, not an image")
    shown = ctype or "no content type"
    return Failure(Verdict.REFUSED, f"{host} sent something that is not an image ({shown})")


def _verify(path: Path) -> tuple[int, int, str] | str:
    """Make the file durable, then check the whole file; (width, height, extension), or what
    is wrong with it. Runs in a worker thread: an fsync blocks for milliseconds, which on the
    event loop would hold up every request of the run."""
    from PIL import Image  # here, not at the top: a run's first submit need not wait for it

    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)  # flushes the file's data whichever descriptor wrote it
        finally:
            os.close(fd)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}", hint=_SPACE_HINT) from None

    try:
        with Image.open(path) as img:
            fmt = img.format or ""
            img.verify()  # checksums and structure
        if fmt not in FORMATS:
            return f"{fmt or 'unknown'} is not an accepted image format"
        with Image.open(path) as img:
            if fmt != "PNG":
                # PNG's verify() already read every chunk to IEND against its CRC: a cut-off
                # or damaged body fails there. Decoding a 2048x2048 PNG again would cost more
                # CPU than everything else a task needs. Other formats carry no checksums.
                img.load()
            return img.width, img.height, FORMATS[fmt]
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        return " ".join(str(e).split())[:100] or type(e).__name__


def _too_large(host: str, how: str, cap: int) -> Failure:
    return Failure(
        Verdict.REFUSED,
        f"the image from {host} is larger than {cap / 2**20:g} MB ({how}; --max-image-mb raises the cap)",
    )


def _reason(e: Exception) -> str:
    return " ".join((str(e) or type(e).__name__).split())[:200]


def _relative_to(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(path, base)
    except ValueError:
        return str(path.resolve())
