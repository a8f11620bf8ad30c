"""Schema check: every error of a document, mapped to file:line:col with the JSON path,
the most specific cause and a fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from runner.diagnostics import Diagnostic
from runner.schema import KW_PIXEL_AREA, KW_SIZE_SHORTHAND, manifest_validator
from runner.schemafast import is_valid_manifest
from runner.yamlio import Document

if TYPE_CHECKING:
    from jsonschema import ValidationError

# Validators whose generic message is worse than the schema's own `errorMessage`.
_USE_SCHEMA_MESSAGE = {
    "pattern",
    "const",
    "anyOf",
    "oneOf",
    "not",
    "minItems",
    "maxLength",
    "minLength",
    "type",
}


def schema_diagnostics(doc: Document) -> list[Diagnostic]:
    if is_valid_manifest(doc.data):
        return []  # jsonschema would find nothing: no need to import or run it
    out: list[Diagnostic] = []
    errors = list(manifest_validator().iter_errors(doc.data))
    # A shorthand the size keyword explains (unknown ratio or tier, pixels out of bounds)
    # needs no second line saying it does not match the pattern.
    explained = {tuple(e.absolute_path) for e in errors if e.validator == KW_SIZE_SHORTHAND}
    for error in errors:
        if error.validator == "pattern" and tuple(error.absolute_path) in explained:
            continue
        out.extend(_explain(doc, error))
    return sorted(set(out), key=lambda d: (d.line, d.col, d.message))


def _explain(doc: Document, error: ValidationError) -> Iterator[Diagnostic]:
    path = tuple(error.absolute_path)
    kind = error.validator
    schema: Any = error.schema
    custom = schema.get("errorMessage", "") if isinstance(schema, dict) else ""
    instance = error.instance
    value: Any = error.validator_value

    if kind == "required":
        for key in value:
            if isinstance(instance, dict) and key not in instance:
                yield doc.diagnostic(path, f"missing required key '{key}'", _required_hint(path, key))
        return
    if kind == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in sorted(set(instance) - set(allowed)):
            yield doc.diagnostic(
                (*path, key),
                f"unknown key '{key}'",
                _did_you_mean(key, allowed, "allowed keys"),
                key=True,
            )
        return
    if kind == "enum":
        choices = [str(c) for c in value]
        yield doc.diagnostic(
            path,
            f"{_show(instance)} is not allowed here",
            _did_you_mean(str(instance), choices, "choose one of"),
        )
        return
    if kind == "type":
        expected = value
        words = " or ".join(expected) if isinstance(expected, list) else expected
        message = f"expected {_article(words)}, got {_json_type(instance)} {_show(instance)}"
        hint = custom
        if instance is None:
            hint = "give a value"
        elif expected == "string" and isinstance(instance, (int, float, bool)):
            hint = "quote the value to make it text"
        yield doc.diagnostic(path, message, hint)
        return
    if kind == "maxLength" and isinstance(instance, str):
        yield doc.diagnostic(
            path,
            f"{_noun(path)} is {len(instance):,} characters; at most {value:,}",
            "shorten it" if path[-1:] == ("prompt",) else custom,
        )
        return
    if kind == "not" and custom:
        if path and isinstance(path[-1], int):  # a list item of no allowed kind
            yield doc.diagnostic(path, f"{_show(instance)} is not valid here", custom)
        else:  # a key that must not be there
            yield doc.diagnostic(path, custom, key=True)
        return
    if kind == "const":
        yield doc.diagnostic(
            path, f"{_show(instance)}: {custom or error.message}", f"use {json.dumps(value)}"
        )
        return
    if kind in _USE_SCHEMA_MESSAGE and custom:
        yield doc.diagnostic(path, f"{_show(instance)} is not valid here", custom)
        return
    if kind in (KW_PIXEL_AREA, KW_SIZE_SHORTHAND):
        yield doc.diagnostic(path, error.message, _size_hint(error.message))
        return
    yield doc.diagnostic(path, error.message, custom)


def _noun(path: tuple[Any, ...]) -> str:
    nouns = {"prompt": "the prompt", "id": "the prompt id", "name": "the manifest name"}
    last = path[-1] if path else ""
    return nouns.get(last, f"the {last}") if isinstance(last, str) and last else "the text"


def _required_hint(path: tuple[Any, ...], key: str) -> str:
    if key == "sizes":
        return "add 'sizes' to this prompt, or a 'sizes' list to the manifest for all prompts"
    if key == "version":
        return "add 'version: 1' at the top"
    return f"add '{key}: ...'"


def _size_hint(message: str) -> str:
    if "below the minimum" in message or "above the maximum" in message:
        return "total pixels must be 655,360 to 8,294,400, e.g. 2048x1152"
    return "see 'imgbatch schema' for the 13 ratios and 3 tiers"


def _did_you_mean(value: str, choices: list[str], label: str) -> str:
    import difflib  # only for a typo's hint: not paid by valid manifests

    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.8)
    if not close:
        close = [c for c in choices if c.lower() == value.lower()]
    listing = f"{label}: {', '.join(choices)}"
    return f"did you mean '{close[0]}'? {listing}" if close else listing


def _article(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "mapping"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
