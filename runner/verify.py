"""Is a completed record's image really here? A file counts only if it exists at the path the
ledger records (relative to the ledger's folder) and has the recorded sha256: a fresh clone
without images, or a file edited since, is not `done`. One check for run, status, plan and
report; light to import (no httpx, no Pillow).

Hashing every image on every command is most of a no-op rerun's time (4-6 MB each), so the
digests are kept in a cache beside the ledger (CACHE_NAME, local, never committed). An
entry is used only while the file's size, mtime, inode and ctime are all exactly as they were
when it was hashed; ctime cannot be set back by a program, so any change to the file, or a
file put in its place, is hashed again. A cache that cannot be read is ignored and rebuilt."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from runner.atomic import replace_file
from runner.ledger import COMPLETED, Record

CACHE_NAME = ".imgbatch-verified.json"
_VERSION = 1
# A file changed within the filesystem's timestamp granularity after we hashed it could keep
# every stat field: only files untouched for this long before their hash are remembered.
_SETTLED_NS = 2_000_000_000


class _Cache:
    """Digests of the files under one folder, keyed by the path the ledger records."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.path = os.path.join(folder, CACHE_NAME)
        self.entries: dict[str, Any] = {}
        # Files too fresh to remember on disk, remembered for this command only (a run checks
        # a file several times).
        self.fresh: dict[str, list[Any]] = {}
        self.dirty = False
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if isinstance(data, dict) and data.get("version") == _VERSION:
                files = data.get("files")
                if isinstance(files, dict):
                    self.entries = {k: v for k, v in files.items() if _well_formed(v)}
                    self.dirty = len(self.entries) != len(files)
        except FileNotFoundError:
            pass  # written once there is a digest to keep
        except (OSError, ValueError, RecursionError):
            self.dirty = True  # unreadable: written afresh

    def digest(self, key: str, full: str, sig: list[int]) -> str | None:
        entry = self.entries.get(key)
        if entry is not None and entry[:4] == sig:
            return str(entry[4])
        entry = self.fresh.get(key)
        if entry is not None and entry[:4] == sig:
            return str(entry[4])
        started = time.time_ns()
        hashed = _hash(full)
        if hashed is None:
            self.forget(key)
            return None
        digest, opened = hashed
        if opened == sig and max(sig[1], sig[3]) < started - _SETTLED_NS:
            self.entries[key] = [*sig, digest]
            self.dirty = True
        else:
            self.forget(key)
            if not opened:
                return None  # written to while we read it: no digest describes it
            if opened == sig:
                self.fresh[key] = [*sig, digest]
        return digest

    def forget(self, key: str) -> None:
        self.fresh.pop(key, None)
        if self.entries.pop(key, None) is not None:
            self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        text = json.dumps(
            {"version": _VERSION, "files": self.entries}, separators=(",", ":"), allow_nan=False
        )
        # A cache is only a shortcut: a read-only folder or full disk just means hashing again.
        with contextlib.suppress(OSError):
            replace_file(Path(self.path), text + "\n")
        self.dirty = False


_CACHES: dict[str, _Cache] = {}
# `report` hashes in threads: two first lookups at once must not each make a cache, or the
# digests one of them learns are dropped with it (and hashed again by the next command).
_CACHES_LOCK = threading.Lock()


def _cache(folder: Path) -> _Cache:
    key = str(folder)
    cache = _CACHES.get(key)
    if cache is None:
        with _CACHES_LOCK:
            cache = _CACHES.get(key)
            if cache is None:
                cache = _CACHES[key] = _Cache(key)
    return cache


def save_caches() -> None:
    """Write the digest caches this process changed (end of a command); never raises."""
    for cache in _CACHES.values():
        cache.save()
    _CACHES.clear()  # the next command (tests run many in one process) reads the files again


def _well_formed(entry: Any) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 5
        and all(type(n) is int for n in entry[:4])
        and isinstance(entry[4], str)
    )


def _signature(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]


def _hash(path: str) -> tuple[str, list[int]] | None:
    """The file's sha256 and the signature of the file actually read, or None if unreadable."""
    try:
        with open(path, "rb") as f:
            before = _signature(os.fstat(f.fileno()))
            h = hashlib.sha256()
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            after = _signature(os.fstat(f.fileno()))
    except (OSError, ValueError):
        return None
    return h.hexdigest(), (before if before == after else [])


