"""The aireiter API client: async httpx with timeouts, retries and an honest account of what
is known about each request's outcome.

A submit is never resent when its outcome is unknown (timeout after sending, dropped
connection, 5xx, a broken or lying envelope): the caller gets UNKNOWN and must ask the query
endpoint first. Only answers that prove nothing happened (429, connection refused) are retried.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from runner import __version__
from runner.errors import AuthError
from runner.redact import scrub, scrub_value

SUBMIT_PATH = "/api/openapi/submit"
QUERY_PATH = "/api/openapi/query"
MAX_RETRY_AFTER = 300.0


class Kind(enum.Enum):
    OK = "ok"
    REJECTED = "rejected"  # a definitive 4xx: the request was refused
    NOT_FOUND = "not_found"  # query: no such task
    UNKNOWN = "unknown"  # no usable answer; for a submit, the task may or may not exist


@dataclass
class Answer:
    kind: Kind
    data: dict[str, Any] | None = None
    status: int | None = None
    message: str = ""
    unreachable: bool = False  # every attempt failed to connect
    retry_after: float | None = None  # the server's Retry-After, in seconds


@dataclass
class RetryPolicy:
    attempts: int = 6
    base: float = 0.5
    cap: float = 30.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential backoff with full jitter."""
        return rng.uniform(0, min(self.cap, self.base * 2**attempt))


class RateLimiter:
    """Client-side requests-per-second limit (--rate)."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next_slot = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self.lock:
            now = time.monotonic()
            slot = max(now, self.next_slot)
            self.next_slot = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


class ApiClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        concurrency: int = 8,
        rate: float | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        seed: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.transport = transport  # image downloads use it too, through their own client
        self.http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            headers={"authorization": f"Bearer {api_key}", "user-agent": f"imgbatch/{__version__}"},
            timeout=httpx.Timeout(timeout, connect=10.0, pool=None),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=False,
        )
        self.retry = retry or RetryPolicy()
        self.limiter = RateLimiter(rate)
        self.rng = random.Random(seed)
        self.sleep = sleep
        self.requests = 0

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- the two API calls --------------------------------------------------------------

    async def submit(self, body: dict[str, Any]) -> Answer:
        return await self._call(SUBMIT_PATH, body, idempotent=False)

    async def query(self, out_task_id: str) -> Answer:
        return await self._call(QUERY_PATH, {"out_task_id": out_task_id}, idempotent=True)

    async def _call(self, path: str, body: dict[str, Any], *, idempotent: bool) -> Answer:
        what = f"POST {self.base_url}{path}"
        last = Answer(Kind.UNKNOWN, message="no attempt made")
        all_unreachable = True
        for attempt in range(self.retry.attempts):
            if attempt:
                await self.sleep(self._backoff(attempt, last))
            await self.limiter.wait()
            self.requests += 1
            try:
                response = await self.http.post(path, json=body)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                # Nothing reached the server: safe to try again, even for a submit.
                last = Answer(Kind.UNKNOWN, message=f"{what}: cannot connect ({_reason(e)})")
                continue
            except (httpx.TimeoutException, httpx.TransportError) as e:
                all_unreachable = False
                last = Answer(Kind.UNKNOWN, message=f"{what}: {_reason(e)}")
                if idempotent:
                    continue
                return last
            all_unreachable = False
            last = self._interpret(response, what)
            last.retry_after = _retry_after(response)
            if last.kind is not Kind.UNKNOWN:
                return last
            if response.status_code == 429 or idempotent:
                continue  # a 429 proves the request was not processed
            return last
        last.unreachable = all_unreachable
        return last

    def _backoff(self, attempt: int, last: Answer) -> float:
        delay = self.retry.delay(attempt, self.rng)
        return max(delay, last.retry_after) if last.retry_after is not None else delay

    def _interpret(self, response: httpx.Response, what: str) -> Answer:
        status = response.status_code
        if status in (401, 403):
            said = _message_of(response)
            raise AuthError(
                f"{what}: the API key was refused (HTTP {status}{': ' + said if said else ''})",
                hint="check AIREITER_API_KEY and --base-url",
            )
        try:
            # Scrubbed here, where answers enter: a server echoing our headers must not plant
            # the key in a message, the ledger or a log.
            envelope = scrub_value(response.json())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return Answer(
                Kind.UNKNOWN, status=status, message=f"{what}: HTTP {status} with a body that is not JSON"
            )
        if not isinstance(envelope, dict):
            return Answer(Kind.UNKNOWN, status=status, message=f"{what}: HTTP {status}, not an envelope")
        code = envelope.get("statusCode", status)
        message = str(envelope.get("message") or "")
        code = code if isinstance(code, int) else status
        if status >= 400 and code < 400:
            code = status  # the HTTP status wins when the envelope claims success
        if code in (401, 403):
            raise AuthError(
                f"{what}: the API key was refused ({code}: {message})",
                hint="check AIREITER_API_KEY and --base-url",
            )
        if code == 404:
            return Answer(Kind.NOT_FOUND, status=code, message=message)
        if code == 429 or code >= 500:
            return Answer(Kind.UNKNOWN, status=code, message=f"{what}: {code} {message}".rstrip())
        if code >= 400:
            return Answer(Kind.REJECTED, status=code, message=message or f"HTTP {code}")
        data = envelope.get("data")
        if not isinstance(data, dict):
            return Answer(Kind.UNKNOWN, status=code, message=f"{what}: the envelope has no data")
        return Answer(Kind.OK, data=data, status=code, message=message)


def _message_of(response: httpx.Response) -> str:
    """The envelope's message, scrubbed and on one line, or '' when there is none."""
    try:
        envelope = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""
    message = envelope.get("message") if isinstance(envelope, dict) else None
    return " ".join(scrub(message).split())[:300] if isinstance(message, str) else ""


def _reason(e: Exception) -> str:
    text = scrub(str(e)) or type(e).__name__
    return " ".join(text.split())[:200]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)
