"""gpt-oss's ``python`` tool: model-written Python in a bubblewrap sandbox, served over MCP.

Each run executes in a fresh sandbox (:mod:`gptoss_lab.builtin.sandbox`): every namespace
unshared (so no network and no view of the host's processes), a read-only view of the system
and the interpreter, one fresh writable work folder, rlimits on processes, file size, open
files, memory and CPU, output read with a byte cap, a limit on concurrent runs, and the whole
sandbox killed on timeout. Without a working ``bwrap`` the server refuses to start.

Run: ``python -m gptoss_lab.builtin.python_tool --port P`` (``lab.serve(builtin_tools=["python"])``
does it). See ``docs/builtin-tools.md`` for what is and is not contained.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from gptoss_lab.builtin import sandbox
from gptoss_lab.builtin.sandbox import Limits, Result
from gptoss_lab.errors import SandboxError

__all__ = ["Limits", "build_server", "main", "run_code"]


_RUNNERS: dict[Limits, sandbox.Runner] = {}
_RUNNERS_LOCK = threading.Lock()


def _runner(limits: Limits) -> sandbox.Runner:
    """One runner (and so one limit on concurrent runs) per set of limits, even when threads race to make it."""
    with _RUNNERS_LOCK:
        if limits not in _RUNNERS:
            _RUNNERS[limits] = sandbox.Runner(limits)
        return _RUNNERS[limits]


def run_code(code: str, limits: Limits | None = None) -> str:
    """Run ``code`` in a sandbox; return its stdout, stderr and how it ended, as the model sees it."""
    limits = limits or Limits()
    return _report(_runner(limits).run(code), limits)


def _report(result: Result, limits: Limits) -> str:
    if result.busy:
        return (f"[not run: {limits.concurrent} other runs were still in progress after "
                f"{limits.timeout:g} s; try again]")
    parts = [_text(result.stdout, result.stdout_dropped)]
    if result.stderr.strip():
        parts.append(_text(result.stderr, result.stderr_dropped))
    code = result.returncode
    if result.timed_out or code == -signal.SIGXCPU:
        parts.append(f"[stopped: the code ran past the {limits.timeout:g} s time limit]")
    elif code == -signal.SIGKILL or (b"MemoryError" in result.stderr and code != 0):
        parts.append(f"[stopped: the code went past the {limits.memory_mb} MiB memory limit]")
    elif b"File too large" in result.stderr and code != 0:
        parts.append(f"[stopped: the code wrote a file past the {limits.file_mb} MiB file size limit]")
    elif code:
        parts.append(f"[exit status {code}]")
    text = "\n".join(p.rstrip("\n") for p in parts if p.strip())
    return text or "[no output: print() what you want to see]"


def _text(data: bytes, dropped: int) -> str:
    text = data.decode(errors="replace")
    return text + f"\n[... {dropped} more bytes cut]" if dropped else text


INSTRUCTIONS = """Use this tool to execute Python code in your chain of thought. The code will not be shown to \
the user. This tool should be used for internal reasoning, but not for code that is intended to be visible to \
the user (e.g. when creating plots, tables, or files).

When you send a message containing Python code to python, it will be executed in a fresh, stateless Python \
process. python will respond with the output of the execution or time out after {timeout:g} seconds. Files can \
be written only in the working directory, which is deleted after each run. Internet access for this session is \
disabled."""


def build_server(limits: Limits) -> Any:
    """The MCP server vLLM connects to: named ``python``, one tool ``python(code)``.

    As in harmony's python namespace, the tool's schema is left out of the prompt
    (``include_in_prompt: False``): the model sends plain code to ``python``.
    """
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(name="python", title="gptoss-lab python in a bubblewrap sandbox",
                       instructions=INSTRUCTIONS.format(timeout=limits.timeout))

    @server.tool(name="python", description="Run Python code and return its output.",
                 meta={"include_in_prompt": False}, structured_output=False)
    async def python(code: str) -> str:
        import anyio

        return await anyio.to_thread.run_sync(run_code, code, limits)

    @server.tool(name="cleanup_session", description="Nothing to clean: every run is stateless.",
                 meta={"include_in_prompt": False}, structured_output=False)
    def cleanup_session() -> str:
        return "ok"

    return server


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the sandboxed python tool over MCP (SSE transport, ``/TOKEN/sse``); refuse without bwrap."""
    from gptoss_lab.builtin.auth import serve_sse

    parser = argparse.ArgumentParser(prog="python -m gptoss_lab.builtin.python_tool",
                                     description="gpt-oss's python tool, each run in a bubblewrap sandbox.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds of wall time per run")
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb, help="address-space limit per run")
    parser.add_argument("--concurrent", type=int, default=Limits.concurrent, help="runs at the same time")
    args = parser.parse_args(argv)
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb, concurrent=args.concurrent)
    try:
        sandbox.require()
    except SandboxError as err:
        sys.exit(f"python tool server: {err}")
    sandbox.remove_stale_folders()
    print(f"python tool server: each run in a bubblewrap sandbox; limits {limits}", flush=True)
    serve_sse(build_server(limits), args.host, args.port)


if __name__ == "__main__":
    main()
