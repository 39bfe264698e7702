"""gpt-oss's ``python`` tool: guarded Python in a throw-away child process, served over MCP.

**This is a guard against accidents, NOT a security boundary.** Do not enable it on a shared
machine or for untrusted users. Each run of model-written code gets:

- a separate process (``python -I -B``) in its own process group, killed after ``timeout`` seconds
  of wall time (and by ``RLIMIT_CPU`` after as many seconds of CPU);
- ``RLIMIT_AS`` (address space) of ``memory_mb`` MiB, so a huge allocation raises ``MemoryError``;
- a fresh temporary working directory (also ``HOME`` and ``TMPDIR``), deleted afterwards;
- a scrubbed environment: no proxies, no API keys, ``PATH=/usr/bin:/bin``;
- no network: a new, empty network namespace (``unshare -rn``) where Linux allows it, and in any
  case a Python audit hook that refuses socket connects, binds and DNS look-ups;
- an audit hook that refuses writes, deletes and renames outside the working directory, and
  starting other programs.

Audit hooks (PEP 578) are not a sandbox: code can still read any file the lab's user can read,
and native code (``ctypes``) bypasses them. Use a container or a VM for real isolation.

Run: ``python -m gptoss_lab.builtin.python_tool --port P`` (``lab.serve(builtin_tools=["python"])``
does it). See ``docs/builtin-tools.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

MAX_OUTPUT = 20_000
"""Characters of stdout and stderr returned to the model, each."""

# Runs inside the child before the model's code (read from stdin). Audit hooks cannot be removed.
GUARD = r'''
import os, sys
_ROOT = os.path.realpath(os.getcwd())
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_NETWORK = {"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.gethostbyname",
            "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg"}
_PROGRAMS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
             "os.forkpty", "pty.spawn"}
_PATH_CHANGES = {"os.remove", "os.rmdir", "os.mkdir", "os.rename", "os.truncate", "os.chmod",
                 "os.chown", "os.symlink", "os.link", "os.utime", "shutil.rmtree", "shutil.move",
                 "shutil.copyfile", "shutil.copytree"}

def _inside(path):
    if isinstance(path, int):
        return True  # an already open descriptor
    full = os.path.realpath(os.path.join(_ROOT, os.fsdecode(path)))
    return full == _ROOT or full.startswith(_ROOT + os.sep)

def _guard(event, args):
    if event in _NETWORK:
        raise PermissionError(f"network access is disabled in the python tool ({event})")
    if event in _PROGRAMS:
        raise PermissionError(f"starting programs is disabled in the python tool ({event})")
    if event == "open" and args and args[0] is not None:
        path, mode, flags = (list(args) + [None, None])[:3]
        writes = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS)
        if writes and not _inside(path):
            raise PermissionError(f"writing outside the working directory is refused: {path}")
    elif event in _PATH_CHANGES:
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
        outside = [p for p in paths if not _inside(p)]
        if outside:
            raise PermissionError(f"changing files outside the working directory is refused: {outside[0]}")

sys.addaudithook(_guard)
del _guard
_code = sys.stdin.read()
sys.stdin = open(os.devnull)
exec(compile(_code, "<python>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
'''


@dataclass(frozen=True)
class Limits:
    """What one run of model-written code may use."""

    timeout: float = 30.0
    """Seconds of wall time before the process group is killed."""
    memory_mb: int = 1024
    """Address-space limit (``RLIMIT_AS``) in MiB."""


@functools.cache
def network_namespace() -> bool:
    """True when ``unshare -rn`` can give a child an empty network namespace here."""
    unshare = shutil.which("unshare")
    if not sys.platform.startswith("linux") or unshare is None:
        return False
    try:
        return subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def isolation() -> str:
    """One line that says which guards are in force (shown in the server's instructions and log)."""
    network = ("a new network namespace (unshare -rn) plus an audit hook on sockets" if network_namespace()
               else "an audit hook on sockets only (unshare -rn is not available here)")
    return f"network blocked by {network}; writes outside the working directory refused by an audit hook"


def _child_limits(limits: Limits) -> None:
    """In the child, before exec: address-space and CPU limits, no core files."""
    memory = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = int(limits.timeout) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_code(code: str, limits: Limits = Limits()) -> str:
    """Run ``code`` under the guards; return its stdout, stderr and how it ended, as the model sees it."""
    workdir = tempfile.mkdtemp(prefix="gptoss-python-")
    env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}
    argv = [sys.executable, "-I", "-B", "-c", GUARD]
    if network_namespace():
        argv = [shutil.which("unshare") or "unshare", "-rn", *argv]
    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir, env=env,
            start_new_session=True, preexec_fn=functools.partial(_child_limits, limits),
        )
        timed_out = False
        try:
            out, err = proc.communicate(code.encode(), timeout=limits.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(out, err, proc.returncode, timed_out, limits)


def _report(out: bytes, err: bytes, code: int, timed_out: bool, limits: Limits) -> str:
    parts = [_clip(out.decode(errors="replace"))]
    if err.strip():
        parts.append(_clip(err.decode(errors="replace")))
    if timed_out or code == -signal.SIGXCPU:
        parts.append(f"[stopped: the code ran past the {limits.timeout:g} s time limit]")
    elif code == -signal.SIGKILL or (b"MemoryError" in err and code != 0):
        parts.append(f"[stopped: the code went past the {limits.memory_mb} MiB memory limit]")
    elif code:
        parts.append(f"[exit status {code}]")
    text = "\n".join(p.rstrip("\n") for p in parts if p.strip())
    return text or "[no output: print() what you want to see]"


def _clip(text: str) -> str:
    if len(text) <= MAX_OUTPUT:
        return text
    return text[:MAX_OUTPUT] + f"\n[... {len(text) - MAX_OUTPUT} more characters cut]"


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

    server = MCPServer(name="python", title="gptoss-lab guarded python (NOT a security boundary)",
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
    """Serve the guarded python tool over MCP (SSE transport, ``/sse``)."""
    parser = argparse.ArgumentParser(prog="python -m gptoss_lab.builtin.python_tool",
                                     description="gpt-oss's python tool: guarded, NOT a security boundary.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds of wall time per run")
    parser.add_argument("--memory-mb", type=int, default=Limits.memory_mb, help="address-space limit per run")
    args = parser.parse_args(argv)
    limits = Limits(timeout=args.timeout, memory_mb=args.memory_mb)
    print(f"python tool server (guarded, NOT a security boundary): {isolation()}; "
          f"limits {limits.timeout:g} s, {limits.memory_mb} MiB", flush=True)
    build_server(limits).run("sse", host=args.host, port=args.port)


if __name__ == "__main__":
    main()
