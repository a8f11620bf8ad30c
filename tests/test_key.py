"""The API key goes only into the Authorization header: a bad key is refused before any request,
and a server that echoes the key back cannot get it printed, logged or written."""

# ruff: noqa: F811  (the `world` fixture is imported from test_run and named as a parameter)
from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.ledger import Ledger
from runner.redact import MARK, add_secret, scrub, scrub_value
from runner.sandbox import Faults, Sandbox
from tests.helpers import run_cli
from tests.sandbox_util import loopback
from tests.test_run import MANIFEST, World, world  # noqa: F401 - the fixture

KEY = "sk-test-secret-77"


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Sandbox, str]]:
    sandbox = Sandbox(token=KEY, task_seconds=0.05)
    with loopback(sandbox) as url:
        yield sandbox, url


@pytest.mark.parametrize(
    ("key", "what"),
    [
        (KEY + "\n", "a newline (U+000A) at character 18 of 18"),
        ("sk-\r\ntest", "a carriage return (U+000D) at character 4"),
        ("sk-te\x01st", "a control character (U+0001) at character 6"),
        ("sk-tést-secret", "a non-ASCII character at character 5"),
        ("sk-test secret", "a space (U+0020) at character 8"),
    ],
)
def test_a_key_with_a_stray_character_is_refused_before_any_request(
    server: tuple[Sandbox, str], tmp_path: Path, key: str, what: str
) -> None:
    sandbox, url = server
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    before = sum(sandbox.requests.values())
    result = run_cli(
        "run",
        "--base-url",
        url,
        "--ledger",
        str(tmp_path / "l.jsonl"),
        str(tmp_path / "m.yaml"),
        env={"AIREITER_API_KEY": key},
    )
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    assert line.startswith(f"imgbatch: error: AIREITER_API_KEY contains {what}")
    assert "nothing was sent" in line
    for part in ("sk-te", "test", "secret"):
        assert part not in line
    assert sum(sandbox.requests.values()) == before
    assert not (tmp_path / "l.jsonl").exists()


