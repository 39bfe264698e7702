"""The notebook entry points: serve a model (building nano, starting tool servers), attach, say how to stop.

``lab.serve()`` resolves the model key, builds gpt-oss-nano when asked for it, starts the built-in
tool servers and the vLLM server, and makes it the active server. Taught in ``notebooks/01_serve.ipynb``.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from gptoss_lab import active, builtin, presets
from gptoss_lab.attach import connect, current
from gptoss_lab.config import host_and_port, settings
from gptoss_lab.errors import AttachError, ServerError, WrongKeyError
from gptoss_lab.models import NANO_MODELS, resolve_model, served_name
from gptoss_lab.server import VLLMServer

__all__ = ["connect", "current", "resolve_model", "serve", "stop_hint"]


def stop_hint(port: int | None = None) -> str:
    """How to stop the server on ``port`` (default: the configured one), whoever started it.

    ``server.stop()`` stops only a server this kernel started, and ``gptoss-lab stop``
    without ``--port`` only orphans; ``--port`` stops any server the lab started, in this
    kernel or elsewhere (another notebook, ``gptoss-lab lab``, the test suite).
    """
    port = port or host_and_port(settings().url)[1]
    return (f"`gptoss-lab stop --port {port}` in a terminal or `lab.stop_port({port})` in Python stops it "
            "if the lab started it (this kernel, another notebook, `make lab`, the test suite); a server "
            "started with `vllm serve` stops with Ctrl-C in its terminal")


def _own_server_needed(names: Sequence[str]) -> str:
    """Why attach-only mode cannot serve ``builtin_tools=names``, and where the notebook that asks can run."""
    return (
        f"builtin_tools={list(names)} needs a vLLM server of your own, started with the lab's tool servers: vLLM "
        "takes --tool-server only at start, the tool servers run beside it, and the lab calls them through "
        "`server.tools`, which a server started elsewhere (a workshop host's) does not give you. Attach-only mode "
        "(GPTOSS_LAB_ATTACH_ONLY=1, from a workshop's join instructions) never starts a server, so nothing was "
        "started. Run this where you can start one (a GPU machine of your own for gpt-oss-20b, or gpt-oss-nano on "
        "any CPU machine) with GPTOSS_LAB_ATTACH_ONLY unset: `unset GPTOSS_LAB_ATTACH_ONLY` before starting "
        "Jupyter, or `os.environ.pop('GPTOSS_LAB_ATTACH_ONLY')` before this cell. See docs/hosting.md."
    )


def serve(
    model: str | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    api_key: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float | None = None,
    warmup: bool = True,
    progress: bool = True,
    builtin_tools: Sequence[str] = (),
    corpus: str | Path | Sequence[str | Path] | None = None,
    weights: Literal["real", "dummy"] = "real",
) -> VLLMServer:
    """Return a running server: attach to one at the configured URL, or start one.

    With ``GPTOSS_LAB_ATTACH_ONLY=1`` it only attaches, and fails at once (``AttachError``)
    when nothing usable answers at ``GPTOSS_LAB_BASE_URL``, or when ``builtin_tools`` asks for
    tool servers (they start only with a server of one's own).

    Args:
        model: ``nano``, ``openai/gpt-oss-20b``, ``openai/gpt-oss-120b``, a local
            checkpoint, or ``auto`` (default: ``GPTOSS_LAB_MODEL``).
        host, port: where to bind (default ``GPTOSS_LAB_HOST``/``GPTOSS_LAB_PORT``).
        api_key: required for a non-loopback ``host``; generated when missing.
        extra_args: more vLLM flags, appended to the preset's.
        timeout: seconds to wait for readiness (``GPTOSS_LAB_START_TIMEOUT``).
        warmup: send one short request before returning, so the first real
            request does not pay for lazy initialisation.
        progress: show the start-up phase while waiting (a progress bar in Jupyter); the
            server panel passes False and shows the log tail itself.
        builtin_tools: gpt-oss's built-in tools to serve through the Responses API: ``"browser"``
            (search over ``corpus``) and/or ``"python"`` (runs model-written code in a bubblewrap
            sandbox, only when named; without ``bwrap`` it raises SandboxError). Their MCP servers start first and are
            passed to vLLM as ``--tool-server``; stopping the server stops them.
        corpus: folder(s) the browser searches (default: the lab's README, docs and notebooks).
        weights: ``"dummy"`` serves the model's real architecture with random weights and
            downloads nothing (:mod:`gptoss_lab.dummy`): answers are noise, while speed,
            memory and start time are real. A capacity check before downloading 20b/120b.

    Raises:
        AttachError: attach-only mode, and no usable server at the URL or ``builtin_tools`` named.
        PortError: ``port`` is not a port number, or something holds it; raised before anything is started.
        ServerError: vLLM did not start (the message says why and shows its log's last lines).

    Taught in ``notebooks/01_serve.ipynb``.
    """
    cfg = settings()
    if cfg.attach_only and builtin_tools:
        raise AttachError(_own_server_needed(builtin_tools))
    if cfg.attach_only or (host is None and port is None):
        try:
            attached = connect(cfg.url, api_key=api_key or cfg.api_key)
        except WrongKeyError:
            raise  # a server answers there: starting another would not help
        except ServerError:
            if cfg.attach_only:
                raise
        else:
            expected = served_name(resolve_model(model or cfg.model))
            if model and attached.model != expected:
                print(
                    f"Attached to the server already running at {attached.url}, which serves "
                    f"{attached.model}, not {expected}. To serve {expected} too, start it on another "
                    f"port (`lab.serve({model!r}, port=8001)`), or stop the running one first: "
                    f"{stop_hint(attached.port)}.",
                    file=sys.stderr,
                )
            if builtin_tools:
                print(
                    f"Attached to the server already running at {attached.url}; builtin_tools="
                    f"{list(builtin_tools)} were not started (vLLM takes --tool-server only at start). "
                    "Start a server of your own with them: `lab.serve(..., port=8001, builtin_tools=[...])`.",
                    file=sys.stderr,
                )
            return attached
    host = host or cfg.host
    port = cfg.port if port is None else port
    key = api_key or cfg.api_key
    if host not in ("127.0.0.1", "localhost", "::1") and not key:
        key = secrets.token_urlsafe(24)
        print(f"Binding to {host} exposes the server: generated API key {key[:4]}...{key[-2:]} "
              "(read it from `server.api_key`).", file=sys.stderr)
    VLLMServer("", host=host, port=port).check_port()  # before building nano or starting tool servers
    name = resolve_model(model or cfg.model)
    preset = presets.for_machine(name)
    if weights == "dummy":
        from gptoss_lab import dummy

        print(dummy.NOTE, file=sys.stderr)
        extra_args = [*dummy.serve_args(name), *extra_args]
        name = str(dummy.model_folder(name))
    elif name in NANO_MODELS:
        from gptoss_lab import nano  # imported only when asked for: it loads the builder's modules

        name = str(nano.path() if name == "nano" else nano.plain_path())
    tools = builtin.start(builtin_tools, corpus=corpus) if builtin_tools else None
    server = VLLMServer(
        name, args=[*preset.flags(), *(tools.flag() if tools else []), *extra_args], host=host, port=port,
        env=dict(preset.env), api_key=key, tools=tools,
    )
    try:
        server.start()
        server.wait(timeout=timeout or cfg.start_timeout, progress=progress)
        if warmup:
            server.warmup()
    except BaseException:
        server.stop(grace=5.0)
        raise
    active.set(server)
    return server
