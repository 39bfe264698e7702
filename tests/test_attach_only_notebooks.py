"""05 and 08 as an attach-only learner: 05 samples through the host's server, 08 says what it needs.

No vLLM here: refusals are raised before any request, and the sampling cases talk to a real
socket (a closed port, a web page that is not an OpenAI API). 05 sampling through a real vLLM
with a key is in tests/test_verify.py; the whole notebooks run attach-only in the nano-plain lane.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import gptoss_lab as lab
from gptoss_lab import process, sampling
from gptoss_lab.config import host_and_port
from gptoss_lab.errors import AttachError, SamplingError, ServerError
from gptoss_lab.server import VLLMServer

NOTEBOOKS = Path(__file__).parents[1] / "notebooks"


@pytest.fixture
def learner(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An attach-only learner whose URL has nothing behind it, and a model that cannot be built."""
    monkeypatch.setenv("GPTOSS_LAB_ATTACH_ONLY", "1")
    monkeypatch.setenv("GPTOSS_LAB_BASE_URL", f"http://127.0.0.1:{process.free_port()}/v1")
    monkeypatch.setenv("GPTOSS_LAB_MODEL", "/nonexistent/model-folder")
    monkeypatch.delenv("GPTOSS_LAB_API_KEY", raising=False)
    return monkeypatch


def _cells(name: str, kind: str = "code") -> list[str]:
    notebook = json.loads((NOTEBOOKS / name).read_text())
    return ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == kind]


def _dead_engine() -> sampling.ServerEngine:
    return sampling.ServerEngine(VLLMServer(model="m", host="127.0.0.1", port=process.free_port(), attached=True))


# --- 08: built-in tools need a server of one's own ----------------------------------------------

def test_attach_only_serve_with_builtin_tools_starts_nothing_and_says_what_is_needed(
    learner: pytest.MonkeyPatch, own_processes: Any
) -> None:
    servers_before = own_processes("vllm")  # under `make test` the session's server is one of them
    started = time.monotonic()
    with pytest.raises(AttachError) as err:
        lab.serve(port=process.free_port(), builtin_tools=["browser", "python"])
    message = str(err.value)
    assert time.monotonic() - started < 5.0, "an attach-only refusal is immediate (the issue asks for under 5 s)"
    assert "GPTOSS_LAB_ATTACH_ONLY=1" in message and "unset GPTOSS_LAB_ATTACH_ONLY" in message
    assert "tool servers" in message and "--tool-server" in message and "gpt-oss-nano" in message
    assert own_processes("gptoss_lab.builtin") == [] and own_processes("vllm") == servers_before


def test_notebook_08_s_server_cell_stops_an_attach_only_learner_with_that_message(
    learner: pytest.MonkeyPatch, own_processes: Any
) -> None:
    parameters, server_cell = _cells("08_builtin_tools.ipynb")[:2]
    namespace: dict[str, Any] = {}
    exec(parameters, namespace)  # noqa: S102 - the notebook's own code
    with pytest.raises(AttachError, match="needs a vLLM server of your own, started with the lab's tool servers"):
        exec(server_cell, namespace)  # noqa: S102
    assert own_processes("gptoss_lab.builtin") == []


@pytest.mark.parametrize("name", ["05_harmony.ipynb", "08_builtin_tools.ipynb"])
def test_05_and_08_say_at_the_top_what_an_attach_only_learner_gets(name: str) -> None:
    top = _cells(name, "markdown")[0]
    assert "**Attach-only" in top and "GPTOSS_LAB_ATTACH_ONLY=1" in top and "GPU" in top and "gpt-oss-nano" in top


# --- 05: sampling through the host's server --------------------------------------------------------

def test_attach_only_server_engine_against_a_closed_port_says_connection_refused(learner: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    with pytest.raises(AttachError, match="connection refused"):
        sampling.server_engine()
    assert time.monotonic() - started < 5.0


def test_a_prompt_that_is_not_token_ids_is_refused_before_any_request() -> None:
    engine = _dead_engine()  # nothing listens: a request would fail with ServerError, not SamplingError
    for prompt in ("What is 2 + 2?", [1, "2"], [], {"prompt": "text"}, [1, -5], [True, 2]):
        with pytest.raises(SamplingError, match="render_conversation_for_completion"):
            engine.generate([prompt])


def test_no_prompts_make_no_request() -> None:
    assert _dead_engine().generate([]) == []


def test_a_dead_server_is_a_server_error_naming_its_url() -> None:
    engine = _dead_engine()
    with pytest.raises(ServerError, match=engine.server.url):
        engine.generate([[200006, 1, 2]])


def test_a_web_page_instead_of_vllm_is_a_sampling_error_with_its_http_status(web_page: str) -> None:
    host, port = host_and_port(web_page)
    engine = sampling.ServerEngine(VLLMServer(model="m", host=host, port=port, attached=True))
    with pytest.raises(SamplingError, match="answered /v1/completions with HTTP 501"):  # it serves GET only
        engine.generate([{"prompt_token_ids": [200006, 1, 2]}])


def test_an_answer_without_token_ids_names_return_token_ids() -> None:
    answer = {"choices": [{"index": 0, "text": "Paris.", "finish_reason": "stop"}]}
    with pytest.raises(SamplingError, match="return_token_ids"):
        sampling.read_completions(answer, [[1, 2]], "http://h:1/v1")


def test_an_answer_with_fewer_choices_than_prompts_is_refused() -> None:
    answer = {"choices": [{"index": 0, "token_ids": [5, 200002], "finish_reason": "stop"}]}
    with pytest.raises(SamplingError, match="2 prompt"):
        sampling.read_completions(answer, [[1], [2]], "http://h:1/v1")


def test_choices_come_back_in_prompt_order_whatever_order_the_server_sends() -> None:
    answer = {"choices": [{"index": 1, "token_ids": [7, 200002], "finish_reason": "stop"},
                          {"index": 0, "token_ids": [6], "finish_reason": "length"}]}
    first, second = sampling.read_completions(answer, [[1], [2]], "http://h:1/v1")
    assert (first.prompt_token_ids, first.outputs[0].token_ids, first.outputs[0].finish_reason) == ([1], [6], "length")
    assert (second.prompt_token_ids, second.outputs[0].token_ids) == ([2], [7, 200002])


def test_an_answer_that_skips_a_prompt_is_refused() -> None:
    answer = {"choices": [{"index": 1, "token_ids": [7], "finish_reason": "stop"},
                          {"index": 1, "token_ids": [8], "finish_reason": "stop"}]}
    with pytest.raises(SamplingError, match=r"no completion for prompt\(s\) \[0\]"):
        sampling.read_completions(answer, [[1], [2]], "http://h:1/v1")
