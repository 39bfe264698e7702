"""The tool loop and the stream view through the real vLLM server serving gpt-oss-nano.

Every scripted loop runs through ``lab.run_tools``: the follow-up requests it
builds must be the ones nano learned, so an exact replay of every turn proves
the reasoning, calls and results were handed back as the script says.
"""

from __future__ import annotations

import io
import json
import time

import pytest

import gptoss_lab as lab
from gptoss_lab import examples
from gptoss_lab.loop import Model
from gptoss_lab.nano import script

SCRIPT = script.load()
LOOPS = sorted({e.chain for e in SCRIPT.entries if e.chain.startswith("tools.") and e.chain != "tools.cookbook"})
pytestmark = pytest.mark.server


def _tools(entry: script.Entry) -> list[lab.Tool]:
    return [examples.TOOLS[t["function"]["name"] if "function" in t else t["name"]] for t in entry.request["tools"]]


def _conversation(entry: script.Entry):
    request = entry.opening or entry.request
    return request["messages"] if entry.api == "chat" else request["input"]


def _given(entry: script.Entry) -> Model | None:
    """The constructed turns the notebook feeds the loop before the model's own, as a stand-in."""
    if not entry.given:
        return None
    turns = [lab.model_turn(reply.reasoning, calls=[(c.name, c.arguments_text) for c in reply.tool_calls])
             for reply, _ in entry.given]
    return lab.scripted_model(*turns, then_server=True)


def _run(entry: script.Entry, **kwargs) -> lab.Transcript:
    return lab.run_tools(_conversation(entry), _tools(entry), api=entry.api, model=_given(entry), **kwargs)


def _check_turns(transcript: lab.Transcript, chain: list[script.Entry]) -> None:
    given = len(chain[0].given)
    assert [t.constructed for t in transcript.turns] == [True] * given + [False] * len(chain)
    for (_reply, results), turn in zip(chain[0].given, transcript.turns, strict=False):
        assert [r.output for r in turn.runs] == list(results)  # what the constructed call caused
    for turn, entry in zip(transcript.turns[given:], chain, strict=True):
        assert turn.result.reasoning == entry.reply.reasoning, entry.id
        assert [(c.name, c.arguments) for c in turn.result.tool_calls] == [
            (c.name, c.arguments_text) for c in entry.reply.tool_calls], entry.id
        if entry.results:
            assert [r.output for r in turn.runs] == list(entry.results), entry.id


@pytest.mark.parametrize("chain_id", LOOPS)
def test_loop_replays_every_turn_to_the_final_answer(nano_server, chain_id: str) -> None:
    chain = SCRIPT.chain(chain_id)
    transcript = _run(chain[0])
    _check_turns(transcript, chain)
    assert transcript.final == chain[-1].reply.final


def test_bad_cases_reach_the_model_as_error_results(nano_server) -> None:
    """Malformed JSON and an unknown tool (constructed turns), a raising tool, a timeout: each is an error text."""
    outputs = {}
    for chain_id in ("tools.bad_json", "tools.unknown_tool", "tools.raises", "tools.timeout"):
        transcript = _run(SCRIPT.chain(chain_id)[0])
        assert transcript.runs[0].failed and transcript.final, chain_id
        outputs[chain_id] = transcript.runs[0].output
    assert "not valid JSON" in outputs["tools.bad_json"]
    assert "no tool named 'get_forecast'" in outputs["tools.unknown_tool"]
    assert "raised ValueError" in outputs["tools.raises"]
    assert "did not finish within 1 s" in outputs["tools.timeout"]


def test_oversized_result_is_cut_with_a_marker(nano_server) -> None:
    transcript = _run(SCRIPT.chain("tools.oversized")[0])
    output = transcript.runs[0].output
    assert len(output) < 400 and "[... truncated 8915 characters]" in output
    assert transcript.final


