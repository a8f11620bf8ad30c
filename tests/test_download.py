"""Downloads against a hostile image host: the sandbox serves the API on 127.0.0.1 and the
images from 127.0.0.2 (like a CDN), which records the headers it receives."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from runner.sandbox import Faults
from runner.sandbox.imagehost import ImageFaults
from tests.helpers import run_cli
from tests.sandbox_util import loopback
from tests.test_run import World

KEY = "sk-test-secret-77"
ONE = """\
version: 1
name: cdn
sizes: ['1:1@1K']
prompts:
  - {id: mug, prompt: a mug}
  - {id: pot, prompt: a teapot}
"""


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., World]:
    return lambda **kw: World(tmp_path, monkeypatch, capsys, **kw)


class Cdn:
    """A World whose sandbox is served on loopback with images from another address."""

    def __init__(self, world: World, url: str) -> None:
        self.w = world
        self.url = url

    def run(self, **options: Any) -> tuple[int, dict[str, Any]]:
        return self.w.run(self.url, **options)

    def image(self, **knobs: Any) -> None:
        self.w.sandbox.faults.image = ImageFaults(**knobs)

    def files(self) -> list[Path]:
        return sorted(self.w.out.iterdir()) if self.w.out.exists() else []

    def submits(self) -> int:
        return sum(self.w.sandbox.submits.values())

    def queries(self) -> int:
        return self.w.sandbox.requests["/api/openapi/query"]


@pytest.fixture
def cdn(world: Callable[..., World]) -> Iterator[Callable[..., Cdn]]:
    stack: list[Any] = []

    def make(**sandbox: Any) -> Cdn:
        w = world(manifest=ONE, **sandbox)
        ctx = loopback(w.sandbox, image_host="127.0.0.2")
        stack.append(ctx)
        return Cdn(w, ctx.__enter__())

    yield make
    for ctx in stack:
        ctx.__exit__(None, None, None)


def assert_no_key_anywhere(c: Cdn) -> None:
    stats = c.w.sandbox.stats()
    assert stats["image_requests"] >= 1
    assert stats["image_requests_with_authorization"] == 0
    assert "authorization" not in stats["image_header_names"]
    for path in c.w.tmp.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_images_come_from_the_other_host_without_credentials(cdn: Callable[..., Cdn]) -> None:
    c = cdn()
    code, summary = c.run()
    assert code == 0 and summary["completed"] == 2 and summary["downloads"] == 2
    for r in c.w.records():
        assert r["outputs"][0]["url"].startswith(c.w.sandbox.image_base_url + "/files/")
    assert c.w.sandbox.requests["/files/"] == 2
    assert_no_key_anywhere(c)
    assert c.submits() == 2 and c.w.sandbox.submitted_twice() == []


@pytest.mark.parametrize("kind", ["404", "expired", "error-body"])
def test_a_dead_url_is_replaced_by_a_fresh_one_from_the_query_endpoint(
    cdn: Callable[..., Cdn], kind: str
) -> None:
    c = cdn()
    c.image(kinds=(kind,), times=1)
    code, summary = c.run()
    assert code == 0 and summary["completed"] == 2, summary["errors"]
    assert c.w.sandbox.requests["/files/"] == 4  # each image: the dead URL, then the fresh one
    assert c.submits() == 2
    assert_no_key_anywhere(c)


def test_an_expiring_url_fails_the_run_and_a_rerun_fetches_the_paid_image(cdn: Callable[..., Cdn]) -> None:
    c = cdn()
    c.image(url_ttl=0)  # every URL the service hands out has expired by the time it is used
    code, summary = c.run()
    assert code == 1 and summary["completed"] == 0 and summary["download_refused"] == 2
    assert len(summary["errors"]) == 2
    for line in summary["errors"]:
        assert "refused the image URL (HTTP 403: expired or withdrawn)" in line and "a fresh URL too" in line
        assert "rerun" in line and "sig=" not in line and "/files/" not in line
    assert c.files() == []
    c.image()  # URLs live for an hour again
    queries = c.queries()
    code, summary = c.run()
    assert code == 0 and summary["completed"] == 2 and summary["submitted"] == 0
    assert c.queries() > queries  # the stored URL failed; the service gave fresh ones
    assert c.submits() == 2  # paid once


@pytest.mark.parametrize(
    ("kind", "expect"),
    [
        ("html", "sent an HTML page, not an image"),
        ("svg", "sent an SVG drawing, not a raster image"),
        ("truncated", "is damaged"),
    ],
)
def test_what_is_not_a_whole_image_is_refused_naming_only_the_host(
    cdn: Callable[..., Cdn], kind: str, expect: str
) -> None:
    c = cdn()
    c.image(kinds=(kind,), times=0)
    code, summary = c.run()
    assert code == 1 and summary["completed"] == 0 and summary["download_refused"] == 2
    host = c.w.sandbox.image_base_url.removeprefix("http://")  # type: ignore[union-attr]
    for line in summary["errors"]:
        assert expect in line and host in line and "sig=" not in line and "/files/" not in line
    assert c.files() == []  # nothing kept, no temp file left
    assert all(r["outputs"][0]["path"] is None for r in c.w.records())
    assert len(summary["todo"]) == 2 and all("the task is paid: rerun" in t for t in summary["todo"])
    code, report = c.w.status()
    assert code == 1 and report["manifests"][0]["images"] == 0


def test_a_truncated_png_with_a_matching_length_is_fetched_again(cdn: Callable[..., Cdn]) -> None:
    c = cdn()
    c.image(kinds=("truncated",), times=1)
    code, summary = c.run()
    assert code == 0 and summary["completed"] == 2
    for r in c.w.records():
        with Image.open(c.w.ledger.parent / r["outputs"][0]["path"]) as img:
            img.load()
            assert list(img.size) == r["pixels"]


def test_an_oversized_body_is_cut_off_while_streaming(cdn: Callable[..., Cdn]) -> None:
    c = cdn()
    c.image(kinds=("oversized",), times=0, oversize_mb=40)
    code, summary = c.run(max_image_mb=2)
    assert code == 1 and summary["download_refused"] == 2
    expect = "larger than 2 MB (cut off while streaming, nothing kept; --max-image-mb"
    assert all(expect in e for e in summary["errors"])
    assert c.files() == []


def test_a_dripping_host_is_abandoned_at_the_download_deadline(cdn: Callable[..., Cdn]) -> None:
    c = cdn()
    c.image(kinds=("slow",), times=0, drip_seconds=0.05)
    started = time.monotonic()
    code, summary = c.run(download_timeout=0.5)
    assert time.monotonic() - started < 5
    assert code == 5 and summary["download_unreachable"] == 2
    assert all("did not arrive within 0.5 s (--download-timeout)" in e for e in summary["errors"])
    assert c.files() == []


def test_status_counts_only_files_on_disk_with_their_sha256_and_a_rerun_fetches_missing_ones(
    cdn: Callable[..., Cdn],
) -> None:
    c = cdn()
    assert c.run()[0] == 0
    code, report = c.w.status()
    assert code == 0 and report["manifests"][0]["images"] == 2
    first, second = c.w.records()
    (c.w.ledger.parent / first["outputs"][0]["path"]).unlink()  # e.g. a fresh clone
    (c.w.ledger.parent / second["outputs"][0]["path"]).write_bytes(b"not the image")
    code, report = c.w.status()
    assert code == 1 and report["manifests"][0]["images"] == 0
    code, summary = c.run()  # the missing file and the altered one are fetched again
    assert code == 0 and summary["downloads"] == 2 and summary["submitted"] == 0
    assert c.submits() == 2
    code, report = c.w.status()
    assert code == 0 and report["manifests"][0]["images"] == 2


def test_an_image_host_that_is_down_exits_5_with_a_line_per_task(cdn: Callable[..., Cdn]) -> None:
    c = cdn()
    c.run(wait=False)
    time.sleep(0.1)
    c.w.sandbox.image_base_url = "http://127.0.0.2:9"  # nothing listens there
    code, summary = c.run()
    assert code == 5 and summary["download_unreachable"] == 2 and len(summary["errors"]) == 2
    assert all("cannot download from 127.0.0.2:9" in e and "rerun" in e for e in summary["errors"])


@pytest.mark.parametrize("end", ["canceled", "cancelled", "error", "expired", "timeout"])
def test_statuses_the_service_ends_a_task_with_are_terminal_failures(
    world: Callable[..., World], end: str
) -> None:
    w = world(manifest=ONE, faults=Faults(fail_share=1.0, end_status=end))
    with loopback(w.sandbox) as url:
        code, summary = w.run(url, task_timeout=30)
        assert code == 1 and summary["failed"] == 2
        assert {r["status"] for r in w.records()} == {end}
        assert all(f"{end}: content policy" in t and "--retry-failed" in t for t in summary["todo"])


def test_a_task_that_never_ends_times_out_and_the_next_run_asks_again(world: Callable[..., World]) -> None:
    w = world(manifest=ONE, faults=Faults(fail_share=1.0, end_status="rendering"))  # unknown status
    with loopback(w.sandbox) as url:
        started = time.monotonic()
        code, summary = w.run(url, task_timeout=0.6)
        assert time.monotonic() - started < 5
        assert code == 5 and summary["timed_out"] == 2
        assert all(r["status"] == "timed_out" and "--task-timeout" in r["error"] for r in w.records())
        assert len(summary["todo"]) == 2 and all("a later run asks" in t for t in summary["todo"])
        # The status nobody knows is reported, as the API page asks, and kept in the ledger.
        assert all("its last status was 'rendering'" in t for t in summary["todo"])
        assert all("'rendering'" in r["error"] for r in w.records())
        queries = w.sandbox.requests["/api/openapi/query"]
        assert queries >= 4  # the unknown status kept being polled
        for task in w.sandbox.tasks.values():
            task.fails = False  # the service finishes them after all
        code, summary = w.run(url, task_timeout=0.6)
        assert code == 0 and summary["completed"] == 2 and summary["submitted"] == 0
        assert w.sandbox.submitted_twice() == []


def test_a_redirect_to_another_host_carries_no_credentials_either(tmp_path: Path) -> None:
    import asyncio

    import httpx

    from runner.download import Downloader
    from runner.sandbox.images import png

    seen: list[httpx.Request] = []

    def cdn(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "cdn.test":
            return httpx.Response(302, headers={"location": "https://edge.test/img.png"})
        return httpx.Response(200, content=png(1024, 1024, "x"), headers={"content-type": "image/png"})

    async def go() -> object:
        d = Downloader(tmp_path, tmp_path, transport=httpx.MockTransport(cdn))
        try:
            return await d.fetch("https://cdn.test/a.png?sig=s3cr3t", "t")
        finally:
            await d.aclose()

    result = asyncio.run(go())
    assert getattr(result, "width", None) == 1024
    assert [r.url.host for r in seen] == ["cdn.test", "edge.test"]
    assert all("authorization" not in r.headers and "cookie" not in r.headers for r in seen)


def test_the_sandbox_command_knows_every_image_fault_and_refuses_others() -> None:
    from runner import cli_sandbox as cli
    from runner.sandbox import imagehost
    from tests.helpers import run_cli

    assert cli.IMAGE_FAULTS == imagehost.IMAGE_FAULTS  # the click layer keeps a copy to stay light
    result = run_cli("sandbox", "--image-faults", "404,teapot")
    assert result.exit_code == 2 and "teapot: use 404, expired" in result.stderr


def test_a_stored_url_whose_host_is_gone_is_replaced_by_a_fresh_one(cdn: Callable[..., Cdn]) -> None:
    c = cdn()
    assert c.run()[0] == 0
    records = c.w.records()
    first = records[0]
    (c.w.ledger.parent / first["outputs"][0]["path"]).unlink()
    first["outputs"][0]["url"] = "http://127.0.0.1:1/files/x.png"  # the CDN moved; nothing listens
    c.w.ledger.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")
    queries = c.queries()
    code, summary = c.run()
    assert code == 0 and summary["downloads"] == 1 and summary["submitted"] == 0, summary["errors"]
    assert c.queries() == queries + 1  # asked once for a fresh URL
    assert c.submits() == 2


def test_a_host_down_for_every_url_is_not_promised_to_a_plain_rerun(cdn: Callable[..., Cdn]) -> None:
    c = cdn()
    c.run(wait=False)
    time.sleep(0.1)
    c.w.sandbox.image_base_url = "http://127.0.0.2:9"  # fresh URLs point there too
    code, summary = c.run()
    assert code == 5 and len(summary["errors"]) == 2
    for line in summary["errors"]:
        assert (
            "with a fresh URL from the service too" in line and "rerun once that host can be reached" in line
        )
        assert "rerun the same command" not in line


def test_status_refresh_has_the_download_bounds_and_says_why_an_image_is_missing(
    cdn: Callable[..., Cdn],
) -> None:
    c = cdn()
    c.run(wait=False)
    time.sleep(0.1)
    c.image(kinds=("slow",), times=0, drip_seconds=0.05)
    where = ["--base-url", c.url, "--ledger", str(c.w.ledger), "--out", str(c.w.out), str(c.w.manifest)]
    started = time.monotonic()
    result = run_cli("status", "--refresh", "--download-timeout", "0.5", *where)
    assert time.monotonic() - started < 10
    assert result.exit_code == 5, result.stderr
    assert result.stderr.count("imgbatch: not done: ") == 2
    assert "did not arrive within 0.5 s (--download-timeout)" in result.stderr
    assert "submitted" not in result.stderr  # no run progress lines: nothing is submitted here
    c.image(kinds=("oversized",), times=0, oversize_mb=3)
    result = run_cli("status", "--refresh", "--max-image-mb", "1", *where)
    assert result.exit_code == 1 and "larger than 1 MB" in result.stderr
