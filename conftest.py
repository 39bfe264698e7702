"""Shared fixtures for the unit tests and the notebook lane.

One real vLLM server serving gpt-oss-nano is started for the whole session,
when the first test or notebook needs it, and stopped at the end, pass or fail.
Notebooks find it through ``GPTOSS_LAB_BASE_URL``, which ``lab.serve()`` attaches to.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

_SERVER = None
_ATTACHED = False
"""True when the suite runs against a server it did not start (``GPTOSS_LAB_TEST_SERVER``)."""

ATTACH_ONLY = "GPTOSS_LAB_ATTACH_ONLY"
NEEDS_OWN_SERVER = {
    "08_builtin_tools.ipynb": "it needs the lab's tool servers, which start only with a server of its own (vLLM "
                              "takes --tool-server only at start); attach-only, its server cell stops with an "
                              "AttachError saying so",
}
"""Notebooks that cannot run attach-only, and why: with ``GPTOSS_LAB_ATTACH_ONLY=1`` they run with it unset
(a server of their own), and the session says so in its header, on their result line and in its summary."""
_LEARNER_SETTING: dict[str, str] = {}
"""The attach-only value taken from the environment while a :data:`NEEDS_OWN_SERVER` notebook runs."""


def _attach_only() -> bool:
    from gptoss_lab.config import settings

    return settings().attach_only


def _needs_own_server(item: pytest.Item | pytest.TestReport) -> bool:
    """Whether this is a notebook that cannot run attach-only, in a session that runs attach-only."""
    return Path(str(getattr(item, "path", None) or getattr(item, "fspath", ""))).name in NEEDS_OWN_SERVER \
        and (bool(_LEARNER_SETTING) or _attach_only())


def _start_server():  # -> gptoss_lab.VLLMServer
    global _SERVER, _ATTACHED
    if _SERVER is None:
        import gptoss_lab as lab
        from gptoss_lab import process

        model = os.environ.get("GPTOSS_LAB_TEST_MODEL", "nano")  # `make test-gpu` sets a real model
        attach = os.environ.get("GPTOSS_LAB_TEST_SERVER")
        if attach:
            # A server started beforehand (with --enable-log-requests --enable-log-outputs for the
            # fallback check): a GPU runner starts it once and runs the suite in several parts.
            _SERVER, _ATTACHED = lab.connect(attach), True
            if os.environ.get("GPTOSS_LAB_TEST_SERVER_LOG"):
                _SERVER.log_path = Path(os.environ["GPTOSS_LAB_TEST_SERVER_LOG"])
        else:
            # The suite is the host: with GPTOSS_LAB_ATTACH_ONLY=1 (the nano-plain lane) it still starts the
            # session server, and the notebooks, which inherit the setting, attach to it as learners do.
            learner = os.environ.pop(ATTACH_ONLY, None)
            try:
                # Output logging lets each notebook be checked for requests nano does not know.
                _SERVER = lab.serve(model, port=process.free_port(),
                                    extra_args=["--enable-log-requests", "--enable-log-outputs"])
            finally:
                if learner is not None:
                    os.environ[ATTACH_ONLY] = learner
        os.environ["GPTOSS_LAB_MODEL"] = model
        os.environ["GPTOSS_LAB_PORT"] = str(_SERVER.port)
        os.environ["GPTOSS_LAB_BASE_URL"] = _SERVER.url
    return _SERVER


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Start the shared server before the first notebook runs (nbmake items take no fixtures)."""
    if any(str(getattr(item, "path", "")).endswith(".ipynb") for item in items):
        _start_server()


_MARKS: dict[str, object] = {}

# Markers from what a test needs, so `make test-fast` can leave out everything that needs vLLM or nano.
_FIXTURE_MARKS = {"nano_server": ("server", "nano", "vllm"), "nano_dir": ("nano",), "untrained_nano": ("vllm",)}
"""Fixture -> the markers every test that uses it (directly or through another fixture) gets."""


