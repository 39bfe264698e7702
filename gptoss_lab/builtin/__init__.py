"""gpt-oss's built-in ``browser`` and ``python`` tools as MCP servers for vLLM's ``--tool-server``.

- :mod:`gptoss_lab.builtin.browser`: search, open and find over a local folder of documents.
- :mod:`gptoss_lab.builtin.python_tool`: guarded Python in a child process (NOT a security boundary).
- :mod:`gptoss_lab.builtin.servers`: start, call and stop them; the value of ``--tool-server``.

``lab.serve(builtin_tools=["browser", "python"])`` starts them with vLLM. See ``docs/builtin-tools.md``.
"""

from gptoss_lab.builtin.servers import TOOL_NAMES, ToolServer, ToolServers, start

__all__ = ["TOOL_NAMES", "ToolServer", "ToolServers", "start"]
