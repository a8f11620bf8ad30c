"""Which service a command talks to, and the API client for it (key from the environment)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import httpx

from runner.client import ApiClient, RetryPolicy
from runner.errors import ConfigError
from runner.redact import add_secret

API_KEY_ENV = "AIREITER_API_KEY"
BASE_URL_ENV = "AIREITER_BASE_URL"
DEFAULT_BASE_URL = "https://aireiter.com"


@dataclass
class Connection:
    base_url: str | None
    sandbox: bool
    sandbox_task_seconds: float = 1.0
    sandbox_fail_share: float = 0.0
    concurrency: int = 8
    rate: float | None = None
    retry: RetryPolicy | None = None


def make_client(conn: Connection, transport: httpx.AsyncBaseTransport | None = None) -> ApiClient:
    """The API client for the real service (key from the environment) or the embedded sandbox."""
    if conn.sandbox:
        # Only here: the sandbox draws its images with Pillow, which a real run need not load
        # before its first submit.
        from runner.sandbox import Faults, Sandbox
        from runner.sandbox.transport import IN_PROCESS_URL, SandboxTransport

        sandbox = Sandbox(
            token="sandbox",
            task_seconds=conn.sandbox_task_seconds,
            faults=Faults(fail_share=conn.sandbox_fail_share),
        )
        return ApiClient(
            IN_PROCESS_URL,
            "sandbox",
            transport=transport or SandboxTransport(sandbox),
            concurrency=conn.concurrency,
            rate=conn.rate,
            retry=conn.retry,
        )
    key = checked_key(os.environ.get(API_KEY_ENV, ""))
    base = conn.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    url = _checked_base_url(base)
    return ApiClient(
        url, key, transport=transport, concurrency=conn.concurrency, rate=conn.rate, retry=conn.retry
    )


def checked_key(key: str) -> str:
    """The key as it will go into the Authorization header, or a refusal that never shows it."""
    if not key.strip():
        raise ConfigError(
            f"{API_KEY_ENV} is not set",
            hint=f"export {API_KEY_ENV}=<your aireiter API key>, or try --sandbox",
        )
    scheme = _SCHEME.match(key)
    if scheme:
        # Pasted from an Authorization header: stripping whitespace (the usual hint) would
        # leave "Bearersk-...". The prefix is shown, never what follows it.
        prefix = scheme.group(0)
        hint = f"set the key alone, without {prefix.strip()!r} and the whitespace around it"
        if set(prefix) <= _PLAIN:
            hint = f'set the key alone, e.g. export {API_KEY_ENV}="${{{API_KEY_ENV}#{prefix}}}"'
        raise ConfigError(
            f"{API_KEY_ENV} starts with {prefix.strip()!r} and a space, the Authorization scheme, "
            "which imgbatch adds itself; nothing was sent",
            hint=hint,
        )
    for position, char in enumerate(key, 1):
        if not "!" <= char <= "~":  # printable ASCII without space: all a bearer token may hold
            what = _describe_char(char)
            raise ConfigError(
                f"{API_KEY_ENV} contains {what} at character {position} of {len(key)}; nothing was sent",
                hint="set the key again without it, e.g. export "
                f"{API_KEY_ENV}=\"$(tr -d '[:space:]' < keyfile)\"",
            )
    add_secret(key)
    return key


# "Bearer sk-..." as an Authorization header has it, with any case and spacing.
_SCHEME = re.compile(r"\s*bearer\s+(?=\S)", re.IGNORECASE)
_PLAIN = frozenset("BEARERbearer ")  # a prefix of only these is a shell pattern as it is


def _describe_char(char: str) -> str:
    names = {"\n": "a newline", "\r": "a carriage return", "\t": "a tab", " ": "a space"}
    if char in names:
        return f"{names[char]} (U+{ord(char):04X})"
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return f"a control character (U+{ord(char):04X})"
    return "a non-ASCII character"  # its code point would tell part of the key


def _checked_base_url(base: str) -> str:
    try:
        url = httpx.URL(base)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(
            f"base URL {base!r} is not an http(s) URL",
            hint=f"use --base-url or {BASE_URL_ENV}, e.g. {DEFAULT_BASE_URL}",
        )
    if url.userinfo:
        # httpx would send it as Basic auth instead of the key, and the URL gets printed: the
        # URL itself is not shown here, it may hold the key.
        raise ConfigError(
            f"the base URL for {url.host} holds a user name or password (user:...@); nothing was sent",
            hint=f"give the site only and put the key in {API_KEY_ENV}",
        )
    path = re.sub("/+", "/", url.path).rstrip("/")  # servers often read // as /, and any case
    for suffix in ("/api/openapi/submit", "/api/openapi/query", "/api/openapi", "/api"):
        if path.lower().endswith(suffix):
            # imgbatch adds /api/openapi/... itself: this would ask for /api/openapi/api/openapi/...
            root = f"{url.scheme}://{url.netloc.decode()}{path[: -len(suffix)]}"
            raise ConfigError(
                f"base URL {base!r} already ends in {suffix}, which imgbatch adds itself",
                hint=f"give the site only: --base-url {root}",
            )
    if url.query or url.fragment:
        raise ConfigError(f"base URL {base!r} has a query or fragment", hint="give the site only")
    return base.rstrip("/")
