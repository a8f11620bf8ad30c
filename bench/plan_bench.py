"""`imgbatch plan --format jsonl` of 1,000, 10,000 and 130,000 tasks (prompts x 13 sizes, as
people write them), against the irreducible work: loading the YAML with the C loader, then
canonical JSON and a sha256 per task.

Both are whole processes (start-up included: at 1,000 tasks start-up is most of the time),
run side by side, alternating, best of N; peak memory is each process's max RSS (wait4).
The imgbatch trees timed get their bytecode compiled first, as `pip install` does (the
libraries in site-packages have theirs): otherwise, where PYTHONDONTWRITEBYTECODE is set, a
source checkout compiles every module it imports at each start (~20 ms at 1,000 tasks).
`--no-compile` leaves that as it is (and removes nothing already compiled).
Targets: 130,000 tasks within 1.5x of the irreducible work and under 150 MB; 1,000 tasks
within 3x. Exits 1 when a target is missed.

    python bench/plan_bench.py [--tasks 1000 10000 130000] [--rounds 5] [--before /tmp/old-tree]
                               [--no-compile]
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATIOS = ["1:1", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "16:9", "9:16", "2:1", "1:2", "21:9", "9:21"]
TARGETS = {1000: 3.0, 130_000: 1.5}  # ratio to the irreducible work
TARGET_PEAK_MB = 150  # at 130,000 tasks

IRREDUCIBLE = """
import hashlib, json, sys
import yaml
with open(sys.argv[1], encoding="utf-8") as f:
    data = yaml.load(f, Loader=yaml.CSafeLoader)
n = 0
for p in data["prompts"]:
    for s in data["sizes"]:
        params = {"prompt": p["prompt"], **s}
        hashlib.sha256(
            json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
        n += 1
print(n)
"""


def write_manifest(path: Path, prompts: int) -> None:
    lines = ["version: 1", "name: bench", "sizes:"]
    lines += [f"  - {{aspect_ratio: '{r}', resolution: 2K}}" for r in RATIOS]
    lines.append("prompts:")
    for i in range(prompts):
        lines += [f"  - id: p{i:05d}", f"    prompt: A watercolor of subject number {i} at golden hour"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def measure(cmd: list[str], cwd: Path) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MB and the number of output lines of one process."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{cmd} exited {proc.returncode}")
        out.seek(0)
        lines = sum(1 for _ in out)
    return seconds, usage.ru_maxrss / 1024, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, nargs="+", default=[1000, 10_000, 130_000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--before", type=Path, help="another imgbatch source tree to time alongside")
    ap.add_argument("--no-compile", action="store_true", help="do not compile the trees' bytecode first")
    args = ap.parse_args()
    if not args.no_compile:
        for tree in [ROOT] + ([args.before] if args.before else []):
            compileall.compile_dir(tree / "runner", quiet=1)
    ok = True
    print("| tasks | side | best s | median s | vs irreducible | peak MB |\n|---|---|---|---|---|---|")
    for n in args.tasks:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "bench.yaml"
            write_manifest(path, -(-n // len(RATIOS)))
            sides = {
                "irreducible": ([sys.executable, "-c", IRREDUCIBLE, str(path)], ROOT),
                "imgbatch": ([sys.executable, "-m", "runner", "plan", "--format", "jsonl", str(path)], ROOT),
            }
            if args.before:
                sides["before"] = (
                    [sys.executable, "-m", "runner", "plan", "--format", "jsonl", str(path)],
                    args.before,
                )
            results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in sides}
            for r in range(args.rounds):
                for name in list(sides)[:: 1 if r % 2 == 0 else -1]:
                    results[name].append(measure(*sides[name]))
        base = min(x[0] for x in results["irreducible"])
        tasks = results["imgbatch"][0][2]
        for name, rs in results.items():
            best = min(x[0] for x in rs)
            peak = max(x[1] for x in rs)
            print(
                f"| {tasks:,} | {name} | {best:.3f} | {statistics.median(x[0] for x in rs):.3f} "
                f"| {best / base:.2f}x | {peak:.0f} |"
            )
        ratio = min(x[0] for x in results["imgbatch"]) / base
        if n in TARGETS:
            ok &= ratio <= TARGETS[n]
        if n >= 130_000:
            ok &= max(x[1] for x in results["imgbatch"]) <= TARGET_PEAK_MB
    print(
        f"targets: 1,000 tasks <= {TARGETS[1000]}x, "
        f"130,000 tasks <= {TARGETS[130_000]}x and <= {TARGET_PEAK_MB} MB"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
