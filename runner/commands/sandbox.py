"""imgbatch sandbox: serve the local stand-in for the API on loopback."""

from __future__ import annotations

import sys

import click

from runner.errors import EXIT_OK, InputError
from runner.sandbox import Faults, Sandbox


def sandbox(
    host: str, port: int, token: str, task_seconds: float, faults: Faults, credits: int, seed: int
) -> int:
    """Serve the sandbox on loopback until stopped. The first stdout line is the base URL."""
    from runner.sandbox.server import bind, serve

    try:
        sock = bind(host, port)
    except OSError as e:
        raise InputError(
            f"cannot listen on {host}:{port}: {e.strerror}", hint="pick another --port, or 0 for a free one"
        ) from None
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    click.echo(f"http://{shown}:{bound_port}")
    click.echo(f"imgbatch sandbox: token {token!r}, tasks take {task_seconds:g} s; Ctrl-C stops it", err=True)
    sys.stdout.flush()
    serve(
        Sandbox(token=token, task_seconds=task_seconds, faults=faults, credits_per_task=credits, seed=seed),
        sock,
    )
    return EXIT_OK
