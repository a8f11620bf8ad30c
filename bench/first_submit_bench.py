"""Time from process start to the first submit (or, with --event download, the first image
download) the server sees, for `imgbatch run` and the hand-written peer
(bench/peer_client.py), on one manifest size (issue 11: 10,000 prompts x 1 size).

Each round starts a fresh stand-in server per side (bench/run_bench.py's setup), alternating
which side goes first, and stops the client as soon as the server has seen its first submit,
so a round costs seconds instead of a whole run. Prints best and median per side and their ratio.

    python bench/first_submit_bench.py                      # 10,000 tasks, 5 rounds
    python bench/first_submit_bench.py --tasks 2000 --rounds 3 --before /tmp/old-tree
    python bench/first_submit_bench.py --tasks 400 --event download --rounds 9
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from run_bench import compile_trees, prepared, server_stats


def first_event(side: str, tasks: int, concurrency: int, event: str) -> float:
    # Quiet: the client is killed mid-request, which the server would report at length.
    with prepared(side, tasks, concurrency, server_stderr=subprocess.DEVNULL) as setup:
        start_wall = time.time()
        proc = subprocess.Popen(
            setup.cmd, cwd=setup.cwd, env=setup.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            while True:
                first = server_stats(setup.url)["first"]
                assert isinstance(first, dict)
                if event in first:
                    return float(first[event]) - start_wall
                if proc.poll() is not None:
                    raise SystemExit(f"{side} exited {proc.returncode} before its first {event}")
                time.sleep(0.01)
        finally:
            proc.kill()
            proc.communicate()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--event", choices=["submit", "download"], default="submit")
    parser.add_argument("--before", action="append", default=[], help="another imgbatch tree to time too")
    args = parser.parse_args()
    sides = ["peer", "imgbatch", *(f"before={b}" for b in args.before)]
    compile_trees([Path(__file__).resolve().parent.parent, *map(Path, args.before)])
    times: dict[str, list[float]] = {s: [] for s in sides}
    for r in range(args.rounds):
        for side in sides if r % 2 == 0 else reversed(sides):
            times[side].append(first_event(side, args.tasks, args.concurrency, args.event))
    peer = statistics.median(times["peer"])
    print(f"first {args.event} after start, {args.tasks} tasks, {args.rounds} rounds (seconds)")
    for side in sides:
        t = times[side]
        med = statistics.median(t)
        print(f"  {side:<24} best {min(t):.3f}  median {med:.3f}  median/peer {med / peer:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
