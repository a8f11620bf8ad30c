"""Expansion: checked manifests to the sorted list of tasks that would be submitted."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from operator import attrgetter, itemgetter
from typing import Any

from runner.ids import ManifestHasher
from runner.manifest import Manifest, Prompt, SizeChoice


@dataclass(slots=True)
class Task:
    out_task_id: str
    manifest: str
    prompt_id: str
    params: dict[str, Any]  # exactly the `params` object sent upstream
    pixels: tuple[int, int]  # delivered [width, height] per the schema's table
    size: str
    repeat_index: int
    metadata: dict[str, Any] | None
    callback_url: str | None
    # Where the prompt is: `source` is worked out from it when asked for (by plan listings),
    # not for every task of a run, which never shows it. Not compared: `source` is derived.
    origin: tuple[Manifest, Prompt] = field(compare=False, repr=False)

    @property
    def source(self) -> str:
        """file:line:col of the prompt."""
        return _source(*self.origin)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "out_task_id": self.out_task_id,
            "manifest": self.manifest,
            "prompt_id": self.prompt_id,
            "params": self.params,
            "pixels": list(self.pixels),
            "size": self.size,
            "repeat_index": self.repeat_index,
            "source": self.source,
        }
        if self.metadata is not None:
            out["metadata"] = self.metadata
        if self.callback_url is not None:
            out["callback_url"] = self.callback_url
        return out


def expand(manifests: Iterable[Manifest]) -> list[Task]:
    tasks: list[Task] = []
    append = tasks.append  # bound once: this loop runs once per task of the plan
    for m in manifests:
        name = m.name
        hasher = ManifestHasher(name)
        for p in m.prompts:
            origin = (m, p)
            for choice in p.sizes:
                params = {"prompt": p.text, **choice.params}
                for r, out_task_id in enumerate(hasher.ids(p.id, p.text, choice.params, p.repeat)):
                    append(
                        Task(
                            out_task_id,
                            name,
                            p.id,
                            params,
                            choice.pixels,
                            choice.label,
                            r,
                            p.metadata,
                            p.callback_url,
                            origin,
                        )
                    )
    tasks.sort(key=attrgetter("out_task_id"))
    return tasks


def _source(m: Manifest, p: Prompt) -> str:
    mark = m.doc.mark_of(p.path)
    return f"{m.file}:{mark.line}:{mark.col}"


# The encoder of `plan --format jsonl` (report.dumps): its separators are ", " and ": ".
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def jsonl_lines(manifests: Iterable[Manifest], keep: Callable[[str], bool] | None = None) -> Iterator[str]:
    """The lines of `plan --format jsonl`: for each task of expand() (in its order) whose id
    `keep` accepts, exactly report.dumps(task.as_json()).

    Encoding one dict per task was most of a large plan's time. JSON with sorted keys can be
    written piecewise, so each line is joined from fragments encoded once per prompt and once
    per size choice; a test checks the result equals the per-task encoding."""
    rows: list[tuple[str, tuple[str, str, str, str], tuple[str, str, str, str], int]] = []
    sizes: dict[int, tuple[SizeChoice, tuple[str, str, str, str]]] = {}
    for m in manifests:
        hasher = ManifestHasher(m.name)
        manifest = f'"manifest": {_ENCODE(m.name)}, '
        for p in m.prompts:
            head = "{"
            if p.callback_url is not None:
                head += f'"callback_url": {_ENCODE(p.callback_url)}, '
            head += manifest
            if p.metadata is not None:
                head += f'"metadata": {_ENCODE(p.metadata)}, '
            pf = (
                head + '"out_task_id": ',
                '"prompt": ' + _ENCODE(p.text),
                f', "prompt_id": {_ENCODE(p.id)}, "repeat_index": ',
                f', "source": {_ENCODE(_source(m, p))}}}',
            )
            for choice in p.sizes:
                known = sizes.get(id(choice))
                if known is None:
                    known = sizes[id(choice)] = (choice, _size_fragments(choice))
                sf = known[1]
                for r, out_task_id in enumerate(hasher.ids(p.id, p.text, choice.params, p.repeat)):
                    if keep is None or keep(out_task_id):
                        rows.append((out_task_id, pf, sf, r))
    rows.sort(key=itemgetter(0))
    for out_task_id, pf, sf, r in rows:
        yield (
            f'{pf[0]}{encode_basestring(out_task_id)}, "params": {{{sf[0]}{pf[1]}{sf[1]}}}, '
            f'"pixels": {sf[2]}{pf[2]}{r}, "size": {sf[3]}{pf[3]}'
        )


def _size_fragments(choice: SizeChoice) -> tuple[str, str, str, str]:
    """A size choice's params that sort before and after "prompt", its pixels and its label,
    encoded."""
    items = sorted(choice.params.items())
    before = "".join(f"{_ENCODE(k)}: {_ENCODE(v)}, " for k, v in items if k < "prompt")
    after = "".join(f", {_ENCODE(k)}: {_ENCODE(v)}" for k, v in items if k > "prompt")
    return before, after, _ENCODE(list(choice.pixels)), _ENCODE(choice.label)
