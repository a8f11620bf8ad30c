"""The sandbox's misbehaviour: the knobs (Faults), the rate limit it answers 429 past, and the
headers a leaky gateway echoes back. Random faults are rolled by the Sandbox itself, on one
seeded generator, so a seed replays the same run."""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from runner.sandbox.imagehost import ImageFaults
from runner.sandbox.wire import SandboxResponse, envelope, json_response


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


class RateLimiter:
    """Requests per second over a sliding second; past the limit, a 429 with Retry-After."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._recent: deque[float] = deque()
        self.throttled = 0  # requests answered 429

    def check(self, limit: float) -> SandboxResponse | None:
        if limit <= 0:
            return None
        now = self.clock()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= limit:
            retry = max(1, math.ceil(1.0 - (now - self._recent[0])))
            self.throttled += 1
            response = envelope(429, "rate limit exceeded")
            response.headers["retry-after"] = str(retry)
            return response
        self._recent.append(now)
        return None


def echo_headers(response: SandboxResponse, headers: dict[str, str]) -> SandboxResponse:
    """Plant the request's headers in the message and the task error (a leaky gateway)."""
    try:
        body = json.loads(response.body)
    except ValueError:
        return response  # a body already broken on purpose
    if not isinstance(body, dict):
        return response
    echo = "request headers: " + ", ".join(f"{k}: {v}" for k, v in sorted(headers.items()))
    body["message"] = f"{body.get('message') or 'ok'} ({echo})"
    data = body.get("data")
    if isinstance(data, dict) and data.get("error"):
        data["error"] = f"{data['error']} ({echo})"
    return json_response(response.status, body)
