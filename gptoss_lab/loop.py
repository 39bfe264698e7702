"""The tool loop: call the model, run its tool calls, hand everything back, repeat.

gpt-oss calls tools in the middle of its chain of thought, so each follow-up
request must carry the reasoning of the turn that made the calls, as well as
the calls and their results, until the model gives a final answer. The message
builders below are the exact shapes :func:`run_tools` sends; gpt-oss-nano's
script builds its follow-up requests with the same functions. Taught in
``notebooks/03_tools.ipynb``.
"""

from __future__ import annotations

import concurrent.futures
import html
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gptoss_lab import parsers
from gptoss_lab.client import Result, ToolCallRequest, base_url, chat, error_message, respond
from gptoss_lab.errors import ScriptedModelError, ToolLoopError, ToolParserError
from gptoss_lab.tools import Tool, run_call

Api = Literal["chat", "responses"]


# --- the shapes handed back to the model -------------------------------------------------------

def chat_assistant_message(content: str | None, reasoning: str | None,
                           calls: Sequence[ToolCallRequest]) -> dict[str, Any]:
    """The assistant turn as it goes back into ``messages``: content, reasoning and tool calls.

    vLLM renders ``reasoning`` back into the harmony analysis channel; dropping it
    is the mistake the cookbook warns about.
    """
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning:
        message["reasoning"] = reasoning
    if calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    return message


def chat_tool_message(call_id: str, output: str) -> dict[str, Any]:
    """One tool result for Chat Completions."""
    return {"role": "tool", "tool_call_id": call_id, "content": output}


def responses_output_items(reasoning: str | None, final: str | None,
                           calls: Sequence[ToolCallRequest]) -> list[dict[str, Any]]:
    """A Responses turn's output items (reasoning, message, function calls) as input items.

    :func:`run_tools` hands back the server's own ``response.output``; this builds
    the same items from parts (the nano script uses it).
    """
    items: list[dict[str, Any]] = []
    if reasoning:
        items.append({"type": "reasoning", "id": "rs_0", "summary": [],
                      "content": [{"type": "reasoning_text", "text": reasoning}]})
    if final is not None:
        items.append({"type": "message", "id": "msg_0", "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": final, "annotations": []}]})
    items += [{"type": "function_call", "id": f"fc_{c.id}", "call_id": c.id, "name": c.name,
               "arguments": c.arguments, "status": "completed"} for c in calls]
    return items


def responses_call_output(call_id: str, output: str) -> dict[str, Any]:
    """One tool result for the Responses API."""
    return {"type": "function_call_output", "call_id": call_id, "output": output}


def as_input_items(input: str | list[Any]) -> list[Any]:
    """Responses ``input`` as a list, so later turns can be appended to it."""
    return [{"role": "user", "content": input}] if isinstance(input, str) else list(input)


# --- the transcript ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ToolRun:
    """One executed tool call: what was asked, what the model got back, how long it took."""

    call: ToolCallRequest
    output: str
    seconds: float

    @property
    def failed(self) -> bool:
        """True when the model got an error text instead of a result."""
        return self.output.startswith("error:")


@dataclass(frozen=True)
class LoopTurn:
    """One model response and the tool calls run for it."""

    result: Result
    runs: tuple[ToolRun, ...] = ()
    tools_seconds: float = 0.0
    """Wall time of this turn's tool calls, run side by side (compare the sum of ``run.seconds``)."""
    constructed: bool = False
    """True when a stand-in (:func:`scripted_model`) wrote this turn, not the served model."""