def sha256_of(path: Path) -> str:
    """The sha256 of a file (not cached on disk: for files outside a ledger's records)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cached_sha256(path: Path, folder: Path) -> str:
    """The sha256 of a file, through the digest cache of `folder` (the ledger's) when it is a
    regular file. Raises OSError as sha256_of does."""
    st = os.stat(path)
    if stat.S_ISREG(st.st_mode):
        key = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
        digest = _cache(folder).digest(key, str(path), _signature(st))
        if digest is not None:
            return digest
    return sha256_of(path)


def output_path(output: dict[str, Any], ledger_dir: Path) -> Path | None:
    stored = output.get("path")
    if not isinstance(stored, str) or not stored:
        return None
    path = Path(stored)
    return path if path.is_absolute() else ledger_dir / path


class _Listing:
    """The names in one folder, as listed."""

    def __init__(self, names: list[str]) -> None:
        self.names = frozenset(names)
        self._loose: frozenset[str] | None = None  # made on the first name not listed as given

    def lacks(self, name: str) -> bool:
        if name in self.names:
            return False
        if self._loose is None:
            self._loose = frozenset(map(_name_key, self.names))
        return _name_key(name) not in self._loose


# Inside one_moment(): the listing of each folder looked at (None: not listable), by the base
# folder and the folder part of the path the ledger records.
_listings: dict[tuple[str, str], _Listing | None] | None = None


@contextlib.contextmanager
def one_moment() -> Iterator[None]:
    """Checks of many files at one moment (status, plan --ledger, a run's first look): a file
    is first looked for in one listing of its folder, so the images of 100,000 records a
    fresh clone lacks cost one listing, not 100,000 failed stat calls (each raising an
    exception). Only absence is read from the listing; a file that is listed is stat'ed and
    checked as ever. Nothing may write into those folders meanwhile, so a run uses it only
    before it has started downloading."""
    global _listings
    outer, _listings = _listings, _listings if _listings is not None else {}
    try:
        yield
    finally:
        _listings = outer


def _name_key(name: str) -> str:
    # A case- or normalization-insensitive filesystem (macOS) finds "Cat.png" as "cat.png":
    # a name is taken as absent only if no listed name matches it that loosely either.
    return name.casefold() if name.isascii() else unicodedata.normalize("NFC", name).casefold()


def _surely_absent(listings: dict[tuple[str, str], _Listing | None], base: str, stored: str) -> bool:
    head, slash, name = stored.rpartition("/")
    folder = head or slash  # "/x.png" lies in "/", not in the ledger's folder
    key = (base, folder)
    if key not in listings:
        listings[key] = _listing(os.path.join(base, folder))  # an absolute folder stays as it is
    listing = listings[key]
    return listing is not None and listing.lacks(name)


def _listing(folder: str) -> _Listing | None:
    try:
        return _Listing(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return _Listing([])
    except (OSError, ValueError):  # not listable (but maybe searchable): stat each file
        return None


def file_verified(output: dict[str, Any], base: Path) -> bool:
    """The output's file exists and has the sha256 recorded for it."""
    stored = output.get("path")
    expected = output.get("sha256")
    if not isinstance(stored, str) or not stored or not isinstance(expected, str):
        return False
    cache = _cache(base)
    if _listings is not None and _surely_absent(_listings, cache.folder, stored):
        cache.forget(stored)
        return False
    full = os.path.join(base, stored)  # an absolute stored path stays as it is
    try:
        st = os.stat(full)
    except (OSError, ValueError):  # missing, unreadable or not a valid name
        cache.forget(stored)
        return False
    if not stat.S_ISREG(st.st_mode):
        cache.forget(stored)
        return False
    return cache.digest(stored, full, _signature(st)) == expected


def images_verified(record: Record, ledger_dir: Path) -> bool:
    """A completed record with at least one output, every output on disk as recorded."""
    outputs = record.get("outputs")
    if record.get("status") != COMPLETED or not isinstance(outputs, list) or not outputs:
        return False
    return all(isinstance(o, dict) and file_verified(o, ledger_dir) for o in outputs)
