"""The credit cap holds: one budget asked before every submit, prices learned per size class,
unknown prices stop the run, credits_used counts, unconfirmed records count, and the run says
what it will spend before it spends."""

# ruff: noqa: F811  (the `world` fixture is imported from test_run and named as a parameter)
from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from runner.estimate import estimate, size_class
from runner.ledger import Ledger
from runner.sandbox import Faults
from runner.spend import Budget
from tests.helpers import run_cli
from tests.sandbox_util import loopback
from tests.test_run import World, world  # noqa: F401 - the fixture

MODES = ["in-process", "loopback"]


def many(n: int, sizes: str = "['1:1@1K']") -> str:
    return f"version: 1\nname: lots\nsizes: {sizes}\nprompts:\n" + "".join(
        f"  - {{id: p{i}, prompt: subject {i}}}\n" for i in range(n)
    )


@contextlib.contextmanager
def served(w: World, mode: str) -> Iterator[str | None]:
    if mode == "loopback":
        with loopback(w.sandbox) as url:
            yield url
    else:
        yield None


def accepted_prices(w: World) -> list[Any]:
    return [r["estimated_credits"] for r in w.records() if r["status"] != "submitting"]


@pytest.mark.parametrize("mode", MODES)
def test_a_price_that_rises_after_the_first_answer_overshoots_by_at_most_what_was_in_flight(
    world: Callable[..., World], mode: str
) -> None:
    # The case: --max-credits 6000, the first answer says 100 and later ones 1000.
    w = world(manifest=many(60), faults=Faults(price_from=[(2, 1000)], submit_latency=0.002))
    with served(w, mode) as url:
        code, summary = w.run(url, max_credits=6000, concurrency=8)
    assert code == 4 and "--max-credits 6000 reached" in summary["refusal"]
    sent = summary["credits_estimated"]
    # Only the other 7 submits in flight when 1000 first appeared were reserved at 100.
    assert sent <= 6000 + 7 * 900
    assert summary["submitted"] == len(w.sandbox.tasks) == len(accepted_prices(w)) <= 14
    assert summary["held_back"] == 60 - summary["submitted"]
    assert w.sandbox.submitted_twice() == []


@pytest.mark.parametrize("mode", MODES)
def test_each_size_class_learns_its_price_from_its_first_answer_sent_alone(
    world: Callable[..., World], mode: str
) -> None:
    w = world(
        manifest=many(10, "['1:1@1K', '1:1@4K']"),
        faults=Faults(prices={"1K": 100, "4K": 1000}, submit_latency=0.002),
    )
    with served(w, mode) as url:
        code, summary = w.run(url, max_credits=5000, concurrency=8)
    assert code == 4
    prices = sorted(accepted_prices(w))
    # Only the first 4K submit was reserved at the assumed 100: the overshoot is at most 900.
    assert summary["credits_estimated"] == sum(prices) <= 5000 + 900
    assert prices.count(1000) >= 3 and prices.count(100) >= 1
    assert w.sandbox.submitted_twice() == []


@pytest.mark.parametrize("fmt", ["string", "missing"])
@pytest.mark.parametrize("mode", MODES)
def test_a_price_that_is_not_a_number_stops_submitting_with_exit_4(
    world: Callable[..., World], mode: str, fmt: str
) -> None:
    w = world(faults=Faults(price_format=fmt, prices={"1K": 1000}))
    with served(w, mode) as url:
        code, summary = w.run(url)
    assert code == 4
    assert "gave no usable price (estimated_credits " + ("'1000'" if fmt == "string" else "None") in (
        summary["refusal"]
    )
    assert summary["submitted"] == len(w.sandbox.tasks) == 1  # the first goes alone, and stops it
    assert summary["held_back"] == 5
    [record] = w.records()
    assert record["estimated_credits"] is None and record["status"] == "completed"


@pytest.mark.parametrize("mode", MODES)
def test_credits_used_above_the_estimates_counts_against_the_cap(
    world: Callable[..., World], mode: str
) -> None:
    # Submits are slow and tasks finish at once: each completion (credits_used 500, estimate
    # 100) is known before the next submit is allowed.
    w = world(manifest=many(8), faults=Faults(used_factor=5, submit_latency=0.15))
    w.sandbox.task_seconds = 0
    with served(w, mode) as url:
        code, summary = w.run(url, max_credits=1000, concurrency=1)
    assert code == 4
    assert summary["submitted"] <= 4  # estimates alone would have let all 8 through
    used = sum(t.credits * 5 for t in w.sandbox.tasks.values())
    assert used <= 1000 + 500  # at most the one in flight when the cap was passed


