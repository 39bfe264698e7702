"""The tool loop's parts that need no server: message shapes, concurrency, the transcript."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

import gptoss_lab as lab
from gptoss_lab import examples, loop
from gptoss_lab.client import Result, ToolCallRequest
from gptoss_lab.nano import script


def test_assistant_message_hands_back_reasoning_and_calls() -> None:
    calls = [ToolCallRequest("call_1", "get_weather", '{"city": "Berlin"}')]
    message = loop.chat_assistant_message(None, "Call get_weather.", calls)
    assert message == {
        "role": "assistant", "content": None, "reasoning": "Call get_weather.",
        "tool_calls": [{"id": "call_1", "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Berlin"}'}}],
    }
    assert loop.chat_tool_message("call_1", "sunny") == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


def test_responses_items_carry_reasoning_calls_and_outputs() -> None:
    calls = [ToolCallRequest("c1", "get_weather", "{}")]
    items = loop.responses_output_items("think", None, calls)
    assert [i["type"] for i in items] == ["reasoning", "function_call"]
    assert items[0]["content"][0]["text"] == "think"
    assert loop.responses_call_output("c1", "ok") == {"type": "function_call_output", "call_id": "c1", "output": "ok"}
    assert loop.as_input_items("hi") == [{"role": "user", "content": "hi"}]


def test_parallel_calls_run_concurrently() -> None:
    """Each call waits until all four are running, so calls run one after another would time out."""
    all_running = threading.Barrier(4)

    def meet_then_square(x: int) -> int:
        all_running.wait(timeout=20)
        time.sleep(0.05 * (4 - x))  # the last call finishes first
        return x * x

    square = replace(examples.slow_square, fn=meet_then_square)
    calls = [ToolCallRequest(f"c{i}", "slow_square", f'{{"x": {i}}}') for i in range(1, 5)]
    runs = loop.run_calls([square], calls)
    assert [r.output for r in runs] == ["1", "4", "9", "16"], "each call ran, and results stay in call order"


def test_every_bad_call_is_an_error_result_not_a_crash() -> None:
    tools = [examples.get_weather, examples.get_radar, examples.get_station_log]
    calls = [
        ToolCallRequest("a", "get_weather", '{"city": "Oslo"'),
        ToolCallRequest("b", "get_forecast", "{}"),
        ToolCallRequest("c", "get_weather", '{"city": "Atlantis"}'),
        ToolCallRequest("d", "get_radar", '{"city": "Berlin"}'),
        ToolCallRequest("e", "get_station_log", '{"city": "Berlin"}'),
    ]
    runs = loop.run_calls(tools, calls)
    assert [r.failed for r in runs] == [True, True, True, True, False]
    assert "not valid JSON" in runs[0].output
    assert "no tool named 'get_forecast'" in runs[1].output
    assert "ValueError: no weather station for 'Atlantis'" in runs[2].output
    assert "did not finish within 1 s" in runs[3].output
    assert runs[4].output.endswith("characters]") and "[... truncated" in runs[4].output


def test_transcript_renders_as_text_and_html() -> None:
    call = ToolCallRequest("c1", "get_weather", '{"city": "Berlin"}')
    first = Result("I should <call> get_weather.", None, (call,), {})
    second = Result("18 C.", "It is 18 °C in Berlin.", (), {})
    run = loop.ToolRun(call, '{"t": 18}', 0.01)
    transcript = loop.Transcript("chat", [loop.LoopTurn(first, (run,)), loop.LoopTurn(second)])
    assert transcript.final == "It is 18 °C in Berlin."
    text = str(transcript)
    assert "call get_weather" in text and "final: It is 18 °C in Berlin." in text
    page = transcript._repr_html_()
    assert "&lt;call&gt;" in page and "<details" in page and "get_weather" in page
    assert loop.summary(transcript)["turns"][0]["calls"][0]["output"] == '{"t": 18}'


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"api": "completions"}, "api must be"), ({"max_turns": 0}, "max_turns must be at least 1")],
)
def test_run_tools_rejects_bad_arguments_before_any_request(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        lab.run_tools("hi", [examples.get_weather], **kwargs)


def test_run_tools_rejects_two_tools_with_one_name() -> None:
    with pytest.raises(ValueError, match="share a name"):
        lab.run_tools("hi", [examples.get_weather, examples.get_weather])


def test_script_results_are_what_the_example_tools_return() -> None:
    """A scripted follow-up only replays if its tool results are the tools' real output."""
    for entry in script.load().entries:
        if not entry.results or entry.api == "harmony" or entry.chain.startswith("agents."):
            continue  # the agents' get_weather is the cookbook's own function, not an example tool
        names = [t["function"]["name"] if "function" in t else t["name"] for t in entry.request["tools"]]
        tools = [examples.TOOLS[n] for n in names]
        calls = [ToolCallRequest(f"c{i}", c.name, c.arguments_text) for i, c in enumerate(entry.reply.tool_calls)]
        assert [r.output for r in loop.run_calls(tools, calls)] == list(entry.results), entry.id
        for reply, results in entry.given:  # the constructed turns' results too
            for call, result in zip(reply.tool_calls, results, strict=True):
                assert lab.run_call(tools, call.name, call.arguments_text) == result, entry.id


