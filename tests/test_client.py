"""The API client's retry rules, with scripted answers through an httpx transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from runner.client import ApiClient, Kind, RetryPolicy
from runner.errors import AuthError, ConfigError, ServiceError

SECRET = "sk-test-6f1e9d0c"
Script = list[Callable[[httpx.Request], httpx.Response]]


def ok(data: dict[str, Any] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda r: httpx.Response(
        200, json={"statusCode": 200, "message": "", "data": data or {"status": "pending"}}
    )


def status(
    code: int, headers: dict[str, str] | None = None, envelope: int | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    body = {"statusCode": envelope or code, "message": f"m{code}", "data": None}
    return lambda r: httpx.Response(code, json=body, headers=headers)


def raises(exc: type[Exception]) -> Callable[[httpx.Request], httpx.Response]:
    def f(r: httpx.Request) -> httpx.Response:
        raise exc("boom", request=r)  # type: ignore[call-arg]

    return f


class Harness:
    def __init__(self, script: Script) -> None:
        self.script = list(script)
        self.seen: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        return self.script.pop(0)(request)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self, attempts: int = 4) -> ApiClient:
        return ApiClient(
            "http://api.test",
            SECRET,
            transport=httpx.MockTransport(self.handler),
            retry=RetryPolicy(attempts=attempts, base=0.01, cap=0.05),
            sleep=self.sleep,
            seed=1,
        )


def call(h: Harness, what: str, attempts: int = 4) -> Any:
    async def go() -> Any:
        c = h.client(attempts)
        try:
            if what == "submit":
                return await c.submit({"out_task_id": "t"})
            return await c.query("t")
        finally:
            await c.aclose()

    return asyncio.run(go())


def test_429_is_retried_honouring_retry_after_even_for_a_submit() -> None:
    h = Harness([status(429, {"retry-after": "3"}), ok()])
    answer = call(h, "submit")
    assert answer.kind is Kind.OK
    assert len(h.seen) == 2 and h.sleeps and h.sleeps[0] >= 2.99  # paused by the gate until then


def test_429s_do_not_use_up_the_retry_budget() -> None:
    h = Harness([status(429, {"retry-after": "1"})] * 10 + [ok()])
    answer = call(h, "submit", attempts=2)
    assert answer.kind is Kind.OK and len(h.seen) == 11


def test_a_submit_with_an_unknown_outcome_is_never_resent() -> None:
    for failure in (
        status(502),
        status(200, envelope=500),
        raises(httpx.ReadTimeout),
        raises(httpx.RemoteProtocolError),
        lambda r: httpx.Response(200, content=b'{"statusCode": 2'),
    ):
        h = Harness([failure, ok()])
        assert call(h, "submit").kind is Kind.UNKNOWN
        assert len(h.seen) == 1


def test_a_submit_that_never_connected_is_retried() -> None:
    h = Harness([raises(httpx.ConnectError), ok()])
    assert call(h, "submit").kind is Kind.OK
    assert len(h.seen) == 2


def test_queries_retry_5xx_timeouts_and_broken_bodies_within_a_budget() -> None:
    h = Harness(
        [
            status(503),
            raises(httpx.ReadTimeout),
            lambda r: httpx.Response(200, content=b"<html>"),
            ok({"status": "completed"}),
        ]
    )
    assert call(h, "query").data == {"status": "completed"}
    assert len(h.sleeps) == 3
    h = Harness([status(500)] * 3)
    answer = call(h, "query", attempts=3)
    assert answer.kind is Kind.UNKNOWN and len(h.seen) == 3 and not answer.unreachable


def test_4xx_other_than_429_is_not_retried() -> None:
    h = Harness([status(400), ok()])
    answer = call(h, "submit")
    assert answer.kind is Kind.REJECTED and answer.message == "m400" and len(h.seen) == 1


def test_errors_inside_http_200_envelopes_are_errors() -> None:
    h = Harness([status(200, envelope=404)])
    assert call(h, "query").kind is Kind.NOT_FOUND
    h = Harness([status(200, envelope=400)])
    assert call(h, "submit").kind is Kind.REJECTED


@pytest.mark.parametrize("code", [401, 403])
def test_a_refused_key_stops_everything(code: int) -> None:
    h = Harness([status(code)])
    with pytest.raises(AuthError) as e:
        call(h, "submit")
    assert SECRET not in str(e.value)


def test_a_service_never_reached_is_reported_after_two_attempts() -> None:
    h = Harness([raises(httpx.ConnectError)] * 4)
    with pytest.raises(ServiceError) as e:
        call(h, "query")
    assert str(e.value).startswith("cannot connect to api.test (boom)") and "--base-url" in str(e.value)
    assert len(h.seen) == 2 and e.value.exit_code == 5


def test_a_network_lost_after_first_contact_is_reported_as_unreachable() -> None:
    h = Harness([ok()] + [raises(httpx.ConnectError)] * 4)

    async def go() -> Any:
        c = h.client()
        try:
            await c.query("t")
            return await c.query("t")
        finally:
            await c.aclose()

    answer = asyncio.run(go())
    assert answer.kind is Kind.UNKNOWN and answer.unreachable and "cannot connect" in answer.message


def test_every_request_carries_the_key_and_json() -> None:
    h = Harness([ok()])
    call(h, "submit")
    [r] = h.seen
    assert r.headers["authorization"] == f"Bearer {SECRET}"
    assert r.url == "http://api.test/api/openapi/submit"
    assert json.loads(r.content) == {"out_task_id": "t"}


def test_backoff_is_exponential_with_full_jitter() -> None:
    import random

    policy = RetryPolicy(base=1.0, cap=8.0)
    rng = random.Random(0)
    delays = [[policy.delay(a, rng) for _ in range(200)] for a in range(1, 6)]
    for a, ds in enumerate(delays, 1):
        assert min(ds) >= 0 and max(ds) <= min(8.0, 2**a)
        assert max(ds) > 0.8 * min(8.0, 2**a)  # the whole range is used


def test_a_base_url_that_serves_no_api_is_refused_at_once() -> None:
    h = Harness([lambda r: httpx.Response(404, content=b"")] * 5)
    with pytest.raises(ConfigError) as e:
        call(h, "submit")
    assert "does not serve the aireiter API at this base URL" in str(e.value) and e.value.exit_code == 3
    assert len(h.seen) == 1


def test_a_404_page_after_the_api_has_answered_is_only_an_unusable_answer() -> None:
    h = Harness([ok(), lambda r: httpx.Response(404, content=b"<html>gateway</html>"), ok()])

    async def go() -> Any:
        c = h.client()
        try:
            await c.query("t")
            return await c.query("t")
        finally:
            await c.aclose()

    assert asyncio.run(go()).kind is Kind.OK
