"""The sandbox's behaviour, independent of how it is served.

It validates requests on its own (not through the manifest schema code) so that a bug in
imgbatch's checks shows up as an upstream-style 400, as it would against the real service.
Only the pixel table comes from the schema: the sandbox must deliver what the plan promises.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from runner.sandbox.imagehost import ImageFaults, ImageHost, Reply
from runner.sandbox.images import png
from runner.schema import size_table

SUBMIT_PATH = "/api/openapi/submit"
QUERY_PATH = "/api/openapi/query"
FILES_PREFIX = "/files/"
STATS_PATH = "/sandbox/stats"

# The sandbox's own copy of the API page's limits, deliberately not read from the schema:
# it is the oracle that catches a wrong bound in imgbatch's schema.
MIN_PIXELS = 655_360
MAX_PIXELS = 8_294_400
TIERS = ("1K", "2K", "4K")
OUT_TASK_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
SIZE_RE = re.compile(r"^([0-9]{1,6})x([0-9]{1,6})\Z")
DEFAULT_TIER = "1K"  # upstream's default when only aspect_ratio is sent is undocumented


@dataclass
class Faults:
    """Knobs for misbehaviour. Shares are probabilities from 0 to 1."""

    latency: float = 0.0  # seconds added to every API request
    submit_latency: float = 0.0  # seconds added to submits on top (slow submits, quick queries)
    rate_limit: float = 0.0  # API requests per second before 429 (0: none)
    error_share: float = 0.0  # answered 500/502/503 without doing anything
    lost_submit_share: float = 0.0  # submit recorded, then answered with an error anyway
    malformed_share: float = 0.0  # request done, then the body is broken JSON
    envelope_error_share: float = 0.0  # HTTP 200 whose envelope says statusCode 500
    fail_share: float = 0.0  # tasks that end `failed` (or `end_status`)
    end_status: str = "failed"  # how those tasks end: canceled, error, expired... or never (processing)
    image: ImageFaults = field(default_factory=ImageFaults)
    # Prices, for the spending guards: per size class ("1K", "2K", "4K", "custom"), then per
    # call ((n, price): from the n-th accepted submit on); a price may be given as text.
    prices: dict[str, int | str] = field(default_factory=dict)
    price_from: list[tuple[int, int | str]] = field(default_factory=list)
    price_format: str = "number"  # "number", "string" ("1000") or "missing"
    used_factor: float = 1.0  # credits_used = price x this, on completion
    query_404_share: float = 0.0  # queries of a known task answered 404 all the same
    query_404_times: int = 0  # the first N queries of each task answered 404 (replication lag)
    wrong_task_share: float = 0.0  # queries answered with another task's data
    echo_headers: bool = False  # every message carries the request's headers (a leaky gateway)


@dataclass
class SandboxResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    chunks: Iterator[bytes] | None = None  # a streamed body, sent without Content-Length
    chunk_delay: float = 0.0  # seconds before each chunk (a slow host)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/json")


@dataclass
class _Task:
    task_id: str
    out_task_id: str
    params: dict[str, Any]
    pixels: tuple[int, int]
    created: float
    created_at: str
    fails: bool
    credits: Any  # a number, or the text a misbehaving service sends
    metadata: Any = None
    callback_url: str | None = None


class BadRequest(Exception):
    pass


def _iso(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


class Sandbox:
    def __init__(
        self,
        token: str = "sandbox",
        task_seconds: float = 2.0,
        faults: Faults | None = None,
        credits_per_task: int = 100,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        image_base_url: str | None = None,
    ) -> None:
        self.token = token
        self.task_seconds = task_seconds
        self.faults = faults or Faults()
        self.credits_per_task = credits_per_task
        self.clock = clock
        self.rng = random.Random(seed)
        self.seed = seed
        self.tasks: dict[str, _Task] = {}  # by out_task_id
        self.by_task_id: dict[str, _Task] = {}
        self.submits: Counter[str] = Counter()  # submit requests naming each out_task_id
        self.denied: Counter[str] = Counter()  # queries answered 404 by query_404_times
        self.requests: Counter[str] = Counter()
        self._recent: deque[float] = deque()
        self.throttled = 0  # requests answered 429
        self._lock = threading.Lock()
        self._wall_offset = time.time() - clock()
        # Outputs are served from here when set (a CDN on another host), else from the API host.
        self.image_base_url = image_base_url.rstrip("/") if image_base_url else None
        self.image_host = ImageHost(hashlib.sha256(f"sign:{seed}".encode()).digest(), self.faults.image)

    # --- what tests ask -----------------------------------------------------------------

    def submitted_twice(self) -> list[str]:
        """out_task_ids that more than one submit request named."""
        return sorted(i for i, n in self.submits.items() if n > 1)

    def stats(self) -> dict[str, Any]:
        return {
            "tasks": len(self.tasks),
            "submits": dict(self.submits),
            "submitted_twice": self.submitted_twice(),
            # What the accepted tasks cost, as priced (text prices left out): what a cap must bound.
            "credits_accepted": sum(t.credits for t in self.tasks.values() if isinstance(t.credits, int)),
            "requests": dict(self.requests),
            "throttled": self.throttled,
            **self.image_host.stats(),
        }

    # --- serving ------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, base_url: str, query: str = ""
    ) -> SandboxResponse:
        with self._lock:
            response = self._handle(method, path, headers, body, base_url.rstrip("/"), query)
            return self._echo(response, headers) if path in (SUBMIT_PATH, QUERY_PATH) else response

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, base_url: str, query: str
    ) -> SandboxResponse:
        self.requests[path if not path.startswith(FILES_PREFIX) else FILES_PREFIX] += 1
        on_image_host = self.image_base_url is not None and base_url == self.image_base_url
        self.image_host.faults = self.faults.image  # tests may swap the knobs mid-run
        if on_image_host or path.startswith(FILES_PREFIX):
            self.image_host.record(headers)
        if method == "GET" and path == STATS_PATH:
            return _json(200, self.stats())
        if method == "GET" and path.startswith(FILES_PREFIX) and on_image_host == bool(self.image_base_url):
            if self._roll(self.faults.error_share):
                return _envelope(503, "service unavailable")
            return self._file(path, query)
        if on_image_host:
            return SandboxResponse(404, b"not found", {"content-type": "text/plain"})
        if path not in (SUBMIT_PATH, QUERY_PATH):
            return _envelope(404, f"no route {method} {path}")
        if method != "POST":
            return _envelope(405, "method not allowed")
        if headers.get("authorization") != f"Bearer {self.token}":
            return _envelope(401, "invalid or missing API key")
        limited = self._rate_limited()
        if limited is not None:
            return limited
        if self._roll(self.faults.error_share):
            return _envelope(self.rng.choice([500, 502, 503]), "upstream error")
        if self._roll(self.faults.envelope_error_share):
            return _json(200, {"statusCode": 500, "message": "internal server error", "data": None})
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise BadRequest("the body must be a JSON object")
            submit = path == SUBMIT_PATH
            response = self._submit(request) if submit else self._query(request, base_url)
        except (ValueError, UnicodeDecodeError):
            return _envelope(400, "the body is not valid JSON")
        except BadRequest as e:
            return _envelope(400, str(e))
        if self._roll(self.faults.malformed_share):
            return SandboxResponse(200, response.body[: len(response.body) // 2])
        return response

    def _echo(self, response: SandboxResponse, headers: dict[str, str]) -> SandboxResponse:
        """With echo_headers, plant the request's headers in every message and task error."""
        if not self.faults.echo_headers:
            return response
        try:
            envelope = json.loads(response.body)
        except ValueError:
            return response  # a body already broken on purpose
        if not isinstance(envelope, dict):
            return response
        echo = "request headers: " + ", ".join(f"{k}: {v}" for k, v in sorted(headers.items()))
        envelope["message"] = f"{envelope.get('message') or 'ok'} ({echo})"
        data = envelope.get("data")
        if isinstance(data, dict) and data.get("error"):
            data["error"] = f"{data['error']} ({echo})"
        return _json(response.status, envelope)

    def _roll(self, share: float) -> bool:
        return share > 0 and self.rng.random() < share

    def _rate_limited(self) -> SandboxResponse | None:
        limit = self.faults.rate_limit
        if limit <= 0:
            return None
        now = self.clock()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= limit:
            retry = max(1, math.ceil(1.0 - (now - self._recent[0])))
            self.throttled += 1
            response = _envelope(429, "rate limit exceeded")
            response.headers["retry-after"] = str(retry)
            return response
        self._recent.append(now)
        return None

    # --- the API ------------------------------------------------------------------------

    def _submit(self, request: dict[str, Any]) -> SandboxResponse:
        out_task_id = request.get("out_task_id")
        if not isinstance(out_task_id, str) or not OUT_TASK_ID_RE.match(out_task_id):
            raise BadRequest("out_task_id is required: 1 to 64 of A-Z a-z 0-9 . _ -")
        self.submits[out_task_id] += 1
        if request.get("model") != "gpt_image_2":
            raise BadRequest('model must be "gpt_image_2"')
        params = request.get("params")
        if not isinstance(params, dict):
            raise BadRequest("params must be an object")
        pixels = _check_params(params)
        if out_task_id in self.tasks:
            raise BadRequest(f"out_task_id already exists: {out_task_id}")
        now = self.clock()
        digest = hashlib.sha256(f"{self.seed}:{out_task_id}".encode()).hexdigest()
        task = _Task(
            task_id="sbx_" + digest[:16],
            out_task_id=out_task_id,
            params=params,
            pixels=pixels,
            created=now,
            created_at=_iso(now + self._wall_offset),
            fails=int(digest[16:24], 16) / 0xFFFFFFFF < self.faults.fail_share,
            credits=self._price(params),
            metadata=request.get("metadata"),
            callback_url=request.get("callback_url"),
        )
        self.tasks[out_task_id] = task
        self.by_task_id[task.task_id] = task
        if self._roll(self.faults.lost_submit_share):
            return _envelope(self.rng.choice([500, 502, 504]), "gateway error")
        data: dict[str, Any] = {
            "out_task_id": out_task_id,
            "status": "pending",
            "created_at": task.created_at,
        }
        if self.faults.price_format != "missing":
            price = task.credits
            data["estimated_credits"] = str(price) if self.faults.price_format == "string" else price
        return _json(200, {"statusCode": 200, "message": "", "data": data})

    def _price(self, params: dict[str, Any]) -> Any:
        accepted = len(self.tasks) + 1
        price: Any = self.faults.prices.get(
            "custom" if "size" in params else str(params.get("resolution", DEFAULT_TIER)),
            self.credits_per_task,
        )
        for start, later in sorted(self.faults.price_from):
            if accepted >= start:
                price = later
        try:
            return int(price)
        except ValueError:
            return price

    def _query(self, request: dict[str, Any], base_url: str) -> SandboxResponse:
        if isinstance(request.get("task_id"), str):
            task = self.by_task_id.get(request["task_id"])
        elif isinstance(request.get("out_task_id"), str):
            task = self.tasks.get(request["out_task_id"])
        else:
            raise BadRequest("give task_id or out_task_id")
        if task is None or self._roll(self.faults.query_404_share):
            return _envelope(404, "task not found")
        if self.denied[task.out_task_id] < self.faults.query_404_times:
            self.denied[task.out_task_id] += 1
            return _envelope(404, "task not found")
        if self._roll(self.faults.wrong_task_share):
            return _json(200, {"statusCode": 200, "message": "", "data": self._other(task, base_url)})
        return _json(200, {"statusCode": 200, "message": "", "data": self._describe(task, base_url)})

    def _other(self, asked: _Task, base_url: str) -> dict[str, Any]:
        """An answer about some other task: a neighbour's, or a forged id when there is none."""
        others = [t for t in self.tasks.values() if t is not asked]
        if others:
            return self._describe(self.rng.choice(others), base_url)
        return {**self._describe(asked, base_url), "out_task_id": f"../{asked.out_task_id}"}

    def _describe(self, task: _Task, base_url: str) -> dict[str, Any]:
        elapsed = self.clock() - task.created
        data: dict[str, Any] = {
            "task_id": task.task_id,
            "out_task_id": task.out_task_id,
            "created_at": task.created_at,
            "completed_at": None,
            "input": {"model": "gpt_image_2", "params": task.params},
            "credits_used": 0,
        }
        if task.metadata is not None:
            data["metadata"] = task.metadata
        if elapsed < self.task_seconds * 0.25:
            data["status"] = "pending"
        elif elapsed < self.task_seconds:
            data["status"] = "processing"
        else:
            if task.fails:
                data["status"] = self.faults.end_status
                if data["status"] != "processing":  # `processing`: a task that never ends
                    data["completed_at"] = _iso(task.created + self.task_seconds + self._wall_offset)
                    data["error"] = "content policy: the prompt could not be rendered (sandbox)"
            else:
                data["completed_at"] = _iso(task.created + self.task_seconds + self._wall_offset)
                data["status"] = "completed"
                data["credits_used"] = (
                    round(task.credits * self.faults.used_factor)
                    if isinstance(task.credits, int)
                    else task.credits
                )
                path = f"{FILES_PREFIX}{task.task_id}/0.png"
                signed = self.image_host.sign(path, self.clock() + self._wall_offset)
                data["output"] = [{"url": f"{self.image_base_url or base_url}{path}?{signed}"}]
        return data

    def _file(self, path: str, query: str) -> SandboxResponse:
        task_id, _, name = path[len(FILES_PREFIX) :].partition("/")
        task = self.by_task_id.get(task_id)
        if task is None or name != "0.png" or self.clock() - task.created < self.task_seconds:
            return SandboxResponse(404, b"not found", {"content-type": "text/plain"})
        denied = self.image_host.check(path, query, self.clock() + self._wall_offset)
        data = png(*task.pixels, task.out_task_id)
        kind = self.image_host.fault_for(task.out_task_id, task_id)
        reply = denied or (self.image_host.faulted(kind, data) if kind else Reply(200, data, "image/png"))
        return SandboxResponse(
            reply.status, reply.body, {"content-type": reply.content_type}, reply.chunks, reply.chunk_delay
        )


