"""Running the sandbox for tests: in process (httpx transport) or on loopback (uvicorn thread)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from runner.sandbox import Sandbox
from runner.sandbox.server import bind, make_server
from runner.sandbox.transport import IN_PROCESS_URL


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def loopback(sandbox: Sandbox, *, image_host: str | None = None) -> Iterator[str]:
    """Serve `sandbox` over real HTTP on 127.0.0.1 in a thread; yields the base URL. With
    `image_host` (e.g. 127.0.0.2), images are served only from that second address."""
    sock = bind("127.0.0.1", 0)
    socks = [sock]
    if image_host:
        image_sock = bind(image_host, 0)
        socks.append(image_sock)
        sandbox.image_base_url = f"http://{image_host}:{image_sock.getsockname()[1]}"
    server = make_server(sandbox)
    thread = threading.Thread(target=server.run, kwargs={"sockets": socks}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the loopback sandbox did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for s in socks:
            s.close()


@contextmanager
def sandbox_process(*args: str) -> Iterator[str]:
    """`imgbatch sandbox --port 0 ARGS` as a real process; yields the base URL it prints."""
    from tests.helpers import ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


__all__ = ["IN_PROCESS_URL", "FakeClock", "loopback"]