def test_budget_counts_credits_used_and_refuses_past_the_cap() -> None:
    async def go() -> None:
        b = Budget(None, 550, max_in_flight=4)
        params = {"prompt": "x", "aspect_ratio": "1:1", "resolution": "1K"}
        t = await b.reserve("a", params)
        assert t is not None and b.committed == 100
        assert await b.accepted(t, 100) == ""
        await b.used("a", 500, params)  # actual spend above the estimate
        assert b.committed == 500 and b.classes["1K"].price == 500
        assert await b.reserve("b", params) is None and b.limit_hit == "--max-credits 550"

    asyncio.run(go())


def test_an_unproven_class_has_one_submit_in_flight() -> None:
    async def go() -> None:
        b = Budget(None, None, max_in_flight=8)
        k1 = {"prompt": "x", "resolution": "1K"}
        k4 = {"prompt": "x", "resolution": "4K"}
        first = await b.reserve("a", k1)
        assert first is not None
        waiting = asyncio.ensure_future(b.reserve("b", k1))
        await asyncio.sleep(0)
        assert not waiting.done()  # neither the key nor the 1K price is proven yet
        await b.accepted(first, 100)
        second = await waiting
        assert second is not None
        third = await b.reserve("c", k1)
        assert third is not None  # 1K is proven: concurrent now
        four = await b.reserve("d", k4)
        blocked = asyncio.ensure_future(b.reserve("e", k4))
        await asyncio.sleep(0)
        assert four is not None and not blocked.done()  # 4K is not
        await b.accepted(four, 1000)
        fifth = await blocked
        assert fifth is not None and fifth.price == 1000
        await b.accepted(second, 300)  # 1K's price rose: its next submit goes alone again
        assert not b.classes["1K"].proven

    asyncio.run(go())


def test_size_classes() -> None:
    assert size_class({"aspect_ratio": "1:1", "resolution": "4K"}) == "4K"
    assert size_class({"size": "2048x2048"}) == "size 2048x2048"


def unconfirmed_ledger(w: World, forget: bool, url: str | None = None) -> None:
    """A ledger whose every record is `submitting`, as a crash leaves it; with `forget`, the
    service never got them."""
    w.run(url, wait=False)
    ledger = Ledger.open(w.ledger, write=True)
    for r in list(ledger.records.values()):
        ledger.put({**r, "status": "submitting", "task_id": None, "estimated_credits": None})
    ledger.close()
    if forget:
        w.sandbox.tasks.clear()
        w.sandbox.by_task_id.clear()
        w.sandbox.submits.clear()


@pytest.mark.parametrize("mode", MODES)
def test_unconfirmed_records_count_against_max_tasks_and_max_credits(
    world: Callable[..., World], mode: str
) -> None:
    w = world()
    with served(w, mode) as url:
        unconfirmed_ledger(w, forget=True, url=url)
        before = w.ledger.read_bytes()
        requests = sum(w.sandbox.requests.values())
        for kwargs in ({"max_tasks": 0}, {"max_credits": 0}, {"max_tasks": 5}, {"max_credits": 599}):
            with pytest.raises(Exception) as e:
                w.run(url, **kwargs)
            assert getattr(e.value, "exit_code", None) == 4 and "would submit 6 tasks" in str(e.value)
        assert sum(w.sandbox.requests.values()) == requests and w.ledger.read_bytes() == before
        code, summary = w.run(url, max_tasks=6, max_credits=600)
    assert code == 0 and summary["submitted"] == 6 and w.sandbox.submitted_twice() == []


def test_resubmitting_unconfirmed_records_asks_the_budget(world: Callable[..., World]) -> None:
    w = world(credits_per_task=250)
    unconfirmed_ledger(w, forget=True)
    code, summary = w.run(max_credits=600)  # passes at the assumed 100; the price is 250
    assert code == 4 and summary["submitted"] == len(w.sandbox.tasks) == 2
    assert summary["credits_estimated"] == 500


