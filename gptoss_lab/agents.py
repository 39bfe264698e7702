"""The OpenAI Agents SDK pointed at the lab's vLLM server, three ways.

``responses_model()``, ``chat_model()`` and ``litellm_model()`` build the SDK's
model objects for the running server; :func:`run_each` runs one agent on each
and :func:`comparison` tabulates what the runs did (tool called or not, final
output, turns, time), computed from the runs themselves. Tracing is switched
off: it would upload to OpenAI's tracing service, which needs an OpenAI key and
a network. Taught in ``notebooks/04_agents.ipynb``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

PATHS = ("responses", "chat", "litellm")
"""The three ways to reach vLLM: Responses API, Chat Completions, LiteLLM (Chat Completions)."""


def disable_tracing() -> None:
    """Switch off the SDK's trace upload (no OpenAI key or network is needed then)."""
    from agents import set_tracing_disabled

    set_tracing_disabled(True)


def _server() -> Any:
    from gptoss_lab.launch import current

    return current()


def responses_model() -> Any:
    """``OpenAIResponsesModel`` on the lab's server (vLLM's ``/v1/responses``)."""
    from agents import OpenAIResponsesModel

    from gptoss_lab.client import async_client

    disable_tracing()
    return OpenAIResponsesModel(model=_server().model_id(), openai_client=async_client())


def chat_model() -> Any:
    """``OpenAIChatCompletionsModel`` on the lab's server (vLLM's ``/v1/chat/completions``)."""
    from agents import OpenAIChatCompletionsModel

    from gptoss_lab.client import async_client

    disable_tracing()
    return OpenAIChatCompletionsModel(model=_server().model_id(), openai_client=async_client())


def replay_reasoning(context: Any) -> bool:
    """Hand gpt-oss's reasoning back on every tool turn (the Agents SDK hook for it).

    Through LiteLLM, the SDK sees vLLM's ``reasoning`` as ``reasoning_content``
    and by default replays that only to DeepSeek models, so gpt-oss would lose
    its chain of thought between tool calls: exactly what the cookbook warns
    against. With this hook the SDK sends it back as ``reasoning_content``; vLLM
    0.32 renames that to ``reasoning`` and renders it as the harmony analysis
    message (measured in docs/reasoning-handback.md). Replaying every turn is
    safe: vLLM drops the reasoning that precedes a final answer, as harmony
    prescribes.
    """
    return True


def litellm_model(*, replay: bool = True) -> Any:
    """``LitellmModel`` routed to the lab's server through LiteLLM's ``openai/`` provider.

    ``replay=False`` gives the SDK's default, which drops the reasoning between
    tool turns on this path (see :func:`replay_reasoning`). LiteLLM would fetch
    its model price list from the internet at import;
    ``LITELLM_LOCAL_MODEL_COST_MAP=True`` makes it use its bundled copy.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from agents.extensions.models.litellm_model import LitellmModel

    disable_tracing()
    server = _server()
    return LitellmModel(model=f"openai/{server.model_id()}", base_url=server.url, api_key=server.api_key or "EMPTY",
                        should_replay_reasoning_content=replay_reasoning if replay else None)


MODELS: dict[str, Callable[[], Any]] = {"responses": responses_model, "chat": chat_model, "litellm": litellm_model}


def model(path: str) -> Any:
    """The SDK model object for one path: ``responses``, ``chat`` or ``litellm``."""
    if path not in MODELS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, not {path!r}")
    return MODELS[path]()


@dataclass(frozen=True)
class AgentRun:
    """What one agent run did, read off the SDK's own result."""

    path: str
    final: str | None
    tools_called: tuple[str, ...]
    turns: int
    """Model responses in the run."""
    seconds: float
    error: str | None = None
    """``Type: message`` when the run raised instead of finishing."""

    def describe(self) -> str:
        """One sentence: the tools the model called and the turns it took (or the error)."""
        from gptoss_lab.describe import describe_calls

        return f"error: {self.error}" if self.error else describe_calls(self.tools_called, self.turns)


def handed_back(result: Any, model_name: str, *, replay: bool) -> list[dict[str, Any]]:
    """The Chat Completions messages the SDK would send after ``result``, with or without the replay hook."""
    from agents.models.chatcmpl_converter import Converter

    hook = replay_reasoning if replay else None
    messages: list[Any] = list(Converter.items_to_messages(result.to_input_list(), model=model_name,
                                                          should_replay_reasoning_content=hook))
    return messages


def assistant_turn(result: Any, model_name: str, *, replay: bool) -> dict[str, Any] | None:
    """The assistant message the SDK would send back after ``result``: the tool-call turn, if any.

    When the model called no tool, there is no tool turn to hand back: this is then the
    answer's message (or None when the run produced no assistant message at all).
    """
    turns = [m for m in handed_back(result, model_name, replay=replay) if m["role"] == "assistant"]
    return next((m for m in turns if m.get("tool_calls")), turns[0] if turns else None)


def describe(result: Any) -> str:
    """One sentence saying what an agent run did: the tools the model called, in how many turns."""
    from gptoss_lab.describe import describe_calls

    called = [item.raw_item.name for item in result.new_items if item.type == "tool_call_item"]
    return describe_calls(called, len(result.raw_responses))


def summarize(path: str, result: Any, seconds: float) -> AgentRun:
    """An :class:`AgentRun` from a ``RunResult`` (or a finished streaming result)."""
    called = tuple(item.raw_item.name for item in result.new_items if item.type == "tool_call_item")
    final = result.final_output if isinstance(result.final_output, str) else repr(result.final_output)
    return AgentRun(path, final, called, len(result.raw_responses), seconds)


async def run_each(make_agent: Callable[[Any], Any], input: str, paths: Sequence[str] = PATHS) -> list[AgentRun]:
    """Run the agent ``make_agent(model)`` once on each path; a failing path is recorded, not raised."""
    from agents import Runner

    runs = []
    for path in paths:
        started = time.monotonic()
        try:
            result = await Runner.run(make_agent(model(path)), input)
        except Exception as exc:  # the comparison shows the real error for that path
            runs.append(AgentRun(path, None, (), 0, time.monotonic() - started, f"{type(exc).__name__}: {exc}"))
            continue
        runs.append(summarize(path, result, time.monotonic() - started))
    return runs


def comparison(runs: Sequence[AgentRun]) -> Any:
    """A table of the runs (a pandas-free HTML table in Jupyter, text elsewhere)."""
    return _Table(list(runs))


class _Table:
    def __init__(self, runs: list[AgentRun]) -> None:
        self.runs = runs

    def rows(self) -> list[dict[str, str]]:
        return [{"path": r.path, "tool called": ", ".join(r.tools_called) or "no",
                 "final output": (r.final or "") if r.error is None else f"error: {r.error}",
                 "turns": str(r.turns), "seconds": f"{r.seconds:.2f}"} for r in self.runs]

    def __repr__(self) -> str:
        rows = self.rows()
        if not rows:
            return "(no runs)"
        cols = list(rows[0])
        width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
        line = "  ".join(c.ljust(width[c]) for c in cols)
        return "\n".join([line, *("  ".join(r[c].ljust(width[c]) for c in cols) for r in rows)])

    def _repr_html_(self) -> str:
        import html

        rows = self.rows()
        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in rows[0]) if rows else ""
        body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(v)}</td>" for v in r.values())
                       + "</tr>" for r in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
