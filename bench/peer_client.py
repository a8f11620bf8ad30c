"""The hand-written peer imgbatch is measured against: what a competent engineer would write
in an afternoon with asyncio and httpx, and nothing more. Submit, poll every 0.5 s until the
task is completed, download the image and write it to disk. Every request is gated by one
asyncio.Semaphore(concurrency); no ledger, no retries, no progress, no checks.

    python bench/peer_client.py API_URL TOKEN OUT_DIR --tasks N --concurrency C
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import httpx


async def one(
    api: httpx.AsyncClient, cdn: httpx.AsyncClient, sem: asyncio.Semaphore, i: int, out: Path
) -> None:
    oid = f"peer.p{i}"
    body = {
        "model": "gpt_image_2",
        "out_task_id": oid,
        "params": {"prompt": f"subject {i}", "aspect_ratio": "1:1", "resolution": "2K"},
    }
    async with sem:
        (await api.post("/api/openapi/submit", json=body)).raise_for_status()
    while True:
        await asyncio.sleep(0.5)
        async with sem:
            data = (await api.post("/api/openapi/query", json={"out_task_id": oid})).json()["data"]
        if data["status"] == "completed":
            break
    async with sem:
        image = await cdn.get(data["output"][0]["url"])
    (out / f"{oid}.png").write_bytes(image.content)


async def main(url: str, token: str, out: Path, tasks: int, concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with (
        httpx.AsyncClient(base_url=url, headers={"authorization": f"Bearer {token}"}, limits=limits) as api,
        httpx.AsyncClient(limits=limits) as cdn,
    ):
        await asyncio.gather(*(one(api, cdn, sem, i, out) for i in range(tasks)))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("token")
    ap.add_argument("out", type=Path)
    ap.add_argument("--tasks", type=int, required=True)
    ap.add_argument("--concurrency", type=int, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(args.url, args.token, args.out, args.tasks, args.concurrency))