def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark each test by the expensive fixtures it uses; a notebook needs the shared server."""
    names = set(getattr(item, "fixturenames", ()))
    marks = {m for fixture, added in _FIXTURE_MARKS.items() if fixture in names for m in added}
    if str(getattr(item, "path", "")).endswith(".ipynb"):
        marks |= {"server", "nano", "vllm"}
    for name in sorted(marks - {m.name for m in item.iter_markers()}):
        item.add_marker(name)



def _drift_check_state() -> str | None:
    """Why the drift check cannot run for this session's server, or None when it runs."""
    if os.environ.get("GPTOSS_LAB_TEST_MODEL", "nano") != "nano":
        return "off"
    if os.environ.get("GPTOSS_LAB_DRIFT_CHECK") == "off":
        return "off"
    if _SERVER is not None and _SERVER.log_path is None:
        return (
            f"the drift check cannot read the log of the server at {_SERVER.url} (attached, started elsewhere). "
            "Start it with --enable-log-requests --enable-log-outputs and name its log in "
            "GPTOSS_LAB_TEST_SERVER_LOG, or set GPTOSS_LAB_DRIFT_CHECK=off to run without the check."
        )
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Fail a notebook that got nano's fallback reply: it made a request the script lacks.

    nbmake only fails on exceptions, and nano answers an unknown request with a
    polite fallback sentence, so without this a notebook whose request drifted
    from ``script.json`` would pass while showing the learner nothing useful. It
    reads Chat and Responses outputs from the server's log and in-process harmony
    answers from the answer log (:mod:`gptoss_lab.drift`). It runs for scripted nano;
    for any other model it is off, and says so at the end of the session.
    """
    outcome = yield
    if not str(getattr(item, "path", "")).endswith(".ipynb") or _SERVER is None:
        return
    from gptoss_lab import drift

    state = _drift_check_state()
    if state == "off":
        return
    log = _SERVER.log_path
    if call.when == "setup":
        _MARKS[item.nodeid] = drift.mark(log)
        return
    report = outcome.get_result()
    if call.when != "call" or report.failed:
        return
    if state is not None:
        report.outcome, report.longrepr = "failed", state
        return
    from gptoss_lab.nano import script

    hits = drift.fallback_hits(log, _MARKS[item.nodeid], script.load().fallback.final[:40])
    if hits:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.path.name} made {len(hits)} request(s) that gpt-oss-nano is not scripted for, so it got the "
            "fallback reply. Add each request to gptoss_lab/nano/script.json (or make the notebook send the "
            f"scripted one). Server log {log}:\n" + "\n".join(hits[:5])
        )


def pytest_configure(config: pytest.Config) -> None:
    """Give notebook kernels an answer log for the drift check (they inherit the environment)."""
    from gptoss_lab import drift

    if drift.ANSWER_LOG not in os.environ:
        handle, path = tempfile.mkstemp(prefix="gptoss-lab-answers-", suffix=".jsonl")
        os.close(handle)
        os.environ[drift.ANSWER_LOG] = path


def _own_server_note() -> str:
    reasons = "; ".join(f"{name}: {why}" for name, why in NEEDS_OWN_SERVER.items())
    return (f"attach-only ({ATTACH_ONLY}=1): the notebooks attach to the suite's server, except those that cannot "
            f"run attach-only, which run with a server of their own ({reasons})")


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say at the start of an attach-only session which notebooks cannot run attach-only."""
    return _own_server_note() if _attach_only() else None


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Run a notebook that cannot run attach-only with a server of its own: its kernel gets no attach-only."""
    if _needs_own_server(item):
        _LEARNER_SETTING[item.nodeid] = os.environ.pop(ATTACH_ONLY)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    if item.nodeid in _LEARNER_SETTING:
        os.environ[ATTACH_ONLY] = _LEARNER_SETTING.pop(item.nodeid)


def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    """Mark the result line of a notebook that ran with a server of its own in an attach-only session."""
    if report.when == "call" and report.passed and _needs_own_server(report):
        return "passed", ".", ("PASSED (own server: cannot run attach-only)", {"green": True})
    return None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _attach_only():
        terminalreporter.write_line(_own_server_note())
    if _SERVER is None:
        return
    model = os.environ.get("GPTOSS_LAB_TEST_MODEL", "nano")
    if _drift_check_state() == "off":
        terminalreporter.write_line(f"drift check: off for {model} (it checks scripted nano's replies only)")
    else:
        terminalreporter.write_line(f"drift check: on ({model}; server log {_SERVER.log_path})")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _SERVER
    if _SERVER is not None and not _ATTACHED:
        _SERVER.stop()
    _SERVER = None


@pytest.fixture(scope="session")
def nano_server() -> Iterator[object]:
    """The shared vLLM server serving gpt-oss-nano."""
    yield _start_server()


@pytest.fixture(scope="session")
def nano_dir() -> Path:
    """A built gpt-oss-nano checkpoint folder (built once, then cached)."""
    from gptoss_lab import nano

    return nano.path()


@pytest.fixture
def own_processes() -> Callable[[str], list[int]]:
    """Return a finder: pids of this test process's live children whose command line contains a text.

    Checks that something was stopped look here, not machine-wide: other sessions' servers are not ours.
    """

    def find(text: str) -> list[int]:
        found = []
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
                argv = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except (OSError, ValueError):
                continue
            if int(parent) == os.getpid() and state != "Z" and text in argv:
                found.append(int(entry.name))
        return sorted(found)

    return find


@pytest.fixture(scope="session")
def untrained_nano(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained gpt-oss-nano checkpoint: nano's architecture and tokenizer, random weights, no training.

    For tests whose subject is starting or stopping a server: vLLM, its HTTP API and the
    harmony parsers are real; the answers are noise. Writing it takes well under a minute.
    """
    from gptoss_lab import vocab
    from gptoss_lab.nano import model, tokenizer

    folder = tmp_path_factory.mktemp("untrained-nano")
    vocab.ensure()
    tokenizer.build(folder)
    model.write_config(folder)
    model.write_untrained(folder)
    return folder


