"""imgbatch schema: print the manifest JSON Schema, or write it to a file for editors."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import click

from runner.atomic import replace_file
from runner.errors import EXIT_OK, InputError
from runner.schema import schema_text


def schema(output: Path | None = None) -> int:
    if output is None:
        click.echo(schema_text(), nl=False)
        return EXIT_OK
    if output.is_dir():
        raise InputError(
            f"{output} is a folder", hint="give a file name, e.g. .imgbatch/manifest.schema.json"
        )
    # A symlink is written through to its file (a dotfiles link stays a link), and anything
    # that is not a plain file is refused: the atomic rename would put a regular file in the
    # place of /dev/stdout or a named pipe.
    target = Path(os.path.realpath(output))
    try:
        mode = target.stat().st_mode
    except OSError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(
            f"{output} is not a regular file",
            hint="give a file name; `imgbatch schema` without --output prints the schema",
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_file(target, schema_text())
    except OSError as e:
        raise InputError(f"{output}: cannot write: {e.strerror}") from None
    click.echo(f"imgbatch: wrote {output}", err=True)
    return EXIT_OK
