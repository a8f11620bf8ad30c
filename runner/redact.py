"""Keeping the API key out of everything imgbatch prints, logs or writes.

A server (or a gateway in front of it) may echo request headers into its messages; whatever
text comes back is scrubbed of the key before anything else sees it. The key is registered
once, where it is read from the environment; the client scrubs every answer it interprets,
and the ledger and the top-level error handler scrub again as a last line of defence.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

MARK = "[REDACTED]"
MIN_SECRET = 4  # shorter strings would scrub ordinary words; no real key is that short

_secrets: set[str] = set()
# An echoed Authorization header carries credentials in forms the key list cannot know (Basic
# is base64 of user:password): its value is scrubbed whatever it holds.
_AUTH_HEADER = re.compile(
    r"""(?i)(\b(?:proxy-)?authorization\b["']?\s*[:=]\s*["']?)((?:basic|bearer|digest|token)\s+)?[^\s"',;}\]]+"""
)


def add_secret(secret: str) -> None:
    """Scrub `secret` (and the forms an echo may carry it in) from now on."""
    if len(secret) < MIN_SECRET:
        return
    forms = {secret, urllib.parse.quote(secret, safe=""), json.dumps(secret)[1:-1]}
    _secrets.update(f for f in forms if len(f) >= MIN_SECRET)


def scrub(text: str) -> str:
    # Longest first, so that an encoded form containing the plain key is scrubbed whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MARK)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + (m.group(2) or "") + MARK, text)


def scrub_value(value: Any) -> Any:
    """A copy of a JSON value with every string (keys included) scrubbed."""
    if not _secrets:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {scrub(k) if isinstance(k, str) else k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_value(v) for v in value]
    return value
