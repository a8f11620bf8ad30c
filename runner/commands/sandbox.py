"""imgbatch sandbox: serve the local stand-in for the API on loopback."""

from __future__ import annotations

import socket
import sys

import click

from runner.errors import EXIT_OK, InputError
from runner.sandbox import Faults, Sandbox


def sandbox(
    host: str,
    port: int,
    token: str,
    task_seconds: float,
    faults: Faults,
    credits: int,
    seed: int,
    image_host: str | None = None,
    image_port: int = 0,
) -> int:
    """Serve the sandbox on loopback until stopped. The first stdout line is the base URL.
    With `image_host`, images are served only from a second address (like a CDN)."""
    from runner.sandbox.server import serve

    sock = _bind(host, port, "--port")
    socks = [sock]
    image_url = None
    if image_host:
        image_sock = _bind(image_host, image_port, "--image-port")
        socks.append(image_sock)
        image_url = _url(image_sock)
    click.echo(_url(sock))
    click.echo(f"imgbatch sandbox: token {token!r}, tasks take {task_seconds:g} s; Ctrl-C stops it", err=True)
    if image_url:
        click.echo(f"imgbatch sandbox: images served from {image_url}", err=True)
    sys.stdout.flush()
    serve(
        Sandbox(
            token=token,
            task_seconds=task_seconds,
            faults=faults,
            credits_per_task=credits,
            seed=seed,
            image_base_url=image_url,
        ),
        *socks,
    )
    return EXIT_OK


def _bind(host: str, port: int, option: str) -> socket.socket:
    from runner.sandbox.server import bind

    try:
        return bind(host, port)
    except OSError as e:
        raise InputError(
            f"cannot listen on {host}:{port}: {e.strerror}",
            hint=f"pick another {option}, or 0 for a free one",
        ) from None


def _url(sock: socket.socket) -> str:
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return f"http://{shown}:{bound_port}"
