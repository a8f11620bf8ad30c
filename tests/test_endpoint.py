"""A ledger belongs to one service: a run against another is refused with both named, nothing
sent and the ledger untouched; `--sandbox` keeps its own ledger and images."""

# ruff: noqa: F811  (the `world` fixture is imported from test_run and named as a parameter)
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from runner import verify
from runner.ledgerguard import SANDBOX_ENDPOINT, endpoint_of
from runner.sandbox.transport import IN_PROCESS_URL
from tests.helpers import run_cli
from tests.sandbox_util import loopback
from tests.test_run import MANIFEST, World, world  # noqa: F401 - the fixture

EMBEDDED = "http://sandbox.imgbatch.invalid:80"


def test_endpoints_are_scheme_host_and_port() -> None:
    assert endpoint_of("https://aireiter.com") == "https://aireiter.com:443"
    assert endpoint_of("https://AIREITER.com:443/api/") == "https://aireiter.com:443"
    assert endpoint_of("http://127.0.0.1:8765") == "http://127.0.0.1:8765"
    assert endpoint_of("http://[::1]:9/x") == "http://[::1]:9"
    assert endpoint_of(IN_PROCESS_URL) == EMBEDDED


def test_every_record_names_its_service(world: Callable[..., World]) -> None:
    w = world()
    assert w.run()[0] == 0
    assert {r["endpoint"] for r in w.records()} == {EMBEDDED}
    before = w.ledger.read_bytes()
    assert w.run()[0] == 0 and w.ledger.read_bytes() == before  # a rerun changes no byte


@pytest.mark.parametrize("first", ["in-process", "loopback"])
def test_a_run_against_another_service_is_refused_and_changes_nothing(
    world: Callable[..., World], first: str
) -> None:
    w = world()
    with loopback(w.sandbox) as url:
        here, there = (None, url) if first == "in-process" else (url, None)
        w.run(here, wait=False)  # paid tasks still running
        journal = w.ledger.with_name(w.ledger.name + ".journal")
        journal.write_text(json.dumps({**w.records()[0], "status": "processing"}) + "\n", encoding="utf-8")
        before = (w.ledger.read_bytes(), journal.read_bytes())
        requests = sum(w.sandbox.requests.values())
        with pytest.raises(Exception) as e:
            w.run(there)
    message = str(e.value)
    assert getattr(e.value, "exit_code", None) == 4
    mine, other = endpoint_of(here or IN_PROCESS_URL), endpoint_of(there or IN_PROCESS_URL)
    assert f"belongs to {mine}; this run is against {other}" in message
    assert "Nothing was sent and the ledger was not changed" in message
    assert (w.ledger.read_bytes(), journal.read_bytes()) == before
    assert sum(w.sandbox.requests.values()) == requests
    assert all(r["status"] == "pending" for r in w.records())  # nothing marked lost


def test_sandbox_runs_keep_their_own_ledger_and_images(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # The images stay too fresh for the digest cache however slowly the machine runs (one 2 s
    # old would add .imgbatch-verified.json to the folder listed below).
    monkeypatch.setattr(verify, "_SETTLED_NS", 10**12)
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    result = run_cli("run", "--sandbox", "--sandbox-task-seconds", "0", "--poll-interval", "0", "m.yaml")
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    ledger = "imgbatch.sandbox.ledger.jsonl"
    assert names == ["images-sandbox", ledger, f"{ledger}.lock", "m.yaml"]  # no imgbatch.ledger.jsonl
    assert len(list((tmp_path / "images-sandbox").iterdir())) == 6
    status = run_cli("status", "--sandbox", "m.yaml")
    assert status.exit_code == 0 and "imgbatch.sandbox.ledger.jsonl" in status.stdout


def test_the_sandbox_against_a_real_ledger_is_refused(
    world: Callable[..., World], monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world()
    with loopback(w.sandbox) as url:
        w.run(url, wait=False)
    before = w.ledger.read_bytes()
    result = run_cli("run", "--sandbox", "--ledger", str(w.ledger), str(w.manifest))
    assert result.exit_code == 4
    assert f"belongs to {endpoint_of(url)}; this run is against {EMBEDDED}" in result.stderr
    assert w.ledger.read_bytes() == before


def test_a_ledger_from_before_endpoints_is_never_taken_over_by_the_sandbox(
    world: Callable[..., World],
) -> None:
    w = world()
    with loopback(w.sandbox) as url:
        w.run(url, wait=False)  # paid tasks still running
        legacy = [{k: v for k, v in r.items() if k != "endpoint"} for r in w.records()]
        w.ledger.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in legacy), encoding="utf-8")
        before = w.ledger.read_bytes()
        result = run_cli("run", "--sandbox", "--ledger", str(w.ledger), str(w.manifest))
        assert result.exit_code == 4, result.stderr
        assert "records written before imgbatch recorded endpoints" in result.stderr
        assert "Nothing was sent and the ledger was not changed" in result.stderr
        assert w.ledger.read_bytes() == before  # nothing marked lost, nothing stamped
        # The real service claims them and collects the paid tasks.
        code, summary = w.run(url)
        assert code == 0 and summary["submitted"] == 0
    assert {r["endpoint"] for r in w.records()} == {endpoint_of(url)}
    assert {r["status"] for r in w.records()} == {"completed"}
    again = run_cli("run", "--sandbox", "--ledger", str(w.ledger), str(w.manifest))
    assert again.exit_code == 4 and f"belongs to {endpoint_of(url)}" in again.stderr


def test_the_sandbox_endpoint_is_the_in_process_one() -> None:
    assert endpoint_of(IN_PROCESS_URL) == SANDBOX_ENDPOINT


def test_a_finished_ledger_from_before_endpoints_is_claimed_once(world: Callable[..., World]) -> None:
    # Every task done, so the run itself changes no record: the claim alone must stamp them.
    w = world()
    with loopback(w.sandbox) as url:
        assert w.run(url)[0] == 0
        legacy = [{k: v for k, v in r.items() if k != "endpoint"} for r in w.records()]
        w.ledger.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in legacy), encoding="utf-8")
        args = ("run", "--base-url", url, "--ledger", str(w.ledger), "--out", str(w.out), str(w.manifest))
        claimed = run_cli(*args)
        assert claimed.exit_code == 0, claimed.stderr
        assert f"{len(legacy)} records written before imgbatch recorded endpoints" in claimed.stderr
        assert {r.get("endpoint") for r in w.records()} == {endpoint_of(url)}
        before = w.ledger.read_bytes()
        again = run_cli(*args)
        assert again.exit_code == 0, again.stderr
        assert "records written before imgbatch recorded endpoints" not in again.stderr
        assert w.ledger.read_bytes() == before
