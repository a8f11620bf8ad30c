"""The contact sheet: a static HTML page (Jinja2 template shipped in the package) with one
card per image, thumbnails beside it and relative links, readable offline from its folder.
With a diff (--since), changed prompts show the old and the new image side by side."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from runner.diffing import Diff
from runner.ledger import COMPLETED, FAILED_STATES, Record, atomic_write
from runner.plan import Task
from runner.verify import output_path, sha256_of

THUMB_BOX = (640, 640)  # twice the widest card at 1x: sharp on phones
THUMBS = "thumbs"


@dataclass
class Picture:
    thumb: str  # relative to the report folder
    full: str  # relative link to the image itself
    width: int  # of the thumbnail: lets the browser lay out before it loads
    height: int
    delivered: str  # e.g. 2048x1152, read from the file


@dataclass
class Card:
    out_task_id: str
    manifest: str
    prompt_id: str
    prompt: str
    size: str
    planned: str
    status: str  # completed, failed, running, not submitted, image missing, image altered
    error: str = ""
    picture: Picture | None = None

    @property
    def tone(self) -> str:
        if self.status == COMPLETED:
            return "ok"
        return "bad" if self.status in ("failed", "image altered") else "wait"


@dataclass
class Pair:
    manifest: str
    prompt_id: str
    old_text: str
    new_text: str
    old: Card
    new: Card


@dataclass
class Sheet:
    title: str
    cards: list[Card]
    pairs: list[Pair] = field(default_factory=list)
    since: str | None = None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.cards:
            out[c.status] = out.get(c.status, 0) + 1
        return out


class Thumbnailer:
    """Thumbnails named by the image's sha256, so a rerun makes only the new ones."""

    def __init__(self, report_dir: Path) -> None:
        self.report_dir = report_dir
        (report_dir / THUMBS).mkdir(parents=True, exist_ok=True)

    def picture(self, image: Path, digest: str) -> Picture | None:
        thumb = self.report_dir / THUMBS / f"{digest[:24]}.jpg"
        try:
            with Image.open(image) as img:
                delivered = f"{img.width}x{img.height}"
                if not thumb.exists():
                    img.draft("RGB", THUMB_BOX)  # JPEG: decode at a smaller scale directly
                    small = img.convert("RGB")
                    small.thumbnail(THUMB_BOX)
                    tmp = thumb.with_name(f".{thumb.name}.{os.getpid()}.{threading.get_ident()}.tmp")
                    small.save(tmp, "JPEG", quality=82, optimize=True)
                    os.replace(tmp, thumb)
            with Image.open(thumb) as t:
                size = t.size
        except (OSError, Image.DecompressionBombError):
            return None  # unreadable: the card says the image is missing
        return Picture(
            f"{THUMBS}/{thumb.name}",
            _relative(image, self.report_dir),
            size[0],
            size[1],
            delivered,
        )


def _relative(path: Path, start: Path) -> str:
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(start))
    return Path(rel).as_posix()


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())[:500] if value else ""


def cards_for(
    tasks: Sequence[Task], records: Mapping[str, Record], ledger_dir: Path, thumbs: Thumbnailer
) -> list[Card]:
    """One card per image (one per task without an image), made in parallel: decoding PNGs
    releases the GIL."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        per_task = list(pool.map(lambda t: _cards(t, records, ledger_dir, thumbs), tasks))
    return [card for cards in per_task for card in cards]


def _cards(task: Task, records: Mapping[str, Record], ledger_dir: Path, thumbs: Thumbnailer) -> list[Card]:
    key, pixels = task.out_task_id, task.pixels
    record = records.get(key)

    def card(status: str, error: str = "", picture: Picture | None = None) -> Card:
        prompt = str(task.params.get("prompt", ""))
        planned = f"{pixels[0]}x{pixels[1]}"
        return Card(key, task.manifest, task.prompt_id, prompt, task.size, planned, status, error, picture)

    if record is None:
        return [card("not submitted")]
    status = record["status"]
    if status in FAILED_STATES:
        return [card("failed", _one_line(record.get("error")) or status)]
    if status != COMPLETED:
        return [card("running", status)]
    outputs = [o for o in record.get("outputs") or [] if isinstance(o, dict)]
    if not outputs:
        return [card("image missing", "completed without any output")]
    out = []
    for o in outputs:
        path = output_path(o, ledger_dir)
        if path is None or not path.is_file():
            out.append(card("image missing", "not downloaded here; 'imgbatch run' fetches it"))
            continue
        digest = sha256_of(path)
        picture = thumbs.picture(path, digest)
        if picture is None:
            out.append(card("image missing", f"{path.name} is not a readable image"))
        elif digest != o.get("sha256"):
            out.append(card("image altered", "the file's sha256 differs from the ledger's", picture))
        else:
            out.append(card(COMPLETED, "", picture))
    return out


def pairs_for(d: Diff, records: Mapping[str, Record], ledger_dir: Path, thumbs: Thumbnailer) -> list[Pair]:
    pairs = []
    for change in d.changed:
        for old, new in change.pairs:
            old_cards = _cards(old, records, ledger_dir, thumbs)
            new_cards = _cards(new, records, ledger_dir, thumbs)
            pairs.append(
                Pair(
                    change.manifest,
                    change.prompt_id,
                    change.old_text,
                    change.new_text,
                    old_cards[0],
                    new_cards[0],
                )
            )
    return pairs


def render(sheet: Sheet) -> str:
    env = Environment(
        loader=PackageLoader("runner", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(sheet=sheet)


def write(sheet: Sheet, report_dir: Path) -> Path:
    index = report_dir / "index.html"
    atomic_write(index, render(sheet))
    return index
