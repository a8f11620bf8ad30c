"""Ledger-sized benchmarks, each side in a fresh process, alternating, best of N:

  noop     `imgbatch run` of a finished 10,000-task manifest against the stand-in server:
           must send 0 requests and take <= 1 s (start-up included). Timed with the digest
           cache beside the ledger as a previous command left it, and with it removed
           (every image hashed). `--noop-tasks 1000 --image-mb 4` for images of a real size.
  status   `imgbatch status` of a manifest with a 100,000-record ledger: <= 2 s.
  compact  the ledger writes of a 100,000-task run (5 changes per task, as a run makes them),
           with the run's periodic compaction tick every 5 s of run time; the run is timed at
           the physical limit of 64 requests in flight (3 requests of 40 ms per task = 188 s),
           so the share is the worst a real run can see. Time spent compacting must be < 5%.

The finished ledger and its image files are made directly (every record completed, every
file present), from imgbatch's own plan, so the ids are real.

    python bench/ledger_bench.py [--rounds 3] [--before /tmp/old-checkout] [--only noop status compact]

bench/noop_bench.py and bench/status_bench.py run one of them (same options). Each side's
bytecode is compiled first, as an install does. Wall and CPU (user + system) time are shown.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from standin_server import _png as standin_png

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
RATIOS = ["1:1", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "16:9", "9:16", "2:1", "1:2", "21:9", "9:21"]
RUN_TASKS = 100_000
RUN_SECONDS = RUN_TASKS * 3 * 0.04 / 64  # the physical limit of a run that size at c=64
TICK = 5.0


def write_manifest(path: Path, prompts: int, sizes: list[str]) -> None:
    lines = ["version: 1", "name: bench", "sizes:"] + [f"  - '{s}'" for s in sizes] + ["prompts:"]
    lines += [f"  - {{id: p{i:06d}, prompt: subject number {i} in watercolour}}" for i in range(prompts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# A small but real PNG (1x1): a rerun checks each file against the sha256 the ledger records.
PNG = standin_png(1, 1)


def finished_ledger(
    folder: Path, manifest: Path, images: bool, image_base: str, image_bytes: bytes = PNG
) -> None:
    """A ledger in which every planned task is completed and (optionally) downloaded. Image
    URLs point at a loopback address, so nothing could ever leave the machine."""
    import hashlib

    from runner.manifest import check_files
    from runner.plan import expand

    tasks = expand(cf.manifest for cf in check_files([str(manifest)]) if cf.manifest)
    out = folder / "images"
    out.mkdir(exist_ok=True)
    digest = hashlib.sha256(image_bytes).hexdigest()
    lines = []
    for t in tasks:
        path = out / f"{t.out_task_id}.png"
        if images:
            path.write_bytes(image_bytes)
        record = {
            **{k: v for k, v in t.as_json().items() if k != "source"},
            "status": "completed",
            "attempt": 1,
            "submit_id": t.out_task_id,
            "task_id": "t-" + t.out_task_id,
            "estimated_credits": 10,
            "credits_used": 10,
            "created_at": "2026-01-01T00:00:00Z",
            "completed_at": "2026-01-01T00:00:05Z",
            "outputs": [
                {
                    "url": f"{image_base}/img/1x1/{t.out_task_id}.png",
                    "path": f"images/{t.out_task_id}.png",
                    "sha256": digest,
                    "width": t.pixels[0],
                    "height": t.pixels[1],
                }
            ],
            "error": None,
        }
        lines.append(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
    (folder / "l.jsonl").write_text("".join(lines), encoding="utf-8")


def timed(
    cmd: list[str], tree: Path, cwd: Path, env: dict[str, str] | None = None, limit: float = 600
) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one process: the machine is shared, and the CPU a
    process spent is what other work on it disturbs least."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        cmd,
        cwd=cwd,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(tree)},
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=limit,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def show(name: str, ts: list[tuple[float, float]], target: float) -> None:
    walls, cpus = [w for w, _ in ts], [c for _, c in ts]
    print(
        f"  {name}: best {min(walls):.2f} s, median {statistics.median(walls):.2f} s "
        f"(CPU best {min(cpus):.2f} s) (target <= {target:g} s)"
    )


def bench_noop(
    trees: dict[str, Path], rounds: int, tasks: int, image_mb: float
) -> dict[str, list[tuple[float, float]]]:
    image = PNG if not image_mb else PNG + os.urandom(int(image_mb * 1e6) - len(PNG))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        server = subprocess.Popen(
            [sys.executable, str(BENCH / "standin_server.py"), "--lifetime", "600"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None
        url, image_base = server.stdout.readline().split()
        write_manifest(tmp / "m.yaml", tasks, ["1:1@2K"])
        finished_ledger(tmp, tmp / "m.yaml", images=True, image_base=image_base, image_bytes=image)
        cmd = [sys.executable, "-m", "runner", "run", "--base-url", url, "--ledger", "l.jsonl",
               "--out", "images", "m.yaml"]  # fmt: skip
        env = {"AIREITER_API_KEY": "t"}
        sides = {**trees, "imgbatch, cache removed": trees["imgbatch"]}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
        try:
            # A rerun comes after its run: images older than the cache's 2 s settling time,
            # and a digest cache the run's last check wrote (one untimed run writes it here).
            time.sleep(2.5)
            timed(cmd, trees["imgbatch"], tmp, env, limit=600)
            for r in range(rounds):
                for name, tree in list(sides.items())[:: 1 if r % 2 == 0 else -1]:
                    if name == "imgbatch, cache removed":
                        (tmp / ".imgbatch-verified.json").unlink(missing_ok=True)
                    times[name].append(timed(cmd, tree, tmp, env, limit=600))
            with urllib.request.urlopen(f"{url}/bench/stats", timeout=30) as response:
                stats = json.load(response)
        finally:
            server.terminate()
            server.wait()
        requests = stats["submit"] + stats["query"] + stats["download"]
        size = f"{image_mb:g} MB images" if image_mb else "1x1 PNGs"
        print(f"noop rerun of {tasks:,} finished tasks ({size}): requests in all runs: {requests} (target 0)")
        return times


def bench_status(trees: dict[str, Path], rounds: int) -> dict[str, list[tuple[float, float]]]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        write_manifest(tmp / "m.yaml", 100_000 // len(RATIOS) + 1, [f"{r}@2K" for r in RATIOS])
        finished_ledger(tmp, tmp / "m.yaml", images=False, image_base="http://127.0.0.2:9")
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for r in range(rounds):
            for name, tree in list(trees.items())[:: 1 if r % 2 == 0 else -1]:
                cmd = [sys.executable, "-m", "runner", "status", "--ledger", "l.jsonl", "m.yaml"]
                times[name].append(timed(cmd, tree, tmp))
        return times


COMPACT_CHILD = """
import json, sys, time
from pathlib import Path
from runner.ledger import Ledger
tasks, run_seconds, tick, folder = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4])
ledger = Ledger.open(folder / "l.jsonl", write=True)
due = getattr(ledger, "compact_if_due", ledger.compact)  # the periodic tick of a run
changes = 5 * tasks
per_change = run_seconds / changes
spent, compactions, next_tick, n = 0.0, 0, tick, 0
start = time.perf_counter()
for phase in ("submitting", "pending", "processing", "completed", "downloaded"):
    for i in range(tasks):
        oid = f"bench.p{i:06d}.{i:020x}"
        record = {"out_task_id": oid, "manifest": "bench", "prompt_id": f"p{i:06d}",
                  "params": {"prompt": f"subject number {i} in watercolour", "aspect_ratio": "16:9",
                             "resolution": "2K"},
                  "pixels": [2048, 1152], "size": "16:9@2K", "repeat_index": 0,
                  "status": "completed" if phase == "downloaded" else phase, "attempt": 1,
                  "submit_id": oid, "task_id": None if phase == "submitting" else "t-" + oid,
                  "estimated_credits": 10, "credits_used": None, "created_at": None, "completed_at": None,
                  "outputs": [{"url": "https://cdn.example/" + oid, "path": "images/" + oid + ".png" if
                               phase == "downloaded" else None, "sha256": None, "width": None,
                               "height": None}], "error": None}
        ledger.put(record)
        n += 1
        if n * per_change >= next_tick:
            next_tick += tick
            t = time.perf_counter()
            before = ledger.path.stat().st_mtime_ns if ledger.path.exists() else 0
            due()
            spent += time.perf_counter() - t
            compactions += ledger.path.exists() and ledger.path.stat().st_mtime_ns != before