def _check_params(params: dict[str, Any]) -> tuple[int, int]:
    """Upstream's rules for params; returns the pixels it would deliver."""
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("params.prompt is required")
    table = size_table()
    if "size" in params:
        if "aspect_ratio" in params or "resolution" in params:
            raise BadRequest("size cannot be used together with aspect_ratio or resolution")
        m = SIZE_RE.match(str(params["size"]))
        if not m:
            raise BadRequest(f"invalid size {params['size']!r}: use WIDTHxHEIGHT")
        w, h = int(m.group(1)), int(m.group(2))
        if not MIN_PIXELS <= w * h <= MAX_PIXELS:
            raise BadRequest(f"size {w}x{h} is outside {MIN_PIXELS}..{MAX_PIXELS} total pixels")
        return table.delivered_custom(w, h)
    ratio = params.get("aspect_ratio", "1:1")
    tier = params.get("resolution", DEFAULT_TIER)
    if tier not in TIERS:
        raise BadRequest(f"invalid resolution {tier!r}")
    if (ratio, tier) not in table.cells:
        raise BadRequest(f"invalid aspect_ratio {ratio!r}")
    return table.cell(ratio, tier).delivered


def _json(status: int, value: Any) -> SandboxResponse:
    return SandboxResponse(
        status, json.dumps(value, ensure_ascii=False).encode(), {"content-type": "application/json"}
    )


def _envelope(status: int, message: str) -> SandboxResponse:
    return _json(status, {"statusCode": status, "message": message, "data": None})
