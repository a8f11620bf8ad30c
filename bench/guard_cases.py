"""Every spending and key guard of issue 7, run as a user would: `imgbatch sandbox` as a real
process with the fault on, `imgbatch run` as a real process against it.

Per case: the exit code, the credits the service accepted against the cap, the most submit
requests any out_task_id got (never more than 1), and where the API key was found (stdout,
stderr, every file under the case's folder, the headers the image host received).

    python bench/guard_cases.py            # all cases (the `lost` case waits its real minute)
    python bench/guard_cases.py --quick    # without the minute-long `lost` case

Exits 1 if any case breaks its rule.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-live-guard-5f1e2d3c4b5a69788796"


def manifest(n: int, sizes: str = "['1:1@1K']", name: str = "guards") -> str:
    return f"version: 1\nname: {name}\nsizes: {sizes}\nprompts:\n" + "".join(
        f"  - {{id: p{i}, prompt: subject {i}}}\n" for i in range(n)
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def sandbox(*args: str, port: int = 0) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "sandbox", "--port", str(port), "--token", KEY, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Case:
    def __init__(self, folder: Path, text: str) -> None:
        self.dir = folder
        folder.mkdir(parents=True)
        (folder / "m.yaml").write_text(text, encoding="utf-8")
        self.printed: list[str] = []

    def run(self, url: str | None, *args: str, key: str = KEY) -> subprocess.CompletedProcess[str]:
        where = ["--sandbox"] if url is None else ["--base-url", url]
        proc = subprocess.run(
            [sys.executable, "-m", "runner", "run", *where, "--ledger", "ledger.jsonl", "--out", "images",
             "--poll-interval", "0.1", *args, "m.yaml"],
            env={**os.environ, "AIREITER_API_KEY": key},
            cwd=self.dir, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        self.printed += [proc.stdout, proc.stderr]
        return proc

    def records(self) -> list[dict[str, Any]]:
        path = self.dir / "ledger.jsonl"
        return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []

    def key_found(self, stats: dict[str, Any] | None = None) -> list[str]:
        places = [f"output {i}" for i, text in enumerate(self.printed) if KEY in text]
        for p in self.dir.rglob("*"):
            if p.is_file() and KEY.encode() in p.read_bytes():
                places.append(str(p.relative_to(self.dir)))
        if stats and stats.get("image_requests_with_authorization"):
            places.append("image host headers")
        return places


def stats(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/sandbox/stats").json())


def most_submits(s: dict[str, Any]) -> int:
    return max(s["submits"].values(), default=0)


def last_line(proc: subprocess.CompletedProcess[str], needle: str) -> str:
    lines = [x for x in proc.stderr.splitlines() if needle in x]
    return lines[-1].removeprefix("imgbatch: ") if lines else ""


Result = dict[str, Any]


def sandbox_task_id(seed: int, out_task_id: str) -> str:
    return "sbx_" + hashlib.sha256(f"{seed}:{out_task_id}".encode()).hexdigest()[:16]


def rising_price(tmp: Path) -> Result:
    c = Case(tmp / "rising", manifest(60))
    with sandbox("--task-seconds", "0.2", "--price-from", "2=1000", "--submit-latency", "0.01") as url:
        p = c.run(url, "--max-credits", "6000", "--concurrency", "8")
        s = stats(url)
    ok = p.returncode == 4 and s["credits_accepted"] <= 6000 + 7 * 900 and most_submits(s) == 1
    return dict(case="price 100 then 1000 a task, --max-credits 6000, concurrency 8", exit=p.returncode,
                credits=s["credits_accepted"], cap=6000, tasks=s["tasks"], most_submits=most_submits(s),
                key=c.key_found(s), said=last_line(p, "stopped submitting"), ok=ok)  # fmt: skip


def per_class(tmp: Path) -> Result:
    c = Case(tmp / "classes", manifest(20, "['1:1@1K', '1:1@4K']"))
    with sandbox("--task-seconds", "0.2", "--price", "1K=100", "--price", "4K=1000") as url:
        p = c.run(url, "--max-credits", "5000")
        s = stats(url)
    ok = p.returncode == 4 and s["credits_accepted"] <= 5000 + 900 and most_submits(s) == 1
    return dict(case="1K at 100, 4K at 1000, --max-credits 5000", exit=p.returncode,
                credits=s["credits_accepted"], cap=5000, tasks=s["tasks"], most_submits=most_submits(s),
                key=c.key_found(s), said=last_line(p, "stopped submitting"), ok=ok)  # fmt: skip


def text_price(fmt: str) -> Callable[[Path], Result]:
    def case(tmp: Path) -> Result:
        c = Case(tmp / f"price-{fmt}", manifest(10))
        with sandbox("--task-seconds", "0.2", "--price-format", fmt, "--price", "1K=1000") as url:
            p = c.run(url)
            s = stats(url)
        ok = p.returncode == 4 and s["tasks"] == 1 and most_submits(s) == 1
        what = '"1000" (text)' if fmt == "string" else "missing"
        return dict(case=f"estimated_credits {what}",
                    exit=p.returncode, credits=s["credits_accepted"], cap=None, tasks=s["tasks"],
                    most_submits=most_submits(s), key=c.key_found(s),
                    said=last_line(p, "stopped submitting"), ok=ok)  # fmt: skip

    return case


def used_above(tmp: Path) -> Result:
    c = Case(tmp / "used", manifest(8))
    with sandbox("--task-seconds", "0", "--used-factor", "5", "--submit-latency", "0.3") as url:
        p = c.run(url, "--max-credits", "1000", "--concurrency", "1", "--poll-interval", "0.02")
        s = stats(url)
    used = sum(r.get("credits_used") or 0 for r in c.records())
    ok = p.returncode == 4 and used <= 1000 + 500 and most_submits(s) == 1
    return dict(case="credits_used 5x the estimate (100 -> 500), --max-credits 1000", exit=p.returncode,
                credits=used, cap=1000, tasks=s["tasks"], most_submits=most_submits(s),
                key=c.key_found(s), said=last_line(p, "stopped submitting"), ok=ok)  # fmt: skip


def unconfirmed(tmp: Path) -> Result:
    c = Case(tmp / "unconfirmed", manifest(60))
    with sandbox("--task-seconds", "0.2") as url:
        c.run(url, "--no-wait")
    ledger = c.dir / "ledger.jsonl"
    records = [{**r, "status": "submitting", "task_id": None} for r in c.records()]
    ledger.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")
    with sandbox("--task-seconds", "0.2", port=int(url.rsplit(":", 1)[1])) as url2:  # forgot them all
        p = c.run(url2, "--max-tasks", "0", "--max-credits", "0")
        s = stats(url2)
    ok = p.returncode == 4 and s["tasks"] == 0 and sum(s["requests"].values()) == 1  # only the stats
    return dict(case="60 `submitting` records, rerun with --max-tasks 0 --max-credits 0", exit=p.returncode,
                credits=s["credits_accepted"], cap=0, tasks=s["tasks"], most_submits=most_submits(s),
                key=c.key_found(s), said=last_line(p, "error:"), ok=ok)  # fmt: skip


def transient_404(tmp: Path) -> Result:
    c = Case(tmp / "404", manifest(20))
    with sandbox("--task-seconds", "0.2", "--query-404-times", "2") as url:
        started = time.monotonic()
        p = c.run(url)
        took = time.monotonic() - started
        s = stats(url)
    lost = sum(r["status"] == "lost" for r in c.records())
    # Replication lag costs seconds (re-asked after 1 s, then 2 s), not the 60 s `lost` needs.
    ok = p.returncode == 0 and lost == 0 and most_submits(s) == 1 and took < 30
    return dict(case="each task's first 2 queries answered 404", exit=p.returncode,
                credits=s["credits_accepted"], cap=None, tasks=s["tasks"], most_submits=most_submits(s),
                key=c.key_found(s), said=f"{lost} lost, all done in {took:.1f} s", ok=ok)  # fmt: skip


def really_lost(tmp: Path) -> Result:
    c = Case(tmp / "lost", manifest(5))
    port = free_port()
    with sandbox("--task-seconds", "0.2", port=port) as url:
        c.run(url, "--no-wait")
    with sandbox("--task-seconds", "0.2", port=port) as url:  # restarted: knows nothing any more
        started = time.monotonic()
        p = c.run(url)
        took = time.monotonic() - started
        q = stats(url)["requests"].get("/api/openapi/query", 0)
        again = c.run(url, "--retry-failed")
        s = stats(url)
    statuses = {r["status"] for r in c.records()}
    ok = p.returncode == 1 and took >= 60 and again.returncode == 0 and statuses == {"completed"}
    return dict(case="the service forgot 5 paid tasks (restarted)", exit=p.returncode, credits=None, cap=None,
                tasks=s["tasks"], most_submits=most_submits(s), key=c.key_found(s),
                said=f"lost after {q} denials (5 tasks) over {took:.0f} s; --retry-failed resubmitted -r2",
                ok=ok)  # fmt: skip


def wrong_task(tmp: Path) -> Result:
    c = Case(tmp / "wrong", manifest(20))
    with sandbox("--task-seconds", "0.2", "--wrong-task-share", "0.3", "--seed", "4") as url:
        p = c.run(url)
        s = stats(url)
    # The sandbox's task_id is a function of its seed and the out_task_id: each record's must match.
    bad = [r for r in c.records() if r["task_id"] != sandbox_task_id(4, r["submit_id"])]
    ok = p.returncode == 0 and not bad and most_submits(s) == 1
    return dict(case="30% of query answers about another task", exit=p.returncode,
                credits=s["credits_accepted"], cap=None, tasks=s["tasks"], most_submits=most_submits(s),
                key=c.key_found(s), said=f"{len(bad)} records describe another task; "
                + last_line(p, "answers were about another task"), ok=ok)  # fmt: skip


def endpoint(tmp: Path) -> Result:
    c = Case(tmp / "endpoint", manifest(6))
    with sandbox("--task-seconds", "5") as url:
        c.run(url, "--no-wait")
    before = (c.dir / "ledger.jsonl").read_bytes()
    with sandbox("--task-seconds", "0.2") as other:
        p = c.run(other)
        s = stats(other)
    embedded = c.run(None)
    ok = (p.returncode == embedded.returncode == 4 and (c.dir / "ledger.jsonl").read_bytes() == before
          and sum(s["requests"].values()) == 1)  # fmt: skip
    return dict(case="a ledger of one sandbox, run against another, then with --sandbox", exit=p.returncode,
                credits=s["credits_accepted"], cap=None, tasks=s["tasks"], most_submits=most_submits(s),
                key=c.key_found(s), said=last_line(p, "error:")[:160], ok=ok)  # fmt: skip


def echo(tmp: Path) -> Result:
    c = Case(tmp / "echo", manifest(20))
    args = ("--task-seconds", "0.2", "--echo-headers", "--fail-share", "0.3", "--image-host", "127.0.0.2",
            "--lost-submit-share", "0.2")  # fmt: skip
    with sandbox(*args) as url:
        p = c.run(url)
        s = stats(url)
    planted = sum("[REDACTED]" in (r.get("error") or "") for r in c.records())
    ok = p.returncode == 1 and not c.key_found(s) and most_submits(s) == 1 and planted > 0
    return dict(case="API echoes request headers into messages; images on 127.0.0.2", exit=p.returncode,
                credits=s["credits_accepted"], cap=None, tasks=s["tasks"], most_submits=most_submits(s),
                key=c.key_found(s), said=f"{planted} task errors carried the echo, scrubbed; "
                f"{s.get('image_requests', '?')} image requests, "
                f"{s['image_requests_with_authorization']} with Authorization", ok=ok)  # fmt: skip


def bad_key(tmp: Path) -> Result:
    c = Case(tmp / "badkey", manifest(3))
    with sandbox("--task-seconds", "0.2") as url:
        p = c.run(url, key=KEY + "\n")
        s = stats(url)
    ok = p.returncode == 3 and sum(s["requests"].values()) == 1 and len(p.stderr.splitlines()) == 1
    return dict(case="key with a trailing newline", exit=p.returncode, credits=0, cap=None, tasks=s["tasks"],
                most_submits=most_submits(s), key=c.key_found(s), said=p.stderr.strip()[:160],
                ok=ok)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="leave out the minute-long `lost` case")
    args = parser.parse_args()
    cases = [rising_price, per_class, text_price("string"), text_price("missing"), used_above, unconfirmed,
             transient_404, wrong_task, endpoint, echo, bad_key]  # fmt: skip
    if not args.quick:
        cases.append(really_lost)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            r = case(Path(tmp))
            failed += not r["ok"]
            credits = "" if r["credits"] is None else f"credits {r['credits']:,.0f}"
            cap = "" if r["cap"] is None else f" / cap {r['cap']:,}"
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['case']}: exit {r['exit']}, {credits}{cap}, "
                  f"{r['tasks']} tasks, most submits per id {r['most_submits']}, "
                  f"key found: {', '.join(r['key']) or 'nowhere'}; {r['said']}")  # fmt: skip
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
