"""The review and CI commands at realistic sizes, each against the irreducible work, side by
side in one run (whole processes, start-up included; best of N):

  merge-ledgers  4 shard ledgers of N records  vs  a bare script: json.loads every line,
                 keep one record per id, json.dumps sorted, write
  plan --ledger  N tasks, all done, images on disk  vs  plan without a ledger + a bare
                 sha256 of every image (what `done` must check)
  diff OLD NEW   N tasks each side, one prompt in ten changed  vs  two plans (both sides
                 expanded, nothing compared)
  report         M noisy 2K PNGs (photo-like sizes)  vs  a bare loop: open, thumbnail, save
                 as JPEG, one image after the other; and a rerun (thumbnails kept)

    python bench/review_bench.py [--records 10000 130000] [--tasks 10000] [--images 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMGBATCH = [sys.executable, "-m", "runner"]
RATIOS = ["1:1", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "16:9", "9:16", "2:1"]

BARE_MERGE = """
import json, sys
out, *paths = sys.argv[1:]
merged = {}
for p in paths:
    with open(p, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            merged[r["out_task_id"]] = r
with open(out, "w", encoding="utf-8") as f:
    f.write("".join(json.dumps(merged[k], sort_keys=True) + "\\n" for k in sorted(merged)))
"""

BARE_HASH = """
import hashlib, sys, pathlib
for p in sorted(pathlib.Path(sys.argv[1]).iterdir()):
    hashlib.sha256(p.read_bytes()).hexdigest()
"""

BARE_THUMBS = """
import sys, pathlib
from PIL import Image
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
dst.mkdir(exist_ok=True)
for p in sorted(src.glob("*.png")):
    with Image.open(p) as img:
        small = img.convert("RGB")
        small.thumbnail((640, 640))
        small.save(dst / (p.stem + ".jpg"), "JPEG", quality=82, optimize=True)
"""


def best(cmd: list[str], cwd: Path, rounds: int, before: object = None) -> float:
    times = []
    for _ in range(rounds):
        if callable(before):
            before()
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def record(key: str, status: str, i: int) -> dict[str, object]:
    done = status == "completed"
    return {
        "out_task_id": key,
        "manifest": "bench",
        "prompt_id": f"p{i:06d}",
        "params": {
            "prompt": f"A watercolor of subject number {i} at golden hour",
            "aspect_ratio": "16:9",
            "resolution": "2K",
        },
        "pixels": [2048, 1152],
        "size": "16:9@2K",
        "repeat_index": 0,
        "status": status,
        "attempt": 1,
        "submit_id": key,
        "task_id": f"t{i}" if status != "submitting" else None,
        "estimated_credits": 100,
        "credits_used": 100 if done else None,
        "created_at": "2026-11-25T12:00:00Z",
        "completed_at": "2026-11-25T12:01:00Z" if done else None,
        "outputs": [
            {
                "url": f"https://cdn.example/{key}.png",
                "path": f"images/{key}.png",
                "sha256": hashlib.sha256(key.encode()).hexdigest(),
                "width": 2048,
                "height": 1152,
            }
        ]
        if done
        else [],
        "error": None,
    }


def write_ledger(path: Path, records: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records), encoding="utf-8")


def bench_merge(tmp: Path, n: int, rounds: int) -> tuple[float, float]:
    """Four shards that started from a base of n records, each finishing its quarter."""
    keys = [f"bench.p{i:06d}.{i:020x}" for i in range(n)]
    base = [record(k, "processing", i) for i, k in enumerate(keys)]
    write_ledger(tmp / "base.jsonl", base)
    shards = []
    for s in range(4):
        recs = [record(k, "completed", i) if i % 4 == s else base[i] for i, k in enumerate(keys)]
        write_ledger(tmp / f"shard{s}.jsonl", recs)
        shards.append(str(tmp / f"shard{s}.jsonl"))
    ours = best(
        [
            *IMGBATCH,
            "merge-ledgers",
            "-o",
            str(tmp / "out.jsonl"),
            "--base",
            str(tmp / "base.jsonl"),
            *shards,
        ],
        ROOT,
        rounds,
    )
    bare = best([sys.executable, "-c", BARE_MERGE, str(tmp / "bare.jsonl"), *shards], ROOT, rounds)
    return ours, bare


def write_manifest(path: Path, prompts: int, changed_every: int = 0, name: str = "bench") -> None:
    lines = ["version: 1", f"name: {name}", "sizes:"]
    lines += [f"  - {{aspect_ratio: '{r}', resolution: 2K}}" for r in RATIOS]
    lines.append("prompts:")
    for i in range(prompts):
        text = f"A watercolor of subject number {i} at golden hour"
        if changed_every and i % changed_every == 0:
            text += ", in blue"
        lines += [f"  - id: p{i:06d}", f"    prompt: {text}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def bench_plan_ledger(tmp: Path, tasks: int, rounds: int) -> tuple[float, float]:
    """Every task completed, each image a 200 KB file on disk with its sha256 recorded."""
    write_manifest(tmp / "m" / "bench.yaml", tasks // len(RATIOS))
    plan = subprocess.run(
        [*IMGBATCH, "plan", str(tmp / "m"), "--format", "jsonl"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp,
    )
    images = tmp / "images"
    images.mkdir()
    rng = random.Random(1)
    blob = rng.randbytes(200_000)
    records = []
    for i, line in enumerate(plan.stdout.splitlines()):
        t = json.loads(line)
        data = blob + t["out_task_id"].encode()
        (images / f"{t['out_task_id']}.png").write_bytes(data)
        r = record(t["out_task_id"], "completed", i)
        r["outputs"][0]["sha256"] = hashlib.sha256(data).hexdigest()  # type: ignore[index]
        records.append(r)
    write_ledger(tmp / "l.jsonl", sorted(records, key=lambda r: str(r["out_task_id"])))
    ours = best(
        [*IMGBATCH, "plan", str(tmp / "m"), "--ledger", str(tmp / "l.jsonl"), "--exit-code"], tmp, rounds
    )
    plain = best([*IMGBATCH, "plan", str(tmp / "m"), "--format", "jsonl"], tmp, rounds)
    hashing = best([sys.executable, "-c", BARE_HASH, str(images)], tmp, rounds)
    return ours, plain + hashing


def bench_diff(tmp: Path, tasks: int, rounds: int) -> tuple[float, float]:
    write_manifest(tmp / "old" / "bench.yaml", tasks // len(RATIOS))
    write_manifest(tmp / "new" / "bench.yaml", tasks // len(RATIOS), changed_every=10)
    ours = best([*IMGBATCH, "diff", str(tmp / "old"), str(tmp / "new"), "--format", "json"], tmp, rounds)
    plans = best([*IMGBATCH, "plan", str(tmp / "old"), "--format", "jsonl"], tmp, rounds) + best(
        [*IMGBATCH, "plan", str(tmp / "new"), "--format", "jsonl"], tmp, rounds
    )
    return ours, plans


def bench_report(tmp: Path, count: int) -> tuple[float, float, float]:
    from PIL import Image

    write_manifest(tmp / "m" / "bench.yaml", count, name="bench")
    subprocess.run([*IMGBATCH, "plan", str(tmp / "m"), "--format", "jsonl"], capture_output=True, check=True)
    plan = subprocess.run(
        [*IMGBATCH, "plan", str(tmp / "m"), "--format", "jsonl"], capture_output=True, text=True, check=True
    )
    tasks = [json.loads(line) for line in plan.stdout.splitlines()][:count]
    images = tmp / "images"
    images.mkdir()
    rng = random.Random(2)
    keep = {t["out_task_id"] for t in tasks}
    records = []
    for i, t in enumerate(tasks):
        path = images / f"{t['out_task_id']}.png"
        # each image its own noise (thumbnails are named by content: copies would be made once)
        noise = Image.frombytes("RGB", (1024, 576), rng.randbytes(1024 * 576 * 3)).resize((2048, 1152))
        noise.save(path, compress_level=1)
        r = record(t["out_task_id"], "completed", i)
        r["outputs"][0]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()  # type: ignore[index]
        records.append(r)
    write_ledger(tmp / "l.jsonl", sorted(records, key=lambda r: str(r["out_task_id"])))
    # only the first `count` tasks have images: the manifest's other tasks show as not submitted
    assert len(keep) == count
    cmd = [*IMGBATCH, "report", str(tmp / "m"), "--ledger", str(tmp / "l.jsonl"), "--out", str(tmp / "r")]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    first = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    rerun = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", BARE_THUMBS, str(images), str(tmp / "bare")], check=True)
    bare = time.perf_counter() - start
    return first, rerun, bare


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, nargs="+", default=[10_000, 130_000])
    ap.add_argument("--tasks", type=int, nargs="+", default=[10_000])
    ap.add_argument("--diff-tasks", type=int, nargs="+", default=[10_000, 130_000])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    for n in args.records:
        with tempfile.TemporaryDirectory() as tmp:
            ours, bare = bench_merge(Path(tmp), n, args.rounds)
        print(f"merge-ledgers 4 x {n:>7,} records: {ours:6.2f} s vs bare {bare:6.2f} s = {ours / bare:.2f}x")
    for n in args.tasks:
        with tempfile.TemporaryDirectory() as tmp:
            ours, base = bench_plan_ledger(Path(tmp), n, args.rounds)
        print(
            f"plan --ledger {n:>7,} done tasks: {ours:6.2f} s vs plan + sha256 {base:6.2f} s "
            f"= {ours / base:.2f}x"
        )
    for n in args.diff_tasks:
        with tempfile.TemporaryDirectory() as tmp:
            ours, base = bench_diff(Path(tmp), n, args.rounds)
        print(
            f"diff OLD NEW {n:>7,} tasks a side: {ours:6.2f} s vs two plans {base:6.2f} s "
            f"= {ours / base:.2f}x"
        )
    with tempfile.TemporaryDirectory() as tmp:
        first, rerun, bare = bench_report(Path(tmp), args.images)
    print(
        f"report {args.images} noisy 2K PNGs: {first:6.2f} s "
        f"({first / args.images * 1000:.0f} ms an image) vs "
        f"bare sequential thumbnails {bare:6.2f} s = {first / bare:.2f}x; rerun {rerun:.2f} s"
    )


if __name__ == "__main__":
    main()
