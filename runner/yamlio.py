"""The one YAML entry point: safe, bounded loading that keeps where every value came from.

The work is split by job: reading and decoding bytes (yamltext), parsing to events with
readable syntax errors (yamlsyntax), what a scalar means under the YAML 1.2 core schema
(yamlscalar), and expanding aliases and merges within bounds (yamlbuild). Other modules
import YAML things only from here.
"""

from __future__ import annotations

import functools
import os

from runner.yamlbuild import MAX_DEPTH, MAX_VALUES, Builder, NeedsAllMarks
from runner.yamldoc import Document, Mark, Marks, UnreadableDocument
from runner.yamlscalar import reads_as_text
from runner.yamlsyntax import count_values, events, syntax_errors
from runner.yamltext import MAX_BYTES, decode, read_bounded

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_VALUES",
    "Document",
    "Mark",
    "UnreadableDocument",
    "decode",
    "load_file",
    "load_text",
    "reads_as_text",
]


def load_file(path: str | os.PathLike[str], display: str | None = None) -> Document:
    """Read and parse one YAML file. Raises InputError for files that cannot be read at all;
    problems inside a readable document (duplicate keys, odd tags) are in `Document.problems`."""
    shown = display or os.fspath(path)
    return load_text(decode(read_bounded(path, shown), shown), shown)


def load_text(text: str, shown: str) -> Document:
    with syntax_errors(text, shown):
        count_values(text, shown)
        try:
            return _build(text, shown, all_marks=False)
        except NeedsAllMarks:
            return _build(text, shown, all_marks=True)


def _build(text: str, shown: str, *, all_marks: bool) -> Document:
    doc = Document(shown, None)
    builder = Builder(doc, events(text), all_marks=all_marks)
    doc.data = builder.document()
    complete = None if all_marks else functools.partial(_all_marks, text, shown)
    doc.set_marks(builder.marks, builder.key_marks, complete)
    return doc


def _all_marks(text: str, shown: str) -> tuple[Marks, Marks]:
    """Every position of a document read before without all of them: the same text, read
    again, gives the same values and problems."""
    doc = _build(text, shown, all_marks=True)
    return doc.marks, doc.key_marks
