"""Serve an MCP server over SSE only to callers that know the per-start token.

vLLM's ``--tool-server host:port`` opens ``http://host:port/sse`` with ``mcp.client.sse`` and
sends no headers of ours when it lists the tools (vLLM 0.32,
``vllm/entrypoints/mcp/tool_server.py``), so the token cannot be a header. It is a path
component instead: the server answers only ``/TOKEN/sse`` and ``/TOKEN/messages/``, and the lab
gives vLLM ``--tool-server host:port/TOKEN``. The token reaches the server in the environment
(``GPTOSS_LAB_TOOL_TOKEN``), never on its command line.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

TOKEN_ENV = "GPTOSS_LAB_TOOL_TOKEN"
"""The environment variable that carries a tool server's token."""


def new_token() -> str:
    """A fresh token for one start of a tool server."""
    return secrets.token_urlsafe(24)


def serve_sse(server: Any, host: str, port: int) -> None:
    """Run ``server`` (an MCP ``MCPServer``) over SSE under ``/TOKEN/``; make a token if none was given."""
    given = os.environ.pop(TOKEN_ENV, "")
    token = given or new_token()
    if not given:
        print(f"listening for --tool-server {host}:{port}/{token}", flush=True)
    server.run("sse", host=host, port=port, sse_path=f"/{token}/sse", message_path=f"/{token}/messages/")