def test_gpt_oss_takes_one_turn_per_call_when_a_task_needs_several(nano_server) -> None:
    transcript = _run(SCRIPT.chain("tools.squares")[0])
    assert [len(t.runs) for t in transcript.turns] == [1, 1, 1, 1, 0]
    assert transcript.describe() == ("the model made 4 tool call(s) in 5 turn(s), one call per turn, "
                                     "and gave a final answer")


def test_manual_cookbook_loop_matches_the_script(nano_server) -> None:
    """The cookbook's loop written out with the raw SDK, as 03_tools shows it."""
    client, model = lab.client(), nano_server.model_id()
    chain = SCRIPT.chain("tools.cookbook")
    messages = list(chain[0].request["messages"])
    tools = chain[0].request["tools"]
    for _ in range(4):
        message = client.chat.completions.create(model=model, messages=messages, tools=tools).choices[0].message
        if not message.tool_calls:
            break
        messages.append({"role": "assistant", "content": message.content, "reasoning": lab.reasoning_of(message),
                         "tool_calls": [c.model_dump() for c in message.tool_calls]})
        for call in message.tool_calls:
            output = lab.run_call([examples.get_weather], call.function.name, call.function.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
    assert message.content == chain[-1].reply.final


def test_show_stream_prints_reasoning_apart_and_counts_tokens(nano_server) -> None:
    entry = SCRIPT.entry("apis.cookbook_chat")
    stream = lab.client().chat.completions.create(
        model=nano_server.model_id(), stream=True, stream_options={"include_usage": True}, **entry.request)
    out = io.StringIO()
    result = lab.show_stream(stream, out=out, jupyter=False)
    assert (result.reasoning, result.final) == (entry.reply.reasoning, entry.reply.final)
    # The server's count of the reply's harmony tokens, <|return|> included (not the chunks that carried text).
    assert result.completion_tokens == len(script.completion_tokens(entry.reply, lab.harmony.encoding()))
    assert result.tokens_per_s > 0 and result.first_token_s is not None
    text = out.getvalue()
    assert text.startswith("[reasoning] " + entry.reply.reasoning) and "\n[answer] " + entry.reply.final in text
    assert f"{result.completion_tokens} tokens in" in text and "tokens/s" in text


def test_show_stream_handles_responses_events_and_tool_calls(nano_server) -> None:
    first = SCRIPT.chain("tools.compare")[0]
    stream = lab.client().chat.completions.create(model=nano_server.model_id(), stream=True, **first.request)
    result = lab.show_stream(stream, out=io.StringIO(), jupyter=False)
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        (c.name, c.arguments) for c in first.reply.tool_calls]
    entry = SCRIPT.entry("apis.cookbook_responses")
    events = lab.client().responses.create(model=nano_server.model_id(), stream=True, **entry.request)
    result = lab.show_stream(events, out=io.StringIO(), jupyter=False)
    assert (result.reasoning, result.final) == (entry.reply.reasoning, entry.reply.final)
    assert result.usage.get("output_tokens", 0) > 0


def test_show_stream_in_jupyter_mode_redraws_at_most_every_interval(nano_server, monkeypatch) -> None:
    """The HTML path: drawing is batched, not once per token.

    No Jupyter frontend runs under pytest, so IPython's ``display`` is replaced by a
    recorder of what would be drawn; the stream itself comes from the real server.
    (The real kernel path runs in 02_apis under nbmake and in benchmarks/apis.py.)
    """
    from IPython import display as ipy

    updates: list[str] = []

    class Handle:
        def update(self, obj) -> None:
            updates.append(obj.data)

    monkeypatch.setattr(ipy, "display", lambda obj, display_id=None: updates.append(obj.data) or Handle())
    entry = SCRIPT.entry("apis.cookbook_chat")
    started = time.monotonic()
    stream = lab.client().chat.completions.create(model=nano_server.model_id(), stream=True, **entry.request)
    result = lab.show_stream(stream, interval=0.25, jupyter=True)
    took = time.monotonic() - started
    assert result.events > 20
    assert len(updates) <= 2 + took / 0.25 + 1
    assert "<details" in updates[-1] and "tokens/s" in updates[-1]
