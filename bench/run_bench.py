"""imgbatch run next to a hand-written asyncio + httpx client (bench/peer_client.py), against an
independent stand-in server (bench/standin_server.py: 40 ms latency, 1 s per task).

For each size and concurrency, the sides run alternately (the order flips every round), each
as a whole process against a fresh server, start-up included. imgbatch runs as users run it:
ledger, retries and progress on (plain progress lines, as on CI), --poll-interval 0.5 like the
peer. Per side: best and median wall time, CPU per task (user+sys of the client process, from
wait4), requests per task, and the times of the first submit, first download and last
download as the server saw them. `ideal` is the physical limit for C requests in flight,
max(T + 3L, 3·N·L/C): one task's own chain, or the minimum three requests per task through
C connections. The last column is each side's wall time over it.

    python bench/run_bench.py                  # 400, 2,000, 10,000 tasks at concurrency 32, 64
    python bench/run_bench.py --quick          # 400 and 2,000 tasks: the development loop
    python bench/run_bench.py --sizes 400 --concurrency 32 --rounds 5
    python bench/run_bench.py --before /tmp/old-checkout   # also time another imgbatch tree

The imgbatch trees timed get their bytecode compiled first, as `pip install` does (httpx, the
peer's only library, has its own in site-packages): otherwise, where PYTHONDONTWRITEBYTECODE is
set, a source checkout compiles every module it imports at each start, before its first
request. `--no-compile` leaves that as it is.

Exits 1 when imgbatch's best wall time is over the peer's at any measured size.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
TOKEN = "bench-token"
LATENCY = 0.04
TASK_SECONDS = 1.0


@dataclass
class Result:
    wall: float
    cpu: float
    rss_mb: float
    requests: int
    first_submit: float
    first_download: float
    last_download: float


@dataclass
class Side:
    name: str
    results: list[Result] = field(default_factory=list)


def write_manifest(path: Path, tasks: int) -> None:
    lines = ["version: 1", "name: bench", "sizes: ['1:1@2K']", "prompts:"]
    lines += [f"  - {{id: p{i}, prompt: subject {i}}}" for i in range(tasks)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_server(stderr: int | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            str(BENCH / "standin_server.py"),
            "--latency",
            str(LATENCY),
            "--task-seconds",
            str(TASK_SECONDS),
            "--lifetime",
            "3600",
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().split()[0]


def server_stats(url: str) -> dict[str, object]:
    with urllib.request.urlopen(f"{url}/bench/stats", timeout=30) as response:
        stats: dict[str, object] = json.load(response)
    return stats


def command(side: str, url: str, tmp: Path, tasks: int, concurrency: int) -> tuple[list[str], Path]:
    if side == "peer":
        return [
            sys.executable,
            str(BENCH / "peer_client.py"),
            url,
            TOKEN,
            str(tmp / "peer"),
            "--tasks",
            str(tasks),
            "--concurrency",
            str(concurrency),
        ], ROOT
    tree = ROOT if side == "imgbatch" else Path(side.split("=", 1)[1])
    return [
        sys.executable,
        "-m",
        "runner",
        "run",
        "--base-url",
        url,
        "--concurrency",
        str(concurrency),
        "--poll-interval",
        "0.5",
        "--ledger",
        str(tmp / "l.jsonl"),
        "--out",
        str(tmp / "img"),
        str(tmp / "m.yaml"),
    ], tree


@dataclass
class Setup:
    """One side's client, ready to start against its own fresh stand-in server."""

    url: str
    tmp: Path
    cmd: list[str]
    cwd: Path
    env: dict[str, str]


@contextlib.contextmanager
def prepared(side: str, tasks: int, concurrency: int, server_stderr: int | None = None) -> Iterator[Setup]:
    """A fresh stand-in server and a temp folder with the manifest; both gone afterwards."""
    server, url = start_server(stderr=server_stderr)
    try:
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            write_manifest(tmp / "m.yaml", tasks)
            cmd, cwd = command(side, url, tmp, tasks, concurrency)
            env = {**os.environ, "AIREITER_API_KEY": TOKEN, "PYTHONPATH": str(cwd)}
            yield Setup(url, tmp, cmd, cwd, env)
    finally:
        server.terminate()
        server.wait()


