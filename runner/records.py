"""Ledger records of a run: the intent written before a submit, and what answers fold into it."""

from __future__ import annotations

import math
from typing import Any

from runner.estimate import number
from runner.ids import attempt_id
from runner.ledger import COMPLETED, SUBMITTING, UPSTREAM_FAILED, Record
from runner.plan import Task


def new_record(task: Task, attempt: int) -> Record:
    """The `submitting` record put in the ledger before the submit is sent."""
    return {
        "out_task_id": task.out_task_id,
        "manifest": task.manifest,
        "prompt_id": task.prompt_id,
        "params": task.params,
        "pixels": list(task.pixels),
        "size": task.size,
        "repeat_index": task.repeat_index,
        "status": SUBMITTING,
        "attempt": attempt,
        "submit_id": attempt_id(task.out_task_id, attempt),
        "task_id": None,
        "estimated_credits": None,
        "credits_used": None,
        "created_at": None,
        "completed_at": None,
        "outputs": [],
        "error": None,
        **_passthrough(task),
    }


def submit_body(task: Task, submit_id: str) -> dict[str, Any]:
    return {"model": "gpt_image_2", "params": task.params, "out_task_id": submit_id, **_passthrough(task)}


def _passthrough(task: Task) -> dict[str, Any]:
    """The optional fields sent upstream as given and kept in the ledger."""
    fields = {"metadata": task.metadata, "callback_url": task.callback_url}
    return {k: v for k, v in fields.items() if v is not None}


def merge_answer(record: Record, data: dict[str, Any]) -> Record:
    """Fold what the service said into the record; unknown statuses are kept as said."""
    merged = dict(record)
    status = data.get("status")
    merged["status"] = status if isinstance(status, str) and status else "pending"
    for key in ("task_id", "created_at", "completed_at"):
        if isinstance(data.get(key), str):  # the ledger holds them as text, as the API page shows
            merged[key] = data[key]
    for key in ("estimated_credits", "credits_used"):
        price = data.get(key)
        # A price that is not a number is no price; nor is a float JSON cannot hold, which no
        # answer read as standard JSON has (a 1e400 is an integer by then: runner/jsonnum.py).
        if number(price) is not None and not (isinstance(price, float) and not math.isfinite(price)):
            merged[key] = price
    if merged["status"] in UPSTREAM_FAILED:
        merged["error"] = str(data.get("error") or data.get("message") or f"{merged['status']} upstream")
    output = data.get("output")
    if merged["status"] == COMPLETED and isinstance(output, list):
        known = {o.get("url"): o for o in merged.get("outputs") or [] if isinstance(o, dict)}
        merged["outputs"] = [
            known.get(url) or {"url": url, "path": None, "sha256": None, "width": None, "height": None}
            for url in (_url(o) for o in output if isinstance(o, dict))
        ]
    return merged


def _url(output: dict[str, Any]) -> str | None:
    # Only text is a URL; anything else is recorded as none (the download then says so and
    # asks again), never as itself: the ledger refuses a record whose url is not text.
    url = output.get("url")
    return url if isinstance(url, str) else None
