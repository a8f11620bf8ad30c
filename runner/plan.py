"""Expansion: checked manifests to the sorted list of tasks that would be submitted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from runner.ids import PromptHasher
from runner.manifest import Manifest


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
    source: str  # file:line:col of the prompt

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
    for m in manifests:
        for p in m.prompts:
            mark = m.doc.mark_of(p.path)
            source = f"{m.file}:{mark.line}:{mark.col}"
            hasher = PromptHasher(m.name, p.id, p.text)
            for choice in p.sizes:
                params = {"prompt": p.text, **choice.params}
                for r, out_task_id in enumerate(hasher.ids(choice.params, p.repeat)):
                    tasks.append(
                        Task(
                            out_task_id,
                            m.name,
                            p.id,
                            params,
                            choice.pixels,
                            choice.label,
                            r,
                            p.metadata,
                            p.callback_url,
                            source,
                        )
                    )
    tasks.sort(key=lambda t: t.out_task_id)
    return tasks