def compile_trees(trees: list[Path]) -> None:
    """Compile each tree's bytecode first, as pip install does (this machine sets
    PYTHONDONTWRITEBYTECODE, so a source checkout would recompile at every start)."""
    for tree in trees:
        compileall.compile_dir(tree / "runner", quiet=1)


def run_once(side: str, tasks: int, concurrency: int) -> Result:
    with prepared(side, tasks, concurrency) as setup:
        log = open(setup.tmp / "client.log", "w+b")  # noqa: SIM115 - read back on failure
        start_wall = time.time()
        start = time.perf_counter()
        proc = subprocess.Popen(setup.cmd, cwd=setup.cwd, env=setup.env, stdout=log, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{side} exited {proc.returncode}:\n{log.read().decode()[-3000:]}")
        stats = server_stats(setup.url)
    counts = {k: int(v) for k, v in stats.items() if isinstance(v, int)}
    first = stats["first"]
    last = stats["last"]
    assert isinstance(first, dict) and isinstance(last, dict)
    if counts["download"] != tasks or counts["submitted_twice"]:
        raise SystemExit(f"{side}: {counts} for {tasks} tasks")
    return Result(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mb=usage.ru_maxrss / 1024,
        requests=counts["submit"] + counts["query"] + counts["download"],
        first_submit=first["submit"] - start_wall,
        first_download=first["download"] - start_wall,
        last_download=last["download"] - start_wall,
    )


def ideal(tasks: int, concurrency: int) -> float:
    return max(TASK_SECONDS + 3 * LATENCY, 3 * tasks * LATENCY / concurrency)


def row(side: Side, tasks: int, concurrency: int, peer_best: float) -> str:
    rs = side.results
    best = min(rs, key=lambda r: r.wall)
    walls = [r.wall for r in rs]
    cpu = statistics.median(r.cpu for r in rs) / tasks * 1000
    return (
        f"| {tasks:,} | {concurrency} | {side.name} | {best.wall:.2f} | {statistics.median(walls):.2f} "
        f"| {best.wall / peer_best:.2f}x | {cpu:.1f} | {max(r.rss_mb for r in rs):.0f} "
        f"| {best.requests / tasks:.2f} | {best.first_submit:.2f} | {best.first_download:.2f} "
        f"| {best.last_download:.2f} | {best.wall / ideal(tasks, concurrency):.2f} |"
    )


HEADER = (
    "| tasks | c | side | best s | median s | vs peer | CPU ms/task | peak MB | req/task "
    "| 1st submit s | 1st download s | last download s | vs ideal |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 2000, 10_000])
    ap.add_argument("--concurrency", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="400 and 2,000 tasks only")
    ap.add_argument("--before", type=Path, help="another imgbatch source tree to time alongside")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    ap.add_argument("--no-compile", action="store_true", help="do not compile the trees' bytecode first")
    args = ap.parse_args()
    if not args.no_compile:
        compile_trees([ROOT] + ([args.before] if args.before else []))
    sizes = [s for s in args.sizes if s <= 2000] if args.quick else args.sizes
    names = ["imgbatch", "peer"] + ([f"before={args.before}"] if args.before else [])
    print(
        f"stand-in server: {LATENCY * 1000:.0f} ms latency, {TASK_SECONDS:g} s per task; "
        f"best of {args.rounds}, sides alternating",
        flush=True,
    )
    print(HEADER, flush=True)
    failed = False
    dump = []
    for tasks in sizes:
        for concurrency in args.concurrency:
            sides = [Side(n) for n in names]
            for r in range(args.rounds):
                order = sides if r % 2 == 0 else sides[::-1]
                for side in order:
                    side.results.append(run_once(side.name, tasks, concurrency))
            peer_best = min(r.wall for r in sides[1].results)
            for side in sides:
                print(
                    row(side, tasks, concurrency, peer_best).replace(f"before={args.before}", "before"),
                    flush=True,
                )
                dump.append(
                    {
                        "tasks": tasks,
                        "concurrency": concurrency,
                        "side": side.name,
                        "results": [vars(r) for r in side.results],
                    }
                )
            failed |= min(r.wall for r in sides[0].results) > peer_best
    if args.json:
        args.json.write_text(json.dumps(dump, indent=1) + "\n", encoding="utf-8")
    spread = [
        (max(r["wall"] for r in d["results"]) / min(r["wall"] for r in d["results"]) - 1) * 100 for d in dump
    ]
    print(f"noise: worst spread of wall times within one side and size {max(spread):.0f}% (max/min - 1)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
