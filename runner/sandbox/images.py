"""Real PNG files of the pixels upstream would deliver."""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache

from PIL import Image, ImageDraw


def color_for(key: str) -> tuple[int, int, int]:
    d = hashlib.sha256(key.encode()).digest()
    return (d[0], d[1], d[2])


@lru_cache(maxsize=32)
def png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    """A solid image with a contrasting frame: cheap to encode even at 3840x2160."""
    img = Image.new("RGB", (width, height), color)
    inverse = (255 - color[0], 255 - color[1], 255 - color[2])
    border = max(4, min(width, height) // 64)
    ImageDraw.Draw(img).rectangle((0, 0, width - 1, height - 1), outline=inverse, width=border)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
