"""The playground and the server panel, driven at the widget-model level as a person drives them.

The requests go to the real vLLM server serving gpt-oss-nano: the playground's
requests must be exactly the scripted ``playground.*`` ones for nano to replay
their answers, so an exact answer proves the request (and the history) was built right.
"""

from __future__ import annotations

import html
import threading
import time

import pytest

import gptoss_lab as lab
from gptoss_lab import active, examples, hardware, process
from gptoss_lab.nano import script
from gptoss_lab.widgets.chat import Cancel, Cancelled, Options, request, run_turn

SCRIPT = script.load()
HELLO, HELLO2 = SCRIPT.chain("playground.hello")
WEATHER, WEATHER2 = SCRIPT.chain("playground.weather")
SENT_ONLY_BY_THE_PLAYGROUND = ("model", "temperature", "max_tokens")


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the lab at a port where nothing listens; return that URL."""
    url = f"http://127.0.0.1:{process.free_port()}/v1"
    active.clear()  # conftest puts back the active server after the test
    monkeypatch.setenv("GPTOSS_LAB_BASE_URL", url)
    return url


def _body(messages: list[dict], **options: object) -> dict:
    body = request(messages, Options(model="gpt-oss-nano", **options))  # type: ignore[arg-type]
    return {k: v for k, v in body.items() if k not in SENT_ONLY_BY_THE_PLAYGROUND}


def _ask(pg: lab.widgets.Playground, prompt: str) -> lab.widgets.Turn:
    pg.prompt.value = prompt
    pg.send.click()
    turn = pg.wait(timeout=120)
    assert turn is not None and turn.prompt == prompt, pg.status.value
    return turn


# -- requests: exactly the scripted ones (no server needed) ---------------------------------------

def test_requests_are_the_scripted_ones() -> None:
    assert _body(HELLO.request["messages"]) == HELLO.request
    assert _body(HELLO2.request["messages"]) == HELLO2.request
    tools_on = _body(WEATHER.request["messages"], tools=tuple(examples.TOOLS.values()))
    assert tools_on == WEATHER.request, "the playground's tools must be the script's lab_tools, in order"


def test_developer_message_only_with_instructions() -> None:
    messages = [{"role": "user", "content": "Hi"}]
    assert _body(messages, instructions="  \n")["messages"] == messages
    assert _body(messages, instructions=" Answer in French.\n")["messages"] == [
        {"role": "developer", "content": "Answer in French."}, *messages]
    full = request(messages, Options(model="m", temperature=0.0, max_tokens=64))
    assert full["temperature"] == 0.0 and full["max_tokens"] == 64 and "tools" not in full


def test_controls_map_to_options(no_server: str) -> None:
    pg = lab.widgets.playground(model="gpt-oss-nano", temperature=0.0, max_tokens=256, effort="low")
    pg.tools.value = True
    options = pg.options()
    assert (options.model, options.effort, options.temperature, options.max_tokens) == ("gpt-oss-nano", "low",
                                                                                           0.0, 256)
    assert [t.name for t in options.tools] == list(examples.TOOLS)
    pg.tools.value = False
    assert pg.options().tools == ()


# -- bad cases -----------------------------------------------------------------------------------

def test_no_server_says_what_to_do_and_keeps_the_prompt(no_server: str) -> None:
    pg = lab.widgets.playground(temperature=0.0)
    assert "No server at" in pg.status.value  # already on creation: no model list to load
    pg.prompt.value = HELLO.request["messages"][0]["content"]
    pg.send.click()
    pg.wait(timeout=30)
    assert f"No server at {no_server}" in pg.status.value
    assert "lab.serve()" in pg.status.value and "press Start" in pg.status.value
    assert not pg.send.disabled and pg.stop.disabled and not pg.clear.disabled and not pg.busy
    assert pg.prompt.value == "Hello, playground!" and pg.messages == [] and pg.last is None
    assert "Traceback" not in pg.status.value


def test_empty_prompt_is_ignored(no_server: str) -> None:
    pg = lab.widgets.playground()
    pg.prompt.value = "  \n "
    pg.send.click()
    assert "Type a prompt first" in pg.status.value
    assert not pg.busy and not pg._threads and not pg.send.disabled


def test_server_panel_without_a_server(no_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "gpus", lambda: [])  # the presets of a machine without a GPU
    panel = lab.widgets.server_panel("nano")
    assert panel.state == "stopped" and panel.server is None
    assert "stopped" in panel.status.value and no_server in panel.status.value
    assert not panel.start.disabled and panel.stop.disabled
    assert "preset: <code>nano-cpu</code>" in panel.preset.value  # what Start would serve nano with
    too_big = lab.widgets.server_panel("openai/gpt-oss-120b")
    assert "preset: <code>none: openai/gpt-oss-120b needs an NVIDIA GPU" in too_big.preset.value


# -- against the server --------------------------------------------------------------------------

@pytest.mark.server
def test_hello_streams_answer_reasoning_and_speed(nano_server) -> None:
    pg = lab.widgets.playground(temperature=0.0)
    assert pg.model.value == "gpt-oss-nano"
    pg.prompt.value = "Hello, playground!"
    pg.send.click()
    assert pg.busy and pg.send.disabled and not pg.stop.disabled and pg.prompt.value == ""
    turn = pg.wait(timeout=120)
    assert turn is not None, pg.status.value
    assert turn.final == HELLO.reply.final and turn.reasoning == HELLO.reply.reasoning
    assert html.escape(HELLO.reply.final, quote=False) in pg.answer.value
    assert HELLO.reply.reasoning in pg.reasoning.value
    assert "Hello, playground!" in pg.history.value
    # The server's count of the reply's harmony tokens, <|return|> included (not the chunks that carried text).
    assert turn.completion_tokens == len(script.completion_tokens(HELLO.reply, lab.harmony.encoding()))
    assert turn.tokens_per_s > 0 and f"{turn.completion_tokens} tokens in" in pg.tokens_per_s.value
    assert "Done" in pg.status.value
    assert not pg.send.disabled and pg.stop.disabled


@pytest.mark.server
def test_two_turns_keep_the_history_as_scripted(nano_server) -> None:
    pg = lab.widgets.playground(temperature=0.0)
    _ask(pg, "Hello, playground!")
    follow_up = HELLO2.request["messages"][-1]
    assert [*pg.messages, follow_up] == HELLO2.request["messages"]  # the exact request nano learned
    turn = _ask(pg, follow_up["content"])
    assert turn.final == HELLO2.reply.final
    assert len(pg.messages) == 4 and pg.messages[-1] == {"role": "assistant", "content": HELLO2.reply.final}
    assert HELLO.reply.final in pg.history.value and "What can you do here?" in pg.history.value
    pg.clear.click()
    assert pg.messages == [] and pg.answer.value == "" and pg.history.value == ""


@pytest.mark.server
def test_tools_on_runs_the_weather_loop(nano_server) -> None:
    pg = lab.widgets.playground(temperature=0.0, tools=True)
    turn = _ask(pg, "What is the weather in Oslo?")
    assert [(r.call.name, r.call.arguments, r.output) for r in turn.runs] == [
        ("get_weather", WEATHER.reply.tool_calls[0].arguments_text, WEATHER.results[0])]
    assert turn.final == WEATHER2.reply.final and len(turn.steps) == 2
    assert WEATHER.reply.reasoning in pg.reasoning.value and WEATHER2.reply.reasoning in pg.reasoning.value
    assert "get_weather" in pg.answer.value and "It is raining in Oslo" in pg.answer.value
    call_id = turn.runs[0].call.id
    scripted = [m if m["role"] == "user" else _with_call_id(m, call_id) for m in WEATHER2.request["messages"]]
    assert pg.messages[:-1] == scripted  # the follow-up request was the scripted one, bar the server's call id
    assert pg.messages[-1] == {"role": "assistant", "content": WEATHER2.reply.final}


def _with_call_id(message: dict, call_id: str) -> dict:
    if message["role"] == "tool":
        return {**message, "tool_call_id": call_id}
    return {**message, "tool_calls": [{**c, "id": call_id} for c in message["tool_calls"]]}


@pytest.mark.server
def test_stop_cancels_and_leaves_the_playground_usable(nano_server) -> None:
    pg = lab.widgets.playground(temperature=0.0)
    pg.prompt.value = "Hello, playground!"
    pg.send.click()
    pg.stop.click()
    assert "Stopped" in pg.status.value and not pg.busy
    assert not pg.send.disabled and pg.stop.disabled and pg.prompt.value == "Hello, playground!"
    pg.wait(timeout=60)
    assert pg.messages == [] and pg.last is None and "Stopped" in pg.status.value
    turn = _ask(pg, "Hello, playground!")  # the next request works, on a clean history
    assert turn.final == HELLO.reply.final and len(pg.messages) == 2


@pytest.mark.server
def test_stop_closes_the_stream_in_the_middle(nano_server) -> None:
    """Cancel from another thread while the reader is mid-stream: the read ends in Cancelled, nothing kept."""
    client = lab.client(max_retries=0)
    cancel, reading, closed, outcome = Cancel(), threading.Event(), threading.Event(), {}

    def pause_after_first_text(turn: lab.widgets.Turn) -> None:
        if turn.current is not None and (turn.current.reasoning or turn.current.final) and not reading.is_set():
            reading.set()
            closed.wait(10)  # hold the reader here until the main thread has closed the stream

    def read() -> None:
        try:
            outcome["turn"] = run_turn(client, [], "Hello, playground!", Options("gpt-oss-nano", temperature=0.0),
                                       cancel=cancel, on_update=pause_after_first_text, interval=0.0)
        except Cancelled:
            outcome["cancelled"] = True

    reader = threading.Thread(target=read)
    reader.start()
    assert reading.wait(60), "no text arrived"
    cancel.set()
    closed.set()
    reader.join(30)
    assert outcome == {"cancelled": True}
    assert lab.chat(HELLO.request["messages"], effort="medium", temperature=0.0).final == HELLO.reply.final


@pytest.mark.server
def test_server_errors_become_status_lines(nano_server) -> None:
    pg = lab.widgets.playground(temperature=0.0, max_tokens=5)
    pg.prompt.value = "Hello, playground!"
    pg.send.click()
    assert pg.wait(timeout=60) is None
    assert "cut at max tokens (5)" in pg.status.value and pg.messages == [] and pg.answer.value == ""
    assert "A greeting" in pg.reasoning.value  # what came is shown
    pg.max_tokens.value = 2048
    pg.instructions.value = "lorem " * 5000  # longer than nano's 4096-token context
    pg.send.click()
    pg.wait(timeout=60)
    assert "The server refused the request (400)" in pg.status.value and "maximum context length" in pg.status.value
    assert not pg.send.disabled and pg.stop.disabled and "Error code" not in pg.status.value
    pg.instructions.value = ""
    pg.model.options = ["gpt-oss-nano", "no-such-model"]
    pg.model.value = "no-such-model"
    pg.send.click()
    pg.wait(timeout=60)
    assert "does not serve model 'no-such-model'" in pg.status.value
    assert pg.messages == [] and pg.prompt.value == "Hello, playground!"


@pytest.mark.server
def test_server_panel_shows_status_preset_and_log(nano_server) -> None:
    panel = lab.widgets.server_panel(log_lines=5)
    assert panel.state in ("running", "attached") and panel.server.url == nano_server.url
    assert "gpt-oss-nano" in panel.status.value and nano_server.url in panel.status.value
    assert "nano-cpu" in panel.preset.value
    assert panel.start.disabled and panel.stop.disabled == (panel.state == "attached")
    if panel.server.log_path is None:  # attached to a server the lab did not start (GPTOSS_LAB_TEST_SERVER)
        assert "not started by the lab" in panel.log.value
    else:
        assert str(panel.server.log_path) in panel.log.value
        assert "Application startup complete" in panel.server.logs(10_000)  # the panel shows this log's tail
        assert len(panel.log.value.split("<pre", 1)[1].splitlines()) >= 5
    panel.refresh.click()
    assert panel.state in ("running", "attached")


def test_server_panel_start_that_fails_shows_why_and_can_be_pressed_again(tmp_path, monkeypatch,
                                                                          foreign_port) -> None:
    """Start with the lab's port held by another program: no vLLM starts, the panel says why, Start is back."""
    port = foreign_port()
    active.clear()  # conftest puts back the active server after the test
    monkeypatch.delenv("GPTOSS_LAB_BASE_URL", raising=False)
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("GPTOSS_LAB_PORT", str(port))
    panel = lab.widgets.server_panel(str(tmp_path))  # a local checkpoint: no nano build
    assert panel.state == "stopped"
    panel.start.click()
    assert panel.state == "starting" and panel.start.disabled and panel.stop.disabled
    assert panel.wait(timeout=60) == "stopped"
    assert "the server did not start" in panel.status.value
    assert f"Port {port} on 127.0.0.1 is taken by a program that is not a vLLM server" in panel.log.value
    assert not panel.start.disabled and panel.stop.disabled and panel.server is None


