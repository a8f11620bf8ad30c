"""The sandbox's behaviour, independent of how it is served: the routes, the tasks it
accepted and how far along they are, their prices, and the images they deliver. The rules a
request must meet are runner/sandbox/rules.py's; the faults it can inject, faults.py's.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from runner.sandbox.faults import Faults, RateLimiter, echo_headers
from runner.sandbox.imagehost import ImageHost, Reply
from runner.sandbox.images import png
from runner.sandbox.rules import DEFAULT_TIER, OUT_TASK_ID_RE, BadRequest, check_params
from runner.sandbox.wire import (
    FILES_PREFIX,
    QUERY_PATH,
    STATS_PATH,
    SUBMIT_PATH,
    SandboxResponse,
    envelope,
    json_response,
)


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
        self.limiter = RateLimiter(clock)
        self._lock = threading.Lock()
        self._wall_offset = time.time() - clock()
        # Outputs are served from here when set (a CDN on another host), else from the API host.
        self.image_base_url = image_base_url.rstrip("/") if image_base_url else None
        self.image_host = ImageHost(hashlib.sha256(f"sign:{seed}".encode()).digest(), self.faults.image)

    # --- what tests ask -----------------------------------------------------------------

    @property
    def throttled(self) -> int:
        """Requests answered 429."""
        return self.limiter.throttled

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
            "throttled": self.limiter.throttled,
            **self.image_host.stats(),
        }

    # --- serving ------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, base_url: str, query: str = ""
    ) -> SandboxResponse:
        with self._lock:
            response = self._handle(method, path, headers, body, base_url.rstrip("/"), query)
            if self.faults.echo_headers and path in (SUBMIT_PATH, QUERY_PATH):
                return echo_headers(response, headers)
            return response

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes, base_url: str, query: str
    ) -> SandboxResponse:
        self.requests[path if not path.startswith(FILES_PREFIX) else FILES_PREFIX] += 1
        on_image_host = self.image_base_url is not None and base_url == self.image_base_url
        self.image_host.faults = self.faults.image  # tests may swap the knobs mid-run
        if on_image_host or path.startswith(FILES_PREFIX):
            self.image_host.record(headers)
        if method == "GET" and path == STATS_PATH:
            return json_response(200, self.stats())
        if method == "GET" and path.startswith(FILES_PREFIX) and on_image_host == bool(self.image_base_url):
            if self._roll(self.faults.error_share):
                return envelope(503, "service unavailable")
            return self._file(path, query)
        if on_image_host:
            return SandboxResponse(404, b"not found", {"content-type": "text/plain"})
        if path not in (SUBMIT_PATH, QUERY_PATH):
            return envelope(404, f"no route {method} {path}")
        if method != "POST":
            return envelope(405, "method not allowed")
        if headers.get("authorization") != f"Bearer {self.token}":
            return envelope(401, "invalid or missing API key")
        limited = self.limiter.check(self.faults.rate_limit)
        if limited is not None:
            return limited
        if self._roll(self.faults.error_share):
            return envelope(self.rng.choice([500, 502, 503]), "upstream error")
        if self._roll(self.faults.envelope_error_share):
            return json_response(200, {"statusCode": 500, "message": "internal server error", "data": None})
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise BadRequest("the body must be a JSON object")
            submit = path == SUBMIT_PATH
            response = self._submit(request) if submit else self._query(request, base_url)
        except (ValueError, UnicodeDecodeError):
            return envelope(400, "the body is not valid JSON")
        except BadRequest as e:
            return envelope(400, str(e))
        if self._roll(self.faults.malformed_share):
            return SandboxResponse(200, response.body[: len(response.body) // 2])
        return response

    def _roll(self, share: float) -> bool:
        return share > 0 and self.rng.random() < share

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
        pixels = check_params(params)
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
            return envelope(self.rng.choice([500, 502, 504]), "gateway error")
        data: dict[str, Any] = {
            "out_task_id": out_task_id,
            "status": "pending",
            "created_at": task.created_at,
        }
        if self.faults.price_format != "missing":
            price = task.credits
            data["estimated_credits"] = str(price) if self.faults.price_format == "string" else price
        return json_response(200, {"statusCode": 200, "message": "", "data": data})

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
            return envelope(404, "task not found")
        if self.denied[task.out_task_id] < self.faults.query_404_times:
            self.denied[task.out_task_id] += 1
            return envelope(404, "task not found")
        if self._roll(self.faults.wrong_task_share):
            return json_response(200, {"statusCode": 200, "message": "", "data": self._other(task, base_url)})
        return json_response(200, {"statusCode": 200, "message": "", "data": self._describe(task, base_url)})

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
