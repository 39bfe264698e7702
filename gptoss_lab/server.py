"""The lifecycle of one vLLM server: start, wait for, inspect and stop it. Taught in ``notebooks/01_serve.ipynb``.

The notebook entry points that choose, build and attach (``lab.serve``, ``lab.connect``) live in
:mod:`gptoss_lab.launch`; the pidfiles of running servers in :mod:`gptoss_lab.registry`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn

import httpx

from gptoss_lab import active, api, process, registry, startup
from gptoss_lab.config import pidfile_path, private_dir, server_log_path, url_host
from gptoss_lab.diagnose import diagnose
from gptoss_lab.errors import PortError, ServerError
from gptoss_lab.redact import redact

if TYPE_CHECKING:
    from gptoss_lab.builtin.servers import ToolServers

_NOISE = re.compile(r"\s*(nanobind: |- leaked (instance|type|function)|- \.\.\. skipped remainder"
                    r"|See https://nanobind\.readthedocs)")
"""Lines that say nothing about the server (triton's nanobind reports leaks at exit), left out of log tails."""

@dataclass
class VLLMServer:
    """A vLLM OpenAI-compatible server the lab started (or attached to).

    Use :func:`gptoss_lab.serve` rather than building one by hand.
    """

    model: str
    """Model path or Hugging Face id passed to vLLM."""
    args: Sequence[str] = ()
    """Extra vLLM flags."""
    host: str = "127.0.0.1"
    port: int = 8000
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables added to the server's environment."""
    subcommand: Sequence[str] = ("serve",)
    """vLLM CLI subcommand: ``("serve",)`` or ``("launch", "render")``."""
    api_key: str = field(default="", repr=False)
    """Key clients must send; vLLM gets it in its environment (``VLLM_API_KEY``), never on its command line."""
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    attached: bool = False
    """True when the lab found this server running and did not start it."""
    served_name: str = ""
    """The id ``/v1/models`` reports, cached by :meth:`model_id`."""
    tools: ToolServers | None = None
    """The built-in tool servers started with it (``serve(builtin_tools=...)``); stopped with it."""
    death: str = field(default="", repr=False)
    """Why the server died, once :meth:`check_alive` found it dead (it says so again on every call)."""

    @property
    def url(self) -> str:
        """The API base URL, ``http://host:port/v1``."""
        return f"http://{url_host(self.host)}:{self.port}/v1"

    @property
    def root(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def argv(self) -> list[str]:
        """The command line that starts this server (no key: that travels in the environment).

        ``vllm serve`` gets ``--allowed-origins []`` unless the args say otherwise: the lab's clients
        are not web pages, so no browser origin may call it (vLLM releases before 0.32 allowed ``*``).
        """
        argv = [sys.executable, "-m", "gptoss_lab.vllm_cli", *self.subcommand, self.model]
        argv += ["--host", self.host, "--port", str(self.port), *self.args]
        if tuple(self.subcommand) == ("serve",) and not any(a.startswith("--allowed-origins") for a in self.args):
            argv += ["--allowed-origins", "[]"]
        return argv

    def environment(self) -> dict[str, str]:
        """The server's environment: the lab's, the vocabulary folder, ``env``, and the key as ``VLLM_API_KEY``."""
        from gptoss_lab import vocab

        status = vocab.ensure()
        env = {**os.environ, vocab.ENV: str(status.folder), **self.env}  # an explicit env= wins
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.pop("VLLM_API_KEY", None)  # only the lab's key guards the lab's server
        if self.api_key:
            env["VLLM_API_KEY"] = self.api_key
        return env

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> VLLMServer:
        """Start the server process group (returns at once; call :meth:`wait`)."""
        if self.proc is not None:
            raise ServerError("This server was already started; call stop() first.")
        self.check_port()
        self.death = ""
        env = self.environment()
        self.log_path = self.log_path or server_log_path(self.port)
        self.claim_port()  # atomic: a second start on this port, in any process, is refused from here on
        try:
            private_dir(self.log_path.parent)
            if self.log_path.exists() and self.log_path.stat().st_size:
                # Keep the previous run's log (one generation) instead of truncating it.
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
            self.log_path.write_text("")
            self.proc = process.spawn(self.argv(), env=env, log_path=self.log_path)
        finally:
            if self.proc is None:  # the spawn failed: drop the claim
                registry.remove(self.port)
            else:  # the claim becomes the record
                registry.write(self.proc.pid, model=self.model, url=self.url, port=self.port, log=self.log_path)
        return self

    @property
    def pidfile(self) -> Path:
        """The record of this server's port in the registry (:mod:`gptoss_lab.registry`)."""
        return pidfile_path(self.port)

    def claim_port(self) -> None:
        """Claim the port in the registry for this start, or raise :class:`PortError` naming who holds it."""
        claim = registry.claim(self.port, self.log_path or server_log_path(self.port))
        if claim is not None:
            raise PortError(self._port_claimed_message(claim))

    @contextmanager
    def running(self, timeout: float = 900.0, *, progress: bool = False) -> Iterator[VLLMServer]:
        """Start the server, wait until it answers, and stop it when the block ends, however it ends.

        For servers that live only as long as one job (nano's build, a test); ``lab.serve()``'s
        server outlives the cell that started it and is stopped by ``stop()`` or the kernel's exit.
        """
        self.start()
        try:
            self.wait(timeout=timeout, progress=progress)
            yield self
        finally:
            self.stop(grace=5.0)

    def watch_until_signal(self) -> int:
        """Check the server every second until SIGINT or SIGTERM, then stop it; for commands that serve in a terminal.

        Returns 0 after a signal, 1 when the server died first (the cause is printed to stderr).
        """
        stops = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stops)
        try:
            while signal.sigtimedwait(stops, 1.0) is None:
                self.check_alive()
        except ServerError as error:
            print(error, file=sys.stderr)
            return 1
        finally:
            self.stop()
        return 0

    def check_port(self) -> None:
        """Raise :class:`PortError` unless ``port`` is a port number nothing listens on and no lab start has claimed.

        The message names the port and what to do: connect to the vLLM server already there, stop it,
        or pick another port.
        """
        if isinstance(self.port, bool) or not isinstance(self.port, int):
            raise PortError(f"port={self.port!r} is not a port number: pass an int from 1 to 65535, for example "
                            "`lab.serve(port=8001)`.")
        if not 1 <= self.port <= 65535:
            raise PortError(f"port={self.port} is out of range: a TCP port is a number from 1 to 65535 (below 1024 "
                            "only root may bind). Pass one such as `lab.serve(port=8001)`.")
        if process.port_in_use(self.host, self.port):
            raise PortError(self._port_taken_message())
        claim = registry.live_claim(self.port)
        if claim is not None:
            raise PortError(self._port_claimed_message(claim))

    def wait(self, timeout: float = 900.0, *, progress: bool = True) -> VLLMServer:
        """Block until ``/health`` answers, showing the start-up phase.

        Raises:
            ServerError: the process exited, or ``timeout`` seconds passed. The
                process group is stopped first and the log's last lines are shown.
        """
        show = startup.printer() if progress else (lambda _p, _t: None)
        started = time.monotonic()
        offset, phase = 0, startup.STARTING
        with httpx.Client(timeout=2.0) as http:
            while True:
                elapsed = time.monotonic() - started
                offset, phase = self._advance_phase(offset, phase)
                show(phase, elapsed)
                code = self.proc.poll() if self.proc is not None else None
                if code is not None:
                    self._fail(f"vLLM exited with code {code} while starting on port {self.port}.")
                if self._healthy(http):
                    show(startup.READY, elapsed)
                    return self
                if elapsed > timeout:
                    self._fail(
                        f"vLLM was not ready after {timeout:.0f} s (last phase: {phase}). "
                        "A first start compiles kernels and may download weights; raise the "
                        "limit with `lab.serve(timeout=...)` or GPTOSS_LAB_START_TIMEOUT."
                    )
                time.sleep(0.5)

    def check_alive(self) -> None:
        """Raise :class:`ServerError` if the vLLM process this lab started has died since it started.

        The message names the cause (the signal or exit code, and what vLLM's log says) and
        the log's last lines; the rest of the server's process group is stopped first, so
        nothing of it is left running. An attached server (not ours) is not checked.
        """
        if self.death:
            raise ServerError(self.death)
        if self.proc is None:
            return
        code = self.proc.poll()
        if code is None:
            return
        pid = self.proc.pid
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
            how = f"was killed by {name}" + (" (as the kernel's out-of-memory killer does)" if -code == 9 else "")
        else:
            how = f"exited with code {code}"
        try:
            self._fail(f"The vLLM server on port {self.port} (pid {pid}) {how}; it no longer serves {self.url}. "
                       "Start it again (`lab.serve()` or `gptoss-lab serve`).")
        except ServerError as error:
            self.death = str(error)
            raise

    def stop(self, grace: float = 15.0) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after ``grace`` seconds; then its tool servers."""
        if active.get() is self:  # lab.current(), lab.chat() ... must not keep pointing at a stopped server
            active.clear()
        if self.tools is not None:
            self.tools.stop()
        if self.proc is None:
            return
        process.stop_group(self.proc.pid, grace=grace, proc=self.proc)
        pid, self.proc = self.proc.pid, None
        self.served_name = ""
        registry.remove(self.port, pid=pid)  # never drops the record of another start's server

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def warmup(self) -> None:
        """Send one short chat request so lazy initialisation happens now, not on a learner's call."""
        body = {
            "model": self.model_id(),
            "messages": [{"role": "user", "content": "Warm-up request from gptoss-lab."}],
            "max_tokens": 64,
        }
        response = httpx.post(f"{self.url}/chat/completions", json=body, headers=api.auth_headers(self.api_key),
                              timeout=120.0)
        if response.status_code != 200:
            # Some failures only show on the first request (vLLM loads the harmony vocabulary lazily).
            self._fail(f"vLLM started, but its first request failed ({response.status_code}): "
                       f"{response.text[:300]}", extra=response.text)

    def model_id(self) -> str:
        """The model name clients must send (the first id of ``/v1/models``, asked once)."""
        if not self.served_name:
            self.served_name = self.models()[0]
        return self.served_name

    # -- inspection ----------------------------------------------------------------
    def logs(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the server log, keys and tokens hidden."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = [line for line in self.log_path.read_text(errors="replace").splitlines() if not _NOISE.match(line)]
        return redact("\n".join(text[-lines:]), [self.api_key])

    def is_running(self) -> bool:
        """True while the server answers ``/health``."""
        with httpx.Client(timeout=2.0) as http:
            return self._healthy(http)

    def models(self) -> list[str]:
        """Return the model ids the server serves (``GET /v1/models``)."""
        return [m["id"] for m in api.models(self.url, self.api_key)]

    # -- internals -----------------------------------------------------------------
    def _healthy(self, http: httpx.Client) -> bool:
        try:
            return http.get(f"{self.root}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def _advance_phase(self, offset: int, phase: str) -> tuple[int, str]:
        if self.log_path is None or not self.log_path.exists():
            return offset, phase
        with self.log_path.open("rb") as f:
            f.seek(offset)
            chunk = f.read().decode(errors="replace")
            offset = f.tell()
        return offset, startup.advance(chunk, phase)

    def _fail(self, headline: str, extra: str = "") -> NoReturn:
        tail = self.logs(25)
        self.stop(grace=5.0)
        full = self.log_path.read_text(errors="replace") if self.log_path else ""
        found = diagnose(f"{extra}\n{full}")
        parts = [headline]
        if found:
            parts.append(f"{found.title}. {found.advice}\nvLLM said: {found.evidence}")
        parts.append(f"Last lines of {self.log_path}:\n{tail}")
        raise ServerError(redact("\n\n".join(parts), [self.api_key]))

    def _port_taken_message(self) -> str:
        try:
            names = ", ".join(m["id"] for m in api.models(self.url, timeout=2.0))
            return (
                f"A vLLM server is already running at {self.url} (serving {names}). Use it with "
                "`lab.connect()`, stop it with `gptoss-lab stop --port "
                f"{self.port}`, or start another on a free port: `lab.serve(port=...)`."
            )
        except Exception:
            return (
                f"Port {self.port} on {self.host} is taken by a program that is not a vLLM "
                f"server. Free it (`ss -ltnp 'sport = :{self.port}'` shows who holds it) or "
                "start on another port: `lab.serve(port=...)` or GPTOSS_LAB_PORT."
            )

    def _port_claimed_message(self, claim: registry.Record) -> str:
        who = f"pid {claim['pid']}" if claim.get("pid") else f"by the process {claim.get('owner')}"
        return (
            f"Port {self.port} is taken: the lab is already starting a vLLM server there ({who}, log: "
            f"{claim.get('log')}); it does not answer yet. Wait for it and use it (`lab.connect(\"{self.url}\")`), "
            f"stop it with `gptoss-lab stop --port {self.port}`, or start on a free port: `lab.serve(port=...)`."
        )
