"""imgbatch report: the contact sheet's content, and the page in a real headless chromium."""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.browser import Chromium, find_chromium
from tests.project_util import Project

# A word longer than a phone is wide, and markup that must stay text.
LONG = "<b>bold?</b> Averyveryverylongwordwithoutanyspaces" + "thatcouldpushthecardwider" * 3
MANIFEST = f"""\
version: 1
name: sheet
sizes: ['1:1@1K', '21:9@1K', '9:16@1K']
prompts:
  - {{id: mug, prompt: a mug on a table}}
  - {{id: pot, prompt: a teapot}}
  - {{id: long, prompt: "{LONG}"}}
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    p.write(MANIFEST)
    assert p.run().exit_code == 0
    records = p.records()
    keys = sorted(k for k in records if ".pot." in k)
    records[keys[0]].update(status="failed", error="content policy: refused", outputs=[])
    del records[keys[1]]  # not submitted yet
    p.put_records(records)
    return p


def make_report(p: Project, *extra: str) -> Path:
    out = p.root / "report"
    result = p.cli("report", str(p.manifests), "--ledger", str(p.ledger), "--out", str(out), *extra)
    assert result.exit_code == 0, result.stderr
    return out / "index.html"


def test_one_card_per_image_with_its_facts_and_relative_links(project: Project) -> None:
    index = make_report(project)
    html = index.read_text(encoding="utf-8")
    assert html.count('<article class="card"') == 9
    completed = {k: r for k, r in project.records().items() if r["status"] == "completed"}
    assert len(completed) == 7
    for key, record in completed.items():
        out = record["outputs"][0]
        card = html[html.index(f'id="{key}"') :].split("</article>")[0]
        assert f"{out['width']}x{out['height']} delivered" in card and "completed" in card
        assert record["size"] in card and key in card
        src = re.search(r'<img src="([^"]+)"', card)
        href = re.search(r'<a class="image" href="([^"]+)"', card)
        assert src and href
        assert not src[1].startswith(("/", "http")) and not href[1].startswith(("/", "http"))
        thumb = index.parent / src[1]
        assert thumb.is_file() and max(Image.open(thumb).size) <= 640
        assert (index.parent / href[1]).resolve() == (project.ledger.parent / out["path"]).resolve()
    assert "content policy: refused" in html and "not submitted" in html
    # prompt text is escaped, never markup; nothing is fetched from anywhere else
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html and "<b>bold?</b>" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    # a rerun reuses every thumbnail
    stamps = {p: p.stat().st_mtime_ns for p in (index.parent / "thumbs").iterdir()}
    make_report(project)
    assert {p: p.stat().st_mtime_ns for p in (index.parent / "thumbs").iterdir()} == stamps


def test_since_shows_old_and_new_images_side_by_side(project: Project) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=project.root,
            check=True,
            capture_output=True,
        )

    git("init", "-q", "-b", "main")
    git("add", "manifests")
    git("commit", "-q", "-m", "sheet")
    old_mugs = sorted(k for k in project.records() if ".mug." in k)
    project.write(MANIFEST.replace("a mug on a table", "a red mug on a table"))
    assert project.run().json()["submitted"] == 4  # 3 new mugs, the unsubmitted pot (another stays failed)
    cwd = os.getcwd()
    os.chdir(project.root)
    try:
        html = make_report(project, "--since", "HEAD").read_text(encoding="utf-8")
    finally:
        os.chdir(cwd)
    assert "Changed since HEAD: 3 images" in html
    assert html.count('<div class="pair">') == 3
    assert "<del>a mug on a table</del>" in html and "<ins>a red mug on a table</ins>" in html
    pairs = html[html.index("Changed since") : html.index("<h2>sheet</h2>")]
    for key in old_mugs:
        assert f'data-task="{key}"' in pairs  # the old image, from the ledger's history
    assert pairs.count("<img src=") == 6
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)) == 9  # one per card of the grid, none twice


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    executable = find_chromium()
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    browser = Chromium(executable)
    try:
        browser.open_page()
        yield browser
    finally:
        browser.close()


IMAGES_LOADED = """(async () => {
  const imgs = [...document.images];
  const settle = i => i.complete ? null : new Promise(r => {
    i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 10000); });
  await Promise.all(imgs.map(settle));
  return imgs.map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}));
})()"""

OVERFLOW = """(() => {
  const width = document.documentElement.clientWidth, bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > width + 0.5 || r.left < -0.5))
      bad.push(`${el.tagName}.${el.className} ${Math.round(r.left)}..${Math.round(r.right)}`);
  }
  return {width, scrollWidth: document.documentElement.scrollWidth,
          height: document.documentElement.scrollHeight, bad: bad.slice(0, 10)};
})()"""

FIRST_IMAGE = """(() => { const i = document.images[0], r = i.getBoundingClientRect();
  return {x: r.left + r.width / 2, y: r.top + r.height / 2, src: i.getAttribute('src')}; })()"""


@pytest.mark.parametrize("width", [390, 1440])
def test_in_chromium_every_image_loads_and_nothing_overflows(
    project: Project, chromium: Chromium, width: int, tmp_path: Path
) -> None:
    index = make_report(project)
    chromium.load(index.as_uri(), width)
    layout = chromium.evaluate(OVERFLOW)
    assert layout["width"] == width
    assert layout["bad"] == [] and layout["scrollWidth"] <= width, layout
    # as tall as the page, so the lazy thumbnails below the fold load too
    chromium.load(index.as_uri(), width, layout["height"])
    images = chromium.evaluate(IMAGES_LOADED)
    assert len(images) == 7 and all(i["ok"] for i in images), images
    shot = chromium.screenshot(width, layout["height"])
    (tmp_path / f"report-{width}.png").write_bytes(shot)
    picture = Image.open(io.BytesIO(shot)).convert("RGB")
    assert picture.width == width and picture.height == layout["height"]
    assert len(picture.resize((width // 4, picture.height // 4)).getcolors(1 << 20) or []) > 50
    # the first thumbnail is really painted where the page says it is
    first = chromium.evaluate(FIRST_IMAGE)
    thumb = Image.open(index.parent / first["src"]).convert("RGB")
    expected = thumb.getpixel((thumb.width // 2, thumb.height // 2))
    painted = picture.getpixel((int(first["x"]), int(first["y"])))
    assert all(abs(a - b) <= 16 for a, b in zip(painted, expected, strict=True)), (painted, expected)


def test_the_wheel_ships_the_template() -> None:
    from importlib.resources import files

    template = files("runner") / "templates" / "report.html.j2"
    assert template.is_file() and "{{ sheet.title }}" in template.read_text(encoding="utf-8")


def test_many_new_thumbnails_are_made_in_worker_processes(tmp_path: Path) -> None:
    from runner.htmlreport import Thumbnailer

    images = []
    for i in range(6):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (1600, 900), (40 * i, 90, 200)).save(path)
        images.append(path)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"<html>not an image</html>")
    thumbs = Thumbnailer(tmp_path / "report")
    thumbs.PROCESSES_FROM = 2
    thumbs.prepare([*images, broken])
    for path in images:
        picture = thumbs.picture(path)
        assert picture is not None and (picture.width, picture.height) == (640, 360)
        assert picture.delivered == "1600x900"
    assert thumbs.picture(broken) is None  # the card will say the image is not readable
    assert sorted(p.suffix for p in (tmp_path / "report" / "thumbs").iterdir()) == [".jpg"] * 6


def test_a_report_that_cannot_be_written_says_so_not_the_ledger(project: Project) -> None:
    out = project.root / "report"
    (out / "index.html").mkdir(parents=True)  # the page cannot replace a folder
    ledger_before = project.ledger.read_bytes()
    result = project.cli("report", str(project.manifests), "--ledger", str(project.ledger), "--out", str(out))
    assert result.exit_code == 2, result.stderr
    assert f"{out / 'index.html'}: cannot write the report" in result.stderr
    assert "ledger" not in result.stderr and "internal error" not in result.stderr
    assert project.ledger.read_bytes() == ledger_before
