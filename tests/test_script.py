"""The nano script: loading, validation, and harmony completions that parse back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gptoss_lab import harmony_tokens
from gptoss_lab.nano import script
from gptoss_lab.nano.tokenizer import harmony_encoding


def test_packaged_script_loads_with_unique_ids() -> None:
    s = script.load()
    ids = [e.id for e in s.entries]
    assert len(ids) == len(set(ids)) > 0
    assert {e.api for e in s.entries} == {"chat", "responses", "harmony"}
    assert {e.chain for e in s.entries if e.builtin} == {"builtin.browse", "builtin.python"}
    assert len(s.digest) == 64


@pytest.fixture(scope="module")
def enc():  # -> openai_harmony.HarmonyEncoding
    """The harmony encoding, loaded once for the module (loading it takes most of a second)."""
    return harmony_encoding()


@pytest.mark.parametrize("entry", script.load().entries, ids=lambda e: e.id)
def test_completion_parses_back_to_the_reply(entry: script.Entry, enc) -> None:
    from openai_harmony import Role

    tokens = script.completion_tokens(entry.reply, enc)
    assert tokens[-1] in enc.stop_tokens_for_assistant_actions()
    messages = enc.parse_messages_from_completion_tokens(tokens, Role.ASSISTANT)
    assert messages[0].channel == "analysis"
    assert messages[0].content[0].text == entry.reply.reasoning
    last = messages[-1]
    if entry.reply.final is not None:
        assert (last.channel, last.content[0].text) == ("final", entry.reply.final)
    elif entry.reply.builtin is not None:
        assert tokens[-1] == harmony_tokens.CALL
        assert (last.recipient, last.channel, last.content_type) == (entry.reply.builtin.recipient, "analysis", None)
        assert last.content[0].text == entry.reply.builtin.text
    else:
        calls = messages[1:]
        assert len(calls) == len(entry.reply.tool_calls)
        for message, call in zip(calls, entry.reply.tool_calls, strict=True):
            assert message.recipient == f"functions.{call.name}"
            assert message.content[0].text == call.arguments_text


def test_a_tool_call_ends_the_generation_with_call() -> None:
    from gptoss_lab.harmony_tokens import CALL, END

    tokens = script.completion_tokens(script.load().entry("tools.cookbook").reply, harmony_encoding())
    assert tokens.count(CALL) == 1 and tokens[-1] == CALL and tokens.count(END) == 1  # END closes the analysis


def test_no_scripted_generation_makes_two_calls() -> None:
    assert all(len(e.reply.tool_calls) <= 1 for e in script.load().entries)


F_TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


def _turn_entry(reply: dict, request: dict | None = None, api: str = "chat") -> dict:
    request = request if request is not None else {"messages": [{"role": "user", "content": "hi"}], "tools": [F_TOOL]}
    return {"id": "a", "api": api, "request": request, "reply": reply}


@pytest.mark.parametrize(
    ("reply", "request_", "rule"),
    [
        ({"reasoning": "r", "tool_calls": [{"name": "f", "arguments": {}}, {"name": "f", "arguments": {}}]},
         None, "2 tool calls in one generation, but gpt-oss makes one"),
        ({"reasoning": "r", "tool_calls": [{"name": "g", "arguments": {}}]}, None,
         "a call to 'g', which the request does not offer"),
        ({"reasoning": "r", "tool_calls": [{"name": "f", "arguments": "{\"x\": "}]}, None,
         "arguments of 'f' are not a JSON object"),
        ({"reasoning": "r", "tool_calls": [{"name": "f", "arguments": "[1]"}]}, None,
         "arguments of 'f' are not a JSON object"),
        ({"reasoning": " ", "final": "x"}, None, "the reasoning is empty"),
        ({"reasoning": "r", "final": " "}, None, "the final answer is empty"),
        ({"reasoning": "r", "final": "Done.<|call|>"}, None, "renders as a harmony special token"),
        ({"reasoning": "r", "tool_calls": [{"name": "f", "arguments": {}}]},
         {"messages": [{"role": "user", "content": "hi"}]}, "which the request does not offer"),
    ],
    ids=["two-calls", "unknown-tool", "malformed-json", "not-an-object", "no-reasoning", "empty-final",
         "special-token", "no-tools-offered"],
)
def test_the_loader_refuses_a_reply_gpt_oss_could_not_produce(
        tmp_path: Path, reply: dict, request_: dict | None, rule: str) -> None:
    from gptoss_lab.errors import UnfaithfulScriptError

    with pytest.raises(UnfaithfulScriptError, match=rule):
        script.load(_write(tmp_path, [_turn_entry(reply, request_)]))


def test_a_builtin_call_needs_its_tool_turned_on(tmp_path: Path) -> None:
    from gptoss_lab.errors import UnfaithfulScriptError

    request = {"input": "x", "tools": [{"type": "web_search_preview"}]}
    entry = _turn_entry({"reasoning": "r", "builtin_call": {"recipient": "python", "code": "print(1)"}},
                        request, api="responses")
    with pytest.raises(UnfaithfulScriptError, match="built-in 'python', which the request does not turn on"):
        script.load(_write(tmp_path, [entry]))


def test_given_turns_may_misbehave_and_are_never_trained(tmp_path: Path) -> None:
    """A constructed turn (malformed arguments) shapes the next request; only the model's turns become entries."""
    loop = {"id": "b", "api": "chat", "request": {"messages": [{"role": "user", "content": "hi"}], "tools": [F_TOOL]},
            "given": [{"reasoning": "r", "tool_calls": [{"name": "f", "arguments": "{"}], "results": ["error: x"]}],
            "turns": [{"reasoning": "r2", "final": "done"}]}
    (entry,) = script.load(_write(tmp_path, [loop])).entries
    assert [m["role"] for m in entry.request["messages"]] == ["user", "assistant", "tool"]
    assert entry.opening["messages"] == [{"role": "user", "content": "hi"}]
    assert entry.given[0][1] == ("error: x",)


