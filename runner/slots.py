"""An httpx transport with one connection per slot, for many requests over few connections.

httpx's own pool of N connections, on every request start and end, asks each of its N
connections whether it is idle or expired (an expiry check is a poll() system call and a
socket-attributes lookup) and counts idle connections once per connection: its cost per
request grows with N, and with N squared, so at --concurrency 32 or 64 most of a client's CPU
goes there. Here each slot is a transport of its own holding one keep-alive connection, and a
request takes an idle slot (preferably one already connected to the request's host) from a
list: the same cost at any concurrency. Requests beyond the slots wait in arrival order.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable

import httpx


def _one_connection(context: ssl.SSLContext) -> httpx.AsyncBaseTransport:
    return httpx.AsyncHTTPTransport(
        verify=context, limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)
    )


class SlotTransport(httpx.AsyncBaseTransport):
    def __init__(self, slots: int, make: Callable[[], httpx.AsyncBaseTransport] | None = None) -> None:
        self.slots = max(1, slots)
        self._context: ssl.SSLContext | None = None  # one for all slots: each costs ~50 ms
        self._make = make or self._default_slot
        self._idle: dict[tuple[bytes, bytes, int | None], list[httpx.AsyncBaseTransport]] = {}
        self._idle_count = 0
        self._all: list[httpx.AsyncBaseTransport] = []
        self._waiters: deque[asyncio.Future[httpx.AsyncBaseTransport]] = deque()

    def _default_slot(self) -> httpx.AsyncBaseTransport:
        if self._context is None:
            self._context = httpx.create_ssl_context()
        return _one_connection(self._context)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = (request.url.raw_scheme, request.url.raw_host, request.url.port)
        slot = await self._take(origin)
        try:
            response = await slot.handle_async_request(request)
        except BaseException:
            self._give(origin, slot)
            raise
        if isinstance(response.stream, httpx.ByteStream):
            self._give(origin, slot)  # already whole in memory: nothing left on the connection
        else:
            response.stream = _GiveBack(response.stream, lambda: self._give(origin, slot))
        return response

    async def _take(self, origin: tuple[bytes, bytes, int | None]) -> httpx.AsyncBaseTransport:
        same = self._idle.get(origin)
        if same:
            self._idle_count -= 1
            return same.pop()  # the most recently used: its connection is the warmest
        if len(self._all) < self.slots:
            slot = self._make()
            self._all.append(slot)
            return slot
        if self._idle_count:  # connected elsewhere: it reconnects to this host
            for other in self._idle.values():
                if other:
                    self._idle_count -= 1
                    return other.pop()
        waiter: asyncio.Future[httpx.AsyncBaseTransport] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            return await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._give(origin, waiter.result())  # handed a slot, then cancelled
            raise

    def _give(self, origin: tuple[bytes, bytes, int | None], slot: httpx.AsyncBaseTransport) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._idle.setdefault(origin, []).append(slot)
        self._idle_count += 1

    async def aclose(self) -> None:
        for slot in self._all:
            await slot.aclose()


class _GiveBack(httpx.AsyncByteStream):
    """The response body; closing it (httpx always does) gives the slot back, once."""

    def __init__(
        self, stream: httpx.SyncByteStream | httpx.AsyncByteStream, done: Callable[[], None]
    ) -> None:
        assert isinstance(stream, httpx.AsyncByteStream)
        self._stream = stream
        self._done: Callable[[], None] | None = done

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            done, self._done = self._done, None
            if done is not None:
                done()
