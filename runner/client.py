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
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from runner import __version__
from runner.errors import AuthError, ConfigError, ServiceError
from runner.gate import AdaptiveGate
from runner.jsonnum import loads_answer
from runner.redact import scrub, scrub_value
from runner.slots import SlotTransport

SUBMIT_PATH = "/api/openapi/submit"
QUERY_PATH = "/api/openapi/query"
MAX_RETRY_AFTER = 300.0
PLAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
CONNECT_TIMEOUT = 5.0
FIRST_CONTACT_ATTEMPTS = 2  # a service never reached yet: "cannot connect" within seconds
THROTTLE_PATIENCE = 900.0  # seconds of 429s for one request before it is reported unresolved


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
            # One connection per slot, not httpx's pool (see runner/slots.py).
            transport=transport or SlotTransport(concurrency),
            headers={"authorization": f"Bearer {api_key}", "user-agent": f"imgbatch/{__version__}"},
            timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT, pool=None),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            follow_redirects=False,
        )
        self.retry = retry or RetryPolicy()
        # Every request waits at this gate (not in httpx's pool); 429s narrow it adaptively.
        self.gate = AdaptiveGate(concurrency, rate, sleep=sleep)
        self.rng = random.Random(seed)
        self.sleep = sleep
        self.requests = 0
        self.wrong_answers = 0  # answers about another task than the one asked about
        self.contacted = False  # some request of this client reached the server
        self.envelope_seen = False  # ... and was answered by the API (a JSON envelope)
        self.accepted_any = False  # a submit was accepted: the submit route exists

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- the two API calls --------------------------------------------------------------

    async def submit(self, body: dict[str, Any]) -> Answer:
        answer = await self._call(SUBMIT_PATH, body, idempotent=False, about=(str(body["out_task_id"]), None))
        if answer.kind is Kind.NOT_FOUND:
            if not self.accepted_any:
                # The submit route itself is not there: the base URL is not the API's.
                raise ConfigError(
                    f"POST {self.base_url}{SUBMIT_PATH}: 404 ({answer.message or 'not found'}); "
                    f"{_host(self.base_url)} does not serve the aireiter API at this base URL",
                    hint="check --base-url (the site only, e.g. https://aireiter.com)",
                )
            said = f"POST {SUBMIT_PATH}: 404 {answer.message}".rstrip()
            answer = Answer(Kind.UNKNOWN, status=404, message=said)
        elif answer.kind is Kind.OK:
            self.accepted_any = True
        return answer

    async def query(self, out_task_id: str, task_id: str | None = None) -> Answer:
        """Ask about a task by its out_task_id; `task_id`, when known, must match too."""
        return await self._call(
            QUERY_PATH, {"out_task_id": out_task_id}, idempotent=True, about=(out_task_id, task_id)
        )

    async def _call(
        self, path: str, body: dict[str, Any], *, idempotent: bool, about: tuple[str, str | None]
    ) -> Answer:
        what = f"POST {self.base_url}{path}"
        last = Answer(Kind.UNKNOWN, message="no attempt made")
        all_unreachable = True
        attempt = 0
        throttled_since: float | None = None
        while True:
            result = await self._send(path, body)
            if isinstance(result, (httpx.ConnectError, httpx.ConnectTimeout)):
                # Nothing reached the server: safe to try again, even for a submit.
                last = Answer(Kind.UNKNOWN, message=f"{what}: cannot connect ({_reason(result)})")
                if not self.contacted and attempt + 1 >= FIRST_CONTACT_ATTEMPTS:
                    raise ServiceError(
                        f"cannot connect to {_host(self.base_url)} ({_reason(result)})",
                        hint="check --base-url (or AIREITER_BASE_URL) and the network, then rerun",
                    )
            elif isinstance(result, Exception):
                all_unreachable = False
                last = Answer(Kind.UNKNOWN, message=f"{what}: {_reason(result)}")
                if not idempotent:
                    return last
            else:
                all_unreachable = False
                last = self._interpret(result, what)
                last.retry_after = _retry_after(result)
                other = _about_another(last, *about)
                if other:
                    # Never recorded as this task: an unusable answer, retried like any other.
                    self.wrong_answers += 1
                    last = Answer(Kind.UNKNOWN, status=last.status, message=f"{what}: {other}; not accepted")
                if last.kind is not Kind.UNKNOWN:
                    return last
                if last.status == 429:
                    # Not a failure: the gate has slowed down and paces the next try. Only a
                    # service that throttles one request for many minutes is given up on.
                    if result.status_code != 429:
                        self.gate.note_throttle(last.retry_after)
                    now = time.monotonic()
                    throttled_since = throttled_since or now
                    if now - throttled_since < THROTTLE_PATIENCE:
                        continue
                    return last
                if not idempotent:
                    return last
            attempt += 1
            if attempt >= self.retry.attempts:
                break
            await self.sleep(self._backoff(attempt, last))
        last.unreachable = all_unreachable
        return last

    async def _send(self, path: str, body: dict[str, Any]) -> httpx.Response | Exception:
        """One request through the gate: the response, or the transport error it ended in."""
        await self.gate.acquire()
        self.requests += 1
        throttled, retry_after, ok = False, None, False
        try:
            response = await self.http.post(path, json=body)
            self.contacted = ok = True
            throttled = response.status_code == 429
            retry_after = _retry_after(response) if throttled else None
            return response
        except (httpx.TimeoutException, httpx.TransportError) as e:
            return e
        finally:
            await self.gate.release(throttled=throttled, retry_after=retry_after, success=ok)

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
            envelope = scrub_value(loads_answer(response.content))
        except (ValueError, RecursionError):
            # Not JSON (NaN and Infinity included), not UTF-8, or JSON Python will not read (a
            # number of over 4,300 digits, nesting past the stack): an answer without a usable
            # body all the same. A number past a float is read as the integer it is: jsonnum.py.
            if status in (404, 405) and not self.envelope_seen:
                # No such route and never an API answer: a wrong base URL, not a busy service.
                raise ConfigError(
                    f"{what}: HTTP {status} without an API answer; {_host(self.base_url)} does not "
                    "serve the aireiter API at this base URL",
                    hint="check --base-url (the site only, e.g. https://aireiter.com)",
                ) from None
            return Answer(
                Kind.UNKNOWN, status=status, message=f"{what}: HTTP {status} with a body that is not JSON"
            )
        if isinstance(envelope, dict) and "statusCode" in envelope:
            self.envelope_seen = True
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


