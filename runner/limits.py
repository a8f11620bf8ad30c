"""Bounds on what one invocation may expand to. Kept apart from the modules that enforce
them so the click layer can show the defaults without importing the schema machinery."""

from __future__ import annotations

# A 183 KB manifest can ask for 19.5 M tasks (5,000 prompts x 39 sizes x repeat 100); its
# plan would need gigabytes. Above this many tasks in one invocation, imgbatch refuses.
DEFAULT_MAX_PLAN_TASKS = 1_000_000

# Where the click layer leaves the --max-plan-tasks value for the command modules (click's
# context meta is shared by all nested contexts).
PLAN_LIMIT_KEY = "imgbatch.max_plan_tasks"
