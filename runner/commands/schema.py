"""imgbatch schema: print the manifest JSON Schema."""

from __future__ import annotations

import click

from runner.errors import EXIT_OK
from runner.schema import schema_text


def schema() -> int:
    click.echo(schema_text(), nl=False)
    return EXIT_OK
