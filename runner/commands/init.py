"""imgbatch init: set up a folder (empty or an existing repository) in one command.

Writes a starter manifest whose editor modeline points at a local copy of the schema, the
schema copy itself, and the git lines a ledger needs. Never overwrites a file: an existing
file is left as it is and reported as skipped; .gitignore and .gitattributes only get the
lines they lack, appended."""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from runner.atomic import create_file
from runner.errors import EXIT_OK, InputError
from runner.ledger import SANDBOX_LEDGER, SANDBOX_OUT
from runner.schema import schema_text
from runner.verify import CACHE_NAME
from runner.yamlio import reads_as_text

SCHEMA_COPY = Path(".imgbatch") / "manifest.schema.json"
MANIFEST_DIR = Path("manifests")
# Lock, journal and digest cache are per machine; what `run --sandbox` writes is made up.
GITIGNORE_LINES = (
    "*.ledger.jsonl.lock",
    "*.ledger.jsonl.journal",
    CACHE_NAME,
    SANDBOX_LEDGER,
    f"{SANDBOX_OUT}/",
)
GITATTRIBUTES_LINES = ("*.ledger.jsonl merge=imgbatch",)
MERGE_DRIVER_COMMAND = 'git config merge.imgbatch.driver "imgbatch merge-ledgers -o %A --base %O %A %B"'
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\Z")

STARTER = """\
# yaml-language-server: $schema=../{schema}
# An imgbatch manifest: each prompt at each size, `repeat` times, is one task (one image).
# Check it:  imgbatch validate .       (editors check as you type, through the line above)
# Plan it:   imgbatch plan {manifest}
# Try it:    imgbatch run --sandbox {manifest}   (no key, no network, no credits)
# The format in full: the "Manifest format" section of the imgbatch README.
version: 1                 # the manifest format; only 1 exists
name: {name}{name_pad} # namespace of the task ids; lowercase letters, digits, single '-'
description: Starter manifest written by imgbatch init
resolution: 2K             # tier of the sizes that give only a ratio: 1K, 2K or 4K
sizes:                     # every prompt is rendered at each of these
  - 16:9                   # a ratio; tier from `resolution` (16:9 at 2K is 2048x1152)
  - 1:1@1K                 # a ratio at a tier (1:1 at 1K delivers 1254x1254)
  # - {{aspect_ratio: 4:5, resolution: 4K}}   # the long form of 4:5@4K
  # - 2048x1152            # exact pixels: 655,360 to 8,294,400 in total
prompts:
  - id: window-cat         # unique in this manifest; part of each of its task ids
    prompt: An orange cat asleep on a sunny windowsill, watercolor
  - id: harbour-dawn
    prompt: A quiet fishing harbour at dawn, soft mist, film photograph
    sizes: [21:9]          # replaces the manifest's sizes for this prompt
    # repeat: 2            # variants of each (prompt, size), 1 to 100
"""


def init(folder: Path, name: str | None) -> int:
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder", hint="create it first, or give an existing one")
    name = name or _name_from(folder)
    if not NAME_RE.match(name) or len(name) > 40:
        raise InputError(
            f"--name {name!r} is not a manifest name",
            hint="lowercase letters, digits and single '-', at most 40 characters, e.g. 'window-cats'",
        )
    manifest = MANIFEST_DIR / f"{name}.yaml"
    written = name if reads_as_text(name) else f'"{name}"'  # a folder '2024' is no number
    starter = STARTER.format(
        schema=SCHEMA_COPY.as_posix(),
        manifest=manifest.as_posix(),
        name=written,
        name_pad=" " * max(0, 20 - len(written)),
    )
    done = [
        _write_new(folder, SCHEMA_COPY, schema_text()),
        _write_new(folder, manifest, starter),
        _add_lines(folder, Path(".gitignore"), GITIGNORE_LINES),
        _add_lines(folder, Path(".gitattributes"), GITATTRIBUTES_LINES),
    ]
    for line in done:
        click.echo(f"imgbatch init: {line}")
    click.echo(
        "next:\n"
        f"  imgbatch validate {folder}\n"
        f"  imgbatch run --sandbox {(folder / manifest).as_posix()}\n"
        "  and, once per clone, so git merges ledgers record by record:\n"
        f"  {MERGE_DRIVER_COMMAND}"
    )
    return EXIT_OK


def _name_from(folder: Path) -> str:
    """A manifest name from the folder's name: 'My_Images 2' -> 'my-images-2'."""
    words = re.findall(r"[a-z0-9]+", folder.resolve().name.lower())
    name = "-".join(words)[:40].strip("-")
    return name or "images"


def _write_new(folder: Path, rel: Path, text: str) -> str:
    """Write `text` to a new file, atomically; an existing file is never replaced."""
    path = folder / rel
    skipped = f"skipped {rel.as_posix()} (it exists; left as it is)"
    if path.exists() or path.is_symlink():
        return skipped
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not create_file(path, text):
            return skipped
    except FileExistsError:  # mkdir met a file where the folder goes
        raise InputError(
            f"{path.parent} is a file, not a folder", hint=f"move it aside so init can write {path}"
        ) from None
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from None
    return f"wrote {rel.as_posix()}"


def _add_lines(folder: Path, rel: Path, lines: tuple[str, ...]) -> str:
    """Append the lines a file lacks; its existing content stays byte for byte."""
    path = folder / rel
    add = f"add: {'; '.join(lines)}"
    if path.is_symlink() and not path.exists():
        # Appending would create the link's target, wherever it points.
        return f"skipped {rel.as_posix()} (a symlink to nothing); {add}"
    try:
        existing = path.read_text(encoding="utf-8") if path.exists() else None
    except OSError as e:
        return f"skipped {rel.as_posix()} (cannot read it: {e.strerror}); {add}"
    except UnicodeDecodeError:
        return f"skipped {rel.as_posix()} (it is not UTF-8 text); {add}"
    have = {line.strip() for line in (existing or "").splitlines()}
    missing = [line for line in lines if line not in have]
    if not missing:
        return f"skipped {rel.as_posix()} (it has the lines already)"
    # read_text turned CRLF into LF: look at the bytes to keep the file's own line ends.
    eol = "\r\n" if existing and b"\r\n" in path.read_bytes() else "\n"
    text = (eol if existing and not existing.endswith("\n") else "") + eol.join(missing) + eol
    try:
        with open(path, "a", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise InputError(f"{path}: cannot write: {e.strerror}") from None
    verb = "added" if existing is not None else "wrote"
    return f"{verb} {rel.as_posix()}: {', '.join(missing)}"
