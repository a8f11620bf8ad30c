"""Which files are manifests: files named on the command line, and in folders the YAML files
that look like one. Read as text, not parsed: a folder of a real repository holds other YAML
(docker-compose.yml, CI configs), and a manifest with a syntax error must still be found."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from runner.errors import InputError
from runner.yamlio import MAX_BYTES, UnreadableDocument, decode

MANIFEST_SUFFIXES = (".yaml", ".yml")

# In a folder, a manifest is a YAML file with a line that starts with the key `prompts:` or
# is `version: 1` (keys may be quoted). docker-compose's `version: "3.8"` is not.
_MANIFEST_LINE = re.compile(
    r"""^(?:["']?prompts["']?[ \t]*:|["']?version["']?[ \t]*:[ \t]*["']?1["']?[ \t\r]*(?:#.*)?$)""",
    re.MULTILINE,
)


class Found(list[tuple[str, str]]):
    """(path to open, path to show) of each manifest, and the YAML files a folder search
    passed over because they are not manifests."""

    skipped: list[str]

    def __init__(self) -> None:
        super().__init__()
        self.skipped = []


def looks_like_manifest(raw: bytes) -> bool:
    try:
        text = decode(raw, "")
    except UnreadableDocument:
        text = raw.decode("latin-1")  # still find the keys of a manifest in the wrong encoding
    return _MANIFEST_LINE.search(text) is not None


def collect_paths(paths: Iterable[str]) -> Found:
    """The manifests among `paths`. A file given by name is always one. Folders are searched
    recursively for *.yaml and *.yml files that look like manifests (see _MANIFEST_LINE),
    skipping names that start with '.' (such as .imgbatch/, where `init` puts the schema).
    A file reached twice (named twice, or named and inside a folder given) counts once."""
    found = Found()
    seen: set[tuple[int, int] | str] = set()

    def add(full: str) -> None:
        key = _identity(full)  # loading one that cannot be opened reports why, once
        if key not in seen:
            seen.add(key)
            found.append((full, full))

    for given in paths:
        p = Path(given)
        if p.is_dir():
            for root, dirs, files in os.walk(p, onerror=_unreadable_folder):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith(".") or not name.endswith(MANIFEST_SUFFIXES):
                        continue
                    full = os.path.join(root, name)
                    if not _plain_file(full):
                        found.skipped.append(full)  # a pipe would block the search forever
                    elif _sniff(full):
                        add(full)
                    else:
                        found.skipped.append(full)
        elif p.exists() or p.is_symlink():
            add(given)
        else:
            raise InputError(f"{given}: no such file or folder", hint="check the path")
    found.skipped = [f for f in found.skipped if _identity(f) not in seen]  # named as well
    if not found:
        skipped = f" ({len(found.skipped)} other YAML files skipped)" if found.skipped else ""
        raise InputError(
            f"no manifests (*.yaml, *.yml) found in {', '.join(paths)}{skipped}",
            hint="give manifest files or folders that contain them; in a folder a manifest "
            "has a line 'version: 1' or 'prompts:'",
        )
    return found


def _identity(path: str) -> tuple[int, int] | str:
    try:
        st = os.stat(path)
    except OSError:  # a symlink loop or a dangling link: known by where it leads
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino)


def _plain_file(path: str) -> bool:
    """A regular file, or a name that cannot be followed (loading it then says why)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True


def _unreadable_folder(error: OSError) -> None:
    # os.walk would pass over it silently, and with it any manifest inside.
    raise InputError(
        f"{error.filename}: cannot read the folder: {error.strerror}",
        hint="give it read permission, or name the manifests to check",
    )


def _sniff(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return looks_like_manifest(f.read(MAX_BYTES))
    except OSError:
        return True  # unreadable: loading it says why
