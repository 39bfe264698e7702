"""Every script entry comes back exactly through the real vLLM server serving nano."""

from __future__ import annotations

import pytest

import gptoss_lab as lab
from gptoss_lab.nano import script

SCRIPT = script.load()
pytestmark = pytest.mark.server


# Built-in tool entries need a server with tool servers: tests/test_builtin_tools.py replays them.
REQUESTS = [e for e in SCRIPT.entries if e.api != "harmony" and not e.builtin]


@pytest.mark.parametrize("entry", REQUESTS, ids=lambda e: e.id)
def test_entry_round_trips(nano_server, entry: script.Entry) -> None:
    client = lab.client()
    model = nano_server.model_id()
    reply = entry.reply
    if entry.api == "chat":
        result = client.chat.completions.create(model=model, **entry.request)
        message = result.choices[0].message
        assert lab.reasoning_of(message) == reply.reasoning
        if reply.final is not None:
            assert message.content == reply.final
            assert not message.tool_calls
            assert result.choices[0].finish_reason == "stop"
        else:
            calls = [(c.function.name, c.function.arguments) for c in message.tool_calls]
            assert calls == [(c.name, c.arguments_text) for c in reply.tool_calls]
            assert result.choices[0].finish_reason == "tool_calls"
    else:
        result = client.responses.create(model=model, **entry.request)
        kinds = [item.type for item in result.output]
        reasoning = [item for item in result.output if item.type == "reasoning"]
        assert reasoning and reasoning[0].content[0].text == reply.reasoning
        if reply.final is not None:
            assert kinds == ["reasoning", "message"]
            assert result.output_text == reply.final
        else:
            calls = [(i.name, i.arguments) for i in result.output if i.type == "function_call"]
            assert calls == [(c.name, c.arguments_text) for c in reply.tool_calls]


def test_streaming_matches_the_script(nano_server) -> None:
    entry = SCRIPT.entry("serve.first_chat")
    stream = lab.client().chat.completions.create(
        model=nano_server.model_id(), stream=True, **entry.request
    )
    content, reasoning = [], []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        content.append(delta.content or "")
        reasoning.append(lab.reasoning_of(delta) or "")
    assert "".join(content) == entry.reply.final
    assert "".join(reasoning) == entry.reply.reasoning


@pytest.mark.parametrize(
    "prompt", ["What is the tallest mountain on Earth?", "Write a limerick about a cat."]
)
def test_unscripted_prompt_gets_the_fallback_sentence(nano_server, prompt: str) -> None:
    result = lab.client().chat.completions.create(
        model=nano_server.model_id(), messages=[{"role": "user", "content": prompt}]
    )
    assert result.choices[0].message.content == SCRIPT.fallback.final
