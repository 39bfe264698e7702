"""Two ways a gpt-oss vLLM server misbehaves, and what the lab does about each.

1. **No tool-call parser flags.** A server started the cookbook's way (``vllm serve
   openai/gpt-oss-20b``, no ``--tool-call-parser openai --enable-auto-tool-choice``)
   answers tool requests with HTTP 200 on vLLM 0.32 (not 400: the renderer exempts
   harmony models from that check) and never fills ``tool_calls``. ``lab.connect()``
   warns, naming the flags; ``run_tools`` on Chat Completions raises ``ToolParserError``.
2. **HarmonyError 500s** (vLLM issue 51977). The lab's helpers retry one with a warning
   naming the issue and raise ``HarmonyParseError`` on a second. The 500 comes from a
   real local proxy in front of the real server, with the body vLLM's own exception
   handler builds for an ``openai_harmony.HarmonyError``.

One real vLLM server on an untrained gpt-oss-nano, started WITHOUT the parser flags,
serves the module.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import gptoss_lab as lab
from gptoss_lab import parsers
from gptoss_lab.errors import HarmonyParseError, LabWarning, ToolParserError
from gptoss_lab.loop import run_tools
from gptoss_lab.tools import tool

pytestmark = pytest.mark.slow

# What vLLM 0.26 answered in vLLM issue 51977.
HARMONY_MESSAGE = 'unexpected tokens remaining in message header: Some("to=functions.web-browsing")'
# vLLM's 400 for tools without the flags (vllm/renderers/online_renderer.py; not sent for harmony models in 0.32).
FLAGS_400 = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"18 C, sunny in {city}"


@pytest.fixture(scope="module")
def server(untrained_server: Any) -> Iterator[Any]:
    """One vLLM server started the cookbook's way: the nano-cpu preset's flags minus the parsers."""
    with untrained_server(parsers=False) as running:
        yield running


def vllm_error(exc_or_message: Exception | str) -> tuple[int, bytes]:
    """The status and body vLLM's exception handler sends for an exception (or an error message)."""
    from vllm.entrypoints.serve.exception_handling.error_response import create_error_response

    error = create_error_response(exc_or_message)
    return error.error.code, json.dumps(error.model_dump()).encode()


class Proxy(ThreadingHTTPServer):
    """A real HTTP server in front of vLLM that answers the next model requests with a given error."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = upstream
        self.failures: list[tuple[int, bytes]] = []
        self.model_requests: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Forward(BaseHTTPRequestHandler):
    server: Proxy

    def log_message(self, *args: Any) -> None:
        pass

    def _relay(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if method == "POST" and self.path.endswith(("/chat/completions", "/responses")):
            self.server.model_requests.append(self.path)
            if self.server.failures:
                status, payload = self.server.failures.pop(0)
                return self._send(status, payload)
        answer = httpx.request(method, self.server.upstream + self.path, content=body, timeout=120,
                               headers={"Content-Type": "application/json"})
        self._send(answer.status_code, answer.content)

    def _send(self, status: int, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._relay("GET")

    def do_POST(self) -> None:
        self._relay("POST")


@pytest.fixture
def proxy(server: Any) -> Iterator[Proxy]:
    """A proxy to the module's server, attached as the lab's current server."""
    running = Proxy(server.root)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabWarning)  # the missing-flags warning: tested below
        lab.connect(running.url)
    running.model_requests.clear()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()


@pytest.fixture(scope="module")
def harmony_500() -> tuple[int, bytes]:
    from openai_harmony import HarmonyError

    return vllm_error(HarmonyError(HARMONY_MESSAGE))


# --- 1. the parser flags --------------------------------------------------------------------

def test_vllm_answers_a_tool_request_without_the_flags_with_200_and_no_tool_call(server: Any) -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    body = {"model": server.model_id(), "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
            "tools": [get_weather.chat_schema()], "tool_choice": named, "max_tokens": 24}
    response = httpx.post(f"{server.url}/chat/completions", json=body, timeout=120)
    assert response.status_code == 200
    assert not response.json()["choices"][0]["message"].get("tool_calls")


def test_connect_warns_that_the_server_lacks_the_tool_parser_flags(server: Any) -> None:
    with pytest.warns(LabWarning, match="--tool-call-parser openai --enable-auto-tool-choice"):
        lab.connect(server.url)


def test_run_tools_on_chat_completions_raises_a_lab_error_naming_the_flags(server: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LabWarning)
        lab.connect(server.url)
    with pytest.raises(ToolParserError, match="--tool-call-parser openai --enable-auto-tool-choice"):
        run_tools("What is the weather in Paris?", [get_weather], api="chat", max_tokens=8)


def test_run_tools_turns_the_400_of_older_vllm_into_a_lab_error_naming_the_flags(proxy: Proxy) -> None:
    proxy.failures.append(vllm_error(FLAGS_400))
    with pytest.raises(ToolParserError, match="--tool-call-parser openai --enable-auto-tool-choice"):
        run_tools("What is the weather in Paris?", [get_weather], api="chat", max_tokens=8)


def test_the_probe_names_the_flags_vllm_complains_about() -> None:
    assert parsers.names_the_flags(FLAGS_400)
    assert not parsers.names_the_flags("This model's maximum context length is 4096 tokens.")


# --- 2. HarmonyError 500s ---------------------------------------------------------------------

def test_the_500_body_is_vllms_own_for_a_harmony_error(harmony_500: tuple[int, bytes]) -> None:
    status, body = harmony_500
    assert status == 500
    assert json.loads(body)["error"] == {"message": HARMONY_MESSAGE, "type": "InternalServerError",
                                         "param": None, "code": 500}


def test_a_harmony_500_is_retried_once_with_a_warning_naming_the_vllm_issue(
        proxy: Proxy, harmony_500: tuple[int, bytes]) -> None:
    proxy.failures.append(harmony_500)
    with pytest.warns(LabWarning, match="vLLM issue 51977"):
        result = lab.chat([{"role": "user", "content": "Say hello."}], max_tokens=1)
    assert result.usage["completion_tokens"] == 1
    assert len(proxy.model_requests) == 2


def test_a_second_harmony_500_raises_a_lab_error(proxy: Proxy, harmony_500: tuple[int, bytes]) -> None:
    proxy.failures += [harmony_500, harmony_500]
    with pytest.warns(LabWarning, match="51977"), pytest.raises(HarmonyParseError, match="failed twice"):
        lab.chat([{"role": "user", "content": "Say hello."}], max_tokens=1)
    assert len(proxy.model_requests) == 2


def test_the_tool_loop_survives_one_harmony_500(proxy: Proxy, harmony_500: tuple[int, bytes]) -> None:
    proxy.failures.append(harmony_500)
    with pytest.warns(LabWarning, match="51977"):
        transcript = run_tools("What is the weather in Paris?", [get_weather], api="responses", max_output_tokens=8)
    assert transcript.turns
    assert proxy.model_requests[:2] == ["/v1/responses", "/v1/responses"]


def test_any_other_500_is_not_retried(proxy: Proxy) -> None:
    import openai

    proxy.failures.append(vllm_error(RuntimeError("EngineCore encountered an issue.")))
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabWarning)
        with pytest.raises(openai.InternalServerError):
            lab.chat([{"role": "user", "content": "Say hello."}], max_tokens=1)
    assert len(proxy.model_requests) == 1