@dataclass
class Transcript:
    """Everything a :func:`run_tools` loop did; renders as a readable transcript in Jupyter."""

    api: Api
    turns: list[LoopTurn] = field(default_factory=list)
    history: list[Any] = field(default_factory=list)
    """The ``messages`` (Chat) or ``input`` items (Responses) of the last request sent."""
    seconds: float = 0.0

    @property
    def final(self) -> str | None:
        """The model's final answer (``None`` if the loop stopped before one)."""
        return self.turns[-1].result.final if self.turns and not self.turns[-1].result.tool_calls else None

    @property
    def runs(self) -> list[ToolRun]:
        """Every tool call run, in order."""
        return [run for turn in self.turns for run in turn.runs]

    def describe(self) -> str:
        """Say what the served model did in this loop, read off the run (constructed turns are not counted)."""
        served = [t for t in self.turns if not t.constructed]
        if not served:
            return "the served model did not answer in this loop"
        calls = sum(len(t.result.tool_calls) for t in served)
        ending = "gave a final answer" if self.final is not None and not self.turns[-1].constructed else \
            "was stopped before a final answer"
        if calls == 0:
            return f"the model answered without calling a tool ({len(served)} turn(s)) and {ending}"
        most = max(len(t.result.tool_calls) for t in served)
        per_turn = "one call per turn" if most == 1 else f"up to {most} calls in one turn"
        return f"the model made {calls} tool call(s) in {len(served)} turn(s), {per_turn}, and {ending}"

    def __str__(self) -> str:
        lines = [f"{self.api} tool loop: {len(self.turns)} turn(s), {len(self.runs)} tool call(s), "
                 f"{self.seconds:.2f} s"]
        for number, turn in enumerate(self.turns, 1):
            lines.append(f"turn {number}" + (" (constructed, not the model's)" if turn.constructed else ""))
            if turn.result.reasoning:
                lines.append(f"  reasoning: {turn.result.reasoning}")
            for run in turn.runs:
                lines.append(f"  call {run.call.name}({run.call.arguments}) [{run.seconds:.2f} s]")
                lines.append(f"    -> {run.output}")
            if turn.result.final is not None and not turn.result.tool_calls:
                lines.append(f"  final: {turn.result.final}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from gptoss_lab.display import call_html, reasoning_html

        parts = [f"<div><b>{self.api} tool loop</b>: {len(self.turns)} turn(s), {len(self.runs)} tool "
                 f"call(s), {self.seconds:.2f} s</div><ol>"]
        for turn in self.turns:
            parts.append("<li>" + ("<i>constructed turn, not the model's</i>" if turn.constructed else ""))
            if turn.result.reasoning:
                parts.append(reasoning_html(turn.result.reasoning))
            for run in turn.runs:
                parts.append(call_html(run.call.name, run.call.arguments, run.output, run.seconds, run.failed))
            if turn.result.final is not None and not turn.result.tool_calls:
                parts.append(f"<div><b>final:</b> {html.escape(turn.result.final)}</div>")
            parts.append("</li>")
        parts.append("</ol>")
        return "".join(parts)


# --- constructed model turns -------------------------------------------------------------------

Model = Callable[[list[Any]], "Result | None"]
"""A stand-in for the server in :func:`run_tools`: called with the history so far, it returns the model's
turn, or None to let the server answer this turn."""


def model_turn(reasoning: str | None = None, *, calls: Sequence[tuple[str, str]] = (),
               final: str | None = None) -> Result:
    """Build a model turn by hand: reasoning, then tool calls ``(name, raw JSON arguments)`` or a final answer.

    A real model will not misbehave on cue (write broken JSON, call a tool that does not
    exist, loop forever), so ``03_tools`` shows what the loop does with such turns by
    feeding it constructed ones (:func:`scripted_model`). The arguments are raw text on
    purpose: they may be malformed.
    """
    if bool(calls) == (final is not None):
        raise ValueError("a model turn has either tool calls or a final answer")
    requests = tuple(ToolCallRequest(f"call_{i}", name, arguments) for i, (name, arguments) in enumerate(calls))
    return Result(reasoning, final, requests, {})


def scripted_model(*turns: Result, repeat_last: bool = False, then_server: bool = False) -> Model:
    """A stand-in that answers with ``turns`` in order, for ``run_tools(..., model=...)``.

    The loop runs the calls and hands the results back exactly as it does with the
    server, so the lesson is the same whatever model you serve. ``repeat_last`` answers
    with the last turn forever (a model that never stops calling); ``then_server`` lets
    the real model answer once the turns are used up (it reads what the constructed
    turns caused and carries on).
    """
    if not turns:
        raise ValueError("scripted_model needs at least one turn")
    remaining = list(turns)

    def answer(history: list[Any]) -> Result | None:
        if repeat_last and len(remaining) == 1:
            return remaining[0]
        if remaining:
            return remaining.pop(0)
        if then_server:
            return None
        raise ScriptedModelError(f"scripted_model ran out of turns after {len(turns)}; give it another turn, or pass "
                       "repeat_last=True or then_server=True")

    return answer


# --- the loop ---------------------------------------------------------------------------------

def run_calls(tools: Iterable[Tool], calls: Sequence[ToolCallRequest]) -> list[ToolRun]:
    """Run a turn's tool calls concurrently; each becomes a result or an error text, never a crash."""
    tools = list(tools)

    def one(call: ToolCallRequest) -> ToolRun:
        started = time.monotonic()
        output = run_call(tools, call.name, call.arguments)
        return ToolRun(call, output, time.monotonic() - started)

    if len(calls) <= 1:
        return [one(call) for call in calls]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(one, calls))


def _describe(calls: Sequence[ToolCallRequest]) -> str:
    return ", ".join(f"{c.name}({c.arguments})" for c in calls)


def _chat_turn(history: list[Any], effort: str | None, schemas: list[Any], **kwargs: Any) -> Result:
    """One Chat Completions turn; a server without the tool-call parser flags raises :class:`ToolParserError`."""
    import openai

    try:
        return chat(history, effort=effort, tools=schemas, **kwargs)
    except openai.BadRequestError as exc:  # older vLLM releases refuse tools without the flags
        if parsers.names_the_flags(error_message(exc)):
            raise ToolParserError(parsers.flags_message(base_url())) from exc
        raise


