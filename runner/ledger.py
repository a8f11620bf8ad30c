"""The results ledger: one JSON object per task, sorted by out_task_id, keys sorted, so it
diffs cleanly in git and a run that changes nothing leaves it byte-identical.

Crash safety: every change is first appended to `<ledger>.journal` and flushed to the OS
before the step it records is taken further (a kill -9 cannot lose a flushed write). The
sorted file is rewritten atomically (temp file in the same folder, fsync, os.replace) from
time to time and at the end; the next open replays a journal left behind. A lock file keeps
two runs off one ledger.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import IO, Any

from runner.atomic import replace_file
from runner.bulk import bulk_build
from runner.errors import LedgerError
from runner.ledgerguard import (
    acquire_lock,
    check_endpoint,
    legacy,
    refuse_hard_links,
    release_lock,
    remove_stale_temps,
)
from runner.ledgerline import line_decoder, parse_line, read_lines, serialize
from runner.redact import scrub, scrub_value

DEFAULT_LEDGER = "imgbatch.ledger.jsonl"
DEFAULT_OUT = "images"
# `run --sandbox` keeps its own ledger and images, so trying the sandbox never touches a ledger
# of the real service.
SANDBOX_LEDGER = "imgbatch.sandbox.ledger.jsonl"
SANDBOX_OUT = "images-sandbox"
Record = dict[str, Any]

# Statuses of a record besides the running ones upstream reports (pending, processing, ...).
COMPLETED = "completed"
SUBMITTING = "submitting"  # the intent is recorded; whether upstream got it is not yet known
# Statuses the service may end a task with that are not success: terminal failures.
UPSTREAM_FAILED = frozenset({"failed", "canceled", "cancelled", "error", "expired", "timeout"})
FAILED_STATES = UPSTREAM_FAILED | {"rejected", "lost"}
# Not finished by --task-timeout: still paid and maybe still running, so never resubmitted;
# the next run asks the service about it first.
TIMED_OUT = "timed_out"


def _rewrite(path: Path, text: str) -> None:
    try:
        replace_file(path, text)
    except OSError as e:
        raise LedgerError(
            f"{path}: cannot rewrite the ledger: {e.strerror or e}",
            hint="the ledger is unchanged and the journal keeps every change; free space and rerun",
        ) from None


class Ledger:
    def __init__(self, path: Path) -> None:
        # Everything is done on the real path: a symlinked ledger gets the same lock (and the
        # same journal) as its target, so two runs can never share a ledger unawares, and the
        # atomic rewrite replaces the target instead of the link. Messages name it as given.
        self.shown = path
        self.path = Path(os.path.realpath(path))
        self.journal_path = self.path.with_name(self.path.name + ".journal")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self.records: dict[str, Record] = {}
        # Each record's line as read or written, with the record it encodes: a rewrite joins
        # these instead of encoding every record again (a sort and a write, not the whole
        # ledger in json). A record replaced in `records` by other means is encoded afresh.
        # Only a ledger opened for writing keeps them (status of 100,000 records need not
        # hold the 80 MB of text twice).
        self._lines: dict[str, tuple[Record, str]] = {}
        self._keep_lines = False
        self._ledger_bytes = 0  # size of the ledger file as last read or written
        self._journal_bytes = 0  # what this process appended to the journal since then
        self.dirty = False
        self.endpoint: str | None = None  # stamped on every record written
        self._journal: IO[str] | None = None
        self._journal_failed = ""  # why the journal could not be written (then it takes no more)
        self._lock: IO[str] | None = None
        self.claimed = 0  # records written before endpoints were recorded, stamped by this open

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, write: bool, endpoint: str | None = None) -> Ledger:
        """Read the ledger (and any journal a crashed run left). With write=True, take the lock
        first and fold the journal into the ledger file. With `endpoint`, refuse (changing
        nothing) a ledger whose records belong to another service, and stamp what is written."""
        ledger = cls(path)
        ledger.endpoint = endpoint
        ledger._keep_lines = write
        if write:
            if not ledger.path.parent.is_dir():
                raise LedgerError(
                    f"{path}: the folder {path.parent} does not exist",
                    hint="create it or give another --ledger",
                )
            refuse_hard_links(ledger.path, ledger.shown)
            ledger._lock = acquire_lock(ledger.lock_path, ledger.shown)
            remove_stale_temps(ledger.path)
        try:
            ledger._load()
            if endpoint is not None:
                check_endpoint(ledger.records.values(), ledger.shown, endpoint)
                if write:
                    ledger._claim_legacy(endpoint)
            if write and ledger.dirty:
                ledger.compact()
        except BaseException:
            ledger.close(compact=False)
            raise
        return ledger

    def _claim_legacy(self, endpoint: str) -> None:
        """A real service's run claims the records that name none, so the ledger belongs to
        one service from then on (any other, and the sandbox, is refused)."""
        for record in legacy(self.records.values()):
            # Stamped here: put() takes the stored record itself for "no change".
            self.put({**record, "endpoint": endpoint})
            self.claimed += 1

    def _load(self) -> None:
        with bulk_build():
            self._load_files()

    def _load_files(self) -> None:
        # The decoder imports msgspec (~4 ms): not worth it for a first run's missing ledger.
        ledger_exists, journal_exists = self.path.exists(), self.journal_path.exists()
        rewritten: list[str] = []
        decode = line_decoder(rewritten) if ledger_exists or journal_exists else json.loads
        if ledger_exists:
            lines = read_lines(self.path)
            self._ledger_bytes = sum(map(len, lines)) + len(lines)
            parse, take, shown = parse_line, self._take, self.shown
            for lineno, line in enumerate(lines, 1):
                if line.strip():
                    take(parse(line, shown, lineno, decode), line)
        if journal_exists:
            lines = read_lines(self.journal_path)
            for lineno, line in enumerate(lines, 1):
                try:
                    record = parse_line(line, self.journal_path, lineno, decode)
                except LedgerError:
                    if lineno == len(lines):
                        break  # the write a crash cut short; nothing after it was acted on
                    raise
                if self.records.get(record["out_task_id"]) != record:
                    self._take(record, line)
                    self.dirty = True
            if not lines:
                self.dirty = True  # an empty journal still needs removing
        if rewritten and self._keep_lines:
            self._standardise(set(rewritten))

    def _standardise(self, texts: set[str]) -> None:
        """Lines an older imgbatch wrote with Infinity or NaN (runner/jsonnum.py) are written
        anew, as standard JSON, by the next rewrite: the file's own text is never kept for them."""
        for key, (record, line) in list(self._lines.items()):
            if line[:-1] in texts:
                self._lines[key] = (record, serialize(record))
                self.dirty = True

    def _take(self, record: Record, line: str) -> None:
        """Keep a record and (in a ledger open for writing) its line."""
        key = record["out_task_id"]
        self.records[key] = record
        if self._keep_lines:
            self._lines[key] = (record, line if line.endswith("\n") else line + "\n")

    # --- changing -----------------------------------------------------------------------

    def get(self, out_task_id: str) -> Record | None:
        return self.records.get(out_task_id)

    def put(self, record: Record) -> None:
        """Record a change durably before acting on it further."""
        stored = self.records.get(record["out_task_id"])
        if stored == record or (self.endpoint and stored == {**record, "endpoint": self.endpoint}):
            return
        if self.endpoint is not None:
            record = {**record, "endpoint": self.endpoint}
        # Scrubbed of the API key: the last line of defence for a file users commit. The line
        # written is also the snapshot kept (later edits by the caller don't leak in).
        line = serialize(record)
        if scrub(line) != line:
            line = serialize(scrub_value(json.loads(line)))
        record = json.loads(line)
        self._take(record, line)
        try:
            if self._journal_failed:
                raise OSError(self._journal_failed)
            if self._journal is None:
                self._journal = open(self.journal_path, "a", encoding="utf-8")  # noqa: SIM115
            self._journal.write(line)
            self._journal.flush()
        except OSError as e:
            # Nothing more goes into this journal: a line after a torn one would make it
            # unreadable, while a torn last line is ignored on replay.
            self._journal_failed = self._journal_failed or e.strerror or str(e)
            self._drop_journal_handle()
            raise LedgerError(
                f"{self.journal_path}: cannot record a change: {self._journal_failed}",
                hint="the ledger keeps what was recorded before; free space and rerun to resume",
            ) from None
        self._journal_bytes += len(line)
        self.dirty = True

    def take_back(self, out_task_id: str, previous: Record | None) -> None:
        """Undo the last change of a task that provably had no effect (a submit that never
        left the machine), durably: the ledger is rewritten as if it had not been made, so
        it binds the ledger to no endpoint."""
        if previous is None:
            self.records.pop(out_task_id, None)
            self._lines.pop(out_task_id, None)
        else:
            self._take(previous, serialize(previous))
        self.dirty = True
        self.compact()

    def compact_if_due(self) -> None:
        """The periodic rewrite during a run, once the journal has grown as large as the
        ledger: each rewrite is paid for by as many bytes of changes, so a long run stays
        linear (rewriting a 100,000-record ledger every few seconds would not). The journal,
        flushed on every change, is what keeps the run crash-safe in between."""
        if self.dirty and self._journal_bytes >= self._ledger_bytes:
            self.compact()

    def compact(self) -> None:
        """Rewrite the sorted ledger atomically, then drop the journal it now contains."""
        if not self.dirty:
            return
        lines = {}
        for k in sorted(self.records):
            record = self.records[k]
            known = self._lines.get(k)
            lines[k] = known if known is not None and known[0] is record else (record, serialize(record))
        self._lines = lines if self._keep_lines else {}
        text = "".join([line for _, line in lines.values()])
        _rewrite(self.path, text)
        self._ledger_bytes = len(text)
        self._journal_bytes = 0
        self._drop_journal_handle()
        with contextlib.suppress(FileNotFoundError):
            self.journal_path.unlink()
        self._journal_failed = ""
        self.dirty = False

    def _drop_journal_handle(self) -> None:
        if self._journal is not None:
            with contextlib.suppress(OSError):  # a full disk fails the last flush too
                self._journal.close()
            self._journal = None

    def close(self, *, compact: bool = True) -> None:
        try:
            if compact and self._lock is not None:
                self.compact()
        finally:
            self._drop_journal_handle()
            if self._lock is not None:
                release_lock(self._lock)
                self._lock = None