def test_followups_are_built_like_run_tools_builds_them() -> None:
    chain = script.load().chain("tools.compare")
    third = chain[2].request["messages"]
    assert [m["role"] for m in third] == ["user", "assistant", "tool", "assistant", "tool"]
    assert [third[1]["reasoning"], third[3]["reasoning"]] == [chain[0].reply.reasoning, chain[1].reply.reasoning]
    assert [third[2]["content"], third[4]["content"]] == [*chain[0].results, *chain[1].results]


def test_a_constructed_turn_feeds_the_loop_before_the_server_answers() -> None:
    """The request after a constructed malformed call is the one the script's first live turn was trained on."""
    entry = script.load().entry("tools.bad_json")
    bad = lab.model_turn(entry.given[0][0].reasoning, calls=[("get_weather", '{"city": "Oslo"')])
    seen: list[list] = []

    def stand_in(history: list) -> Result | None:
        seen.append(history)
        return bad if len(seen) == 1 else lab.model_turn("done", final="It rains.")

    transcript = lab.run_tools(entry.opening["messages"], [examples.get_weather], model=stand_in)
    assert seen[1] == entry.request["messages"]
    assert transcript.runs[0].failed and "not valid JSON" in transcript.runs[0].output
    assert all(t.constructed for t in transcript.turns)
    assert transcript.describe() == "the served model did not answer in this loop"


def test_a_model_that_never_stops_calling_is_stopped_at_max_turns() -> None:
    keeps_calling = lab.scripted_model(
        lab.model_turn("Check again.", calls=[("get_weather", '{"city": "Oslo"}')]), repeat_last=True)
    with pytest.raises(lab.ToolLoopError, match="max_turns=3") as caught:
        lab.run_tools("Keep checking the weather in Oslo.", [examples.get_weather], model=keeps_calling, max_turns=3)
    transcript = caught.value.transcript
    assert len(transcript.turns) == 3 and len(transcript.runs) == 2  # the last turn's calls are not run
    assert transcript.final is None


def test_a_turn_with_several_calls_runs_them_side_by_side() -> None:
    """Other models can return several calls in one turn (gpt-oss makes one): run_tools runs them together.

    Each call waits until all four are running, so calls run one after another would fail.
    """
    all_running = threading.Barrier(4)

    def meet_then_square(x: int) -> int:
        all_running.wait(timeout=30)
        return x * x

    square = replace(examples.slow_square, fn=meet_then_square)
    four = lab.model_turn("Four at once.", calls=[("slow_square", f'{{"x": {x}}}') for x in range(1, 5)])
    model = lab.scripted_model(four, lab.model_turn("Done.", final="1, 4, 9 and 16."))
    transcript = lab.run_tools("Square 1, 2, 3 and 4.", [square], model=model)
    assert [r.output for r in transcript.turns[0].runs] == ["1", "4", "9", "16"]
    assert transcript.final == "1, 4, 9 and 16."


def test_describe_reads_what_the_model_did_off_the_run() -> None:
    call = ToolCallRequest("c1", "get_weather", "{}")
    answered = loop.Transcript("chat", [loop.LoopTurn(Result("r", "Hi.", (), {}))])
    assert answered.describe() == "the model answered without calling a tool (1 turn(s)) and gave a final answer"
    two = loop.Transcript("chat", [loop.LoopTurn(Result("r", None, (call, call), {})),
                                   loop.LoopTurn(Result("r", "ok", (), {}))])
    assert two.describe() == ("the model made 2 tool call(s) in 2 turn(s), up to 2 calls in one turn, "
                              "and gave a final answer")
    stopped = loop.Transcript("chat", [loop.LoopTurn(Result("r", None, (call,), {}))])
    assert stopped.describe().endswith("was stopped before a final answer")


def test_scripted_model_says_when_it_runs_out_of_turns() -> None:
    model = lab.scripted_model(lab.model_turn("r", final="x"))
    model([])
    with pytest.raises(lab.LabError, match="ran out of turns after 1"):
        model([])
    with pytest.raises(ValueError, match="either tool calls or a final answer"):
        lab.model_turn("r")


def test_on_turn_sees_each_turn_after_its_calls_ran_and_before_the_next_request() -> None:
    """The playground streams through run_tools and redraws from this hook: the order matters."""
    events: list[str] = []

    def model(history: list) -> Result:
        events.append(f"request with {len(history)} messages")
        if len(history) == 1:
            return lab.model_turn("Look it up.", calls=[("get_weather", '{"city": "Oslo"}')])
        return lab.model_turn("Answer.", final="Rain in Oslo.")

    def seen(turn: loop.LoopTurn) -> None:
        events.append(f"turn with {len(turn.runs)} run(s), final {turn.result.final!r}")

    transcript = lab.run_tools("Weather in Oslo?", [examples.get_weather], model=model, on_turn=seen)
    assert events == ["request with 1 messages", "turn with 1 run(s), final None",
                      "request with 3 messages", "turn with 0 run(s), final 'Rain in Oslo.'"]
    assert transcript.final == "Rain in Oslo."
