"""The missing-image check inside one_moment() reads absence from one listing per folder: it
must agree with the plain check (a stat per file) for every path a ledger may record."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner import verify

SHA = hashlib.sha256(b"x").hexdigest()


def _tree(base: Path) -> None:
    for rel in ("images/a.png", "images/B.png", "images/sub/c.png", "top.png", "d/e.png"):
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(b"x")
    (base / "images" / "link.png").symlink_to("a.png")
    (base / "images" / "gone.png").symlink_to("nowhere.png")
    (base / "images" / "dirlink").symlink_to("sub")


_parts = st.sampled_from(
    ["images", "sub", "d", "..", ".", "", "a.png", "B.png", "b.png", "c.png", "e.png", "top.png", "link.png",
     "gone.png", "dirlink", "nope.png", "A.png"]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(_parts, min_size=1, max_size=4), absolute=st.booleans(), trailing=st.booleans())
def test_the_listing_says_missing_only_where_a_stat_would(
    tmp_path: Path, parts: list[str], absolute: bool, trailing: bool
) -> None:
    base = tmp_path / "ledger-folder"
    if not base.exists():
        _tree(base)
    stored = "/".join(parts) + ("/" if trailing else "")
    if absolute:
        stored = f"{base}/{stored}"
    output = {"path": stored, "sha256": SHA}
    plain = verify.file_verified(output, base)
    with verify.one_moment():
        listed = verify.file_verified(output, base)
    assert listed == plain, stored


@pytest.mark.skipif(not os.access("/", os.W_OK), reason="needs a file right under / (CI runs as root)")
def test_an_image_recorded_right_under_the_root_is_found_there(tmp_path: Path) -> None:
    # "/x.png" lies in "/", not in the ledger's folder: the listing fast path looked there.
    image = Path(f"/imgbatch-test-{os.getpid()}-{uuid.uuid4().hex}.png")
    image.write_bytes(b"x")
    try:
        output = {"path": str(image), "sha256": SHA}
        assert verify.file_verified(output, tmp_path)
        with verify.one_moment():
            assert verify.file_verified(output, tmp_path)
    finally:
        image.unlink()
