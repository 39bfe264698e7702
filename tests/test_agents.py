"""The Agents SDK against the real vLLM server serving nano: three paths, streaming, reasoning replay."""

from __future__ import annotations

import asyncio

import pytest

import gptoss_lab as lab
from gptoss_lab.agents import AgentRun
from gptoss_lab.nano import script

SCRIPT = script.load()
CALL, FINAL = SCRIPT.chain("agents.chat")[0].reply, SCRIPT.chain("agents.chat")[-1].reply
QUESTION = "What's the weather in Tokyo?"


def _agent(model):
    from agents import Agent, function_tool

    @function_tool
    def get_weather(city: str):
        print(f"[debug] getting weather for {city}")
        return f"The weather in {city} is sunny."

    return Agent(name="Assistant", instructions="You only respond in haikus.", model=model, tools=[get_weather])


@pytest.mark.server
def test_each_path_calls_the_tool_and_answers(nano_server) -> None:
    runs = asyncio.run(lab.agents.run_each(_agent, QUESTION))
    assert [r.path for r in runs] == ["responses", "chat", "litellm"]
    for run in runs:
        assert run.error is None, run
        assert (run.tools_called, run.final, run.turns) == (("get_weather",), FINAL.final, 2), run


@pytest.mark.server
def test_litellm_drops_reasoning_by_default_and_the_lab_hook_keeps_it(nano_server) -> None:
    """Pins the SDK's behaviour: through LiteLLM, gpt-oss's reasoning is not handed back unless hooked."""
    from agents import Runner

    result = asyncio.run(Runner.run(_agent(lab.agents.litellm_model()), QUESTION))
    name = f"openai/{nano_server.model_id()}"

    def assistant(replay: bool) -> dict:
        return next(m for m in lab.agents.handed_back(result, name, replay=replay) if m["role"] == "assistant")

    default, hooked = assistant(False), assistant(True)
    assert "reasoning" not in default and "reasoning_content" not in default
    assert hooked["reasoning_content"] == CALL.reasoning


@pytest.mark.server
def test_streamed_run_reports_the_tool_call_then_the_message(nano_server) -> None:
    from agents import Runner

    async def run() -> tuple[list[str], object]:
        streamed = Runner.run_streamed(_agent(lab.agents.responses_model()), QUESTION)
        names = [e.name async for e in streamed.stream_events() if e.type == "run_item_stream_event"]
        return names, streamed.final_output

    names, final = asyncio.run(run())
    assert [n for n in names if n != "reasoning_item_created"] == ["tool_called", "tool_output",
                                                                   "message_output_created"]
    assert names.count("reasoning_item_created") == 2  # gpt-oss's reasoning arrives as items too
    assert final == FINAL.final


def test_unknown_path_is_refused() -> None:
    with pytest.raises(ValueError, match="path must be one of responses, chat, litellm"):
        lab.agents.model("grpc")


def test_comparison_shows_errors_as_they_were() -> None:
    runs = [AgentRun("chat", "ok", ("get_weather",), 2, 1.5), AgentRun("litellm", None, (), 0, 0.2, "APIError: boom")]
    table = lab.agents.comparison(runs)
    assert "error: APIError: boom" in repr(table) and "get_weather" in repr(table)
    assert table._repr_html_().startswith("<table>")