def test_run_states_what_it_will_send_and_asks_on_a_terminal(
    world: Callable[..., World], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.client import RetryPolicy
    from runner.commands.connection import Connection
    from runner.commands.run import run as run_command
    from runner.run import RunOptions
    from runner.sandbox.transport import IN_PROCESS_URL, SandboxTransport

    w = world()

    def go(answer: str | None, **kw: Any) -> tuple[int, str]:
        if answer is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(answer))
        opts = RunOptions(out_dir=w.out, poll_interval=0.01, max_credits=1000)
        conn = Connection(base_url=IN_PROCESS_URL, sandbox=False, retry=RetryPolicy(2, 0.001, 0.01))
        try:
            code = run_command(
                [str(w.manifest)], conn, w.ledger, opts, "text", SandboxTransport(w.sandbox), **kw
            )
        except Exception as e:
            code = getattr(e, "exit_code", 99)
        return code, capsys.readouterr().err

    code, err = go("n\n", interactive=True)
    assert code == 4 and sum(w.sandbox.requests.values()) == 0
    assert "this run will submit 6 tasks, about 600 credits (within --max-credits 1000):" in err
    assert "shots: 6 tasks, about 600 credits (6 x 1K at 100 (assumed))" in err
    assert "go ahead? [y/N]" in err
    code, err = go(None, interactive=True, yes=True)  # --yes: no question
    assert code == 0 and "go ahead" not in err and "will submit 6 tasks" in err
    w.manifest.write_text(w.manifest.read_text().replace("a mug", "a red mug"), encoding="utf-8")
    code, err = go(None, interactive=False)  # no terminal: no question, the statement all the same
    assert code == 0 and "go ahead" not in err
    assert "will submit 2 tasks, about 200 credits" in err and "(2 x 1K at 100)" in err