def _server_drops_tool_calls() -> bool:
    from gptoss_lab.attach import current as current_server

    current = current_server()
    return parsers.tool_calls_missing(current.url, current.model_id(), current.api_key)


def run_tools(conversation: str | list[Any], tools: Sequence[Tool], *, api: Api = "chat",
              max_turns: int = 8, effort: str | None = None, model: Model | None = None,
              on_turn: Callable[[LoopTurn], None] | None = None, **kwargs: Any) -> Transcript:
    """Run the tool loop on the lab's server until the model gives a final answer.

    ``conversation`` is the Chat ``messages`` list, or the Responses ``input``
    (a string or a list of items). Each turn's reasoning, tool calls and results
    are handed back on the next request. Calls in one turn run concurrently.
    Extra keyword arguments go to every request (``instructions=``,
    ``temperature=``, ...). ``model`` replaces the server with a stand-in
    (:func:`scripted_model`) to show the loop's handling of turns a real model
    does not produce on cue, or with one that streams (the playground's).
    ``on_turn`` is called with each turn once its calls have run, before the
    next request.

    Raises :class:`ToolLoopError` if the model still calls tools in response
    number ``max_turns`` (those calls are not run); the transcript so far is on
    the error. Raises :class:`~gptoss_lab.errors.ToolParserError` on Chat
    Completions when the server was started without the tool-call parser flags
    (checked when the first response has no tool call), and
    :class:`~gptoss_lab.errors.HarmonyParseError` when a harmony parsing 500
    happens twice in a row (retried once, with a warning).
    """
    if api not in ("chat", "responses"):
        raise ValueError(f"api must be 'chat' or 'responses', not {api!r}")
    if max_turns < 1:
        raise ValueError(f"max_turns must be at least 1, not {max_turns}")
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise ValueError(f"two tools share a name: {names}; give each a unique name=")
    started = time.monotonic()
    if api == "chat":
        if isinstance(conversation, str):
            conversation = [{"role": "user", "content": conversation}]
        history = list(conversation)
        schemas = [t.chat_schema() for t in tools]
    else:
        history = as_input_items(conversation)
        schemas = [t.responses_schema() for t in tools]
    transcript = Transcript(api, history=history)
    for number in range(1, max_turns + 1):
        result = model(list(history)) if model is not None else None
        constructed = result is not None
        if result is None and api == "chat":
            result = _chat_turn(history, effort, schemas, **kwargs)
            if number == 1 and schemas and not result.tool_calls and _server_drops_tool_calls():
                raise ToolParserError(parsers.flags_message(base_url()))
        elif result is None:
            result = respond(history, effort=effort, tools=schemas, **kwargs)
        if not result.tool_calls:
            transcript.turns.append(LoopTurn(result, constructed=constructed))
            transcript.seconds = time.monotonic() - started
            if on_turn is not None:
                on_turn(transcript.turns[-1])
            return transcript
        if number == max_turns:  # its calls are not run: no request could use their results
            transcript.turns.append(LoopTurn(result, constructed=constructed))
            break
        tools_started = time.monotonic()
        runs = run_calls(tools, result.tool_calls)
        transcript.turns.append(LoopTurn(result, tuple(runs), time.monotonic() - tools_started, constructed))
        if on_turn is not None:
            on_turn(transcript.turns[-1])
        if api == "chat":
            history.append(chat_assistant_message(result.final, result.reasoning, result.tool_calls))
            history += [chat_tool_message(run.call.id, run.output) for run in runs]
        else:
            if result.raw is not None:
                history += [item.model_dump(exclude_none=True) for item in result.raw.output]
            else:
                history += responses_output_items(result.reasoning, result.final, result.tool_calls)
            history += [responses_call_output(run.call.id, run.output) for run in runs]
    transcript.seconds = time.monotonic() - started
    last = transcript.turns[-1].result.tool_calls
    raise ToolLoopError(
        f"The model was still calling tools after max_turns={max_turns} responses (last: {_describe(last)}). "
        "If the task really needs more steps, pass a larger max_turns=. If a tool keeps returning the same "
        "thing, the model may be retrying: look at the results in the error's .transcript.",
        transcript,
    )


def summary(transcript: Transcript) -> dict[str, Any]:
    """A JSON-friendly summary of a transcript (turns, calls, outputs, final)."""
    return {
        "api": transcript.api,
        "final": transcript.final,
        "turns": [
            {"reasoning": t.result.reasoning,
             "calls": [{"name": r.call.name, "arguments": r.call.arguments, "output": r.output} for r in t.runs]}
            for t in transcript.turns
        ],
        "seconds": round(transcript.seconds, 3),
    }


__all__ = ["Model", "ToolLoopError", "ToolRun", "Transcript", "LoopTurn", "chat_assistant_message",
           "chat_tool_message", "model_turn", "responses_call_output", "responses_output_items", "run_calls",
           "run_tools", "scripted_model", "summary"]
