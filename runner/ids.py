"""Deterministic out_task_ids: a contract with every ledger in git. Changing this re-bills users.

    digest = sha256(canonical_json({"v": 1, "manifest": NAME, "prompt_id": ID,
                                    "params": PARAMS, "repeat": INDEX}))
    out_task_id = (NAME + "." + ID)[:36] + "." + hex(digest)[:20]

canonical_json: keys sorted, separators "," and ":", UTF-8 without escaping. PARAMS is exactly
the `params` object sent upstream. A retry of a failed task is sent as
out_task_id + "-r" + ATTEMPT (attempt 2, 3, ...): upstream never accepts an id twice.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from json.encoder import encode_basestring  # what json.dumps(ensure_ascii=False) uses for a str
from typing import Any

ID_VERSION = 1
PREFIX_CHARS = 36
DIGEST_CHARS = 20
MAX_ID_CHARS = 64


# One encoder for all calls: json.dumps with options builds a new encoder every time.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> bytes:
    return _CANONICAL.encode(value).encode()


def task_id(manifest: str, prompt_id: str, params: dict[str, Any], repeat_index: int) -> str:
    payload = {
        "v": ID_VERSION,
        "manifest": manifest,
        "prompt_id": prompt_id,
        "params": params,
        "repeat": repeat_index,
    }
    digest = hashlib.sha256(canonical_json(payload)).hexdigest()[:DIGEST_CHARS]
    return f"{(manifest + '.' + prompt_id)[:PREFIX_CHARS]}.{digest}"


class PromptHasher:
    """task_id for all (size, repeat) of one prompt without re-encoding what they share.

    Canonical JSON sorts keys, so the payload can be written piecewise: manifest < params <
    prompt_id < repeat < v at the top, and inside params the size keys sort around "prompt".
    A property test checks this equals task_id() exactly."""

    def __init__(self, manifest: str, prompt_id: str, prompt: str) -> None:
        self.prefix = f"{(manifest + '.' + prompt_id)[:PREFIX_CHARS]}."
        self.head = b'{"manifest":' + _enc(manifest) + b',"params":{'
        self.prompt = b'"prompt":' + _enc(prompt)
        self.tail = b'},"prompt_id":' + _enc(prompt_id) + b',"repeat":'

    def ids(self, size_params: dict[str, str], repeats: int) -> list[str]:
        # The size parts are cached by the params as given (a 1- or 2-item dict): sorting and
        # encoding them once per distinct size, not once per prompt, is most of the saving.
        before, after = _size_parts(tuple(size_params.items()))
        if repeats == 1:  # the common case: one hash of the whole payload, no copy
            payload = b"".join((self.head, before, self.prompt, after, self.tail, _FIRST_REPEAT))
            return [self.prefix + hashlib.sha256(payload).hexdigest()[:DIGEST_CHARS]]
        base = hashlib.sha256(b"".join((self.head, before, self.prompt, after, self.tail)))
        out = []
        for r in range(repeats):
            h = base.copy()
            h.update(b'%d,"v":%d}' % (r, ID_VERSION))
            out.append(self.prefix + h.hexdigest()[:DIGEST_CHARS])
        return out


_FIRST_REPEAT = b'0,"v":%d}' % ID_VERSION


@lru_cache(maxsize=1024)
def _size_parts(items: tuple[tuple[str, str], ...]) -> tuple[bytes, bytes]:
    """The encoded size keys that sort before and after "prompt", with their commas."""
    items = tuple(sorted(items))
    before = b"".join(_enc(k) + b":" + _enc(v) + b"," for k, v in items if k < "prompt")
    after = b"".join(b"," + _enc(k) + b":" + _enc(v) for k, v in items if k > "prompt")
    return before, after


def _enc(text: str) -> bytes:
    return encode_basestring(text).encode()


def attempt_id(out_task_id: str, attempt: int) -> str:
    """The id a task is submitted under on its n-th attempt (1 = the plan's id)."""
    return out_task_id if attempt <= 1 else f"{out_task_id}-r{attempt}"
