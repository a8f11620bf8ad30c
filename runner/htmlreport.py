"""The contact sheet: a static HTML page (Jinja2 template shipped in the package) with one
card per image, thumbnails beside it and relative links, readable offline from its folder.
With a diff (--since), changed prompts show the old and the new image side by side."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from PIL import Image

from runner.atomic import replace_file
from runner.diffing import Diff
from runner.errors import InputError
from runner.ledger import COMPLETED, FAILED_STATES, Record
from runner.plan import Task
from runner.verify import cached_sha256, output_path, sha256_of

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
    index: int = 0  # which output of the task (a task may deliver several images)

    @property
    def anchor(self) -> str:
        """Unique in the page: the id, and the output's number after the first."""
        return self.out_task_id + (f"-{self.index}" if self.index else "")

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


def make_thumbnail(image: str, thumb: str) -> None:
    """One thumbnail, written atomically; a module-level function so worker processes can run it."""
    with Image.open(image) as img:
        img.draft("RGB", THUMB_BOX)  # JPEG: decode at a smaller scale directly
        small = img.convert("RGB")
    small.thumbnail(THUMB_BOX)
    tmp = f"{thumb}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        small.save(tmp, "JPEG", quality=82, optimize=True)
        os.replace(tmp, thumb)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _try_thumbnail(job: tuple[str, str]) -> None:
    with contextlib.suppress(OSError, Image.DecompressionBombError):
        make_thumbnail(*job)  # an unreadable image gets no thumbnail: its card says so


class Thumbnailer:
    """Thumbnails named by the image's sha256, so a rerun makes only the new ones. Pillow
    holds the GIL while it decodes a PNG, so many new thumbnails are made in processes."""

    PROCESSES_FROM = 16  # fewer new thumbnails are quicker made here than by starting workers

    def __init__(self, report_dir: Path, ledger_dir: Path | None = None) -> None:
        self.report_dir = report_dir
        self.ledger_dir = ledger_dir  # its digest cache spares hashing unchanged images again
        (report_dir / THUMBS).mkdir(parents=True, exist_ok=True)
        self._digests: dict[Path, str] = {}

    def digest(self, image: Path) -> str:
        if image not in self._digests:
            self._digests[image] = (
                cached_sha256(image, self.ledger_dir) if self.ledger_dir else sha256_of(image)
            )
        return self._digests[image]

    def thumb_path(self, image: Path) -> Path:
        return self.report_dir / THUMBS / f"{self.digest(image)[:24]}.jpg"

    def prepare(self, images: Sequence[Path]) -> None:
        """Hash the images (hashlib releases the GIL: threads) and make missing thumbnails."""
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            list(pool.map(self.digest, images))
        jobs = sorted({(str(i), str(self.thumb_path(i))) for i in images if not self.thumb_path(i).exists()})
        workers = min(os.cpu_count() or 1, len(jobs))
        forking = "fork" in multiprocessing.get_all_start_methods()
        if forking and workers >= 2 and len(jobs) >= self.PROCESSES_FROM:
            # fork: the workers start at once with everything imported; no thread of ours is
            # alive here (the hashing pool above has been joined)
            context = multiprocessing.get_context("fork")
            with (
                contextlib.suppress(BrokenProcessPool),
                ProcessPoolExecutor(workers, mp_context=context) as pool,
            ):
                list(pool.map(_try_thumbnail, jobs, chunksize=max(1, len(jobs) // (workers * 4))))
        for job in jobs:  # made here: few jobs, no fork, or what a broken pool left undone
            if not os.path.exists(job[1]):
                _try_thumbnail(job)

    def picture(self, image: Path) -> Picture | None:
        thumb = self.thumb_path(image)
        if not thumb.exists():
            _try_thumbnail((str(image), str(thumb)))
        try:
            with Image.open(image) as img:
                delivered = f"{img.width}x{img.height}"
            with Image.open(thumb) as t:
                size = t.size
        except (OSError, Image.DecompressionBombError):
            return None  # unreadable: the card says the image is missing
        return Picture(
            f"{THUMBS}/{thumb.name}", _relative(image, self.report_dir), size[0], size[1], delivered
        )


def _relative(path: Path, start: Path) -> str:
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(start))
    return Path(rel).as_posix()


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())[:500] if value else ""


def cards_for(
    tasks: Sequence[Task], records: Mapping[str, Record], ledger_dir: Path, thumbs: Thumbnailer
) -> list[Card]:
    """One card per image (one per task without an image)."""
    thumbs.prepare(image_files(tasks, records, ledger_dir))
    return [card for t in tasks for card in _cards(t, records, ledger_dir, thumbs)]


def image_files(tasks: Sequence[Task], records: Mapping[str, Record], ledger_dir: Path) -> list[Path]:
    """The image files on disk of the tasks' completed records."""
    found = []
    for t in tasks:
        record = records.get(t.out_task_id)
        if record is None or record["status"] != COMPLETED:
            continue
        for o in record.get("outputs") or []:
            path = output_path(o, ledger_dir) if isinstance(o, dict) else None
            if path is not None and path.is_file():
                found.append(path)
    return found


def _cards(task: Task, records: Mapping[str, Record], ledger_dir: Path, thumbs: Thumbnailer) -> list[Card]:
    key, pixels = task.out_task_id, task.pixels
    record = records.get(key)

    def card(status: str, error: str = "", picture: Picture | None = None, index: int = 0) -> Card:
        prompt = str(task.params.get("prompt", ""))
        planned = f"{pixels[0]}x{pixels[1]}"
        return Card(
            key, task.manifest, task.prompt_id, prompt, task.size, planned, status, error, picture, index
        )

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
    for i, o in enumerate(outputs):
        path = output_path(o, ledger_dir)
        if path is None or not path.is_file():
            out.append(card("image missing", "not downloaded here; 'imgbatch run' fetches it", index=i))
            continue
        picture = thumbs.picture(path)
        if picture is None:
            out.append(card("image missing", f"{path.name} is not a readable image", index=i))
        elif thumbs.digest(path) != o.get("sha256"):
            out.append(card("image altered", "the file's sha256 differs from the ledger's", picture, i))
        else:
            out.append(card(COMPLETED, "", picture, i))
    return out


def pairs_for(d: Diff, records: Mapping[str, Record], ledger_dir: Path, thumbs: Thumbnailer) -> list[Pair]:
    thumbs.prepare(image_files([t for c in d.changed for pair in c.pairs for t in pair], records, ledger_dir))
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
    try:
        replace_file(index, render(sheet))
    except OSError as e:
        raise InputError(
            f"{index}: cannot write the report: {e.strerror or e}", hint="free space or give another --out"
        ) from None
    return index
