"""One connection per slot: never more connections than slots, a host's requests reuse the
connections already open to it, and a slot comes back however its request ended."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from runner.slots import SlotTransport
from tests.sandbox_util import loopback


class Body(httpx.AsyncByteStream):
    """A body read from the connection as it is iterated, as real responses are."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"x" * 10


class Slot(httpx.AsyncBaseTransport):
    """A stand-in for one keep-alive connection: records what it carried, at most one at once."""

    made: ClassVar[list[Slot]] = []

    def __init__(self) -> None:
        self.busy = False
        self.hosts: list[str] = []
        Slot.made.append(self)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert not self.busy, "two requests on one connection at once"
        self.busy = True
        self.hosts.append(request.url.host)
        await asyncio.sleep(0.001)
        if request.url.path == "/boom":
            self.busy = False
            raise httpx.ConnectError("refused", request=request)
        self.busy = False
        return httpx.Response(200, stream=Body())


@pytest.fixture(autouse=True)
def fresh() -> None:
    Slot.made = []


def test_many_requests_share_the_slots_and_each_host_keeps_its_connections() -> None:
    transport = SlotTransport(4, make=Slot)

    async def go() -> list[int]:
        async with httpx.AsyncClient(transport=transport) as client:
            hosts = ["a.example", "b.example"]
            responses = await asyncio.gather(
                *(client.get(f"http://{hosts[i % 2 if i < 100 else 0]}/{i}") for i in range(300))
            )
            return [r.status_code for r in responses]

    assert asyncio.run(go()) == [200] * 300
    assert len(Slot.made) == 4
    # Once the b requests are over, a-requests find a-connections idle: switching hosts on a
    # connection happens only when no connection to the host is free.
    switches = sum(1 for s in Slot.made for x, y in zip(s.hosts, s.hosts[1:], strict=False) if x != y)
    assert switches < 60


def test_a_slot_comes_back_after_an_error_and_after_a_streamed_body() -> None:
    transport = SlotTransport(1, make=Slot)

    async def go() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get("http://a.example/boom")
            async with client.stream("GET", "http://a.example/big") as response:
                assert await response.aread() == b"x" * 10
            # One slot: these would wait forever if either slot above had not come back.
            await asyncio.wait_for(asyncio.gather(*(client.get("http://a.example/") for _ in range(5))), 5)

    asyncio.run(go())
    assert len(Slot.made) == 1


def test_a_cancelled_waiter_does_not_keep_a_slot() -> None:
    transport = SlotTransport(1, make=Slot)

    async def go() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            first = asyncio.create_task(client.get("http://a.example/1"))
            waiting = asyncio.create_task(client.get("http://a.example/2"))
            await asyncio.sleep(0)
            waiting.cancel()
            await first
            await asyncio.wait_for(client.get("http://a.example/3"), 5)

    asyncio.run(go())


def test_real_connections_over_loopback_are_reused() -> None:
    from runner.sandbox import Sandbox

    sandbox = Sandbox(token="t", task_seconds=0)
    transport = SlotTransport(3)

    async def go(url: str) -> int:
        async with httpx.AsyncClient(transport=transport, base_url=url) as client:
            responses = await asyncio.gather(*(client.get("/sandbox/stats") for _ in range(40)))
            return len({r.status_code for r in responses})

    with loopback(sandbox) as url:
        assert asyncio.run(go(url)) == 1
    assert len(transport._all) == 3  # the connections opened for 40 requests


@pytest.mark.parametrize("content", [None, b"not a certificate\n"])
def test_unusable_ca_certificates_are_a_one_line_error_and_nothing_is_recorded(
    tmp_path: Path, content: bytes | None
) -> None:
    from runner.sandbox import Sandbox
    from tests.helpers import run_cli
    from tests.test_run import MANIFEST

    pem = tmp_path / "ca.pem"
    if content is not None:
        pem.write_bytes(content)
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    sandbox = Sandbox(token="sk-test", task_seconds=0.05)
    ledger = tmp_path / "l.jsonl"
    with loopback(sandbox) as url:
        result = run_cli(
            "run",
            "--yes",
            "--base-url",
            url,
            "--ledger",
            str(ledger),
            str(tmp_path / "m.yaml"),
            env={"AIREITER_API_KEY": "sk-test", "SSL_CERT_FILE": str(pem)},
        )
    assert result.exit_code == 3, result.stderr
    assert f"the CA certificates in SSL_CERT_FILE={pem} cannot be loaded" in result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert sum(sandbox.submits.values()) == 0
    assert not ledger.exists() or ledger.read_text() == ""


def test_a_run_cut_short_while_the_tls_context_is_made_still_waits_for_it_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A signal that interrupts the wait (SIGTERM with SIGINT ignored raises KeyboardInterrupt)
    # must leave the thread known as running, so that exit waits for it: exiting while it is
    # inside OpenSSL crashed with SIGSEGV. A FIFO as the CA file holds the thread in OpenSSL.
    import os
    import signal
    import threading

    from runner.errors import ConfigError
    from runner.slots import _pending_context

    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    monkeypatch.setenv("SSL_CERT_FILE", str(fifo))
    try:
        pending = _pending_context()
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            pending.get()
        assert [t for t in threading.enumerate() if t.name == "imgbatch-tls" and t.is_alive()]
        with open(fifo, "wb") as writer:  # lets OpenSSL read on, and find no certificate
            writer.write(b"not a certificate\n")
        with pytest.raises(ConfigError, match="cannot be loaded"):
            pending.get()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
