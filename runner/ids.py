"""Deterministic out_task_ids: a contract with every ledger in git. Changing this re-bills users.

    digest = sha256(canonical_json({"v": 1, "manifest": NAME, "prompt_id": ID,
                                    "params": PARAMS, "repeat": INDEX}))
    out_task_id = (NAME + "." + ID)[:36] + "." + hex(digest)[:20]

canonical_json: keys sorted, separators "," and ":", UTF-8 without escaping. PARAMS is exactly
the `params` object sent upstream. A retry of a failed task is sent as
out_task_id + "-r" + ATTEMPT (attempt 2, 3, ...): upstream never accepts an id twice.
"""

from __future__ import annotations

import json
from functools import lru_cache
from hashlib import sha256
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
    digest = sha256(canonical_json(payload)).hexdigest()[:DIGEST_CHARS]
    return f"{(manifest + '.' + prompt_id)[:PREFIX_CHARS]}.{digest}"


class ManifestHasher:
    """task_id for every (prompt, size, repeat) of one manifest, without building a payload
    dict or re-encoding what tasks share.

    Canonical JSON sorts keys, so the payload can be written piecewise: manifest < params <
    prompt_id < repeat < v at the top, and inside params the size keys sort around "prompt".
    The whole text is joined first and encoded to UTF-8 once, which gives the same bytes as
    encoding each piece. A property test checks this equals task_id() exactly, and golden ids
    of a manifest file pin it (tests/test_ids.py)."""

    def __init__(self, manifest: str) -> None:
        self._name = manifest + "."
        self._head = '{"manifest":' + encode_basestring(manifest) + ',"params":{'
        # Per size params dict: (the dict, the text up to the prompt, the text after it up to
        # the prompt id). Keyed by identity, since a manifest's prompts share their size
        # dicts; the dict is kept in the entry, so its id cannot be reused by another object.
        self._sizes: dict[int, tuple[dict[str, str], str, str]] = {}

    def ids(self, prompt_id: str, prompt: str, size_params: dict[str, str], repeats: int) -> list[str]:
        known = self._sizes.get(id(size_params))
        if known is None or known[0] is not size_params:
            before, after = _size_parts(tuple(size_params.items()))
            known = (size_params, f'{self._head}{before}"prompt":', f'{after}}},"prompt_id":')
            self._sizes[id(size_params)] = known
        prefix = (self._name + prompt_id)[:PREFIX_CHARS] + "."
        head = f'{known[1]}{encode_basestring(prompt)}{known[2]}{encode_basestring(prompt_id)},"repeat":'
        if repeats == 1:  # the common case: one hash of the whole payload, no copy
            return [prefix + sha256(f"{head}{_FIRST_REPEAT}".encode()).hexdigest()[:DIGEST_CHARS]]
        base = sha256(head.encode())
        out = []
        for r in range(repeats):
            h = base.copy()
            h.update(b'%d,"v":%d}' % (r, ID_VERSION))
            out.append(prefix + h.hexdigest()[:DIGEST_CHARS])
        return out


_FIRST_REPEAT = f'0,"v":{ID_VERSION}}}'


@lru_cache(maxsize=1024)
def _size_parts(items: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """The encoded size keys that sort before and after "prompt", with their commas."""
    items = tuple(sorted(items))
    before = "".join(f"{encode_basestring(k)}:{encode_basestring(v)}," for k, v in items if k < "prompt")
    after = "".join(f",{encode_basestring(k)}:{encode_basestring(v)}" for k, v in items if k > "prompt")
    return before, after


def attempt_id(out_task_id: str, attempt: int) -> str:
    """The id a task is submitted under on its n-th attempt (1 = the plan's id)."""
    return out_task_id if attempt <= 1 else f"{out_task_id}-r{attempt}"
