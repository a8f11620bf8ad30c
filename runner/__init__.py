"""imgbatch: declarative, reproducible batches for the aireiter gpt_image_2 API."""

import sys

__version__ = "0.1.0"

# httpx's package imports its own command-line tool (httpx._main), which loads rich, pygments
# and click's full stack when they are installed: ~40 ms of every run and status before the
# first request, for a tool imgbatch never calls. httpx replaces the tool by a stub when that
# import fails, and a None entry in sys.modules makes it fail without searching for it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