def test_a_loop_expands_into_one_entry_per_turn(tmp_path: Path) -> None:
    loop = {"id": "w", "api": "chat", "request": {"messages": [{"role": "user", "content": "hi"}], "tools": [F_TOOL]},
            "turns": [{"reasoning": "r", "tool_calls": [{"name": "f", "arguments": {}}], "results": ["x"]},
                      {"reasoning": "r2", "final": "done"}]}
    first, second = script.load(_write(tmp_path, [loop])).entries
    assert (first.id, second.id, second.turn) == ("w", "w#2", 2)
    assert [m["role"] for m in second.request["messages"]] == ["user", "assistant", "tool"]


def test_a_loop_turn_needs_one_result_per_call(tmp_path: Path) -> None:
    loop = {"id": "w", "api": "chat", "request": {"messages": [], "tools": [F_TOOL]},
            "turns": [{"reasoning": "r", "tool_calls": [{"name": "f", "arguments": {}}]},
                      {"reasoning": "r2", "final": "done"}]}
    with pytest.raises(ValueError, match="one result per tool call"):
        script.load(_write(tmp_path, [loop]))


def _write(tmp_path: Path, entries: list, fallback: dict | None = None) -> Path:
    path = tmp_path / "script.json"
    fallback = fallback or {"reasoning": "r", "final": "f"}
    path.write_text(json.dumps({"fallback": fallback, "entries": entries}))
    return path


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    entry = {"id": "a", "api": "chat", "request": {}, "reply": {"reasoning": "r", "final": "f"}}
    with pytest.raises(ValueError, match="Duplicate script entry id 'a'"):
        script.load(_write(tmp_path, [entry, entry]))


def test_reply_needs_final_or_tool_calls(tmp_path: Path) -> None:
    entry = {"id": "a", "api": "chat", "request": {}, "reply": {"reasoning": "r"}}
    with pytest.raises(ValueError, match="exactly one of 'final', 'tool_calls' or 'builtin_call'"):
        script.load(_write(tmp_path, [entry]))


def test_a_builtin_call_goes_to_browser_or_python(tmp_path: Path) -> None:
    entry = {"id": "a", "api": "responses", "request": {"input": "x", "tools": [{"type": "web_search_preview"}]},
             "reply": {"reasoning": "r", "builtin_call": {"recipient": "functions.f", "arguments": {}}}}
    with pytest.raises(ValueError, match="browser.search/open/find or python, not 'functions.f'"):
        script.load(_write(tmp_path, [entry]))


def test_a_builtin_loop_keeps_the_first_request_for_every_turn(tmp_path: Path) -> None:
    """vLLM runs a built-in tool loop inside one request: later turns have no request of their own."""
    request = {"input": "x", "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}
    loop = {"id": "p", "api": "responses", "request": request,
            "turns": [{"reasoning": "r", "builtin_call": {"recipient": "python", "code": "print(1)"}},
                      {"reasoning": "r2", "final": "1"}]}
    first, second = script.load(_write(tmp_path, [loop])).entries
    assert first.builtin and second.builtin
    assert second.request == first.request == request
    assert first.reply.builtin == script.BuiltinCall("python", "print(1)")


def test_unknown_api_is_refused(tmp_path: Path) -> None:
    entry = {"id": "a", "api": "completions", "request": {}, "reply": {"reasoning": "r", "final": "f"}}
    with pytest.raises(ValueError, match="api must be one of chat, responses, harmony"):
        script.load(_write(tmp_path, [entry]))


def test_unknown_entry_lists_known_ids() -> None:
    with pytest.raises(KeyError, match="serve.first_chat"):
        script.load().entry("nope")
