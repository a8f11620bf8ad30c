"""The sandbox's side of HTTP, whichever way it is served: its routes and an answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SUBMIT_PATH = "/api/openapi/submit"
QUERY_PATH = "/api/openapi/query"
FILES_PREFIX = "/files/"
STATS_PATH = "/sandbox/stats"


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


def json_response(status: int, value: Any) -> SandboxResponse:
    # allow_nan=False: the stand-in answers standard JSON, as imgbatch writes it everywhere.
    body = json.dumps(value, ensure_ascii=False, allow_nan=False).encode()
    return SandboxResponse(status, body, {"content-type": "application/json"})


def envelope(status: int, message: str) -> SandboxResponse:
    return json_response(status, {"statusCode": status, "message": message, "data": None})
