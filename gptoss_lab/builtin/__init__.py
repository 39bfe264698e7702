"""gpt-oss's built-in ``browser`` and ``python`` tools as MCP servers for vLLM's ``--tool-server``.

- :mod:`gptoss_lab.builtin.browser`: search, open and find over a local folder of documents.
- :mod:`gptoss_lab.builtin.python_tool`: Python in a bubblewrap sandbox (:mod:`gptoss_lab.builtin.sandbox`).
- :mod:`gptoss_lab.builtin.auth`: the per-start token that guards both servers.
- :mod:`gptoss_lab.builtin.servers`: start, call and stop them; the value of ``--tool-server``.
- :mod:`gptoss_lab.builtin.steps`: a built-in tool request's steps, readably.

``lab.serve(builtin_tools=["browser", "python"])`` starts them with vLLM. See ``docs/builtin-tools.md``.
"""

from pathlib import Path

from gptoss_lab.builtin.servers import TOOL_NAMES, ToolServer, ToolServers, start
from gptoss_lab.builtin.steps import BuiltinTranscript, transcript

SAMPLE_CORPUS = Path(__file__).resolve().parent / "corpus"
"""Three short pages about gpt-oss, searched in ``notebooks/08_builtin_tools.ipynb``.

gpt-oss-nano learned what the browser shows for that notebook's searches in exactly
these pages; the nano cache key covers this folder, so an edited page means a rebuild."""

__all__ = ["SAMPLE_CORPUS", "TOOL_NAMES", "BuiltinTranscript", "ToolServer", "ToolServers", "start", "transcript"]
