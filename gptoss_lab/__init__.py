"""gptoss-lab: run OpenAI's gpt-oss models with vLLM, from a notebook.

Notebooks do ``import gptoss_lab as lab``. Importing the package is cheap: vLLM,
torch and Jupyter are imported only by the functions that need them.
"""

from gptoss_lab.client import (
    Result,
    ToolCallRequest,
    async_client,
    base_url,
    chat,
    client,
    model_name,
    reasoning_of,
    respond,
)
from gptoss_lab.config import Settings, settings
from gptoss_lab.conformance import Verification, verify
from gptoss_lab.describe import describe_calls, describe_finish
from gptoss_lab.display import StreamResult, show_stream
from gptoss_lab.doctor import Report, doctor, install_commands
from gptoss_lab.errors import AttachError, LabError, NanoBuildError, ServerError, VocabError, WrongKeyError
from gptoss_lab.hardware import has_gpu
from gptoss_lab.launch import connect, current, serve, stop_hint
from gptoss_lab.loop import ToolLoopError, ToolRun, Transcript, model_turn, run_calls, run_tools, scripted_model
from gptoss_lab.models import is_nano, resolve_model
from gptoss_lab.registry import orphans, stop_port
from gptoss_lab.server import VLLMServer
from gptoss_lab.tools import Tool, run_call, tool
from gptoss_lab.version import __version__

_LAZY = ("agents", "bench", "builtin", "examples", "harmony", "sampling", "widgets")
"""Modules imported on first use (``lab.harmony``, ...): they load pydantic, harmony, the Agents SDK, vLLM
or ipywidgets."""


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return importlib.import_module(f"gptoss_lab.{name}")
    raise AttributeError(f"module 'gptoss_lab' has no attribute {name!r}")

__all__ = [
    "AttachError",
    "LabError",
    "NanoBuildError",
    "Report",
    "Result",
    "ServerError",
    "Settings",
    "StreamResult",
    "Tool",
    "ToolCallRequest",
    "ToolLoopError",
    "ToolRun",
    "Transcript",
    "VLLMServer",
    "Verification",
    "VocabError",
    "WrongKeyError",
    "__version__",
    "async_client",
    "base_url",
    "bench",
    "builtin",
    "chat",
    "client",
    "connect",
    "current",
    "describe_calls",
    "describe_finish",
    "doctor",
    "examples",
    "has_gpu",
    "install_commands",
    "is_nano",
    "model_name",
    "model_turn",
    "orphans",
    "reasoning_of",
    "resolve_model",
    "respond",
    "run_call",
    "run_calls",
    "run_tools",
    "scripted_model",
    "serve",
    "settings",
    "show_stream",
    "stop_hint",
    "stop_port",
    "tool",
    "verify",
]
