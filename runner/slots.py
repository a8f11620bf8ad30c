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
import os
import ssl
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable

import httpx

from runner.errors import ConfigError


def prepare_tls() -> None:
    """Start making the TLS context the slots will share, on a thread of its own: loading the
    CA bundle is 20-40 ms of OpenSSL work that does not hold the GIL, so a run that calls this
    first has it made while it reads its manifests, not just before its first request."""
    _pending_context()


def _pending_context() -> _PendingContext:
    # httpx reads these when it makes a context: one made under other settings is not reused.
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    pending = _contexts.get(key)
    if pending is None:
        pending = _contexts[key] = _PendingContext()
    return pending


class _PendingContext:
    def __init__(self) -> None:
        self._context: ssl.SSLContext | None = None
        self._error: BaseException | None = None
        # Not a daemon: a run that ends before it needs the context (a no-op rerun, a refusal)
        # must not finalise the interpreter while this thread is inside OpenSSL, which crashed
        # such runs with SIGSEGV now and then (exit -11 instead of 0 or 4). Exit waits for it
        # instead: at most the rest of the 20-40 ms.
        self._done = threading.Event()
        threading.Thread(target=self._make, name="imgbatch-tls", daemon=False).start()

    def _make(self) -> None:
        try:
            self._context = httpx.create_ssl_context()
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            self._error = _unusable_certificates(e)
        except BaseException as e:  # raised where the context is needed, as if made there
            self._error = e
        finally:
            self._done.set()

    def get(self) -> ssl.SSLContext:
        # An event, not join(): Python 3.11 takes a join() cut short by a signal (SIGTERM with
        # SIGINT ignored raises KeyboardInterrupt wherever the run is) for the end of the
        # thread, so exit would not wait for it and OpenSSL's clean-up at exit would race its
        # work: SIGSEGV in 1 run in 8 of those killed while waiting here.
        self._done.wait()
        if self._error is not None:
            raise self._error
        assert self._context is not None
        return self._context


_contexts: dict[tuple[str | None, str | None], _PendingContext] = {}


def _unusable_certificates(error: Exception) -> ConfigError:
    # httpx takes SSL_CERT_FILE if set, else SSL_CERT_DIR, else certifi's bundle.
    named = [f"{v}={os.environ[v]}" for v in ("SSL_CERT_FILE", "SSL_CERT_DIR") if os.environ.get(v)][:1]
    detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
    if named:
        return ConfigError(
            f"the CA certificates in {named[0]} cannot be loaded: {detail}",
            hint="point it at a readable PEM file or folder, or unset it to use the bundled certificates",
        )
    return ConfigError(
        f"the bundled CA certificates cannot be loaded: {detail}",
        hint="reinstall imgbatch (the certifi package), or set SSL_CERT_FILE to a PEM file",
    )


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
            self._context = _pending_context().get()
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
