"""An independent stand-in for the aireiter API, for benchmarks only (no imgbatch code).

Raw asyncio HTTP/1.1 with keep-alive, so the server costs little CPU next to the clients it
measures. Every answer waits --latency seconds first; a task completes --task-seconds after
its submit. Images come from a second listener on 127.0.0.2 (a different host, as the real
service's CDN is), as one small solid-colour PNG per size, at the pixels the plan expects.
The server logs what it saw; GET /bench/stats returns counts and the wall-clock times of the
first submit and first image download, so clients can be compared from the server's side.

    python bench/standin_server.py [--latency 0.04] [--task-seconds 1]
    # prints "API_URL IMAGE_URL" on its first stdout line
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import struct
import time
import zlib
from datetime import datetime, timezone
from typing import Any

ONE_ONE = {"1K": (1254, 1254), "2K": (2048, 2048), "4K": (2880, 2880)}  # delivered, per the API page


class State:
    def __init__(self, latency: float, task_seconds: float) -> None:
        self.latency = latency
        self.task_seconds = task_seconds
        self.tasks: dict[str, tuple[float, tuple[int, int]]] = {}
        self.counts = {"submit": 0, "query": 0, "download": 0, "other": 0, "submitted_twice": 0}
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.pngs: dict[tuple[int, int], bytes] = {}
        self.image_base = ""

    def seen(self, kind: str) -> None:
        self.counts[kind] += 1
        now = time.time()
        self.first.setdefault(kind, now)
        self.last[kind] = now

    def png(self, size: tuple[int, int]) -> bytes:
        if size not in self.pngs:
            self.pngs[size] = _png(*size)
        return self.pngs[size]


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + b"\x80\x60\x40" * width
    raw = zlib.compress(row * height, 9)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _pixels(params: dict[str, Any]) -> tuple[int, int]:
    size = params.get("size")
    if isinstance(size, str) and (m := re.fullmatch(r"(\d+)x(\d+)", size)):
        return int(m[1]), int(m[2])
    if params.get("aspect_ratio") == "1:1":
        return ONE_ONE.get(str(params.get("resolution")), (2048, 2048))
    return (1024, 1024)


def _iso(t: float) -> str:
    """A time as the API page shows it: "2025-12-22T06:03:28.242Z"."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _envelope(code: int, data: Any = None, message: str = "") -> bytes:
    return json.dumps({"statusCode": code, "message": message, "data": data}).encode()


def _answer(state: State, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
    if method == "POST" and path == "/api/openapi/submit":
        state.seen("submit")
        req = json.loads(body)
        oid = req["out_task_id"]
        if oid in state.tasks:
            state.counts["submitted_twice"] += 1
            return 400, _envelope(400, None, "out_task_id already exists"), "application/json"
        now = time.time()
        state.tasks[oid] = (now, _pixels(req.get("params") or {}))
        ack = {
            "out_task_id": oid,
            "task_id": "t-" + oid,
            "status": "pending",
            "estimated_credits": 10,
            "created_at": _iso(now),
        }
        return 200, _envelope(200, ack), "application/json"
    if method == "POST" and path == "/api/openapi/query":
        state.seen("query")
        oid = json.loads(body).get("out_task_id")
        task = state.tasks.get(oid)
        if task is None:
            return 404, _envelope(404, None, "task not found"), "application/json"
        started, size = task
        age = time.time() - started
        data: dict[str, Any] = {"task_id": "t-" + oid, "out_task_id": oid, "created_at": _iso(started)}
        if age >= state.task_seconds:
            data.update(
                status="completed",
                completed_at=_iso(started + state.task_seconds),
                credits_used=10,
                output=[{"url": f"{state.image_base}/img/{size[0]}x{size[1]}/{oid}.png"}],
            )
        else:
            data["status"] = "pending" if age < state.task_seconds / 2 else "processing"
        return 200, _envelope(200, data), "application/json"
    if method == "GET" and path.startswith("/img/"):
        state.seen("download")
        w, h = path.split("/")[2].split("x")
        return 200, state.png((int(w), int(h))), "image/png"
    if method == "GET" and path == "/bench/stats":
        stats = {**state.counts, "tasks": len(state.tasks), "first": state.first, "last": state.last}
        return 200, json.dumps(stats).encode(), "application/json"
    state.counts["other"] += 1
    return 404, b"{}", "application/json"


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found"}


async def _serve_connection(state: State, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
            body = await reader.readexactly(length) if length else b""
            if state.latency:
                await asyncio.sleep(state.latency)
            status, payload, ctype = _answer(state, method, target.split("?", 1)[0], body)
            writer.write(
                f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\ncontent-type: {ctype}\r\n"
                f"content-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
            if close:
                return
    except ConnectionError:
        return
    finally:
        writer.close()


async def main(latency: float, task_seconds: float, lifetime: float) -> None:
    state = State(latency, task_seconds)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _serve_connection(state, reader, writer)

    api = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    images = await asyncio.start_server(handle, "127.0.0.2", 0, backlog=1024)
    api_port = api.sockets[0].getsockname()[1]
    image_port = images.sockets[0].getsockname()[1]
    state.image_base = f"http://127.0.0.2:{image_port}"
    state.png(ONE_ONE["2K"])  # made before any client starts, so no request pays for it
    print(f"http://127.0.0.1:{api_port} {state.image_base}", flush=True)
    async with api, images:
        # Stops by itself even if the benchmark that started it died.
        await asyncio.wait_for(asyncio.gather(api.serve_forever(), images.serve_forever()), lifetime)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", type=float, default=0.04)
    ap.add_argument("--task-seconds", type=float, default=1.0)
    ap.add_argument("--lifetime", type=float, default=3600.0, help="seconds before it stops by itself")
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt, TimeoutError):
        asyncio.run(main(args.latency, args.task_seconds, args.lifetime))
