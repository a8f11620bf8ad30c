"""From a file to YAML text: bounded reading and decoding, refusing what is not text."""

from __future__ import annotations

import codecs
import os
import re

from runner.yamldoc import UnreadableDocument

MAX_BYTES = 32 * 1024 * 1024
# The line breaks of YAML 1.1, which libyaml reads and counts in its positions: a position
# worked out here must count the same ones (a file may end its lines in CR alone).
LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def line_col(before: str) -> tuple[int, int]:
    """The 1-based line and column of the character after `before`, as libyaml counts them."""
    lines = LINE_BREAK.split(before)
    return len(lines), len(lines[-1]) + 1


def read_bounded(path: str | os.PathLike[str], shown: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise UnreadableDocument(shown, 1, 1, "no such file", "check the path") from None
    except IsADirectoryError:
        raise UnreadableDocument(shown, 1, 1, "is a folder, not a file") from None
    except OSError as e:
        raise UnreadableDocument(shown, 1, 1, f"cannot read: {e.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise UnreadableDocument(
            shown,
            1,
            1,
            f"file is larger than {MAX_BYTES // (1024 * 1024)} MiB",
            "split the manifest into several files",
        )
    return raw


def decode(raw: bytes, shown: str) -> str:
    """Bytes to text. UTF-8 (with or without BOM) and BOM-marked UTF-16/32 are understood;
    anything else is refused rather than guessed."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(codec)
            except UnicodeDecodeError as e:
                raise UnreadableDocument(
                    shown,
                    1,
                    1,
                    f"starts with a {codec.upper()} byte-order mark but byte {e.start} "
                    f"is not {codec.upper()}",
                    "save the file as UTF-8",
                ) from None
    if b"\x00" in raw[:4096]:
        raise UnreadableDocument(
            shown,
            1,
            1,
            "binary data or UTF-16 without a byte-order mark, not a YAML text",
            "save the manifest as UTF-8 text",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line, col = line_col(raw[: e.start].decode("utf-8"))  # in characters, as elsewhere
        raise UnreadableDocument(
            shown,
            line,
            col,
            f"byte 0x{raw[e.start]:02X} is not UTF-8",
            "save the file as UTF-8 (it looks like Latin-1 or Windows-1252)",
        ) from None
