"""Shared fixtures for the unit tests and the notebook lane.

One real vLLM server serving gpt-oss-nano is started for the whole session,
when the first test or notebook needs it, and stopped at the end, pass or fail.
Notebooks find it through ``GPTOSS_LAB_BASE_URL``, which ``lab.serve()`` attaches to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

_SERVER = None
_ATTACHED = False
"""True when the suite runs against a server it did not start (``GPTOSS_LAB_TEST_SERVER``)."""


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
        else:
            # Output logging lets each notebook be checked for requests nano does not know.
            _SERVER = lab.serve(model, port=process.free_port(),
                                extra_args=["--enable-log-requests", "--enable-log-outputs"])
        os.environ["GPTOSS_LAB_MODEL"] = model
        os.environ["GPTOSS_LAB_PORT"] = str(_SERVER.port)
        os.environ["GPTOSS_LAB_BASE_URL"] = _SERVER.url
    return _SERVER


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    """Start the shared server before the first notebook runs (nbmake items take no fixtures)."""
    if any(str(getattr(item, "path", "")).endswith(".ipynb") for item in items):
        _start_server()


_LOG_OFFSET: dict[str, int] = {}


def _log_size() -> int:
    path = getattr(_SERVER, "log_path", None)
    return path.stat().st_size if path and path.exists() else 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Fail a notebook that got nano's fallback reply: it made a request the script lacks.

    nbmake only fails on exceptions, and nano answers an unknown request with a
    polite fallback sentence, so without this a notebook whose request drifted
    from ``script.json`` would pass while showing the learner nothing useful.
    vLLM 0.32 logs the outputs of Chat Completions requests only, so a Responses
    request that drifted is caught by the notebook's own use of the answer, not here.
    """
    outcome = yield
    if not str(getattr(item, "path", "")).endswith(".ipynb") or _SERVER is None or _SERVER.log_path is None:
        return
    if call.when == "setup":
        _LOG_OFFSET[item.nodeid] = _log_size()
        return
    report = outcome.get_result()
    if call.when != "call" or report.failed:
        return
    from gptoss_lab.nano import script

    fallback = script.load().fallback.final[:40]
    with open(_SERVER.log_path, encoding="utf-8", errors="replace") as log:
        log.seek(_LOG_OFFSET.get(item.nodeid, 0))
        # Chat Completions only: a benchmark's Completions requests send raw, unscripted text on purpose.
        hits = [line.strip() for line in log if "Generated response chatcmpl-" in line and fallback in line]
    if hits:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.path.name} made {len(hits)} request(s) that gpt-oss-nano is not scripted for, so it got the "
            "fallback reply. Add each request to gptoss_lab/nano/script.json (or make the notebook send the "
            f"scripted one). Server log {_SERVER.log_path}:\n" + "\n".join(hits[:5])
        )


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


@pytest.fixture(scope="session")
def untrained_nano_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained gpt-oss-nano checkpoint: real architecture, vocabulary and harmony tokenizer, random weights.

    Its replies are noise, but vLLM's HTTP API, harmony renderer and parsers are the real
    ones: enough for request handling, prompt token counts and errors. No training, ~20 s.
    """
    from gptoss_lab import vocab
    from gptoss_lab.nano import model, tokenizer

    folder = tmp_path_factory.mktemp("untrained-nano")
    vocab.ensure()
    tokenizer.build(folder)
    model.write_config(folder)
    model.write_untrained(folder)
    return folder


@pytest.fixture(scope="session")
def untrained_server(untrained_nano_dir: Path) -> Callable[..., AbstractContextManager[object]]:
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
        server = VLLMServer(str(untrained_nano_dir), args=[*flags, "--enable-scale-out"], port=port,
                            env=dict(preset.env), log_path=untrained_nano_dir.parent / f"vllm-{port}.log")
        server.start()
        try:
            server.wait(timeout=900, progress=False)
            yield server
        finally:
            server.stop(grace=5.0)

    return start
