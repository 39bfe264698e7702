"""Client helpers: the same parts lifted out of either API, through the real server."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gptoss_lab as lab
from gptoss_lab.nano import script

SCRIPT = script.load()


def test_chat_lifts_reasoning_final_and_usage(nano_server) -> None:
    entry = SCRIPT.entry("serve.first_chat")
    result = lab.chat(entry.request["messages"])
    assert (result.reasoning, result.final) == (entry.reply.reasoning, entry.reply.final)
    assert result.tool_calls == ()
    assert result.usage["completion_tokens"] > 0 and result.usage["prompt_tokens"] > 0
    assert result.raw.choices[0].message.content == result.final


def test_chat_lifts_tool_calls(nano_server) -> None:
    entry = SCRIPT.entry("foundation.tool_call")
    result = lab.chat(entry.request["messages"], tools=entry.request["tools"])
    assert result.final is None
    [call] = result.tool_calls
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Tokyo"}
    assert call.id


def test_chat_effort_is_the_reasoning_effort_parameter(nano_server) -> None:
    entry = SCRIPT.entry("serve.attach_check")
    result = lab.chat(entry.request["messages"], effort="low")
    assert result.final == entry.reply.final


def test_respond_lifts_the_same_parts(nano_server) -> None:
    entry = SCRIPT.entry("serve.first_response")
    result = lab.respond(entry.request["input"], effort="low")
    assert (result.reasoning, result.final) == (entry.reply.reasoning, entry.reply.final)
    assert result.tool_calls == ()
    assert result.usage["output_tokens"] > 0


def test_reasoning_of_reads_both_field_names() -> None:
    assert lab.reasoning_of(SimpleNamespace(reasoning="new")) == "new"
    assert lab.reasoning_of(SimpleNamespace(reasoning_content="old")) == "old"
    assert lab.reasoning_of(SimpleNamespace(content="no reasoning")) is None
