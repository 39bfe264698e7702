"""Start, wait for, attach to and stop a vLLM server. Taught in ``notebooks/01_serve.ipynb``."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from gptoss_lab import process
from gptoss_lab.builtin.servers import ToolServers
from gptoss_lab.config import default_cache_dir, private_dir, url_host
from gptoss_lab.diagnose import diagnose
from gptoss_lab.errors import LabWarning, PortError, ServerError
from gptoss_lab.redact import redact

# (phase shown to the user, a log line that marks its start)
PHASES: list[tuple[str, str]] = [
    ("importing vLLM", r"version \d+\.\d+"),
    ("resolving the model", r"Resolved architecture|Initializing a V1 LLM engine|non-default args"),
    ("loading weights", r"Loading weights|Starting to load model"),
    ("compiling (torch.compile)", r"torch\.compile takes|Compiling a graph|Dynamo bytecode"),
    ("allocating the KV cache", r"KV cache|GPU KV cache size|CPU KV cache"),
    ("capturing CUDA graphs", r"Capturing CUDA graph|Graph capturing"),
    ("starting the HTTP server", r"Starting vLLM (API )?server|Available routes"),
]

_NOISE = re.compile(r"\s*(nanobind: |- leaked (instance|type|function)|- \.\.\. skipped remainder"
                    r"|See https://nanobind\.readthedocs)")
"""Lines that say nothing about the server (triton's nanobind reports leaks at exit), left out of log tails."""


def log_dir() -> Path:
    """Return the folder where server logs and pidfiles are kept."""
    return default_cache_dir() / "servers"


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
    proc: object | None = None
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
        return getattr(self.proc, "pid", None)

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
        self._claim_port()  # atomic: a second start on this port, in any process, is refused from here on
        try:
            self.log_path = self.log_path or log_dir() / f"vllm-{self.port}.log"
            private_dir(self.log_path.parent)
            if self.log_path.exists() and self.log_path.stat().st_size:
                # Keep the previous run's log (one generation) instead of truncating it.
                self.log_path.replace(self.log_path.with_name(self.log_path.name + ".1"))
            self.log_path.write_text("")
            self.proc = process.spawn(self.argv(), env=env, log_path=self.log_path)
        finally:
            self._write_pidfile()  # the claim becomes the record (or, if the spawn failed, is dropped)
        return self

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
        claim = _live_claim(self._pidfile())
        if claim is not None:
            raise PortError(self._port_claimed_message(claim))

    def wait(self, timeout: float = 900.0, *, progress: bool = True) -> VLLMServer:
        """Block until ``/health`` answers, showing the start-up phase.

        Raises:
            ServerError: the process exited, or ``timeout`` seconds passed. The
                process group is stopped first and the log's last lines are shown.
        """
        show = _phase_printer() if progress else (lambda _p, _t: None)
        started = time.monotonic()
        offset, phase = 0, "starting"
        with httpx.Client(timeout=2.0) as http:
            while True:
                elapsed = time.monotonic() - started
                offset, phase = self._advance_phase(offset, phase)
                show(phase, elapsed)
                code = self.proc.poll() if self.proc is not None else None  # type: ignore[attr-defined]
                if code is not None:
                    self._fail(f"vLLM exited with code {code} while starting on port {self.port}.")
                if self._healthy(http):
                    show("ready", elapsed)
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
        code = self.proc.poll() if self.proc is not None else None  # type: ignore[attr-defined]
        if code is None:
            return
        pid = self.proc.pid  # type: ignore[attr-defined]
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
        global _CURRENT
        if _CURRENT is self:  # lab.current(), lab.chat() ... must not keep pointing at a stopped server
            _CURRENT = None
        if self.tools is not None:
            self.tools.stop()
        if self.proc is None:
            return
        process.stop_group(self.proc.pid, grace=grace, proc=self.proc)  # type: ignore[attr-defined,arg-type]
        pid, self.proc = self.proc.pid, None  # type: ignore[attr-defined]
        self.served_name = ""
        if _read_record(self._pidfile()).get("pid") == pid:  # never drop the record of another start's server
            self._pidfile().unlink(missing_ok=True)

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
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        response = httpx.post(f"{self.url}/chat/completions", json=body, headers=headers, timeout=120.0)
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
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        response = httpx.get(f"{self.url}/models", headers=headers, timeout=5.0)
        response.raise_for_status()
        return [m["id"] for m in response.json()["data"]]

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
        order = [name for name, _ in PHASES]
        for name, pattern in PHASES:
            ahead = phase not in order or order.index(name) > order.index(phase)
            if ahead and re.search(pattern, chunk):
                phase = name  # phases only move forward, whatever order the log lines come in
        return offset, phase

    def _fail(self, headline: str, extra: str = "") -> None:
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
            models = httpx.get(f"{self.url}/models", timeout=2.0).json()["data"]
            names = ", ".join(m["id"] for m in models)
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

    def _port_claimed_message(self, claim: dict[str, object]) -> str:
        who = f"pid {claim['pid']}" if claim.get("pid") else f"by the process {claim.get('owner')}"
        return (
            f"Port {self.port} is taken: the lab is already starting a vLLM server there ({who}, log: "
            f"{claim.get('log')}); it does not answer yet. Wait for it and use it (`lab.connect(\"{self.url}\")`), "
            f"stop it with `gptoss-lab stop --port {self.port}`, or start on a free port: `lab.serve(port=...)`."
        )

    def _pidfile(self) -> Path:
        return log_dir() / f"vllm-{self.port}.json"

    def _claim_port(self) -> None:
        """Create the port's pidfile exclusively (no pid yet); a stale one (its server gone) is replaced."""
        path = self._pidfile()
        private_dir(path.parent)
        record = json.dumps({"pid": None, "owner": os.getpid(), "owner_identity": process.identity(os.getpid()),
                             "port": self.port, "log": str(self.log_path or log_dir() / f"vllm-{self.port}.log")})
        for _ in range(3):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                claim = _live_claim(path)
                if claim is not None:
                    raise PortError(self._port_claimed_message(claim)) from None
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(record)
            return
        raise PortError(self._port_claimed_message({"owner": "another"}))

    def _write_pidfile(self) -> None:
        if self.pid is None:
            self._pidfile().unlink(missing_ok=True)
            return
        record = {
            "pid": self.pid, "owner": os.getpid(), "model": self.model, "url": self.url,
            "port": self.port, "log": str(self.log_path),
            "identity": process.identity(self.pid) if self.pid else None,  # start time and command line
            "owner_identity": process.identity(os.getpid()),
        }
        private_dir(self._pidfile().parent)
        self._pidfile().write_text(json.dumps(record))


def _phase_printer() -> Callable[[str, float], None]:
    """Return a callback that shows the start-up phase.

    In Jupyter: a live progress bar widget. On a terminal: one line rewritten in place.
    Elsewhere (CI logs): one line per phase change.
    """
    names = ["starting", *(name for name, _ in PHASES), "ready"]
    from gptoss_lab.display import in_jupyter

    if in_jupyter():
        try:
            import ipywidgets as widgets
            from IPython.display import display

            bar = widgets.IntProgress(min=0, max=len(names) - 1, description="vLLM")
            label = widgets.HTML()
            display(widgets.HBox([bar, label]))

            def show_widget(phase: str, elapsed: float) -> None:
                bar.value = names.index(phase) if phase in names else bar.value
                bar.bar_style = "success" if phase == "ready" else "info"
                label.value = f"<code>{phase}</code> &nbsp; {elapsed:.0f} s"

            return show_widget
        except ImportError:
            pass
    last: dict[str, object] = {"phase": None}
    live = sys.stderr.isatty()

    def show(phase: str, elapsed: float) -> None:
        if live:
            step = names.index(phase) if phase in names else 0
            bar = "#" * step + "." * (len(names) - 1 - step)
            print(f"\r  vLLM [{bar}] {phase:<28} {elapsed:5.0f} s", end="", file=sys.stderr, flush=True)
            if phase == "ready":
                print(file=sys.stderr)
        elif phase != last["phase"]:
            print(f"  vLLM: {phase} ({elapsed:.0f} s)", file=sys.stderr, flush=True)
        last["phase"] = phase

    return show


# -- the notebook-facing entry points -------------------------------------------------
_CURRENT: VLLMServer | None = None


def resolve_model(model: str) -> str:
    """Map ``auto`` to ``nano`` (no GPU) or ``openai/gpt-oss-20b`` (GPU)."""
    from gptoss_lab.hardware import has_gpu

    if model == "auto":
        return "openai/gpt-oss-20b" if has_gpu() else "nano"
    return model


def _split_url(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    return parsed.host or "127.0.0.1", parsed.port or (443 if parsed.scheme == "https" else 80)


def _records() -> list[dict[str, object]]:
    out = []
    for path in sorted(log_dir().glob("vllm-*.json")) if log_dir().exists() else []:
        try:
            out.append({**json.loads(path.read_text()), "pidfile": str(path)})
        except (OSError, ValueError):
            continue
    return out


def running() -> list[dict[str, object]]:
    """Return the records of every lab-started server still running (``pid``, ``port``, ``model``, ...)."""
    return [record for record in _records() if _still_ours(record)]


def orphans() -> list[dict[str, object]]:
    """Return lab-started servers still running whose starting process (a kernel) has died.

    Each record has ``pid``, ``port``, ``model``, ``url`` and ``log``. Stop one with
    :func:`stop_port` or ``gptoss-lab stop --port PORT``.
    """
    found = []
    for record in _records():
        pid, owner = int(record.get("pid") or 0), int(record.get("owner") or 0)
        if not pid:
            continue  # a start in progress (its claim on the port), or a stale claim the next start replaces
        if not _still_ours(record):
            Path(str(record["pidfile"])).unlink(missing_ok=True)  # stale record: gone, or its PID reused
            continue
        owner_gone = not owner or not process.same_process(owner, record.get("owner_identity") or {})
        if pid and owner_gone:
            found.append(record)
    return found


def _read_record(path: Path) -> dict[str, object]:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _live_claim(path: Path) -> dict[str, object] | None:
    """The record in ``path`` if it still holds its port: its server runs, or its starter is spawning it now."""
    record = _read_record(path)
    if record.get("pid"):
        return record if _still_ours(record) else None
    owner, recorded = int(record.get("owner") or 0), record.get("owner_identity")  # type: ignore[call-overload]
    return record if owner and isinstance(recorded, dict) and process.same_process(owner, recorded) else None


def _still_ours(record: dict[str, object]) -> bool:
    """True if the record's server runs: same PID, start time and command line as recorded at its start."""
    pid = int(record.get("pid") or 0)  # type: ignore[call-overload]
    recorded = record.get("identity")
    return bool(pid) and isinstance(recorded, dict) and process.same_process(pid, recorded) \
        and process.group_alive(pid)


def stop_port(port: int, grace: float = 15.0) -> bool:
    """Stop the lab-started server on ``port`` (found through its pidfile).

    Returns:
        True if a server was stopped, False if the lab has no running server there.
    """
    for record in _records():
        if int(record.get("port") or 0) != port or not record.get("pid"):  # type: ignore[call-overload]
            continue  # another port, or a start in progress that has no process yet
        if _still_ours(record):
            process.stop_group(int(record["pid"]), grace=grace)  # type: ignore[call-overload]
            Path(str(record["pidfile"])).unlink(missing_ok=True)
            return True
        Path(str(record["pidfile"])).unlink(missing_ok=True)  # stale: never signal a PID that was reused
    return False


def stop_hint(port: int | None = None) -> str:
    """How to stop the server on ``port`` (default: the configured one), whoever started it.

    ``server.stop()`` stops only a server this kernel started, and ``gptoss-lab stop``
    without ``--port`` only orphans; ``--port`` stops any server the lab started, in this
    kernel or elsewhere (another notebook, ``gptoss-lab lab``, the test suite).
    """
    from gptoss_lab.config import settings

    port = port or _split_url(settings().url)[1]
    return (f"`gptoss-lab stop --port {port}` in a terminal or `lab.stop_port({port})` in Python stops it "
            "if the lab started it (this kernel, another notebook, `make lab`, the test suite); a server "
            "started with `vllm serve` stops with Ctrl-C in its terminal")


def _logged_path(port: int) -> Path | None:
    """The log of a lab-started server on ``port``, from its pidfile (for attached servers)."""
    record = log_dir() / f"vllm-{port}.json"
    try:
        log = Path(json.loads(record.read_text())["log"])
    except (OSError, ValueError, KeyError):
        return None
    return log if log.exists() else None


def connect(url: str | None = None, *, api_key: str | None = None) -> VLLMServer:
    """Attach to a vLLM server that is already running (``GPTOSS_LAB_BASE_URL``).

    Warns (:class:`~gptoss_lab.errors.LabWarning`) when the server does not return tool
    calls: started without ``--tool-call-parser openai --enable-auto-tool-choice``.

    Raises:
        ServerError: nothing answers at that URL.
    """
    from gptoss_lab.config import settings

    global _CURRENT
    cfg = settings()
    url = url or cfg.url
    host, port = _split_url(url)
    server = VLLMServer(model="", host=host, port=port, api_key=api_key or cfg.api_key, attached=True)
    if not server.is_running():
        raise ServerError(
            f"No vLLM server answers at {url}. Start one with `lab.serve()` in a notebook or "
            "`gptoss-lab serve` in a terminal, or set GPTOSS_LAB_BASE_URL to the server's URL."
        )
    server.model = server.models()[0]
    server.log_path = _logged_path(port)
    from gptoss_lab import parsers

    if parsers.tool_calls_missing(server.url, server.model, server.api_key):
        warnings.warn(parsers.flags_message(server.url), LabWarning, stacklevel=2)
    for record in orphans():
        if record.get("port") == port:
            print(
                f"Note: the server at {url} was started by a process that has exited (pid "
                f"{record['owner']}), probably a dead kernel. It keeps running until you stop it: "
                f"`lab.stop_port({port})` or `gptoss-lab stop --port {port}`.",
                file=sys.stderr,
            )
    _CURRENT = server
    return server


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
) -> VLLMServer:
    """Return a running server: attach to one at the configured URL, or start one.

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

    Raises:
        PortError: ``port`` is not a port number, or something holds it; raised before anything is started.
        ServerError: vLLM did not start (the message says why and shows its log's last lines).

    Taught in ``notebooks/01_serve.ipynb``.
    """
    import secrets

    from gptoss_lab import presets
    from gptoss_lab.config import settings

    global _CURRENT
    cfg = settings()
    if host is None and port is None:
        try:
            attached = connect(cfg.url, api_key=api_key or cfg.api_key)
        except ServerError:
            pass
        else:
            from gptoss_lab.models import served_name

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
    from gptoss_lab.models import NANO_MODELS

    name = resolve_model(model or cfg.model)
    preset = presets.for_machine(name)
    if name in NANO_MODELS:
        from gptoss_lab import nano

        name = str(nano.path() if name == "nano" else nano.plain_path())
    tools = None
    if builtin_tools:
        from gptoss_lab import builtin

        tools = builtin.start(builtin_tools, corpus=corpus)
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
    _CURRENT = server
    return server


def current() -> VLLMServer:
    """Return the server the last :func:`serve` or :func:`connect` returned."""
    if _CURRENT is None:
        return connect()
    return _CURRENT
