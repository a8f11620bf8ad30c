"""imgbatch run against the loopback sandbox, next to the least a client must do for the same
tasks: a bare httpx loop (submit, one query, download, write) at the same concurrency.

Each side gets a fresh sandbox server; rounds alternate; best of N. Both are timed as whole
processes, start-up included. Prints the ratio (no target: the point is to see the client's
overhead over the requests themselves, and that the sandbox is not the bottleneck).

    python bench/run_bench.py [--tasks 300] [--rounds 3] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token"


def start_sandbox() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", "sandbox", "--port", "0", "--token", TOKEN, "--task-seconds", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def write_manifest(path: Path, tasks: int) -> None:
    lines = ["version: 1", "name: bench", "sizes: ['1:1@1K']", "prompts:"]
    lines += [f"  - {{id: p{i}, prompt: subject {i}}}" for i in range(tasks)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def baseline_child(url: str, tasks: int, concurrency: int, out: str) -> None:
    import httpx

    async def one(client: httpx.AsyncClient, sem: asyncio.Semaphore, i: int) -> None:
        async with sem:
            body = {
                "model": "gpt_image_2",
                "out_task_id": f"b{i}",
                "params": {"prompt": f"subject {i}", "aspect_ratio": "1:1", "resolution": "1K"},
            }
            (await client.post("/api/openapi/submit", json=body)).raise_for_status()
            data = (await client.post("/api/openapi/query", json={"out_task_id": f"b{i}"})).json()["data"]
            image = await client.get(data["output"][0]["url"])
            Path(out, f"b{i}.png").write_bytes(image.content)

    async def main() -> None:
        sem = asyncio.Semaphore(concurrency)
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(
            base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, limits=limits
        ) as client:
            await asyncio.gather(*(one(client, sem, i) for i in range(tasks)))

    asyncio.run(main())


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--baseline-child", nargs=2)
    args = ap.parse_args()
    if args.baseline_child:
        baseline_child(args.baseline_child[0], args.tasks, args.concurrency, args.baseline_child[1])
        return 0
    env = {**os.environ, "AIREITER_API_KEY": TOKEN}
    ours, base = [], []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            write_manifest(tmp / "m.yaml", args.tasks)
            (tmp / "base").mkdir()
            proc, url = start_sandbox()
            try:
                ours.append(
                    timed(
                        [
                            sys.executable,
                            "-m",
                            "runner",
                            "run",
                            "--base-url",
                            url,
                            "--poll-interval",
                            "0",
                            "--concurrency",
                            str(args.concurrency),
                            "--ledger",
                            str(tmp / "l.jsonl"),
                            "--out",
                            str(tmp / "img"),
                            str(tmp / "m.yaml"),
                        ],
                        env,
                        ROOT,
                    )
                )
                stats = json.loads(
                    subprocess.run(
                        [sys.executable, "-c", f"import httpx;print(httpx.get('{url}/sandbox/stats').text)"],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
                assert stats["tasks"] == args.tasks and not stats["submitted_twice"]
            finally:
                proc.terminate()
                proc.wait()
            proc, url = start_sandbox()
            try:
                base.append(
                    timed(
                        [
                            sys.executable,
                            __file__,
                            "--tasks",
                            str(args.tasks),
                            "--concurrency",
                            str(args.concurrency),
                            "--baseline-child",
                            url,
                            str(tmp / "base"),
                        ],
                        env,
                        ROOT,
                    )
                )
            finally:
                proc.terminate()
                proc.wait()
    best, best_base = min(ours), min(base)
    print(f"{args.tasks} tasks at concurrency {args.concurrency}, sandbox on loopback")
    print(f"imgbatch run: {best:.2f} s   bare httpx loop: {best_base:.2f} s   ratio: {best / best_base:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
