"""The digest cache beside the ledger: an unchanged image is not hashed again, any change to
it (even one that restores its mtime) is, and a damaged cache never stops a command."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from runner import verify
from tests.project_util import SHOTS, Project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    p.write(SHOTS)
    assert p.run().exit_code == 0
    return p


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files read to hash them, in order."""
    seen: list[str] = []
    real = verify._hash

    def counting(path: str) -> tuple[str, list[int]] | None:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(verify, "_hash", counting)
    return seen


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    # Images a test just wrote count as settled (a real run's were written minutes before).
    monkeypatch.setattr(verify, "_SETTLED_NS", 0)


def cache_file(p: Project) -> Path:
    return p.ledger.parent / verify.CACHE_NAME


@pytest.mark.usefixtures("settled")
def test_an_unchanged_image_is_hashed_once_across_commands(project: Project, hashed: list[str]) -> None:
    cache_file(project).unlink()  # the run wrote it
    assert project.plan("--exit-code").exit_code == 0
    assert len(hashed) == 4
    entries = json.loads(cache_file(project).read_text(encoding="utf-8"))["files"]
    assert sorted(entries) == sorted(r["outputs"][0]["path"] for r in project.records().values())
    hashed.clear()
    assert project.plan("--exit-code").exit_code == 0
    assert project.cli("status", str(project.manifests), "--ledger", str(project.ledger)).exit_code == 0
    assert hashed == []


@pytest.mark.usefixtures("settled")
def test_an_image_edited_in_place_with_its_mtime_put_back_is_checked_again(project: Project) -> None:
    assert project.plan("--exit-code").exit_code == 0
    image = project.image(sorted(project.records())[0])
    before = image.stat()
    data = image.read_bytes()
    time.sleep(0.05)  # past the filesystem's timestamp granularity: the edit gets a new ctime
    with open(image, "r+b") as f:  # same inode, same size
        f.seek(len(data) // 2)
        f.write(bytes([data[len(data) // 2] ^ 0xFF]))
    os.utime(image, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (image.stat().st_size, image.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    result = project.plan("--exit-code")
    assert result.exit_code == 1
    assert result.stdout.count("  > download  ") == 1


@pytest.mark.usefixtures("settled")
def test_a_replaced_image_is_checked_again(project: Project) -> None:
    assert project.plan("--exit-code").exit_code == 0
    image = project.image(sorted(project.records())[0])
    other = project.image(sorted(project.records())[1])
    image.unlink()
    other.rename(image)  # another file (another inode) under the recorded name
    result = project.plan("--exit-code")
    assert result.exit_code == 1
    assert result.stdout.count("  > download  ") == 2


def test_images_written_just_now_are_not_remembered_on_disk(project: Project, hashed: list[str]) -> None:
    assert project.plan("--exit-code").exit_code == 0
    assert len(hashed) == 4
    assert not cache_file(project).exists()
    assert project.plan("--exit-code").exit_code == 0
    assert len(hashed) == 8  # a change within the clock's granularity could keep every stat field


@pytest.mark.usefixtures("settled")
@pytest.mark.parametrize(
    "damage",
    [
        b"\x00\xff not json",
        b"[1, 2]",
        b'{"version": 1, "files": {"images/x.png": 5}}',
        b'{"version": 1, "files": [',
        b'{"version": 1, "files": {"PATH": [1, 2, "three", null, 7]}}',
        b"",
    ],
)
def test_a_damaged_cache_is_ignored_and_rebuilt(project: Project, hashed: list[str], damage: bytes) -> None:
    path = next(iter(project.records().values()))["outputs"][0]["path"]
    cache_file(project).write_bytes(damage.replace(b"PATH", path.encode()))
    result = project.plan("--exit-code")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert len(hashed) == 4
    entries = json.loads(cache_file(project).read_text(encoding="utf-8"))["files"]
    assert sorted(entries) == sorted(r["outputs"][0]["path"] for r in project.records().values())


@pytest.mark.usefixtures("settled")
def test_a_cache_that_cannot_be_written_only_costs_time(project: Project, hashed: list[str]) -> None:
    cache_file(project).unlink()
    cache_file(project).mkdir()
    for _ in range(2):
        result = project.plan("--exit-code")
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""
    assert len(hashed) == 8


@pytest.mark.usefixtures("settled")
def test_report_uses_the_same_cache(project: Project, hashed: list[str]) -> None:
    cache_file(project).unlink()
    out = project.root / "report"
    args = ("report", str(project.manifests), "--ledger", str(project.ledger), "--out", str(out))
    assert project.cli(*args).exit_code == 0
    assert len(hashed) == 4
    assert project.plan("--exit-code").exit_code == 0
    first = sorted(out.joinpath("thumbs").iterdir())
    assert project.cli(*args).exit_code == 0
    assert len(hashed) == 4  # neither plan nor the second report hashed an image
    assert sorted(out.joinpath("thumbs").iterdir()) == first


@pytest.mark.usefixtures("settled")
def test_images_hashed_in_threads_all_land_in_the_one_cache_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # report hashes in a thread pool, so the first lookups of a folder's cache come at once;
    # a slow cache file read (a big one, a busy disk) widens the window.
    import threading

    real_init = verify._Cache.__init__

    def slow_init(self: verify._Cache, folder: str) -> None:
        time.sleep(0.05)
        real_init(self, folder)

    monkeypatch.setattr(verify._Cache, "__init__", slow_init)
    images = [tmp_path / f"{i}.png" for i in range(8)]
    for i, image in enumerate(images):
        image.write_bytes(b"png %d" % i)
    start = threading.Barrier(len(images))

    def hash_one(image: Path) -> None:
        start.wait()
        verify.cached_sha256(image, tmp_path)

    threads = [threading.Thread(target=hash_one, args=(i,)) for i in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    verify.save_caches()
    entries = json.loads((tmp_path / verify.CACHE_NAME).read_text(encoding="utf-8"))["files"]
    assert sorted(entries) == sorted(i.name for i in images)
