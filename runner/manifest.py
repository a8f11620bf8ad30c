"""From files to checked manifests: collect paths, load, schema-check, then the checks a
schema cannot express (unique prompt ids, duplicate size choices, manifest names)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from runner.check import schema_diagnostics
from runner.diagnostics import Diagnostic, JsonPath
from runner.discover import MANIFEST_SUFFIXES as MANIFEST_SUFFIXES  # gitsource reads it here
from runner.discover import collect_paths
from runner.limits import DEFAULT_MAX_PLAN_TASKS
from runner.schema import SizeTable, parse_custom_size, size_table
from runner.yamlio import Document, UnreadableDocument, load_file


@dataclass(frozen=True)
class SizeChoice:
    params: dict[str, str]  # exactly the size part of the params sent upstream
    label: str  # "16:9@2K" or "2048x1152"
    pixels: tuple[int, int]  # what upstream delivers
    nominal: tuple[int, int]
    path: JsonPath


@dataclass(slots=True)  # one per prompt: quicker to make
class Prompt:
    id: str
    text: str
    sizes: list[SizeChoice]
    repeat: int
    metadata: dict[str, Any] | None
    callback_url: str | None
    path: JsonPath


@dataclass
class Manifest:
    name: str
    file: str
    doc: Document
    prompts: list[Prompt] = field(default_factory=list)

    @property
    def task_count(self) -> int:
        """How many tasks the plan will hold, counted without expanding them."""
        return sum(len(p.sizes) * p.repeat for p in self.prompts)


@dataclass
class CheckedFile:
    file: str
    diagnostics: list[Diagnostic]
    manifest: Manifest | None  # None when the file has errors

    @property
    def ok(self) -> bool:
        return self.manifest is not None


class CheckedFiles(list[CheckedFile]):
    """The checked manifests of one invocation, and the files a folder search skipped."""

    skipped: list[str]

    def __init__(self, checked: Iterable[CheckedFile], skipped: Iterable[str] = ()) -> None:
        super().__init__(checked)
        self.skipped = list(skipped)


def check_files(paths: Iterable[str], max_plan_tasks: int = DEFAULT_MAX_PLAN_TASKS) -> CheckedFiles:
    found = collect_paths(paths)
    return CheckedFiles(check_listed(found, max_plan_tasks), found.skipped)


def check_listed(
    found: Iterable[tuple[str, str]], max_plan_tasks: int = DEFAULT_MAX_PLAN_TASKS
) -> list[CheckedFile]:
    """Check (path to open, path to show) pairs as one set of manifests (names unique, and
    at most `max_plan_tasks` tasks together)."""
    checked = [check_file(path, shown) for path, shown in found]
    _check_unique_names(checked)
    _check_plan_size(checked, max_plan_tasks)
    return checked


def _check_plan_size(checked: list[CheckedFile], limit: int) -> None:
    """Refuse an invocation whose manifests expand to more than `limit` tasks, before any
    task exists: the count is arithmetic on the checked manifests."""
    valid = [cf for cf in checked if cf.manifest is not None]
    counts = [cf.manifest.task_count for cf in valid if cf.manifest is not None]
    total = sum(counts)
    if total <= limit:
        return
    for cf, count in zip(valid, counts, strict=True):
        assert cf.manifest is not None
        together = f" ({total:,} in all {len(valid)} manifests given)" if len(valid) > 1 else ""
        cf.diagnostics.append(
            cf.manifest.doc.diagnostic(
                ("prompts",),
                f"expands to {count:,} tasks{together}, more than the limit of {limit:,} per invocation",
                "split the manifests into smaller runs, or raise the limit with --max-plan-tasks",
                key=True,
            )
        )
        cf.manifest = None


def check_file(path: str, shown: str | None = None) -> CheckedFile:
    shown = shown or path
    try:
        doc = load_file(path, shown)
    except UnreadableDocument as e:
        return CheckedFile(shown, [e.diagnostic], None)
    diags = list(doc.problems)
    if not isinstance(doc.data, dict):
        diags.append(
            doc.diagnostic(
                (),
                "a manifest is a mapping with version, name and prompts",
                "start the file with 'version: 1'",
            )
        )
        return CheckedFile(shown, diags, None)
    diags.extend(schema_diagnostics(doc))
    diags.extend(_duplicate_prompt_ids(doc))
    if any(d.severity == "error" for d in diags):
        return CheckedFile(shown, diags, None)
    manifest = _build(doc, diags)
    ok = not any(d.severity == "error" for d in diags)
    return CheckedFile(shown, sorted(diags, key=lambda d: (d.line, d.col)), manifest if ok else None)


def _check_unique_names(checked: list[CheckedFile]) -> None:
    first: dict[str, CheckedFile] = {}
    for cf in checked:
        if cf.manifest is None:
            continue
        name = cf.manifest.name
        if name in first:
            other = first[name].file
            cf.diagnostics.append(
                cf.manifest.doc.diagnostic(
                    ("name",),
                    f"manifest name '{name}' is already used by {other}",
                    "names are the namespace of task ids: give each manifest its own",
                )
            )
            cf.manifest = None
        else:
            first[name] = cf


def _duplicate_prompt_ids(doc: Document) -> list[Diagnostic]:
    prompts = doc.data.get("prompts")
    if not isinstance(prompts, list):
        return []
    try:  # the usual case, every id different, in two C-speed passes
        ids = [p["id"] for p in prompts]
        if len(set(ids)) == len(ids):
            return []
    except (TypeError, KeyError):
        pass  # a prompt that is no mapping, has no id or an unhashable one: look one by one
    first: dict[str, int] = {}
    out = []
    for i, p in enumerate(prompts):
        pid = p.get("id") if isinstance(p, dict) else None
        if not isinstance(pid, str):
            continue
        if pid in first:
            line = doc.mark_of(("prompts", first[pid], "id")).line
            out.append(
                doc.diagnostic(
                    ("prompts", i, "id"),
                    f"prompt id '{pid}' is already used at line {line}",
                    "prompt ids must be unique",
                )
            )
        else:
            first[pid] = i
    return out


def _build(doc: Document, diags: list[Diagnostic]) -> Manifest:
    """Normalise a schema-valid document into prompts with resolved size choices."""
    data: dict[str, Any] = doc.data
    table = size_table()
    manifest = Manifest(name=data["name"], file=doc.path, doc=doc)
    top_tier = data.get("resolution", table.default_resolution)
    top_sizes: list[Any] = data.get("sizes", [])  # absent: the schema wants every prompt's own
    top_meta = data.get("metadata")
    top_repeat = data.get("repeat", 1)
    top_callback = data.get("callback_url")
    # Prompts without their own size list share the manifest's choices (and its warnings)
    # per tier; a prompt's own list is resolved once, as only it can use it.
    shared: dict[str, list[SizeChoice]] = {}
    add = manifest.prompts.append  # this loop runs once per prompt: keep it lean
    for i, p in enumerate(data["prompts"]):
        path: JsonPath = ("prompts", i)
        tier = p.get("resolution", top_tier)
        if "sizes" in p:
            sizes = _size_choices(doc, p["sizes"], (*path, "sizes"), tier, table, diags)
        elif tier in shared:
            sizes = shared[tier]
        else:
            sizes = shared[tier] = _size_choices(doc, top_sizes, ("sizes",), tier, table, diags)
        meta = {**(top_meta or {}), **p["metadata"]} if "metadata" in p else top_meta
        add(
            Prompt(
                p["id"],
                p["prompt"],
                sizes,
                p.get("repeat", top_repeat),
                meta,
                p.get("callback_url", top_callback),
                path,
            )
        )
    return manifest


def _size_choices(
    doc: Document,
    raw: list[Any],
    path: JsonPath,
    tier: str,
    table: SizeTable,
    diags: list[Diagnostic],
) -> list[SizeChoice]:
    out: list[SizeChoice] = []
    labels: dict[str, int] = {}
    for j, item in enumerate(raw):
        choice = normalise_size(item, tier, table, (*path, j))
        if choice.label in labels:
            diags.append(
                doc.diagnostic(
                    choice.path,
                    f"size {choice.label} is listed twice (also item {labels[choice.label]})",
                    "remove the duplicate: it would be the same task",
                )
            )
            continue
        labels[choice.label] = j
        if "size" in choice.params and choice.pixels != choice.nominal:
            diags.append(
                doc.diagnostic(
                    choice.path,
                    f"size {choice.label} is {choice.nominal[0] * choice.nominal[1]:,} pixels, below "
                    f"the effective floor of {table.effective_min_pixels:,}: upstream silently "
                    f"delivers about {choice.pixels[0]}x{choice.pixels[1]} instead",
                    "use at least 2,088,960 pixels (e.g. 2048x1020) or an aspect_ratio",
                    severity="warning",
                )
            )
        out.append(choice)
    return out


def normalise_size(item: Any, tier: str, table: SizeTable, path: JsonPath) -> SizeChoice:
    """One schema-valid size choice (object or shorthand) to the params it sends."""
    if isinstance(item, str):
        if "x" in item:
            item = {"size": item}
        else:
            ratio, _, given_tier = item.partition("@")
            item = {"aspect_ratio": ratio, "resolution": given_tier or tier}
    if "size" in item:
        wh = parse_custom_size(item["size"])
        assert wh is not None  # the schema's pattern guarantees it
        return SizeChoice({"size": item["size"]}, item["size"], table.delivered_custom(*wh), wh, path)
    ratio, res = item["aspect_ratio"], item.get("resolution", tier)
    cell = table.cell(ratio, res)
    return SizeChoice(
        {"aspect_ratio": ratio, "resolution": res}, f"{ratio}@{res}", cell.delivered, cell.nominal, path
    )
