"""The sandbox, each behaviour over loopback and in process."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from PIL import Image

from runner.sandbox import Faults, Sandbox
from runner.sandbox import rules as sandbox_rules
from runner.sandbox.transport import SandboxTransport
from runner.schema import size_table
from tests.helpers import ROOT
from tests.sandbox_util import IN_PROCESS_URL, FakeClock, loopback, sandbox_process

AUTH = {"authorization": "Bearer secret-token"}


@dataclass
class Api:
    sandbox: Sandbox
    clock: FakeClock
    http: httpx.Client

    def submit(self, out_task_id: str, params: dict[str, Any] | None = None, **extra: Any) -> httpx.Response:
        body = {
            "model": "gpt_image_2",
            "params": params or {"prompt": "a cat"},
            "out_task_id": out_task_id,
            **extra,
        }
        return self.http.post("/api/openapi/submit", json=body, headers=AUTH)

    def query(self, **by: str) -> httpx.Response:
        return self.http.post("/api/openapi/query", json=by, headers=AUTH)


@pytest.fixture(params=["in-process", "loopback"])
def api(request: pytest.FixtureRequest) -> Iterator[Api]:
    clock = FakeClock()
    sandbox = Sandbox(token="secret-token", task_seconds=10, clock=clock)
    if request.param == "in-process":
        with httpx.Client(transport=SandboxTransport(sandbox), base_url=IN_PROCESS_URL) as http:
            yield Api(sandbox, clock, http)
    else:
        with loopback(sandbox) as url, httpx.Client(base_url=url) as http:
            yield Api(sandbox, clock, http)


def test_submit_answers_the_documented_envelope(api: Api) -> None:
    r = api.submit("t1", {"prompt": "a cat", "aspect_ratio": "16:9", "resolution": "2K"})
    assert r.status_code == 200
    body = r.json()
    assert body["statusCode"] == 200 and body["message"] == ""
    assert set(body["data"]) == {"out_task_id", "status", "estimated_credits", "created_at"}
    assert body["data"]["status"] == "pending" and body["data"]["out_task_id"] == "t1"
    assert body["data"]["created_at"].endswith("Z")


def test_status_moves_from_pending_through_processing_to_completed(api: Api) -> None:
    api.submit("t1", {"prompt": "a cat", "aspect_ratio": "16:9", "resolution": "2K"})
    seen = []
    for _ in range(4):
        seen.append(api.query(out_task_id="t1").json()["data"]["status"])
        api.clock.advance(4)
    assert seen == ["pending", "processing", "processing", "completed"]
    data = api.query(out_task_id="t1").json()["data"]
    assert data["credits_used"] == 100 and data["completed_at"]
    assert data["input"] == {
        "model": "gpt_image_2",
        "params": {"prompt": "a cat", "aspect_ratio": "16:9", "resolution": "2K"},
    }
    by_task_id = api.query(task_id=data["task_id"]).json()["data"]
    assert by_task_id == data


@pytest.mark.parametrize(
    ("params", "pixels"),
    [
        ({"aspect_ratio": "16:9", "resolution": "1K"}, (1672, 941)),  # delivered != nominal
        ({"aspect_ratio": "1:1", "resolution": "1K"}, (1254, 1254)),
        ({"aspect_ratio": "9:21", "resolution": "4K"}, (1648, 3840)),
        ({"size": "2048x1152"}, (2048, 1152)),
        ({"size": "1500x1000"}, None),  # below the effective floor: silently substituted
    ],
)
def test_output_is_a_real_png_of_the_delivered_pixels(
    api: Api, params: dict[str, str], pixels: tuple[int, int] | None
) -> None:
    api.submit("t1", {"prompt": "p", **params})
    api.clock.advance(10)
    [out] = api.query(out_task_id="t1").json()["data"]["output"]
    image = api.http.get(out["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    w, h = Image.open(io.BytesIO(image.content)).size
    if pixels is None:
        assert 1_450_000 < w * h < 1_700_000 and abs(w / h - 1.5) < 0.05
    else:
        assert (w, h) == pixels


def test_every_table_cell_is_served_at_its_delivered_size() -> None:
    sandbox = Sandbox(token="secret-token", task_seconds=0)
    with httpx.Client(transport=SandboxTransport(sandbox), base_url=IN_PROCESS_URL) as http:
        api = Api(sandbox, FakeClock(), http)
        for (ratio, tier), cell in size_table().cells.items():
            out_task_id = f"{ratio.replace(':', 'x')}-{tier}"
            api.submit(out_task_id, {"prompt": "p", "aspect_ratio": ratio, "resolution": tier})
            [out] = api.query(out_task_id=out_task_id).json()["data"]["output"]
            assert Image.open(io.BytesIO(http.get(out["url"]).content)).size == cell.delivered


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": "secret-token"}]
)
def test_a_missing_or_wrong_key_is_401(api: Api, headers: dict[str, str]) -> None:
    r = api.http.post("/api/openapi/submit", json={}, headers=headers)
    assert r.status_code == 401 and r.json()["statusCode"] == 401
    assert api.sandbox.tasks == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "gpt_image_1", "params": {"prompt": "p"}}, "model must be"),
        ({"params": {"aspect_ratio": "1:1"}}, "prompt is required"),
        ({"params": {"prompt": "p", "size": "2048x1152", "aspect_ratio": "16:9"}}, "size cannot"),
        ({"params": {"prompt": "p", "size": "2048x1152", "resolution": "2K"}}, "size cannot"),
        ({"params": {"prompt": "p", "aspect_ratio": "16:10"}}, "invalid aspect_ratio"),
        ({"params": {"prompt": "p", "aspect_ratio": "1:1", "resolution": "8K"}}, "invalid resolution"),
        ({"params": {"prompt": "p", "size": "2048*1152"}}, "invalid size"),
        ({"params": {"prompt": "p", "size": "1023x640"}}, "outside 655360..8294400"),
        ({"params": {"prompt": "p", "size": "3841x2160"}}, "outside 655360..8294400"),
        ({"params": "p"}, "params must be an object"),
        ({"out_task_id": "has space"}, "out_task_id is required"),
        ({"out_task_id": "x" * 65}, "out_task_id is required"),
        ({"out_task_id": "t1\n"}, "out_task_id is required"),  # `$` would let a newline through
        ({"params": {"prompt": "p", "size": "2048x1152\n"}}, "invalid size"),
    ],
)
def test_invalid_submits_are_400_and_create_nothing(api: Api, body: dict[str, Any], message: str) -> None:
    full = {"model": "gpt_image_2", "out_task_id": "t1", **body}
    r = api.http.post("/api/openapi/submit", json=full, headers=AUTH)
    assert r.status_code == 400 and message in r.json()["message"]
    assert api.sandbox.tasks == {}


def test_bounds_at_the_limits_are_accepted(api: Api) -> None:
    assert api.submit("a", {"prompt": "p", "size": "1024x640"}).status_code == 200
    assert api.submit("b", {"prompt": "p", "size": "3840x2160"}).status_code == 200


def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    r = api.http.post("/api/openapi/submit", content=b"{not json", headers=AUTH)
    assert r.status_code == 400 and "not valid JSON" in r.json()["message"]


def test_a_second_submit_of_an_id_is_rejected_and_counted(api: Api) -> None:
    assert api.submit("t1").status_code == 200
    again = api.submit("t1", {"prompt": "another"})
    assert again.status_code == 400 and "already exists" in again.json()["message"]
    assert len(api.sandbox.tasks) == 1
    assert api.sandbox.submitted_twice() == ["t1"]
    assert api.http.get("/sandbox/stats").json()["submitted_twice"] == ["t1"]


def test_unknown_tasks_are_an_error(api: Api) -> None:
    for by in ({"out_task_id": "nope"}, {"task_id": "sbx_nope"}):
        r = api.query(**by)
        assert r.status_code == 404 and r.json()["statusCode"] == 404
    assert api.query().status_code == 400


def test_a_share_of_tasks_fail_with_a_message(api: Api) -> None:
    api.sandbox.faults.fail_share = 0.5
    for i in range(40):
        api.submit(f"t{i}")
    api.clock.advance(10)
    statuses = [api.query(out_task_id=f"t{i}").json()["data"] for i in range(40)]
    failed = [d for d in statuses if d["status"] == "failed"]
    assert 8 <= len(failed) <= 32
    assert all(d["error"] and "output" not in d and d["credits_used"] == 0 for d in failed)


def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    api.sandbox.faults.rate_limit = 3
    codes = [api.query(out_task_id="x").status_code for _ in range(5)]
    assert codes[:3] == [404, 404, 404] and codes[3:] == [429, 429]
    r = api.query(out_task_id="x")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    api.clock.advance(1.0)
    assert api.query(out_task_id="x").status_code == 404


def test_5xx_share_does_nothing(api: Api) -> None:
    api.sandbox.faults.error_share = 1.0
    r = api.submit("t1")
    assert r.status_code in (500, 502, 503)
    assert api.sandbox.tasks == {}


def test_lost_submits_are_recorded_but_answered_with_an_error(api: Api) -> None:
    api.sandbox.faults.lost_submit_share = 1.0
    r = api.submit("t1")
    assert r.status_code >= 500
    api.sandbox.faults.lost_submit_share = 0.0
    assert api.query(out_task_id="t1").json()["data"]["out_task_id"] == "t1"


def test_malformed_bodies(api: Api) -> None:
    api.sandbox.faults.malformed_share = 1.0
    r = api.submit("t1")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    assert "t1" in api.sandbox.tasks  # it happened; only the answer is broken


def test_errors_inside_http_200_envelopes(api: Api) -> None:
    api.sandbox.faults.envelope_error_share = 1.0
    r = api.submit("t1")
    assert r.status_code == 200 and r.json()["statusCode"] == 500
    assert api.sandbox.tasks == {}


def test_latency_knob_delays_answers() -> None:
    import time

    sandbox = Sandbox(faults=Faults(latency=0.2))
    with httpx.Client(transport=SandboxTransport(sandbox), base_url=IN_PROCESS_URL) as http:
        start = time.monotonic()
        http.post("/api/openapi/query", json={}, headers={"authorization": "Bearer sandbox"})
        assert time.monotonic() - start >= 0.2


def test_the_sandbox_bounds_agree_with_the_schema() -> None:
    table = size_table()
    assert (table.min_pixels, table.max_pixels) == (sandbox_rules.MIN_PIXELS, sandbox_rules.MAX_PIXELS)
    assert table.tiers == sandbox_rules.TIERS


def test_the_sandbox_command_serves_on_loopback_and_prints_its_url() -> None:
    auth = {"authorization": "Bearer tok"}
    with sandbox_process("--token", "tok", "--task-seconds", "0", "--error-share", "0") as url:
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        body = {"model": "gpt_image_2", "params": {"prompt": "p"}, "out_task_id": "a"}
        r = httpx.post(f"{url}/api/openapi/submit", headers=auth, json=body)
        assert r.json()["data"]["status"] == "pending"
        query = httpx.post(f"{url}/api/openapi/query", headers=auth, json={"out_task_id": "a"})
        data = query.json()["data"]
        assert data["status"] == "completed"
        png = httpx.get(data["output"][0]["url"])
        assert Image.open(io.BytesIO(png.content)).size == (1254, 1254)  # 1:1 at 1K by default


def test_the_sandbox_command_says_when_the_port_is_taken() -> None:
    from runner.sandbox.server import bind

    sock = bind("127.0.0.1", 0)
    try:
        port = str(sock.getsockname()[1])
        proc = subprocess.run(
            [sys.executable, "-m", "runner", "sandbox", "--port", port],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
    finally:
        sock.close()
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "cannot listen on 127.0.0.1:" in proc.stderr


def test_answers_over_loopback_take_no_40_ms_each() -> None:
    # Nagle's algorithm held each answer's body back until the client's delayed ACK: 40 ms a
    # request, 1.6 s for these 40 (a millisecond or so each without it, a few under load).
    sandbox = Sandbox(token="t")
    with loopback(sandbox) as url, httpx.Client(base_url=url) as http:
        http.get("/sandbox/stats")  # connected
        start = time.monotonic()
        auth = {"authorization": "Bearer t"}
        for i in range(40):
            r = http.post("/api/openapi/query", json={"out_task_id": f"t{i}"}, headers=auth)
            assert r.status_code == 404
        assert time.monotonic() - start < 1.0
