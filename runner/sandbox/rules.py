"""The API page's rules for a request, as the sandbox enforces them: its own copy, deliberately
not the manifest schema's, so that a wrong bound in imgbatch's schema shows up as the 400 the
real service would answer. Only the pixel table comes from the schema: the sandbox must
deliver what the plan promises."""

from __future__ import annotations

import re
from typing import Any

from runner.schema import size_table

MIN_PIXELS = 655_360
MAX_PIXELS = 8_294_400
TIERS = ("1K", "2K", "4K")
OUT_TASK_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")
SIZE_RE = re.compile(r"^([0-9]{1,6})x([0-9]{1,6})\Z")
DEFAULT_TIER = "1K"  # upstream's default when only aspect_ratio is sent is undocumented


class BadRequest(Exception):
    pass


def check_params(params: dict[str, Any]) -> tuple[int, int]:
    """Upstream's rules for params; returns the pixels it would deliver."""
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("params.prompt is required")
    table = size_table()
    if "size" in params:
        if "aspect_ratio" in params or "resolution" in params:
            raise BadRequest("size cannot be used together with aspect_ratio or resolution")
        m = SIZE_RE.match(str(params["size"]))
        if not m:
            raise BadRequest(f"invalid size {params['size']!r}: use WIDTHxHEIGHT")
        w, h = int(m.group(1)), int(m.group(2))
        if not MIN_PIXELS <= w * h <= MAX_PIXELS:
            raise BadRequest(f"size {w}x{h} is outside {MIN_PIXELS}..{MAX_PIXELS} total pixels")
        return table.delivered_custom(w, h)
    ratio = params.get("aspect_ratio", "1:1")
    tier = params.get("resolution", DEFAULT_TIER)
    if tier not in TIERS:
        raise BadRequest(f"invalid resolution {tier!r}")
    if (ratio, tier) not in table.cells:
        raise BadRequest(f"invalid aspect_ratio {ratio!r}")
    return table.cell(ratio, tier).delivered
