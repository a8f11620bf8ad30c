"""One image from its URL: a GET streamed into a part file under a size cap, refused as soon
as its first bytes show it is no image, checked whole (Pillow) and made durable, then renamed
into place; or a Failure saying whether a fresh URL, a later rerun or nothing can help.
Messages name the URL's host only: a signed URL is a credential of its own."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runner.errors import InputError
from runner.outdir import SPACE_HINT, part_path

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


def host_of(url: str) -> str:
    """The host (and port) of a URL, the only part of a signed URL safe to show."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return "an invalid URL"
    return parsed.host + (f":{parsed.port}" if parsed.port else "") or "an invalid URL"


async def fetch_once(
    http: httpx.AsyncClient, url: str, host: str, out_dir: Path, stem: str, cap: int
) -> Fetched | Failure:
    """One GET of one image: streamed into a part file under the size cap, checked whole,
    then renamed to `<stem>.<extension of its format>` in `out_dir`."""
    part = part_path(out_dir, stem)
    try:
        digest = hashlib.sha256()
        try:
            async with http.stream("GET", url) as response:
                failure = _check_status(response, host)
                if failure is None:
                    failure = await _save(response, host, part, digest, cap)
        except (httpx.TimeoutException, httpx.TransportError) as e:
            return Failure(
                Verdict.UNREACHABLE,
                f"cannot download from {host} ({_reason(e)})",
                retry=True,
                connect=isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)),
            )
        if failure is not None:
            return failure
        checked = await asyncio.to_thread(verify_image, part)
        if isinstance(checked, str):
            return Failure(Verdict.REFUSED, f"the image from {host} is damaged ({checked})", retry=True)
        width, height, ext = checked
        final = out_dir / f"{stem}.{ext}"
        try:
            os.replace(part, final)
        except OSError as e:
            raise InputError(f"cannot write {final}: {e.strerror}", hint=SPACE_HINT) from None
        return Fetched(final, digest.hexdigest(), width, height)
    finally:
        with contextlib.suppress(OSError):
            part.unlink()


async def _save(response: httpx.Response, host: str, part: Path, digest: Any, cap: int) -> Failure | None:
    """Stream the body into `part` under the cap, refusing what is plainly no image early."""
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
        raise InputError(f"cannot write {part}: {e.strerror}", hint=SPACE_HINT) from None
    return _sniff(head, ctype, host, final=True)


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


def verify_image(path: Path) -> tuple[int, int, str] | str:
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
        raise InputError(f"cannot write {path}: {e.strerror}", hint=SPACE_HINT) from None

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
