"""The sandbox as an httpx transport: the real client code, no network."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx

from runner.sandbox.core import Sandbox
from runner.sandbox.wire import SUBMIT_PATH

IN_PROCESS_URL = "http://sandbox.imgbatch.invalid"


class SandboxTransport(httpx.AsyncBaseTransport, httpx.BaseTransport):
    """Works for httpx.AsyncClient (what imgbatch uses) and httpx.Client (handy in tests)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        delay = self.sandbox.faults.latency
        if request.url.path == SUBMIT_PATH:
            delay += self.sandbox.faults.submit_latency
        if delay > 0:
            await asyncio.sleep(delay)
        return self._respond(request, body)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        if self.sandbox.faults.latency > 0:
            time.sleep(self.sandbox.faults.latency)
        return self._respond(request, body)

    def _respond(self, request: httpx.Request, body: bytes) -> httpx.Response:
        base = f"{request.url.scheme}://{request.url.netloc.decode()}"
        headers = {k.lower(): v for k, v in request.headers.items()}
        query = request.url.query.decode("ascii")
        r = self.sandbox.handle(request.method, request.url.path, headers, body, base, query)
        if r.chunks is not None:
            return httpx.Response(r.status, headers=r.headers, content=_drip(r.chunks, r.chunk_delay))
        return httpx.Response(r.status, headers=r.headers, content=r.body)


async def _drip(chunks: Iterator[bytes], delay: float) -> AsyncIterator[bytes]:
    for chunk in chunks:
        if delay:
            await asyncio.sleep(delay)
        yield chunk
