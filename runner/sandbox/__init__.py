"""A local stand-in for the aireiter gpt_image_2 API: one core, served in process (httpx
transport) or over loopback (ASGI on uvicorn)."""

from runner.sandbox.core import Sandbox
from runner.sandbox.faults import Faults
from runner.sandbox.wire import SandboxResponse

__all__ = ["Faults", "Sandbox", "SandboxResponse"]
