"""imgbatch schema: print the manifest JSON Schema, or write it to a file for editors."""

from __future__ import annotations

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
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        replace_file(output, schema_text())
    except OSError as e:
        raise InputError(f"{output}: cannot write: {e.strerror}") from None
    click.echo(f"imgbatch: wrote {output}", err=True)
    return EXIT_OK