@pytest.mark.slow
def test_server_panel_starts_and_stops_its_own_server(untrained_nano, tmp_path, monkeypatch) -> None:
    """Start serves the panel's model on the lab's port (a server of this kernel's), Stop stops all of it."""
    port = process.free_port()
    active.clear()  # conftest puts back the active server after the test
    monkeypatch.delenv("GPTOSS_LAB_BASE_URL", raising=False)
    monkeypatch.setenv("GPTOSS_LAB_PORT", str(port))
    monkeypatch.setenv("GPTOSS_LAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    panel = lab.widgets.server_panel(str(untrained_nano), timeout=600)
    assert panel.state == "stopped" and f"127.0.0.1:{port}" in panel.status.value
    try:
        panel.start.click()
        assert panel.state == "starting" and panel.start.disabled and panel.stop.disabled
        assert panel.wait(timeout=700) == "running", panel.log.value
        server = panel.server
        assert f"started by this kernel, pid {server.pid}" in panel.status.value
        assert panel.start.disabled and not panel.stop.disabled
        assert "Application startup complete" in server.logs(10_000) and str(server.log_path) in panel.log.value
        time.sleep(5)  # the thread that started it has ended: the server must outlive it
        assert server.is_running() and server.models() == [str(untrained_nano)]
        assert panel.update() == "running"
        group = server.pid
        panel.stop.click()
        assert panel.wait(timeout=120) == "stopped"
        assert not process.group_alive(group) and panel.server is None
        assert not panel.start.disabled and panel.stop.disabled and "stopped" in panel.status.value
    finally:
        if panel.server is not None and not panel.server.attached:
            panel.server.stop()
        started = active.get()
        if started is not None and not started.attached:
            started.stop()
