"""Show a streaming response live: reasoning apart from the answer, tool calls as they arrive.

``lab.show_stream(stream)`` takes the iterator the SDK returns for
``stream=True`` (Chat Completions chunks or Responses events), shows it while
it arrives and returns what it collected with usage and tokens/s. In Jupyter
the view is one HTML output, redrawn at most every ``interval`` seconds
(default 0.25) so drawing never holds up the stream; elsewhere the text is printed as it comes.
Taught in ``notebooks/02_apis.ipynb``.
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from gptoss_lab.client import ToolCallRequest, raise_if_our_server_died, reasoning_of, usage_counts
from gptoss_lab.jupyter import in_jupyter

_DIM = "color:#6b7280;white-space:pre-wrap;font-size:0.92em"


def reasoning_html(text: str, *, open_: bool = False, title: str = "reasoning") -> str:
    """A collapsible, dimmed block for chain-of-thought text."""
    state = " open" if open_ else ""
    return (f"<details{state}><summary style='color:#6b7280'>{title} ({len(text)} chars)</summary>"
            f"<div style='{_DIM}'>{html.escape(text)}</div></details>")


def call_html(name: str, arguments: str, output: str | None = None, seconds: float | None = None,
              failed: bool = False) -> str:
    """One tool call (and its result, when known) as HTML."""
    parts = [f"<div><code>{html.escape(name)}({html.escape(arguments)})</code>"]
    if seconds is not None:
        parts.append(f" <span style='color:#6b7280'>[{seconds:.2f} s]</span>")
    if output is not None:
        color = "#b91c1c" if failed else "#065f46"
        parts.append(f"<pre style='margin:2px 0 6px 1.5em;color:{color};white-space:pre-wrap'>"
                     f"{html.escape(output)}</pre>")
    parts.append("</div>")
    return "".join(parts)


@dataclass
class StreamResult:
    """What a stream delivered, and how fast."""

    reasoning: str = ""
    final: str = ""
    tool_calls: list[ToolCallRequest] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=dict)
    events: int = 0
    """Chunks (Chat) or events (Responses) received."""
    first_token_s: float | None = None
    """Seconds from the first read to the first reasoning or answer text."""
    seconds: float = 0.0

    @property
    def completion_tokens(self) -> int:
        """Tokens generated: the server's usage if it sent one, else the text deltas counted."""
        return self.usage.get("completion_tokens") or self.usage.get("output_tokens") or self._deltas

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second over the whole stream."""
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    _deltas: int = field(default=0, repr=False)

    def footer(self) -> str:
        """One line of usage and speed."""
        ttft = f", first token after {self.first_token_s:.2f} s" if self.first_token_s is not None else ""
        prompt = self.usage.get("prompt_tokens") or self.usage.get("input_tokens")
        prompt_part = f", prompt {prompt} tokens" if prompt else ""
        return (f"{self.completion_tokens} tokens in {self.seconds:.2f} s = {self.tokens_per_s:.1f} tokens/s"
                f"{prompt_part}{ttft}")


class StreamCollector:
    """Folds Chat chunks or Responses events into a :class:`StreamResult`."""

    def __init__(self) -> None:
        self.result = StreamResult()
        self._calls: dict[int, dict[str, str]] = {}
        self._started = time.monotonic()
        self.responses = False
        """True once a Responses API event arrived (Chat chunks have ``choices``)."""

    def _text(self, kind: str, text: str) -> None:
        if not text:
            return
        if self.result.first_token_s is None:
            self.result.first_token_s = time.monotonic() - self._started
        self.result._deltas += 1
        if kind == "reasoning":
            self.result.reasoning += text
        else:
            self.result.final += text

    def feed(self, item: Any) -> None:
        self.result.events += 1
        if hasattr(item, "choices"):
            self._chat(item)
        else:
            self.responses = True
            self._responses(item)

    def _chat(self, chunk: Any) -> None:
        if getattr(chunk, "usage", None):
            self.result.usage = usage_counts(chunk.usage)
        for choice in chunk.choices or ():
            delta = choice.delta
            self._text("reasoning", reasoning_of(delta) or "")
            self._text("final", delta.content or "")
            for call in delta.tool_calls or ():
                slot = self._calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = call.id or slot["id"]
                if call.function is not None:
                    slot["name"] += call.function.name or ""
                    slot["arguments"] += call.function.arguments or ""
        self.result.tool_calls = [ToolCallRequest(c["id"], c["name"], c["arguments"]) for c in self._calls.values()]

    def _responses(self, event: Any) -> None:
        kind = getattr(event, "type", "")
        if kind == "response.reasoning_text.delta":
            self._text("reasoning", event.delta)
        elif kind == "response.output_text.delta":
            self._text("final", event.delta)
        elif kind == "response.output_item.added" and event.item.type == "function_call":
            self._calls[event.output_index] = {"id": event.item.call_id, "name": event.item.name, "arguments": ""}
        elif kind == "response.function_call_arguments.delta":
            self._calls.setdefault(event.output_index, {"id": "", "name": "", "arguments": ""})
            self._calls[event.output_index]["arguments"] += event.delta
        elif kind == "response.function_call_arguments.done" and event.output_index in self._calls:
            self._calls[event.output_index]["arguments"] = event.arguments
        elif kind == "response.completed" and event.response.usage is not None:
            self.result.usage = usage_counts(event.response.usage)
        self.result.tool_calls = [ToolCallRequest(c["id"], c["name"], c["arguments"]) for c in self._calls.values()]

    def finish(self) -> StreamResult:
        self.result.seconds = time.monotonic() - self._started
        return self.result


def _html(result: StreamResult, done: bool) -> str:
    parts = []
    if result.reasoning:
        parts.append(reasoning_html(result.reasoning, open_=not done))
    parts += [call_html(c.name, c.arguments) for c in result.tool_calls]
    if result.final:
        parts.append(f"<div style='white-space:pre-wrap'>{html.escape(result.final)}</div>")
    if done:
        parts.append(f"<div style='color:#6b7280;font-size:0.85em'>{html.escape(result.footer())}</div>")
    elif not parts:
        parts.append("<div style='color:#6b7280'>waiting for the first token...</div>")
    return "".join(parts)


def show_stream(stream: Iterable[Any], *, interval: float = 0.25, jupyter: bool | None = None,
                out: TextIO | None = None) -> StreamResult:
    """Show a ``stream=True`` response live and return what it delivered.

    Reasoning is drawn dimmed and collapsible, apart from the answer; tool calls
    appear as they arrive; usage and tokens/s come at the end. Pass
    ``stream_options={"include_usage": True}`` (Chat) to get the server's token
    counts; otherwise text deltas are counted.

    Raises:
        ServerError: the stream broke because the server this kernel started died (the message says how).
    """
    try:
        return _show(stream, interval, jupyter, out)
    except Exception as exc:
        raise_if_our_server_died(exc)  # a stream cut off by the death of the lab's own server says why
        raise


def _show(stream: Iterable[Any], interval: float, jupyter: bool | None, out: TextIO | None) -> StreamResult:
    collector = StreamCollector()
    if jupyter is None:
        jupyter = in_jupyter()
    if jupyter:
        from IPython.display import HTML, display

        handle = display(HTML(_html(collector.result, False)), display_id=True)
        drawn = time.monotonic()
        for item in stream:
            collector.feed(item)
            if time.monotonic() - drawn >= interval:
                handle.update(HTML(_html(collector.result, False)))
                drawn = time.monotonic()
        result = collector.finish()
        handle.update(HTML(_html(result, True)))
        _record(collector, result)
        return result
    return _print_stream(stream, collector, out or sys.stdout)


def _record(collector: StreamCollector, result: StreamResult) -> None:
    """Hand a streamed Responses answer to the drift check's answer log (vLLM logs none for gpt-oss)."""
    if collector.responses and result.final:
        from gptoss_lab import drift

        drift.record_answer(result.final, "responses")


def _print_stream(stream: Iterable[Any], collector: StreamCollector, out: TextIO) -> StreamResult:
    section = ""
    shown_calls = 0
    for item in stream:
        before = (len(collector.result.reasoning), len(collector.result.final))
        collector.feed(item)
        result = collector.result
        for kind, old, text in (("reasoning", before[0], result.reasoning), ("answer", before[1], result.final)):
            if len(text) > old:
                if section != kind:
                    out.write(("\n" if section else "") + f"[{kind}] ")
                    section = kind
                out.write(text[old:])
        finished = result.tool_calls[:-1] if not result.final else result.tool_calls
        for call in finished[shown_calls:]:
            out.write(f"\n[tool call] {call.name}({call.arguments})")
            shown_calls += 1
    result = collector.finish()
    _record(collector, result)
    for call in result.tool_calls[shown_calls:]:
        out.write(f"\n[tool call] {call.name}({call.arguments})")
    out.write(f"\n[{result.footer()}]\n")
    out.flush()
    return result
