"""Start, check, call and stop the built-in tool servers as child processes of the lab.

Each server is ``python -m gptoss_lab.builtin.<module>`` in its own process group (see
:mod:`gptoss_lab.process`), logging to the lab's server log folder. Each start gets a fresh
token (:mod:`gptoss_lab.builtin.auth`); vLLM is told where they are with
``--tool-server host:port/TOKEN,host:port/TOKEN`` (:meth:`ToolServers.flag`); it connects to
``http://host:port/TOKEN/sse`` and names each harmony tool namespace after the MCP server's name.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gptoss_lab import process
from gptoss_lab.aio import run_sync
from gptoss_lab.builtin import auth
from gptoss_lab.config import private_dir
from gptoss_lab.errors import ServerError, UnknownToolError

TOOL_NAMES = ("browser", "python")
"""The built-in tools the lab can serve: harmony's namespaces of the same names."""
_MODULES = {"browser": "gptoss_lab.builtin.browser", "python": "gptoss_lab.builtin.python_tool"}


@dataclass
class ToolServer:
    """One running tool server (an MCP server over SSE)."""

    name: str
    """``browser`` or ``python``: the MCP server name, which vLLM uses as the harmony namespace."""
    host: str
    port: int
    log_path: Path
    proc: Any = None
    token: str = field(default="", repr=False)
    """The per-start secret path component; only callers that know it are answered."""

    @property
    def endpoint(self) -> str:
        """``host:port``, for messages (no token)."""
        return f"{self.host}:{self.port}"

    @property
    def address(self) -> str:
        """``host:port/TOKEN``, as ``--tool-server`` takes it."""
        return f"{self.endpoint}/{self.token}" if self.token else self.endpoint

    @property
    def url(self) -> str:
        """The SSE endpoint an MCP client connects to (it holds the token: keep it out of logs)."""
        return f"http://{self.address}/sse"

    def logs(self, lines: int = 20) -> str:
        """The last ``lines`` lines of the server's log."""
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def check(self) -> None:
        """Raise :class:`ServerError` if the server process has exited."""
        code = self.proc.poll() if self.proc is not None else "never started"
        if code is not None:
            raise ServerError(
                f"The {self.name} tool server ({self.endpoint}) has exited (exit code {code}), so calls to "
                f"{self.name} fail. Restart it with the model server: `server.stop()` then "
                f"`lab.serve(builtin_tools=[...])`. Last lines of {self.log_path}:\n{self.logs()}"
            )

    def call(
        self, tool: str, arguments: dict[str, Any] | None = None, *, session: str = "lab", timeout: float = 120.0
    ) -> str:
        """Call ``tool`` on this server through a real MCP client, as vLLM does; return its text.

        Calls with the same ``session`` share browsing state (cursors), as one vLLM request's
        calls do: vLLM sends its request id as the ``x-session-id`` header, and so does this.

        Raises:
            ServerError: the server has died or does not answer.
        """
        self.check()
        try:
            return run_sync(_call(self.url, tool, arguments or {}, session, timeout))
        except Exception as err:
            self.check()
            raise ServerError(f"The {self.name} tool server at {self.endpoint} did not answer {tool!r}: "
                              f"{_first_cause(err)}. Its log: {self.log_path}") from err

    def stop(self, grace: float = 5.0) -> None:
        """Stop the server's process group."""
        if self.proc is not None:
            process.stop_group(self.proc.pid, grace=grace, proc=self.proc)
            self.proc = None


async def _call(url: str, tool: str, arguments: dict[str, Any], session_id: str, timeout: float) -> str:
    from mcp import ClientSession
    from mcp.client.sse import sse_client

    async with sse_client(url=url, headers={"x-session-id": session_id}) as streams, ClientSession(*streams) as session:
        await session.initialize()
        result = await asyncio.wait_for(session.call_tool(tool, arguments), timeout)
        return "\n".join(getattr(part, "text", "") for part in result.content)


def _first_cause(err: BaseException) -> str:
    while getattr(err, "exceptions", None):  # an ExceptionGroup from the MCP client's task group
        err = err.exceptions[0]  # type: ignore[attr-defined]
    return f"{type(err).__name__}: {err}"