@pytest.mark.parametrize("pasted", [f"Bearer {KEY}", f"bearer  {KEY}"])
def test_a_key_pasted_with_its_scheme_gets_a_hint_that_leaves_the_key(
    server: tuple[Sandbox, str], tmp_path: Path, pasted: str
) -> None:
    sandbox, url = server
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    before = sum(sandbox.requests.values())
    args = ["run", "--base-url", url, "--ledger", str(tmp_path / "l.jsonl"), str(tmp_path / "m.yaml")]
    result = run_cli(*args, env={"AIREITER_API_KEY": pasted})
    assert result.exit_code == 3
    [line] = result.stderr.splitlines()
    scheme = pasted.split()[0]
    assert line.startswith(
        f"imgbatch: error: AIREITER_API_KEY starts with '{scheme}' and a space, the Authorization "
        "scheme, which imgbatch adds itself; nothing was sent"
    )
    assert "sk-" not in line and "secret" not in line
    assert sum(sandbox.requests.values()) == before and not (tmp_path / "l.jsonl").exists()
    # the hint, run by a shell, leaves the key itself (not "Bearersk-...", as tr -d would)
    command = line.split("e.g. ", 1)[1]
    assert command.startswith("export AIREITER_API_KEY=")
    shell = subprocess.run(
        ["sh", "-c", f'{command}; printf %s "$AIREITER_API_KEY"'],
        env={"AIREITER_API_KEY": pasted, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == KEY
    assert run_cli(*args, env={"AIREITER_API_KEY": shell.stdout}).exit_code == 0


def test_scrub_covers_the_plain_url_encoded_and_json_escaped_key() -> None:
    secret = 'sk-a/b+c"d'
    add_secret(secret)
    assert scrub(f"Bearer {secret}!") == f"Bearer {MARK}!"
    assert scrub("k=sk-a%2Fb%2Bc%22d") == f"k={MARK}"
    assert scrub(json.dumps({"m": secret})) == json.dumps({"m": MARK})
    assert scrub_value({"a": [secret, 1, None], secret: {"b": f"x{secret}"}}) == {
        "a": [MARK, 1, None],
        MARK: {"b": f"x{MARK}"},
    }


def everything_written(w: World) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in w.tmp.rglob("*") if p.is_file())


@pytest.mark.parametrize("mode", ["in-process", "loopback"])
def test_a_server_echoing_the_key_gets_it_into_no_output_and_no_file(
    world: Callable[..., World], capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    w = world(
        seed=5,
        faults=Faults(echo_headers=True, fail_share=0.5, lost_submit_share=0.3, envelope_error_share=0.2),
    )
    printed = []
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(loopback(w.sandbox)) if mode == "loopback" else None
        for _ in range(4):
            code, summary = w.run(url, lost_after=0.3)
            printed.append(json.dumps(summary))
            printed.append(capsys.readouterr().err)
            if code in (0, 1):
                break
    records = w.records()
    assert any(r["status"] == "failed" and MARK in r["error"] for r in records)  # the echo was there
    for text in [*printed, everything_written(w)]:
        assert KEY not in text
    assert w.sandbox.submitted_twice() == []


def test_an_echoed_key_in_a_refusal_is_not_printed(tmp_path: Path) -> None:
    sandbox = Sandbox(token="sk-the-right-one", faults=Faults(echo_headers=True))
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    with loopback(sandbox) as url:
        result = run_cli(
            "run",
            "--base-url",
            url,
            "--ledger",
            str(tmp_path / "l.jsonl"),
            str(tmp_path / "m.yaml"),
            env={"AIREITER_API_KEY": KEY},
        )
    assert result.exit_code == 3 and "refused" in result.stderr
    assert f"Bearer {MARK}" in result.stderr  # the server did echo it
    assert KEY not in result.stderr + result.stdout + everything_under(tmp_path)


def everything_under(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


def test_a_symlinked_ledger_shares_its_targets_lock(world: Callable[..., World]) -> None:
    w = world()
    real = w.tmp / "store" / "real.ledger.jsonl"
    real.parent.mkdir()
    w.ledger.symlink_to(real)
    held = Ledger.open(real, write=True)
    try:
        with pytest.raises(Exception) as e:
            w.run()
        assert getattr(e.value, "exit_code", None) == 4 and "in use by another imgbatch run" in str(e.value)
        assert str(w.ledger) in str(e.value)
    finally:
        held.close()
    assert w.run()[0] == 0
    assert w.ledger.is_symlink() and os.path.realpath(w.ledger) == str(real)  # the link survives
    assert len(real.read_text(encoding="utf-8").splitlines()) == 6


def test_the_key_never_reaches_the_image_host_even_from_an_echoing_server(
    world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    # Images on a second loopback address (a CDN); the API echoes the request's headers.
    w = world(faults=Faults(echo_headers=True, fail_share=0.3), seed=2)
    with loopback(w.sandbox, image_host="127.0.0.2") as url:
        code, summary = w.run(url)
    assert code == 1 and summary["completed"] >= 1  # some images were fetched from the host
    seen = w.sandbox.image_host.headers_seen
    assert seen and w.sandbox.stats()["image_requests_with_authorization"] == 0
    assert all(KEY not in json.dumps(h) for h in seen)
    assert all(h["host"].startswith("127.0.0.2:") for h in seen)
    assert KEY not in json.dumps(summary) + capsys.readouterr().err + everything_written(w)


def test_an_echoed_authorization_header_is_scrubbed_in_any_form() -> None:
    basic = base64.b64encode(b"user:sk-live-SECRET123").decode()
    for text in (
        f"authorization: Basic {basic}",
        json.dumps({"headers": {"Authorization": f"Basic {basic}"}}),
        f"Proxy-Authorization: Basic {basic}, more",
        "authorization=Bearer some-token-we-never-registered",
    ):
        scrubbed = scrub(text)
        assert basic not in scrubbed and "some-token" not in scrubbed and MARK in scrubbed
    assert scrub("the authorization was refused") == "the authorization was refused"


def test_a_base_url_with_a_user_and_password_is_refused_without_showing_it(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MANIFEST, encoding="utf-8")
    env = {"AIREITER_API_KEY": "sk-live-SECRET123"}
    url = "http://user:sk-live-SECRET123@127.0.0.1:9"
    result = run_cli("run", "--base-url", url, "--ledger", str(tmp_path / "L.jsonl"), str(tmp_path), env=env)
    assert result.exit_code == 3 and "SECRET123" not in result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "put the key in AIREITER_API_KEY" in result.stderr
