"""validate + plan of 10,000 prompts x 13 sizes (130,000 tasks), against the irreducible work:
loading the YAML with the C loader, then canonical JSON and a sha256 per task.

Both run side by side in fresh subprocesses, alternating, best of N; peak memory is each
subprocess's max RSS. Prints the ratio; exits 1 when a target is missed.

    python bench/plan_bench.py [--prompts 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RATIOS = ["1:1", "3:2", "2:3", "4:3", "3:4", "5:4", "4:5", "16:9", "9:16", "2:1", "1:2", "21:9", "9:21"]
TARGET_RATIO = 2.0
TARGET_PEAK_MB = 400


def write_manifest(path: Path, prompts: int) -> None:
    lines = ["version: 1", "name: bench", "sizes:"]
    lines += [f"  - {{aspect_ratio: {r}, resolution: 2K}}" for r in RATIOS]
    lines.append("prompts:")
    for i in range(prompts):
        lines += [f"  - id: p{i:05d}", f"    prompt: A watercolor of subject number {i} at golden hour"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_imgbatch(path: str) -> int:
    from runner.manifest import check_files
    from runner.plan import expand

    checked = check_files([path])
    assert all(cf.ok for cf in checked)
    return len(expand(cf.manifest for cf in checked if cf.manifest))


def run_baseline(path: str) -> int:
    import hashlib

    import yaml

    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=yaml.CSafeLoader)
    n = 0
    for p in data["prompts"]:
        for s in data["sizes"]:
            params = {"prompt": p["prompt"], **s}
            hashlib.sha256(
                json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            ).hexdigest()
            n += 1
    return n


def child(which: str, path: str) -> None:
    start = time.perf_counter()
    n = run_imgbatch(path) if which == "imgbatch" else run_baseline(path)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"tasks": n, "seconds": seconds, "peak_mb": peak_mb}))


def measure(which: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--child", nargs=2)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "bench.yaml"
        write_manifest(path, args.prompts)
        ours, base = [], []
        for _ in range(args.rounds):
            ours.append(measure("imgbatch", path))
            base.append(measure("baseline", path))
    best = min(r["seconds"] for r in ours)
    best_base = min(r["seconds"] for r in base)
    peak = max(r["peak_mb"] for r in ours)
    ratio = best / best_base
    print(f"tasks: {int(ours[0]['tasks']):,} (baseline {int(base[0]['tasks']):,})")
    print(
        f"imgbatch validate+plan: {best:.2f} s   irreducible: {best_base:.2f} s   ratio: {ratio:.2f}x "
        f"(target <= {TARGET_RATIO}x)"
    )
    print(f"imgbatch peak RSS: {peak:.0f} MB (target < {TARGET_PEAK_MB} MB)")
    return 0 if ratio <= TARGET_RATIO and peak < TARGET_PEAK_MB else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main())
