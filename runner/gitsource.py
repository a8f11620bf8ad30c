"""The old side of a diff read from git at a ref (e.g. origin/main) through `git show`,
without a checkout: the manifests under the given paths as they were at that commit."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from runner.discover import looks_like_manifest
from runner.errors import InputError
from runner.manifest import MANIFEST_SUFFIXES, CheckedFile, check_listed


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise InputError("git is not installed", hint="--since needs git; or give OLD and NEW") from None


def _err(proc: subprocess.CompletedProcess[bytes]) -> str:
    return " ".join(proc.stderr.decode(errors="replace").split())[:200]


def manifests_at(ref: str, paths: Sequence[str]) -> list[CheckedFile]:
    """The manifests under `paths` (relative to the current folder) at `ref`, checked. Paths
    that did not exist at `ref` contribute nothing (a new folder is all additions)."""
    if ref.startswith("-"):
        raise InputError(f"--since {ref!r} is not a git revision", hint="e.g. --since origin/main")
    verify = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if verify.returncode != 0:
        inside = _git("rev-parse", "--is-inside-work-tree")
        if inside.returncode != 0:
            raise InputError("--since needs a git repository here", hint=_err(inside) or "run it inside one")
        raise InputError(
            f"--since {ref}: no such commit in this repository",
            hint="fetch it first (e.g. git fetch origin main, or actions/checkout with fetch-depth: 0)",
        )
    commit = verify.stdout.decode().strip()
    listed = _git("ls-tree", "-r", "-z", "--name-only", commit, "--", *paths)
    if listed.returncode != 0:
        raise InputError(f"git ls-tree {ref} failed: {_err(listed)}")
    names = sorted(
        n
        for n in listed.stdout.decode("utf-8", errors="surrogateescape").split("\0")
        if n.endswith(MANIFEST_SUFFIXES) and not _hidden(n, paths)
    )
    with tempfile.TemporaryDirectory(prefix="imgbatch-since-") as tmp:
        found = []
        for i, name in enumerate(names):
            shown = _git("show", f"{commit}:./{name}")
            if shown.returncode != 0:
                raise InputError(f"git show {ref}:{name} failed: {_err(shown)}")
            if name not in paths and not looks_like_manifest(shown.stdout):
                continue  # other YAML in a folder (docker-compose.yml, ...), as collect_paths
            copy = Path(tmp) / f"{i}{PurePosixPath(name).suffix}"
            copy.write_bytes(shown.stdout)
            found.append((str(copy), f"{ref}:{name}"))
        return check_listed(found) if found else []


def _hidden(name: str, given: Sequence[str]) -> bool:
    """Folder searches skip hidden folders and files (as collect_paths does), unless given by name."""
    if name in given:
        return False
    return any(part.startswith(".") and part not in (".", "..") for part in PurePosixPath(name).parts)