@dataclass
class ToolServers:
    """The tool servers started together for one vLLM server."""

    servers: list[ToolServer] = field(default_factory=list)

    def __getitem__(self, name: str) -> ToolServer:
        for server in self.servers:
            if server.name == name:
                return server
        raise KeyError(f"No {name!r} tool server was started; start it with lab.serve(builtin_tools=[{name!r}]).")

    def flag(self) -> list[str]:
        """The vLLM flags that connect it to these servers: ``["--tool-server", "h:p,h:p"]``."""
        return ["--tool-server", ",".join(s.address for s in self.servers)] if self.servers else []

    def check(self) -> None:
        """Raise :class:`ServerError` if any tool server has exited."""
        for server in self.servers:
            server.check()

    def stop(self) -> None:
        """Stop every tool server (safe to call twice)."""
        for server in self.servers:
            server.stop()


def start(
    names: str | Sequence[str],
    *,
    corpus: str | Path | Sequence[str | Path] | None = None,
    python_timeout: float = 30.0,
    python_memory_mb: int = 1024,
    host: str = "127.0.0.1",
    timeout: float = 60.0,
    log_dir: Path | None = None,
) -> ToolServers:
    """Start the named tool servers and wait until each accepts connections (its index built).

    Args:
        names: any of ``"browser"`` and ``"python"`` (one name or a list). ``python`` runs model-written code
            in a bubblewrap sandbox and is started only when named.
        corpus: folder(s) or file(s) the browser indexes (default: the lab's README, docs
            and notebooks).
        python_timeout, python_memory_mb: limits for each run of the python tool.
        host: where the servers listen (keep it loopback: the token travels in clear text).
        timeout: seconds to wait for each server to answer.
        log_dir: where logs go (default: the lab's server log folder).

    Raises:
        UnknownToolError: a name that is not in TOOL_NAMES.
        ServerError: a server that exited or did not answer in time
            (every server started is stopped first).
        SandboxError: ``python`` was named and bubblewrap is missing or cannot run here.
    """
    names = [names] if isinstance(names, str) else list(names)
    unknown = [n for n in names if n not in TOOL_NAMES]
    if unknown:
        raise UnknownToolError(f"Unknown built-in tool(s) {unknown}: choose from {list(TOOL_NAMES)}, "
                          "e.g. lab.serve(builtin_tools=['browser']).")
    if log_dir is None:
        from gptoss_lab.config import log_dir as server_log_dir

        log_dir = server_log_dir()
    if "python" in names:
        from gptoss_lab.builtin import sandbox

        sandbox.require()
    started = ToolServers()
    try:
        for name in dict.fromkeys(names):  # in order, once each
            port = process.free_port(host)
            argv = [sys.executable, "-m", _MODULES[name], "--host", host, "--port", str(port)]
            if name == "browser" and corpus is not None:
                folders = [corpus] if isinstance(corpus, (str, Path)) else list(corpus)
                argv += [arg for folder in folders for arg in ("--corpus", str(folder))]
            if name == "python":
                argv += ["--timeout", str(python_timeout), "--memory-mb", str(python_memory_mb)]
            server = ToolServer(name, host, port, log_dir / f"tool-{name}-{port}.log", token=auth.new_token())
            private_dir(server.log_path.parent)
            server.log_path.write_text("")
            env = {**os.environ, "PYTHONUNBUFFERED": "1", auth.TOKEN_ENV: server.token}
            server.proc = process.spawn(argv, env=env, log_path=server.log_path)
            started.servers.append(server)
        for server in started.servers:
            _wait(server, timeout)
    except BaseException:
        started.stop()
        raise
    return started


def _wait(server: ToolServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not process.port_in_use(server.host, server.port):
        server.check()
        if time.monotonic() > deadline:
            raise ServerError(f"The {server.name} tool server did not listen on {server.endpoint} within "
                              f"{timeout:.0f} s. Last lines of {server.log_path}:\n{server.logs()}")
        time.sleep(0.2)