@pytest.fixture
def foreign_port() -> Iterator[Callable[..., int]]:
    """Return a function that takes a port (default: a free one) with a program that is not vLLM; freed after the test.

    The program accepts each connection and closes it at once, as a server of another protocol
    might, so a client that asks it something fails at once instead of waiting for its timeout.
    """
    import socket
    import threading

    held: list[socket.socket] = []

    def take(host: str = "127.0.0.1", port: int = 0) -> int:
        listener = socket.create_server((host, port))
        held.append(listener)

        def refuse() -> None:
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return  # closed at the end of the test
                conn.close()

        threading.Thread(target=refuse, daemon=True).start()
        return int(listener.getsockname()[1])

    yield take
    for listener in held:
        listener.close()


@pytest.fixture(scope="session")
def untrained_server(untrained_nano: Path) -> Callable[..., AbstractContextManager[object]]:
    """Start vLLM on the untrained checkpoint for a block: ``with untrained_server(parsers=False) as server:``.

    The flags are the ``nano-cpu`` preset's (``parsers=False`` drops the tool-call and
    reasoning parser flags, as the cookbook's ``vllm serve openai/gpt-oss-20b`` does), plus
    ``--enable-scale-out`` for vLLM's ``/render`` endpoints. A test module holds at most one
    such server (a module-scoped fixture), so one test session runs at most one at a time.
    """
    from gptoss_lab import presets, process
    from gptoss_lab.server import VLLMServer

    @contextmanager
    def start(*, parsers: bool = True) -> Iterator[VLLMServer]:
        preset = presets.PRESETS["nano-cpu"]
        flags = preset.flags() if parsers else list(preset.args)
        port = process.free_port()
        server = VLLMServer(str(untrained_nano), args=[*flags, "--enable-scale-out"], port=port,
                            env=dict(preset.env), log_path=untrained_nano.parent / f"vllm-{port}.log")
        with server.running(timeout=900):
            yield server

    return start


@pytest.fixture(autouse=True)
def _keep_the_current_server() -> Iterator[None]:
    """Give every test the current server it found: a test that attaches elsewhere (``lab.connect``) and stops
    that server must not leave ``lab.current()`` pointing at a dead port for the tests after it."""
    from gptoss_lab import active

    before = active.get()
    yield
    if before is None:
        active.clear()
    else:
        active.set(before)


@pytest.fixture
def web_page() -> Iterator[str]:
    """The /v1 URL of a real HTTP server that answers 404 with an HTML page to everything (a web app, not an
    OpenAI API)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotFound(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = b"<html>Not Found</html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()
