"""What a run is told (RunOptions) and what it reports back (Summary)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.download import DEFAULT_DOWNLOAD_TIMEOUT, DEFAULT_MAX_IMAGE_MB, DownloadOptions
from runner.estimate import Estimate
from runner.jsonnum import figure
from runner.lost import LOST_AFTER

DEFAULT_TASK_TIMEOUT = 30 * 60.0


@dataclass
class RunOptions:
    out_dir: Path
    concurrency: int = 8
    poll_interval: float = 2.0
    max_tasks: int | None = None
    max_credits: float | None = None
    retry_failed: bool = False
    wait: bool = True
    poll_once: bool = False  # query unfinished tasks once instead of waiting (status --refresh)
    submit: bool = True  # False: only look up and finish what the ledger holds (status --refresh)
    compact_every: float = 5.0
    # Called with what the run would send, before anything is; False stops the run unsent.
    confirm: Callable[[Estimate], bool] | None = None
    task_timeout: float = DEFAULT_TASK_TIMEOUT  # seconds from submission to a terminal status
    lost_after: float = LOST_AFTER  # the denials that make a task `lost` span at least this
    max_image_mb: float = DEFAULT_MAX_IMAGE_MB
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT

    def download_options(self) -> DownloadOptions:
        return DownloadOptions(max_bytes=int(self.max_image_mb * 1024 * 1024), deadline=self.download_timeout)


@dataclass
class Summary:
    planned: int = 0
    submitted: int = 0
    adopted: int = 0
    completed: int = 0
    failed: int = 0
    running: int = 0
    unconfirmed: int = 0  # recorded as `submitting`: the next run asks the service first
    timed_out: int = 0  # not finished by --task-timeout
    missing_images: int = 0  # completed upstream, but no verified file on disk
    download_unreachable: int = 0  # downloads that failed because the host was unreachable/slow
    download_refused: int = 0  # downloads refused (not an image, damaged, too large, URL dead)
    not_submitted: int = 0
    held_back: int = 0  # stopped by --max-tasks/--max-credits or an unknown price during the run
    refusal: str = ""  # why submitting stopped, when it did
    unresolved: int = 0  # the service gave no usable answer
    unreachable: bool = False
    credits_estimated: float = 0
    credits_used: float = 0
    downloads: int = 0
    requests: int = 0
    throttled: int = 0  # 429 answers: the gate slowed down instead of failing
    warnings: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)  # one line per planned task not done: what to do

    def as_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        # The estimate is at the prices seen: null when one past a float makes it so; what the
        # tasks used is added exactly (runner/jsonnum.py).
        out["credits_estimated"] = figure(self.credits_estimated)
        out["credits_used"] = figure(self.credits_used)
        return out