def test_the_cli_without_a_terminal_states_and_goes_ahead(tmp_path: Any) -> None:
    (tmp_path / "m.yaml").write_text(many(3), encoding="utf-8")
    ledger = tmp_path / "l.jsonl"
    result = run_cli(
        "run", "--sandbox", "--sandbox-task-seconds", "0", "--ledger", str(ledger),
        "--out", str(tmp_path / "img"), "--poll-interval", "0", str(tmp_path / "m.yaml"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "this run will submit 3 tasks, about 300 credits" in result.stderr


def test_the_statement_counts_each_manifest_and_size_class_of_what_is_new(tmp_path: Any) -> None:
    # What a run says it will send, per manifest and size class (tier or custom size), with
    # repeats and a prompt's own sizes; then, after prompts changed, only their new tasks.
    alpha = tmp_path / "alpha.yaml"
    alpha.write_text(
        "version: 1\nname: alpha\nrepeat: 2\nsizes: ['1:1@1K', '16:9@4K', '2048x1152']\nprompts:\n"
        "  - {id: a, prompt: a cup}\n  - {id: b, prompt: a jug, sizes: ['1:1@1K']}\n",
        encoding="utf-8",
    )
    beta = tmp_path / "beta.yaml"
    beta.write_text(
        "version: 1\nname: beta\nsizes: ['1:1@2K']\nprompts:\n  - {id: c, prompt: a bowl}\n", encoding="utf-8"
    )

    def run() -> list[str]:
        result = run_cli(
            "run", "--sandbox", "--sandbox-task-seconds", "0", "--ledger", str(tmp_path / "l.jsonl"),
            "--out", str(tmp_path / "img"), "--poll-interval", "0", str(alpha), str(beta),
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        lines = result.stderr.splitlines()
        start = next(i for i, line in enumerate(lines) if "will submit" in line)
        return lines[start : start + 3]

    assert run() == [
        "imgbatch: this run will submit 9 tasks, about 900 credits:",
        "imgbatch:   alpha: 8 tasks, about 800 credits (4 x 1K at 100 (assumed), 2 x 4K at 100 (assumed), "
        "2 x size 2048x1152 at 100 (assumed))",
        "imgbatch:   beta: 1 task, about 100 credits (1 x 2K at 100 (assumed))",
    ]
    alpha.write_text(alpha.read_text().replace("a cup", "a blue cup"), encoding="utf-8")
    beta.write_text(beta.read_text().replace("a bowl", "a red bowl"), encoding="utf-8")
    assert run() == [
        "imgbatch: this run will submit 7 tasks, about 700 credits:",
        "imgbatch:   alpha: 6 tasks, about 600 credits (2 x 1K at 100, 2 x 4K at 100, "
        "2 x size 2048x1152 at 100)",
        "imgbatch:   beta: 1 task, about 100 credits (1 x 2K at 100)",
    ]


def test_plan_shows_the_credit_figure_run_states(world: Callable[..., World]) -> None:
    from runner.commands._common import load_plan

    w = world(manifest=many(3, "['1:1@1K', '1:1@4K']"), faults=Faults(prices={"1K": 100, "4K": 400}))
    w.run(wait=False)  # both classes priced in the ledger
    text = w.manifest.read_text().replace("subject 0", "subject zero").replace("subject 1", "subject one")
    w.manifest.write_text(text, encoding="utf-8")
    plan = run_cli("plan", "--format", "json", "--ledger", str(w.ledger), str(w.manifest)).json()
    _, tasks = load_plan([str(w.manifest)])
    est = estimate(tasks, Ledger.open(w.ledger, write=False).records)
    assert est.total_tasks == 4 and plan["summary"]["create"] == 4
    assert plan["summary"]["credits"] == est.total_credits == 2 * 100 + 2 * 400
    table = run_cli("plan", "--ledger", str(w.ledger), str(w.manifest))
    assert "4 to create (~1,000 credits at up to 400 a task)" in table.stdout


def test_a_higher_price_recounts_the_probes_of_classes_never_priced() -> None:
    async def go() -> None:
        b = Budget(None, 1500, max_in_flight=8)
        first = await b.reserve("k", {"prompt": "x", "resolution": "1K"})
        assert first is not None
        await b.accepted(first, 100)  # the key is proven; 1K costs 100
        four = await b.reserve("a", {"prompt": "x", "resolution": "4K"})
        custom = await b.reserve("b", {"prompt": "x", "size": "2048x2048"})
        assert four is not None and custom is not None and b.committed == 300  # both assumed at 100
        await b.accepted(four, 1000)
        assert b.committed == 100 + 1000 + 1000  # the custom size's probe now counts at 1000 too
        assert await b.reserve("c", {"prompt": "x", "size": "1024x1024"}) is None  # over 1500
        await b.accepted(custom, 200)
        assert b.committed == 1300

    asyncio.run(go())


@pytest.mark.parametrize("args", [["--price", "1K"], ["--price", "1K="], ["--price-from", "x=100"]])
def test_bad_price_knobs_are_usage_errors(args: list[str]) -> None:
    result = run_cli("sandbox", "--port", "0", *args)
    assert result.exit_code == 2 and "expected" in result.stderr and "KEY=PRICE" in result.stderr


def spent(w: World) -> int:
    """What the service charged in the end: credits_used of every task it accepted."""
    return sum(round(t.credits * w.sandbox.faults.used_factor) for t in w.sandbox.tasks.values())


@pytest.mark.parametrize("mode", MODES)
def test_tasks_adopted_without_a_price_make_their_class_wait_for_it(
    world: Callable[..., World], mode: str
) -> None:
    # Every submit's answer is lost (accepted, then 5xx); queries carry no estimate, so no
    # price is known until a task completes with credits_used. From the 2nd task on: 1000.
    # One submit at a time: each must wait for the price of the one before, not go on at the
    # price assumed (100) while the tasks turn out to cost 1000.
    w = world(manifest=many(25), faults=Faults(lost_submit_share=1, price_from=[(2, 1000)]))
    w.sandbox.task_seconds = 0.3
    with served(w, mode) as url:
        code, summary = w.run(url, max_credits=3000, concurrency=1)
    assert code == 4 and summary["adopted"] == len(w.sandbox.tasks)
    assert spent(w) <= 3000 + 900  # at most the one in flight when the price showed
    assert w.sandbox.submitted_twice() == []


def test_a_price_raised_by_credits_used_acts_like_a_raised_estimate() -> None:
    async def go() -> None:
        b = Budget(None, None, max_in_flight=8)
        params = {"prompt": "x", "resolution": "2K"}
        first = await b.reserve("a", params)
        assert first is not None and await b.accepted(first, 100) == ""
        siblings = [await b.reserve(s, params) for s in ("b", "c")]  # proven at 100: together
        assert all(siblings) and b.committed == 300
        await b.used("a", 500, params)  # a completes: it really cost 500
        assert b.committed == 1500  # b and c, still in flight, counted at 500 too
        waiting = asyncio.ensure_future(b.reserve("d", params))
        await asyncio.sleep(0)
        assert not waiting.done()  # the raised class is unproven: its next submit goes alone
        for t in siblings:
            assert t is not None and await b.accepted(t, 100) == ""  # a lying low estimate
        assert b.costs["b"] == b.costs["c"] == 500  # never counted below the class's price
        d = await waiting
        assert d is not None and d.price == 500 and b.committed == 2000

    asyncio.run(go())


@pytest.mark.parametrize("mode", MODES)
def test_the_summary_counts_credits_used_of_adopted_tasks_too(world: Callable[..., World], mode: str) -> None:
    # Every submit's answer is lost and the task is already completed when it is found.
    w = world(manifest=many(5), faults=Faults(lost_submit_share=1, used_factor=3))
    w.sandbox.task_seconds = 0
    with served(w, mode) as url:
        code, summary = w.run(url)
    assert code == 0 and summary["adopted"] == 5
    assert summary["credits_used"] == sum(r["credits_used"] for r in w.records()) == spent(w) == 1500
