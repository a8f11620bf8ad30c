"""The sandbox's image host: signed, expiring output URLs and the ways a CDN can misbehave.

With an image base URL set, outputs are served only there (in production a third-party CDN on
another host): the API host answers 404 for files and the image host 404 for the API. Every
request the image host receives has its headers recorded, so tests can prove no credential
ever reaches it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

# What a faulted image fetch does. `expired` answers like a CDN whose signature ran out.
IMAGE_FAULTS = ("404", "expired", "truncated", "oversized", "slow", "html", "svg", "error-body")
CHUNK = 1 << 20


@dataclass
class ImageFaults:
    kinds: tuple[str, ...] = ()  # one kind per faulted task, picked by its id
    share: float = 1.0  # share of tasks whose image is faulted
    times: int = 1  # faulted fetches of each such image before it is served right; 0: always
    url_ttl: float = 3600.0  # seconds a signed URL stays valid
    oversize_mb: float = 200.0  # body size of an `oversized` answer
    drip_seconds: float = 2.0  # pause before each byte of a `slow` answer


@dataclass
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/octet-stream"
    chunks: Iterator[bytes] | None = None  # a streamed body (no Content-Length)
    chunk_delay: float = 0.0  # seconds before each chunk


@dataclass
class ImageHost:
    secret: bytes
    faults: ImageFaults = field(default_factory=ImageFaults)
    fetches: Counter[str] = field(default_factory=Counter)  # per task_id
    headers_seen: list[dict[str, str]] = field(default_factory=list)

    def sign(self, path: str, now: float) -> str:
        """The query string of a URL for `path` valid for url_ttl seconds from `now`."""
        expires = int(now + self.faults.url_ttl)
        return urlencode({"expires": expires, "sig": self._sig(path, expires)})

    def _sig(self, path: str, expires: int) -> str:
        return hmac.new(self.secret, f"{path}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def check(self, path: str, query: str, now: float) -> Reply | None:
        """None if the signature holds and has not expired; else the CDN's 403."""
        args = parse_qs(query)
        try:
            expires = int(args["expires"][0])
            sig = args["sig"][0]
        except (KeyError, ValueError, IndexError):
            return _denied("AccessDenied", "Request is not signed")
        if not hmac.compare_digest(sig, self._sig(path, expires)):
            return _denied("SignatureDoesNotMatch", "The signature does not match")
        if now > expires:
            return _denied("AccessDenied", "Request has expired")
        return None

    def record(self, headers: dict[str, str]) -> None:
        self.headers_seen.append(dict(headers))

    def fault_for(self, task_key: str, task_id: str) -> str | None:
        """The fault this fetch of task `task_id` suffers, if any (counts the fetch)."""
        self.fetches[task_id] += 1
        f = self.faults
        if not f.kinds:
            return None
        digest = hashlib.sha256(f"image:{task_key}".encode()).digest()
        if int.from_bytes(digest[:4], "big") / 0xFFFFFFFF >= f.share:
            return None
        if f.times and self.fetches[task_id] > f.times:
            return None
        return f.kinds[digest[4] % len(f.kinds)]

    def faulted(self, kind: str, png: bytes) -> Reply:
        if kind == "404":
            return Reply(404, b"<html><body>Not Found</body></html>", "text/html")
        if kind == "expired":
            return _denied("AccessDenied", "Request has expired")
        if kind == "error-body":
            return Reply(200, b'{"error": "object temporarily unavailable"}', "application/json")
        if kind == "truncated":
            return Reply(200, png[: len(png) // 2], "image/png")  # Content-Length matches the cut
        if kind == "oversized":
            return Reply(200, content_type="image/png", chunks=_oversized(png, self.faults.oversize_mb))
        if kind == "slow":
            return Reply(
                200,
                content_type="image/png",
                chunks=(png[i : i + 1] for i in range(len(png))),
                chunk_delay=self.faults.drip_seconds,
            )
        if kind == "html":
            return Reply(200, b"<!doctype html><html><body>Sign in to continue</body></html>", "text/html")
        if kind == "svg":
            svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>'
            return Reply(200, svg, "image/svg+xml")
        raise ValueError(f"unknown image fault {kind!r}")

    def stats(self) -> dict[str, Any]:
        names = sorted({k for h in self.headers_seen for k in h})
        return {
            "image_requests": len(self.headers_seen),
            "image_requests_with_authorization": sum(1 for h in self.headers_seen if "authorization" in h),
            "image_header_names": names,
        }


def _oversized(png: bytes, megabytes: float) -> Iterator[bytes]:
    """A PNG header followed by padding, far past any sane image size."""
    yield png[:64]
    left = int(megabytes * 1024 * 1024) - 64
    block = b"\0" * CHUNK
    while left > 0:
        yield block[: min(CHUNK, left)]
        left -= CHUNK


def _denied(code: str, message: str) -> Reply:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Reply(403, body.encode(), "application/xml")