def _about_another(answer: Answer, out_task_id: str, task_id: str | None) -> str:
    """Why an OK answer is about another task than the one asked about ('' when it is not)."""
    if answer.kind is not Kind.OK or answer.data is None:
        return ""
    said = answer.data.get("out_task_id")
    if said is not None and (not isinstance(said, str) or not PLAIN_ID.fullmatch(said)):
        return f"an answer naming out_task_id {str(said)[:80]!r}, not a plain id"
    if said is not None and said != out_task_id:
        return f"an answer about another task (out_task_id {said!r}, asked about {out_task_id!r})"
    their = answer.data.get("task_id")
    if task_id is not None and their is not None and their != task_id:
        return f"an answer about another task (task_id {str(their)[:80]!r}, expected {task_id!r})"
    return ""


def _message_of(response: httpx.Response) -> str:
    """The envelope's message, scrubbed and on one line, or '' when there is none."""
    try:
        envelope = loads_answer(response.content)
    except (ValueError, RecursionError):  # as in _interpret
        return ""
    message = envelope.get("message") if isinstance(envelope, dict) else None
    return " ".join(scrub(message).split())[:300] if isinstance(message, str) else ""


def _host(url: str) -> str:
    parsed = httpx.URL(url)
    return parsed.host + (f":{parsed.port}" if parsed.port else "")


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
