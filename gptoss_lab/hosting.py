"""Serve the model to many learners: ``gptoss-lab host``. Guide: ``docs/hosting.md``.

The server binds to the network (``0.0.0.0`` by default) with a generated API key that
travels to vLLM in its environment (``VLLM_API_KEY``), never on a command line; a
concurrency limit (``--max-num-seqs``) keeps one GPU's batch at a size it serves well;
the join instructions are printed once, on the host's terminal.
"""

from __future__ import annotations

import secrets
import socket
import sys
from collections.abc import Sequence
from typing import TextIO

from gptoss_lab.config import default_cache_dir, private_dir, settings, url_host
from gptoss_lab.errors import SettingsError
from gptoss_lab.launch import serve
from gptoss_lab.server import VLLMServer

GPU_MAX_NUM_SEQS = 64
"""Requests one GPU runs at once by default: issue 14 measured 20b on one H100 at 64 users (median
TTFT 4.2 s, TPOT 10.5 ms, vLLM 0.26, dummy weights); more wait in vLLM's queue instead of slowing everyone."""
CPU_MAX_NUM_SEQS = 4
"""The same on CPU (gpt-oss-nano on a few cores)."""


def default_max_num_seqs() -> int:
    """The concurrency limit for this machine: :data:`GPU_MAX_NUM_SEQS` with a GPU, :data:`CPU_MAX_NUM_SEQS` without."""
    from gptoss_lab.hardware import has_gpu

    return GPU_MAX_NUM_SEQS if has_gpu() else CPU_MAX_NUM_SEQS


def host_args(max_num_seqs: int, extra_args: Sequence[str] = ()) -> list[str]:
    """The vLLM flags host mode adds to the preset's: the concurrency limit, unless ``extra_args`` sets one."""
    if max_num_seqs < 1:
        raise SettingsError(f"--max-num-seqs {max_num_seqs} must be 1 or more (requests vLLM runs at once).")
    if any(arg.startswith("--max-num-seqs") for arg in extra_args):
        return list(extra_args)
    return ["--max-num-seqs", str(max_num_seqs), *extra_args]


def learner_url(host: str, port: int, public_url: str | None = None) -> str:
    """The URL learners use: ``public_url``, else this machine's name for a wildcard bind, else ``host``."""
    if public_url:
        return public_url.rstrip("/")
    name = socket.getfqdn() if host in ("0.0.0.0", "::") else host
    return f"http://{url_host(name)}:{port}/v1"


def join_instructions(url: str, api_key: str, model: str) -> str:
    """What a learner sets before opening the notebooks (the key included: show it only to the host)."""
    return "\n".join([
        f"Serving {model} for learners at {url}",
        "Learners set, before starting Jupyter (or in the first cell, with os.environ):",
        f"  export GPTOSS_LAB_BASE_URL={url}",
        f"  export GPTOSS_LAB_API_KEY={api_key}",
        "  export GPTOSS_LAB_ATTACH_ONLY=1",
        f"  export GPTOSS_LAB_MODEL={model}",
        f"Check it from a learner's machine first: gptoss-lab verify {url}",
        "This key is shown once, here: hand it out by a channel you trust. Attach-only, 05 samples through "
        "this server (/v1/completions, token ids); 08 (built-in tools) needs a server of the learner's own "
        "(a GPU, or gpt-oss-nano on a CPU machine): see docs/hosting.md.",
    ])


def start(model: str | None = None, *, host: str = "0.0.0.0", port: int | None = None,
          max_num_seqs: int | None = None, api_key: str | None = None,
          extra_args: Sequence[str] = ()) -> VLLMServer:
    """Start the model for many learners and return the running server (its key in ``server.api_key``).

    Args:
        model: as for :func:`gptoss_lab.serve` (default ``GPTOSS_LAB_MODEL``).
        host: address to bind; ``0.0.0.0`` listens on every interface.
        port: default ``GPTOSS_LAB_PORT``.
        max_num_seqs: requests vLLM runs at once (default :func:`default_max_num_seqs`).
        api_key: default ``GPTOSS_LAB_API_KEY``, else a new random key.
        extra_args: more vLLM flags.
    """
    cfg = settings()
    if cfg.attach_only:
        raise SettingsError("GPTOSS_LAB_ATTACH_ONLY=1 is set in this shell, but host mode starts a server. "
                            "Unset it (`unset GPTOSS_LAB_ATTACH_ONLY`) on the host's machine.")
    key = api_key or cfg.api_key or secrets.token_urlsafe(24)
    limit = max_num_seqs if max_num_seqs is not None else default_max_num_seqs()
    return serve(model, host=host, port=port or cfg.port, api_key=key, extra_args=host_args(limit, extra_args))


def announce(server: VLLMServer, public_url: str | None = None, out: TextIO | None = None) -> None:
    """Write the join instructions to ``out`` (stdout); the key itself only when ``out`` is a terminal.

    Printed to a file or a pipe (a log), the key is written instead to a file only its owner can
    read, and the instructions name that file.
    """
    out = out or sys.stdout
    key = server.api_key
    if not out.isatty():
        path = private_dir(default_cache_dir() / "host") / f"key-{server.port}"
        path.write_text(key + "\n")
        path.chmod(0o600)
        key = f"$(cat {path})"
        print(f"(the output is not a terminal, so the key is not printed: it is in {path}, readable by you only)",
              file=out)
    url = learner_url(server.host, server.port, public_url)
    print(join_instructions(url, key, server.model_id()), file=out)
    print(f"(log: {server.log_path}; Ctrl-C stops the server)", file=out, flush=True)


def host(model: str | None = None, *, host: str = "0.0.0.0", port: int | None = None,
         max_num_seqs: int | None = None, public_url: str | None = None) -> int:
    """Start the model for learners, print the join instructions, serve until Ctrl-C; return an exit code."""
    server = start(model, host=host, port=port, max_num_seqs=max_num_seqs)
    announce(server, public_url)
    return server.watch_until_signal()
