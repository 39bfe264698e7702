"""The playground's conversation, without widgets: requests, a cancellable stream, the tool loop.

Requests are built the way the rest of the lab builds them: ``reasoning_effort``
always, a ``developer`` message only when there are instructions, ``tools`` only
when tools are on, and the history kept with :mod:`gptoss_lab.loop`'s message
builders (after a final answer only the answer goes back, as
``notebooks/02_apis.ipynb`` teaches). Taught in ``notebooks/07_playground.ipynb``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gptoss_lab.client import Result
from gptoss_lab.display import StreamCollector, StreamResult
from gptoss_lab.errors import Cancelled, ToolLoopError
from gptoss_lab.loop import LoopTurn, ToolRun, chat_assistant_message, run_tools
from gptoss_lab.tools import Tool

Effort = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class Options:
    """What one playground turn sends besides the conversation."""

    model: str
    effort: Effort = "medium"
    temperature: float | None = None
    """``None``: the server's default (greedy for nano)."""
    max_tokens: int | None = None
    """``None``: the server's default (the rest of the context window)."""
    instructions: str = ""
    """Sent as a ``developer`` message before the conversation when not blank."""
    tools: tuple[Tool, ...] = ()
    """The tools offered to the model; empty means tools off (no ``tools`` field at all)."""
    max_requests: int = 8
    """Requests one turn may make before the tool loop is stopped."""


def request(messages: Sequence[dict[str, Any]], options: Options) -> dict[str, Any]:
    """The keyword arguments of ``client.chat.completions.create`` for ``messages`` (streaming not included)."""
    instructions = options.instructions.strip()
    developer = [{"role": "developer", "content": instructions}] if instructions else []
    body: dict[str, Any] = {"model": options.model, "messages": [*developer, *messages],
                            "reasoning_effort": options.effort}
    if options.tools:
        body["tools"] = [t.chat_schema() for t in options.tools]
    if options.temperature is not None:
        body["temperature"] = options.temperature
    if options.max_tokens:
        body["max_tokens"] = options.max_tokens
    return body


class Cancel:
    """A stop flag that also closes the stream being read, which cancels the HTTP request."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._stream: Any = None

    def set(self) -> None:
        """Stop: flag it, and close the open stream (vLLM aborts a request whose client went away)."""
        self._event.set()
        with self._lock:
            stream, self._stream = self._stream, None
        _close(stream)

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if stopped."""
        if self._event.is_set():
            raise Cancelled

    def attach(self, stream: Any) -> None:
        """Remember the stream being read (closed at once if already stopped)."""
        with self._lock:
            self._stream = stream
        if self._event.is_set():
            self.set()

    def detach(self) -> None:
        with self._lock:
            self._stream = None


def _close(stream: Any) -> None:
    if stream is not None:
        # Closing a half-read response from another thread may complain; it is closed all the same.
        with contextlib.suppress(Exception):
            stream.close()


@dataclass
class Turn:
    """One playground turn: the prompt, every request it streamed, the tools it ran, the answer."""

    prompt: str
    steps: list[StreamResult] = field(default_factory=list)
    """One stream per request (a tool loop makes several)."""
    runs: list[ToolRun] = field(default_factory=list)
    final: str | None = None
    finish_reason: str | None = None
    """The last request's finish reason: ``stop``, or ``length`` when max tokens cut the answer."""
    messages: list[dict[str, Any]] = field(default_factory=list)
    """What this turn adds to the history: the user message, tool turns, the answer."""
    current: StreamResult | None = None
    """The stream being read right now (``None`` between requests)."""

    @property
    def reasoning(self) -> str:
        """The reasoning of every request of the turn, one paragraph each."""
        parts = [s.reasoning for s in (*self.steps, *([self.current] if self.current else ())) if s.reasoning]
        return "\n\n".join(parts)

    @property
    def completion_tokens(self) -> int:
        return sum(s.completion_tokens for s in self.steps)

    @property
    def seconds(self) -> float:
        """Seconds spent streaming (tool runs not included)."""
        return sum(s.seconds for s in self.steps)

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second of streaming, over every request of the turn."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def footer(self) -> str:
        """One line of speed: tokens/s, tokens, seconds, requests, first token."""
        first = self.steps[0].first_token_s if self.steps else None
        parts = [f"{self.tokens_per_s:.1f} tokens/s", f"{self.completion_tokens} tokens in {self.seconds:.2f} s"]
        if len(self.steps) > 1:
            parts.append(f"{len(self.steps)} requests")
        if first is not None:
            parts.append(f"first token after {first:.2f} s")
        return " · ".join(parts)


def run_turn(client: Any, history: Sequence[dict[str, Any]], prompt: str, options: Options, *,
             cancel: Cancel, on_update: Callable[[Turn], None] = lambda _turn: None,
             interval: float = 0.25) -> Turn:
    """Stream one user turn to its final answer, running tool calls in between.

    The loop is :func:`gptoss_lab.loop.run_tools`, with each request streamed here.
    ``on_update`` is called at most every ``interval`` seconds while text arrives,
    and after each request and tool run. Raises :class:`Cancelled` when
    ``cancel`` is set; the history passed in is never changed (the new messages
    are on the returned turn).
    """
    turn = Turn(prompt)

    def streamed(pending: list[Any]) -> Result:
        step, turn.finish_reason = _stream_one(client, request(pending, options), turn, cancel, on_update, interval)
        turn.steps.append(step)
        on_update(turn)
        return Result(step.reasoning or None, step.final or None, tuple(step.tool_calls), dict(step.usage))

    def ran(done: LoopTurn) -> None:
        if done.runs:
            turn.runs += done.runs
            cancel.check()
            on_update(turn)

    try:
        transcript = run_tools([*history, {"role": "user", "content": prompt}], options.tools, model=streamed,
                               max_turns=options.max_requests, on_turn=ran)
    except ToolLoopError as error:
        raise ToolLoopError(
            f"The model was still calling tools after {options.max_requests} requests, so the playground stopped "
            "the loop. Ask a narrower question, or turn tools off.", error.transcript,
        ) from None
    turn.final = turn.steps[-1].final
    turn.messages = [*transcript.history[len(history):], chat_assistant_message(turn.final, None, [])]
    on_update(turn)
    return turn


def _stream_one(client: Any, body: dict[str, Any], turn: Turn, cancel: Cancel,
                on_update: Callable[[Turn], None], interval: float) -> tuple[StreamResult, str | None]:
    cancel.check()
    collector = StreamCollector()
    turn.current = collector.result
    finish_reason = None
    stream = client.chat.completions.create(**body, stream=True, stream_options={"include_usage": True})
    cancel.attach(stream)
    drawn = time.monotonic()
    try:
        for chunk in stream:
            if cancel.is_set():
                break
            collector.feed(chunk)
            finish_reason = next((c.finish_reason for c in chunk.choices or () if c.finish_reason), finish_reason)
            if time.monotonic() - drawn >= interval:
                on_update(turn)
                drawn = time.monotonic()
    except Exception:
        if cancel.is_set():
            raise Cancelled from None  # the stream was closed under the reader: that is the stop
        raise
    finally:
        cancel.detach()
        _close(stream)
    cancel.check()
    turn.current = None
    return collector.finish(), finish_reason


__all__ = ["Cancel", "Cancelled", "Options", "Turn", "request", "run_turn"]
