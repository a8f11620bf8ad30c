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
from typing import Any

ID_VERSION = 1
PREFIX_CHARS = 36
DIGEST_CHARS = 20
MAX_ID_CHARS = 64


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


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


def attempt_id(out_task_id: str, attempt: int) -> str:
    """The id a task is submitted under on its n-th attempt (1 = the plan's id)."""
    return out_task_id if attempt <= 1 else f"{out_task_id}-r{attempt}"
