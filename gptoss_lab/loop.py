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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gptoss_lab import parsers
from gptoss_lab.client import Result, ToolCallRequest, base_url, chat, error_message, respond
from gptoss_lab.errors import LabError, ToolParserError
from gptoss_lab.tools import Tool, run_call

Api = Literal["chat", "responses"]


class ToolLoopError(LabError):
    """The model kept calling tools past ``max_turns``; ``.transcript`` holds what happened."""

    def __init__(self, message: str, transcript: Transcript) -> None:
        super().__init__(message)
        self.transcript = transcript


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
class Turn:
    """One model response and the tool calls run for it."""

    result: Result
    runs: tuple[ToolRun, ...] = ()
    tools_seconds: float = 0.0
    """Wall time of this turn's tool calls, run side by side (compare the sum of ``run.seconds``)."""


@dataclass
class Transcript:
    """Everything a :func:`run_tools` loop did; renders as a readable transcript in Jupyter."""

    api: Api
    turns: list[Turn] = field(default_factory=list)
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

    def __str__(self) -> str:
        lines = [f"{self.api} tool loop: {len(self.turns)} turn(s), {len(self.runs)} tool call(s), "
                 f"{self.seconds:.2f} s"]
        for number, turn in enumerate(self.turns, 1):
            lines.append(f"turn {number}")
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
            parts.append("<li>")
            if turn.result.reasoning:
                parts.append(reasoning_html(turn.result.reasoning))
            for run in turn.runs:
                parts.append(call_html(run.call.name, run.call.arguments, run.output, run.seconds, run.failed))
            if turn.result.final is not None and not turn.result.tool_calls:
                parts.append(f"<div><b>final:</b> {html.escape(turn.result.final)}</div>")
            parts.append("</li>")
        parts.append("</ol>")
        return "".join(parts)


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
    from gptoss_lab import server

    current = server.current()
    return parsers.tool_calls_missing(current.url, current.model_id(), current.api_key)


def run_tools(conversation: str | list[Any], tools: Sequence[Tool], *, api: Api = "chat",
              max_turns: int = 8, effort: str | None = None, **kwargs: Any) -> Transcript:
    """Run the tool loop on the lab's server until the model gives a final answer.

    ``conversation`` is the Chat ``messages`` list, or the Responses ``input``
    (a string or a list of items). Each turn's reasoning, tool calls and results
    are handed back on the next request. Calls in one turn run concurrently.
    Extra keyword arguments go to every request (``instructions=``,
    ``temperature=``, ...).

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
        if api == "chat":
            result = _chat_turn(history, effort, schemas, **kwargs)
            if number == 1 and schemas and not result.tool_calls and _server_drops_tool_calls():
                raise ToolParserError(parsers.flags_message(base_url()))
        else:
            result = respond(history, effort=effort, tools=schemas, **kwargs)
        if not result.tool_calls:
            transcript.turns.append(Turn(result))
            transcript.seconds = time.monotonic() - started
            return transcript
        if number == max_turns:  # its calls are not run: no request could use their results
            transcript.turns.append(Turn(result))
            break
        tools_started = time.monotonic()
        runs = run_calls(tools, result.tool_calls)
        transcript.turns.append(Turn(result, tuple(runs), time.monotonic() - tools_started))
        if api == "chat":
            history.append(chat_assistant_message(result.final, result.reasoning, result.tool_calls))
            history += [chat_tool_message(run.call.id, run.output) for run in runs]
        else:
            history += [item.model_dump(exclude_none=True) for item in result.raw.output]
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


__all__ = ["ToolLoopError", "ToolRun", "Transcript", "Turn", "chat_assistant_message", "chat_tool_message",
           "responses_call_output", "responses_output_items", "run_calls", "run_tools", "summary"]
