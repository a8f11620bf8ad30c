"""imgbatch init and schema --output: a repository set up in one command, never overwriting."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from runner.ledger import SANDBOX_OUT
from runner.schema import load_schema, schema_text
from tests.helpers import run_cli

COMPOSE = 'version: "3.8"\nservices:\n  web: {image: nginx}\n'


def test_init_in_an_empty_folder_gives_a_valid_runnable_setup(tmp_path: Path) -> None:
    folder = tmp_path / "Brand Images_2"
    folder.mkdir()
    result = run_cli("init", str(folder))
    assert result.exit_code == 0, result.stderr
    manifest = folder / "manifests" / "brand-images-2.yaml"
    schema_copy = folder / ".imgbatch" / "manifest.schema.json"
    assert json.loads(schema_copy.read_text(encoding="utf-8")) == load_schema()
    first = manifest.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../.imgbatch/manifest.schema.json"
    # the modeline resolves, relative to the manifest, to the copy init wrote
    assert (manifest.parent / first.split("$schema=")[1]).resolve() == schema_copy.resolve()
    assert (folder / ".gitignore").read_text() == (
        "*.ledger.jsonl.lock\n*.ledger.jsonl.journal\n.imgbatch-verified.json\nimgbatch.sandbox.ledger.jsonl\nimages-sandbox/\n"
    )
    assert (folder / ".gitattributes").read_text() == "*.ledger.jsonl merge=imgbatch\n"
    assert 'git config merge.imgbatch.driver "imgbatch merge-ledgers -o %A --base %O %A %B"' in result.stdout
    strict = run_cli("validate", "--strict", str(folder))
    assert strict.exit_code == 0 and "1 file checked: 1 valid" in strict.stdout
    # the starter is commented for a reader, and all of it is the manifest format
    assert manifest.read_text(encoding="utf-8").count("#") > 15


def test_the_starter_manifest_runs_in_the_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run_cli("init", "--name", "starter").exit_code == 0
    run = run_cli("run", "--sandbox", "--sandbox-task-seconds", "0", "--poll-interval", "0", "manifests/")
    assert run.exit_code == 0, run.stderr
    assert len(list((tmp_path / SANDBOX_OUT).iterdir())) == 3
    assert run_cli("validate", ".").exit_code == 0  # ledger, images and lock file do not disturb it


def test_init_in_an_existing_repo_never_overwrites(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("node_modules/\n*.ledger.jsonl.lock", encoding="utf-8")
    (tmp_path / ".gitattributes").write_text("*.ledger.jsonl merge=imgbatch\n", encoding="utf-8")
    (tmp_path / "docker-compose.yml").write_text(COMPOSE, encoding="utf-8")
    (tmp_path / ".imgbatch").mkdir()
    (tmp_path / ".imgbatch" / "manifest.schema.json").write_text("{}", encoding="utf-8")
    (tmp_path / "manifests").mkdir()
    mine = tmp_path / "manifests" / "cats.yaml"
    mine.write_text("my own manifest", encoding="utf-8")
    result = run_cli("init", "--name", "cats", str(tmp_path))
    assert result.exit_code == 0
    assert "skipped .imgbatch/manifest.schema.json (it exists" in result.stdout
    assert "skipped manifests/cats.yaml (it exists" in result.stdout
    assert "skipped .gitattributes (it has the lines already)" in result.stdout
    added = "added .gitignore: *.ledger.jsonl.journal, .imgbatch-verified.json, imgbatch.sandbox"
    assert added in result.stdout
    assert mine.read_text(encoding="utf-8") == "my own manifest"
    assert (tmp_path / ".imgbatch" / "manifest.schema.json").read_text(encoding="utf-8") == "{}"
    assert (tmp_path / ".gitignore").read_text(encoding="utf-8") == (
        "node_modules/\n*.ledger.jsonl.lock\n*.ledger.jsonl.journal\n.imgbatch-verified.json\nimgbatch.sandbox.ledger.jsonl\nimages-sandbox/\n"
    )
    # a second manifest next to the user's: init with another name, then the folder validates
    assert run_cli("init", "--name", "starter", str(tmp_path)).exit_code == 0
    mine.unlink()
    assert run_cli("validate", str(tmp_path)).exit_code == 0


@pytest.mark.parametrize("folder", ["2024", "1e5", "true", "null"])
def test_a_folder_name_yaml_would_read_as_a_number_still_gives_a_valid_starter(
    tmp_path: Path, folder: str
) -> None:
    target = tmp_path / folder
    target.mkdir()
    assert run_cli("init", str(target)).exit_code == 0
    assert f'name: "{folder}"' in (target / "manifests" / f"{folder}.yaml").read_text(encoding="utf-8")
    result = run_cli("validate", str(target))
    assert result.exit_code == 0, result.stdout


def test_init_keeps_crlf_line_ends_and_never_follows_a_dangling_link(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_bytes(b"node_modules\r\n*.ledger.jsonl.lock\r\n")
    (tmp_path / ".gitattributes").symlink_to(tmp_path / "elsewhere" / "attrs")
    result = run_cli("init", str(tmp_path))
    assert result.exit_code == 0
    assert (tmp_path / ".gitignore").read_bytes() == (
        b"node_modules\r\n*.ledger.jsonl.lock\r\n*.ledger.jsonl.journal\r\n.imgbatch-verified.json\r\n"
        b"imgbatch.sandbox.ledger.jsonl\r\nimages-sandbox/\r\n"
    )
    assert (
        "skipped .gitattributes (a symlink to nothing); add: *.ledger.jsonl merge=imgbatch" in result.stdout
    )
    assert not (tmp_path / "elsewhere").exists()


def test_init_says_when_a_file_stands_where_a_folder_goes(tmp_path: Path) -> None:
    (tmp_path / "manifests").write_text("notes", encoding="utf-8")
    result = run_cli("init", "--name", "cats", str(tmp_path))
    assert result.exit_code == 2
    assert f"{tmp_path / 'manifests'} is a file, not a folder" in result.stderr
    assert (tmp_path / "manifests").read_text(encoding="utf-8") == "notes"


def test_init_refuses_a_bad_name_and_a_missing_folder(tmp_path: Path) -> None:
    bad = run_cli("init", "--name", "Bad_Name", str(tmp_path))
    assert bad.exit_code == 2 and "is not a manifest name" in bad.stderr
    missing = run_cli("init", str(tmp_path / "nope"))
    assert missing.exit_code == 2 and "no such folder" in missing.stderr
    assert list(tmp_path.iterdir()) == []


def test_schema_output_writes_the_schema(tmp_path: Path) -> None:
    out = tmp_path / "tools" / "manifest.schema.json"
    result = run_cli("schema", "--output", str(out))
    assert result.exit_code == 0 and result.stdout == ""
    assert out.read_text(encoding="utf-8") == schema_text()
    out.write_text("old", encoding="utf-8")
    assert run_cli("schema", "-o", str(out)).exit_code == 0  # asked for by name: refreshed
    assert out.read_text(encoding="utf-8") == schema_text()
    folder = run_cli("schema", "-o", str(tmp_path))
    assert folder.exit_code == 2 and "is a folder" in folder.stderr


def test_schema_output_writes_through_a_symlink_and_refuses_a_pipe(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old", encoding="utf-8")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    assert run_cli("schema", "-o", str(link)).exit_code == 0
    assert link.is_symlink() and real.read_text(encoding="utf-8") == schema_text()
    pipe = tmp_path / "pipe.json"
    os.mkfifo(pipe)
    result = run_cli("schema", "-o", str(pipe))
    assert result.exit_code == 2 and f"{pipe} is not a regular file" in result.stderr
    assert stat.S_ISFIFO(pipe.stat().st_mode)  # not replaced by a file
