"""Attach to a vLLM server that is already running, and return the active server (attaching when none is).

It sits just above :mod:`gptoss_lab.server` because the request helpers (:mod:`gptoss_lab.client`,
:mod:`gptoss_lab.loop`) attach on first use; :mod:`gptoss_lab.launch` re-exports both functions as
notebook entry points.
"""

from __future__ import annotations

import sys
import warnings

from gptoss_lab import active, parsers, reach, registry
from gptoss_lab.config import host_and_port, settings
from gptoss_lab.errors import AttachError, LabWarning, ServerError, WrongKeyError
from gptoss_lab.server import VLLMServer


def connect(url: str | None = None, *, api_key: str | None = None) -> VLLMServer:
    """Attach to a vLLM server that is already running (``GPTOSS_LAB_BASE_URL``).

    Warns (:class:`~gptoss_lab.errors.LabWarning`) when the server does not return tool
    calls: started without ``--tool-call-parser openai --enable-auto-tool-choice``.

    Raises:
        WrongKeyError: the server refuses the API key (HTTP 401).
        AttachError: attach-only mode (``GPTOSS_LAB_ATTACH_ONLY=1``) and no usable server there; the
            message names the URL and what it got (refused, DNS failure, not an OpenAI server).
        ServerError: nothing answers at that URL.
    """
    cfg = settings()
    url = url or cfg.url
    host, port = host_and_port(url)
    server = VLLMServer(model="", host=host, port=port, api_key=api_key or cfg.api_key, attached=True)
    found = reach.probe(url, server.api_key)
    if found.outcome == "unauthorized":
        raise WrongKeyError(found.message())
    if not found.ok and cfg.attach_only:
        raise AttachError(f"{found.message()} Attach-only mode (GPTOSS_LAB_ATTACH_ONLY=1) never starts a "
                          "server of its own; unset it to let `lab.serve()` start one on this machine.")
    if not found.ok:
        raise ServerError(
            f"No vLLM server answers at {url} ({found.got}). Start one with `lab.serve()` in a notebook or "
            "`gptoss-lab serve` in a terminal, or set GPTOSS_LAB_BASE_URL to the server's URL."
        )
    server.model = str(found.models[0]["id"])
    server.log_path = registry.logged_path(port)
    if parsers.tool_calls_missing(server.url, server.model, server.api_key):
        warnings.warn(parsers.flags_message(server.url), LabWarning, stacklevel=2)
    for record in registry.orphans():
        if record.get("port") == port:
            print(
                f"Note: the server at {url} was started by a process that has exited (pid "
                f"{record['owner']}), probably a dead kernel. It keeps running until you stop it: "
                f"`lab.stop_port({port})` or `gptoss-lab stop --port {port}`.",
                file=sys.stderr,
            )
    active.set(server)
    return server


def current() -> VLLMServer:
    """Return the server the last :func:`~gptoss_lab.serve` or :func:`connect` returned (attaching when none did)."""
    server = active.get()
    return server if server is not None else connect()
