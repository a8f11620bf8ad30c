"""The sandbox as a real HTTP server on loopback: a small ASGI app served by uvicorn."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from runner.sandbox.core import Sandbox
from runner.sandbox.wire import SUBMIT_PATH, SandboxResponse

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MAX_BODY = 1024 * 1024


class SandboxApp:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await _send(send, 413, b'{"statusCode":413,"message":"body too large"}', {})
                return
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        delay = self.sandbox.faults.latency
        if scope["path"] == SUBMIT_PATH:
            delay += self.sandbox.faults.submit_latency
        if delay > 0:
            await asyncio.sleep(delay)
        host = headers.get("host") or "{}:{}".format(*scope["server"])
        query = scope.get("query_string", b"").decode("latin-1")
        r = self.sandbox.handle(scope["method"], scope["path"], headers, body, f"http://{host}", query)
        if r.chunks is not None:
            await _stream(receive, send, r)
        else:
            await _send(send, r.status, r.body, r.headers)


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _stream(receive: Receive, send: Send, r: SandboxResponse) -> None:
    """A chunked body, optionally dripped; stops as soon as the client goes away."""
    assert r.chunks is not None
    gone = asyncio.Event()

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()

    watcher = asyncio.create_task(watch())
    raw = [(k.encode(), v.encode()) for k, v in r.headers.items()]
    try:
        await send({"type": "http.response.start", "status": r.status, "headers": raw})
        for chunk in r.chunks:
            if r.chunk_delay:
                await asyncio.sleep(r.chunk_delay)
            if gone.is_set():
                return
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except OSError:
        return
    finally:
        watcher.cancel()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def bind(host: str, port: int) -> socket.socket:
    """Bind first, so that port 0 gives a real port to print before serving."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Inherited by every accepted connection: an answer goes out as two writes (head, body),
    # and with Nagle the body waited for the client's delayed ACK, 40 ms per answer.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.setblocking(False)
    return sock


def make_server(sandbox: Sandbox) -> Any:
    import uvicorn

    config = uvicorn.Config(
        SandboxApp(sandbox), log_level="warning", access_log=False, lifespan="on", timeout_keep_alive=30
    )
    return uvicorn.Server(config)


def serve(sandbox: Sandbox, *socks: socket.socket) -> None:
    make_server(sandbox).run(sockets=list(socks))
