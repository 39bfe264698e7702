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
from gptoss_lab.doctor import Report, doctor, install_commands
from gptoss_lab.errors import LabError, NanoBuildError, ServerError, VocabError
from gptoss_lab.hardware import has_gpu
from gptoss_lab.server import VLLMServer, connect, current, orphans, resolve_model, serve, stop_port
from gptoss_lab.tools import Tool, run_call, tool

__version__ = "0.1.0"

__all__ = [
    "LabError",
    "NanoBuildError",
    "Report",
    "Result",
    "ServerError",
    "Settings",
    "Tool",
    "ToolCallRequest",
    "VLLMServer",
    "VocabError",
    "__version__",
    "async_client",
    "base_url",
    "chat",
    "client",
    "connect",
    "current",
    "doctor",
    "has_gpu",
    "install_commands",
    "model_name",
    "orphans",
    "reasoning_of",
    "resolve_model",
    "respond",
    "run_call",
    "serve",
    "settings",
    "stop_port",
    "tool",
]