t = time.perf_counter()
ledger.close()
spent += time.perf_counter() - t
print(json.dumps({"compact_seconds": spent, "compactions": compactions,
                  "all_seconds": time.perf_counter() - start}))
"""


def bench_compact(trees: dict[str, Path], rounds: int) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for r in range(rounds):
        for name, tree in list(trees.items())[:: 1 if r % 2 == 0 else -1]:
            with tempfile.TemporaryDirectory() as d:
                proc = subprocess.run(
                    [sys.executable, "-c", COMPACT_CHILD, str(RUN_TASKS), str(RUN_SECONDS), str(TICK), d],
                    cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)},
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                out[name].append(json.loads(proc.stdout))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--before", type=Path, help="another imgbatch source tree to time alongside")
    ap.add_argument("--only", nargs="+", default=["noop", "status", "compact"])
    ap.add_argument("--noop-tasks", type=int, default=10_000)
    ap.add_argument("--image-mb", type=float, default=0, help="image file size for noop (0: a 1x1 PNG)")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    trees = {"imgbatch": ROOT, **({"before": args.before} if args.before else {})}
    for tree in trees.values():  # as `pip install` does; no round pays for compiling
        compileall.compile_dir(tree / "runner", quiet=1)
    ok = True
    if "noop" in args.only:
        times = bench_noop(trees, args.rounds, args.noop_tasks, args.image_mb)
        for name, ts in times.items():
            show(name, ts, 1)
        ok &= min(w for w, _ in times["imgbatch"]) <= 1.0
    if "status" in args.only:
        times = bench_status(trees, args.rounds)
        print("status of a 100,009-record ledger:")
        for name, ts in times.items():
            show(name, ts, 2)
        ok &= min(w for w, _ in times["imgbatch"]) <= 2.0
    if "compact" in args.only:
        results = bench_compact(trees, args.rounds)
        print(f"ledger compaction in a {RUN_TASKS:,}-task run ({5 * RUN_TASKS:,} changes, "
              f"tick every {TICK:g} s of a {RUN_SECONDS:.0f} s run):")  # fmt: skip
        for name, rs in results.items():
            best = min(rs, key=lambda x: x["compact_seconds"])
            share = best["compact_seconds"] / RUN_SECONDS * 100
            print(f"  {name}: {best['compact_seconds']:.2f} s compacting in {best['compactions']:.0f} "
                  f"rewrites, {share:.1f}% of the run (target < 5%); all ledger work "
                  f"{best['all_seconds']:.1f} s")  # fmt: skip
            if name == "imgbatch":
                ok &= share < 5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
